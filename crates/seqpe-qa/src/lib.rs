//! Long-context question answering for seqpe (the paper's third experiment): a GPT pre-trained
//! with `train-text` is fine-tuned on questions whose contexts are longer than anything it saw,
//! then scored by exact match at 1×–16× the fine-tuning length.
//!
//! Where to start: [`task`] (fine-tuning as a task of the shared training loop: `cargo xtask
//! train-qa`) and [`eval`] (greedy decoding with the key/value cache, EM and answer perplexity
//! per length: `cargo xtask eval-qa`); [`config`] holds the presets. The data and scoring layer
//! below is pure Rust (no tensors):
//!
//! * [`data::QaItem`] is what the model sees: a `prompt` (context + question, built by
//!   [`data::format_prompt`], question last) and the gold `answers`. The training target is
//!   [`data::answer_target`] followed by EOS.
//! * Users' data: [`data::load_qa_path`] reads a file or a folder (`--qa-data FILE|DIR`):
//!   JSON lines (`{"index", "input", "outputs"}`, [`data::load_jsonl`]) or SQuAD v1.1/v2.0 JSON
//!   ([`data::load_squad`]), whose paragraphs are padded with distractors to a target length by
//!   [`data::build_long_contexts`].
//! * The built-in task: [`data::build_cloze`] makes a Children's-Book-Test-style cloze task from
//!   the project's corpora (Brown, Jane Austen), split by document. To compare context lengths on
//!   identical questions, build the questions once with [`data::cloze_task`] and place them in
//!   contexts of several lengths with [`data::ClozeSplit::contexts_at`].
//!   [`data::trivial_baselines`] shows what guessing scores.
//! * Scoring: [`metrics::lenient_em`] (the reference's substring match), [`metrics::strict_em`]
//!   and [`metrics::em_scores`].
//!
//! Token counts are always the caller's: every function that needs one takes
//! `count: &dyn Fn(&str) -> usize` (the model's tokenizer; a whitespace word count in tests).

pub mod config;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod task;
