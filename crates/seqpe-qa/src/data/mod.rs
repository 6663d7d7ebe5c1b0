//! QA records, the prompt format, loaders, long-context building and the built-in cloze task.
//! Pure Rust, no tensors. One module per concern, in reading order:
//!
//! 1. [`prompt`]: [`QaItem`] and the one prompt format ([`format_prompt`], [`answer_target`]).
//! 2. [`loaders`]: users' files, [`load_jsonl`] and [`load_squad`].
//! 3. [`long_context`]: long contexts the reference's way, [`build_long_contexts`] places each
//!    SQuAD question's gold paragraph at a random depth among distractor paragraphs of other
//!    articles.
//! 4. [`user_data`]: [`load_qa_path`], a file or folder of either kind (`--qa-data`).
//! 5. [`cloze`]: the built-in cloze task from plain documents ([`build_cloze`], [`cloze_task`],
//!    [`contexts_at`]), on [`sentences`] (the sentence splitter and the stop list).
//! 6. [`passkey`]: passkey retrieval, a 5-digit number at a drawn depth of filler text
//!    ([`passkey_prompts`]), built in tokens.
//!
//! What guessing scores on a task ([`crate::metrics::trivial_baselines`]) sits beside the
//! metrics. Every item is re-exported here, so `seqpe_qa::data::format_prompt` and
//! `seqpe_qa::data::prompt::format_prompt` name the same function.
//!
//! Every length is measured by the caller's `count: &dyn Fn(&str) -> usize`, so contexts are
//! sized in the model's own tokens.

pub mod cloze;
pub mod loaders;
pub mod long_context;
pub mod passkey;
pub mod prompt;
pub mod sentences;
pub mod user_data;

pub use cloze::{
    build_cloze, cloze_task, cloze_task_from_splits, contexts_at, passages, pseudo_documents,
    split_documents, ClozeConfig, ClozeQuestion, ClozeSplit, ClozeSplits, ClozeTask, Passage,
    SplitCounts, BLANK, CLOZE_QUESTION_PREFIX, MAX_SENTENCE_WORDS, MIN_SENTENCE_WORDS,
};
pub use loaders::{load_jsonl, load_squad, SquadArticle, SquadData, SquadParagraph, SquadQuestion};
pub use long_context::{build_long_contexts, BuiltItem, LongContexts};
pub use passkey::{
    decile, needle, numbers_in, passkey_answer, passkey_prompt, passkey_prompts, Passkey,
    PASSKEY_QUESTION,
};
pub use prompt::{
    answer_target, format_prompt, split_prompt, QaItem, ANSWER_PREFIX, PARAGRAPH_SEPARATOR,
    QUESTION_PREFIX,
};
pub use sentences::{
    is_eligible_word, is_stop_word, split_sentences, MIN_ANSWER_LETTERS, STOP_WORDS,
};
pub use user_data::{load_qa_path, QaSet, SquadOptions};
