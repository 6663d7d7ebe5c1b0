//! Exact-match scores for generated answers.
//!
//! Two variants are reported side by side:
//!
//! * [`lenient_em`], the reference's metric: a gold answer appears anywhere in the output.
//!   It forgives a model that keeps talking after the answer, but also rewards one that lists
//!   several candidates.
//! * [`strict_em`]: the first line of the output *is* a gold answer, up to case, surrounding
//!   whitespace, punctuation and quotes.
//!
//! Beside them, [`trivial_baselines`]: what answer-free guessing scores on a task, its floor.

use std::collections::HashMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::data::sentences::word_of;
use crate::data::{is_eligible_word, split_prompt, BuiltItem, QaItem};

/// The reference's exact match: true when some gold answer, trimmed and lower-cased, is a
/// substring of the lower-cased output.
///
/// Blank gold answers are ignored (the empty string is a substring of everything and would make
/// every output correct).
pub fn lenient_em(output: &str, answers: &[String]) -> bool {
    let output = output.to_lowercase();
    answers
        .iter()
        .map(|a| a.trim().to_lowercase())
        .any(|a| !a.is_empty() && output.contains(&a))
}

/// Strict exact match: the output's first line, normalised by [`normalize_answer`], equals a
/// gold answer normalised the same way.
///
/// Leading whitespace (including newlines) is skipped before taking the first line, so
/// `"\n Paris"` reads as `"Paris"`; `"  paris.\nmore"` matches `"Paris"`, while
/// `"Paris, France"` does not.
pub fn strict_em(output: &str, answers: &[String]) -> bool {
    let first_line = output.trim_start().lines().next().unwrap_or("");
    let output = normalize_answer(first_line);
    !output.is_empty() && answers.iter().any(|a| normalize_answer(a) == output)
}

/// The normalisation of [`strict_em`]: lower-case; strip leading and trailing whitespace,
/// punctuation and quotes (ASCII punctuation, typographic quotes, guillemets, dashes, ellipsis);
/// collapse inner whitespace runs to one space. Inner punctuation stays (`"U.S."` → `"u.s"`).
pub fn normalize_answer(text: &str) -> String {
    let lower = text.to_lowercase();
    let stripped = lower.trim_matches(|c: char| {
        c.is_whitespace()
            || c.is_ascii_punctuation()
            || matches!(
                c,
                '\u{201C}'
                    | '\u{201D}'
                    | '\u{2018}'
                    | '\u{2019}'
                    | '\u{00AB}'
                    | '\u{00BB}'
                    | '\u{2026}'
                    | '\u{2013}'
                    | '\u{2014}'
            )
    });
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Mean exact-match scores over a set of outputs, as percentages (mean × 100).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmScores {
    /// Percentage of outputs that pass [`lenient_em`].
    pub lenient: f64,
    /// Percentage of outputs that pass [`strict_em`].
    pub strict: f64,
    /// Number of scored outputs. With `n == 0` both percentages are 0.
    pub n: usize,
}

/// Score `(output, gold answers)` pairs with both metrics.
pub fn em_scores<'a, I>(pairs: I) -> EmScores
where
    I: IntoIterator<Item = (&'a str, &'a [String])>,
{
    let (mut lenient, mut strict, mut n) = (0usize, 0usize, 0usize);
    for (output, answers) in pairs {
        lenient += usize::from(lenient_em(output, answers));
        strict += usize::from(strict_em(output, answers));
        n += 1;
    }
    let pct = |k: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * k as f64 / n as f64
        }
    };
    EmScores {
        lenient: pct(lenient),
        strict: pct(strict),
        n,
    }
}

/// Score one generated output per item (same order); an error if the lengths differ.
pub fn score_items(outputs: &[String], items: &[QaItem]) -> Result<EmScores> {
    if outputs.len() != items.len() {
        bail!(
            "{} outputs for {} questions: generate exactly one output per question, in order",
            outputs.len(),
            items.len()
        );
    }
    Ok(em_scores(
        outputs
            .iter()
            .zip(items)
            .map(|(o, item)| (o.as_str(), item.answers.as_slice())),
    ))
}

/// Scores of answer-free guessing strategies, in percent lenient EM, so a reader sees what the
/// task's floor is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// The most frequent training answer (case-insensitive count; ties: earliest seen).
    pub most_frequent_answer: String,
    /// Answering every test item with [`Baselines::most_frequent_answer`].
    pub most_frequent_answer_em: f64,
    /// Answering each test item with the most frequent eligible word ([`is_eligible_word`]) of
    /// its own context (ties: earliest in the context).
    pub most_frequent_context_word_em: f64,
    /// Test items scored.
    pub n: usize,
}

/// Trivial baselines of a QA task, scored with [`lenient_em`] (see [`Baselines`]).
///
/// The context of an item is the part of its prompt before the question ([`split_prompt`]), or
/// the whole prompt when it is not in [`format_prompt`](crate::data::format_prompt)'s shape.
pub fn trivial_baselines(train: &[BuiltItem], test: &[BuiltItem]) -> Baselines {
    let most_frequent_answer = most_frequent(
        train
            .iter()
            .filter_map(|b| b.item.answers.first())
            .map(|a| a.trim()),
    )
    .unwrap_or_default();
    let pct = |k: usize| {
        if test.is_empty() {
            0.0
        } else {
            100.0 * k as f64 / test.len() as f64
        }
    };
    let answer_hits = test
        .iter()
        .filter(|b| lenient_em(&most_frequent_answer, &b.item.answers))
        .count();
    let word_hits = test
        .iter()
        .filter(|b| {
            let context = split_prompt(&b.item.prompt)
                .map(|(c, _)| c)
                .unwrap_or(&b.item.prompt);
            let guess = most_frequent(
                context
                    .split_whitespace()
                    .map(word_of)
                    .filter(|w| is_eligible_word(w)),
            )
            .unwrap_or_default();
            lenient_em(&guess, &b.item.answers)
        })
        .count();
    Baselines {
        most_frequent_answer,
        most_frequent_answer_em: pct(answer_hits),
        most_frequent_context_word_em: pct(word_hits),
        n: test.len(),
    }
}

/// The most frequent string (case-insensitive), in the case of its first occurrence; ties go to
/// the one seen first.
fn most_frequent<'a>(words: impl Iterator<Item = &'a str>) -> Option<String> {
    // lower-cased word → (count, first position, original form)
    let mut counts: HashMap<String, (usize, usize, &'a str)> = HashMap::new();
    for (pos, w) in words.enumerate() {
        if w.is_empty() {
            continue;
        }
        counts.entry(w.to_lowercase()).or_insert((0, pos, w)).0 += 1;
    }
    counts
        .into_values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, _, w)| w.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golds(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lenient_vs_strict() {
        let paris = golds(&["Paris"]);
        assert!(lenient_em("Paris, France", &paris));
        assert!(!strict_em("Paris, France", &paris));
        assert!(strict_em("  paris.\nmore", &paris));
        assert!(lenient_em("  paris.\nmore", &paris));
        assert!(strict_em("\"Paris\"", &paris));
        assert!(strict_em("\n \u{201C}Paris!\u{201D}", &paris));
        assert!(!lenient_em("London", &paris));
        assert!(!strict_em("London", &paris));
        // The second gold answer counts too.
        let two = golds(&["Denver Broncos", "Broncos"]);
        assert!(strict_em("broncos", &two));
        assert!(lenient_em("The broncos won", &two));
        assert!(!strict_em("The broncos won", &two));
    }

    #[test]
    fn blank_answers_and_outputs_never_match() {
        assert!(!lenient_em("anything", &golds(&["  "])));
        assert!(!strict_em("", &golds(&[""])));
        assert!(!strict_em("...", &golds(&["!"])));
    }

    #[test]
    fn scores_are_percentages() {
        let a = golds(&["Paris"]);
        let b = golds(&["Rome"]);
        let s = em_scores([("Paris, France", a.as_slice()), ("Rome", b.as_slice())]);
        assert_eq!(s.n, 2);
        assert!((s.lenient - 100.0).abs() < 1e-9);
        assert!((s.strict - 50.0).abs() < 1e-9);
        let empty = em_scores(std::iter::empty());
        assert_eq!((empty.n, empty.lenient, empty.strict), (0, 0.0, 0.0));
    }

    #[test]
    fn score_items_checks_lengths() {
        let items = vec![QaItem {
            id: "0".into(),
            prompt: "p".into(),
            answers: golds(&["x"]),
        }];
        assert!(score_items(&[], &items).is_err());
        let s = score_items(&["x".to_string()], &items).expect("same length");
        assert_eq!(s.n, 1);
    }

    #[test]
    fn most_frequent_ties_go_to_first() {
        let got = most_frequent(["b", "A", "a", "B", "c"].into_iter());
        assert_eq!(got.as_deref(), Some("b"));
        assert_eq!(most_frequent(std::iter::empty()), None);
    }
}
