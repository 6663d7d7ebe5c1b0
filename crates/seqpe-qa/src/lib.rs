//! Long-context question answering for seqpe (the paper's third experiment): a GPT pre-trained
//! with `train-text` is fine-tuned on questions whose contexts are longer than anything it saw,
//! then scored by exact match at 1×–16× the fine-tuning length.
//!
//! Where to start: [`task`] (fine-tuning as a task of the shared training loop: `cargo xtask
//! train-qa`) and [`eval`] (greedy decoding with the key/value cache, EM and answer perplexity
//! per length: `cargo xtask eval-qa`); [`config`] holds the presets. Below them, two layers of
//! pure Rust (no tensors); [`metrics`] depends on [`data`], never the reverse:
//!
//! * [`data`], one module per concern:
//!   * [`data::prompt`]: [`data::QaItem`] is what the model sees, a `prompt` (context +
//!     question, built by [`data::format_prompt`], question last) and the gold `answers`. The
//!     training target is [`data::answer_target`] followed by EOS.
//!   * [`data::loaders`] and [`data::user_data`]: users' data. [`data::load_qa_path`] reads a
//!     file or a folder (`--qa-data FILE|DIR`): JSON lines (`{"index", "input", "outputs"}`,
//!     [`data::load_jsonl`]) or SQuAD v1.1/v2.0 JSON ([`data::load_squad`]), whose paragraphs
//!     are padded with distractors to a target length by [`data::build_long_contexts`]
//!     ([`data::long_context`]).
//!   * [`data::cloze`]: the built-in task, a Children's-Book-Test-style cloze task made by
//!     [`data::build_cloze`] from the project's corpora (Brown, Jane Austen), split by document;
//!     its sentence splitter and stop list are in [`data::sentences`]. To compare context
//!     lengths on identical questions, build the questions once with [`data::cloze_task`] and
//!     place them in contexts of several lengths with [`data::ClozeSplit::contexts_at`].
//! * [`metrics`]: scoring, [`metrics::lenient_em`] (the reference's substring match),
//!   [`metrics::strict_em`] and [`metrics::em_scores`]; [`metrics::trivial_baselines`] shows what
//!   guessing scores.
//!
//! Every item of [`data`]'s modules is re-exported at [`data`] (`seqpe_qa::data::QaItem`).
//! Token counts are always the caller's: every function that needs one takes
//! `count: &dyn Fn(&str) -> usize` (the model's tokenizer; a whitespace word count in tests).

pub mod config;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod task;
