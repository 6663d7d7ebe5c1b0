//! Exact-match scores for generated answers.
//!
//! Two variants are reported side by side:
//!
//! * [`lenient_em`], the reference's metric: a gold answer appears anywhere in the output.
//!   It forgives a model that keeps talking after the answer, but also rewards one that lists
//!   several candidates.
//! * [`strict_em`]: the first line of the output *is* a gold answer, up to case, surrounding
//!   whitespace, punctuation and quotes.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::data::QaItem;

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
}
