//! # seqpe-text
//!
//! Causal language modelling with SeqPE and the baselines, on real corpora.
//!
//! Where to start: [`model`], the GPT, readable top to bottom; position information enters
//! through one seam ([`model::Gpt::positions`]).
//!
//! * [`data`]: tokenizer training, token streams, training blocks, evaluation chunks.
//! * [`train`]: language modelling as a task of the shared loop (`cargo xtask train-text`).
//! * [`eval`]: perplexity beyond the training length (`cargo xtask eval-text`).
//! * [`generate`]: greedy decoding with a key/value cache (`cargo xtask generate`).
//! * [`config`]: presets `tiny`, `small`, `bench`, `gpt2-small`.
//! * [`bench`]: training throughput per encoding.

pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod generate;
pub mod model;
pub mod train;
