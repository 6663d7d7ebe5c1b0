//! # seqpe-text
//!
//! Causal language modelling with SeqPE and the baselines, on real corpora.
//!
//! * [`model`]: the GPT, readable top to bottom; position information enters through one seam.
//! * [`data`]: tokenizer training, token streams, training blocks, evaluation chunks.
//! * [`train`]: the training loop (`cargo xtask train-text`).
//! * [`eval`]: perplexity beyond the training length (`cargo xtask eval-text`).
//! * [`config`]: presets `tiny`, `bench`, `gpt2-small`.

pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod model;
pub mod report;
pub mod train;
