//! [`QaItem`], what the model sees, and the one prompt format: [`format_prompt`] (question
//! last), [`split_prompt`] back, and [`answer_target`], the text the model learns to generate.

use serde::{Deserialize, Serialize};

/// One question as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaItem {
    /// Identifier from the data (JSON lines `index`, SQuAD `id`) or made up (`cloze-test-00042`).
    pub id: String,
    /// The full model input: context and question. The model generates the answer right after it.
    pub prompt: String,
    /// Gold answers; never empty, none blank. Any of them counts as correct.
    pub answers: Vec<String>,
}

/// The line that introduces the question in [`format_prompt`].
pub const QUESTION_PREFIX: &str = "\n\nQuestion: ";
/// What ends every prompt of [`format_prompt`]; the answer follows it.
pub const ANSWER_PREFIX: &str = "\nAnswer:";
/// Separator between the paragraphs (passages) of a built context.
pub const PARAGRAPH_SEPARATOR: &str = "\n\n";

/// The prompt format, defined once: `"{context}\n\nQuestion: {question}\nAnswer:"`.
///
/// The question comes **last**. A causal language model reads left to right: with the question
/// after the context, it reads the context, then the question, and answers right after it, so the
/// question is fresh when the answer is produced and the task is to look back into the context
/// for it. With the question first, the model would have to carry it across the whole (possibly
/// very long) context before it could answer, which measures memory of the question more than
/// retrieval from the context.
///
/// The training target that follows the prompt is [`answer_target`] plus EOS.
pub fn format_prompt(context: &str, question: &str) -> String {
    format!("{context}{QUESTION_PREFIX}{question}{ANSWER_PREFIX}")
}

/// Split a prompt made by [`format_prompt`] back into `(context, question)`; `None` for prompts
/// of another shape (e.g. JSON-lines inputs written by other tools).
pub fn split_prompt(prompt: &str) -> Option<(&str, &str)> {
    let body = prompt.strip_suffix(ANSWER_PREFIX)?;
    let at = body.rfind(QUESTION_PREFIX)?;
    Some((&body[..at], &body[at + QUESTION_PREFIX.len()..]))
}

/// The text the model learns to generate after the prompt: a space, then the trimmed answer
/// (`"Answer:"` + `" Paris"`). The caller appends EOS.
pub fn answer_target(answer: &str) -> String {
    format!(" {}", answer.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_round_trip() {
        let p = format_prompt("ctx\n\npara", "Who?");
        assert_eq!(p, "ctx\n\npara\n\nQuestion: Who?\nAnswer:");
        assert_eq!(split_prompt(&p), Some(("ctx\n\npara", "Who?")));
        assert_eq!(split_prompt("no format"), None);
        assert_eq!(answer_target("  Paris \n"), " Paris");
    }
}
