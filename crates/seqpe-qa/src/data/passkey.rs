//! Passkey retrieval (Mohtashami & Jaggi 2023, "Landmark Attention"; the probe LongLoRA, PoSE
//! and YaRN use to test context extension): a random 5-digit number stated once at a uniformly
//! drawn depth of filler text, asked for at the end. The answer must be copied from one precise
//! place of a long context, which a model of our scale can learn, unlike the cloze questions.
//!
//! A prompt is built in tokens, so its length and the number's depth are exact:
//!
//! ```text
//! filler … │ The pass key is 48213. Remember it. │ … filler │ \n\nQuestion: What is the pass key?\nAnswer:
//! ◄─ depth·(room) ─►                                                      target = the prompt budget
//! ```
//!
//! The filler is a token stream of the split's own text, read from a keyed offset; a key that
//! occurs anywhere in that text is never drawn, so the number appears exactly once.

use std::collections::HashSet;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::prompt::{answer_target, format_prompt};

/// The question of every passkey prompt.
pub const PASSKEY_QUESTION: &str = "What is the pass key?";

/// The sentence that states the key (with a space on each side, between filler tokens).
pub fn needle(key: u32) -> String {
    format!(" The pass key is {key}. Remember it. ")
}

/// The answer text of a key (the model generates `" 48213"`).
pub fn passkey_answer(key: u32) -> String {
    answer_target(&key.to_string())
}

/// Every 5-digit number that occurs in `text` (as five consecutive digits anywhere): keys that
/// must not be drawn, so that the needle is the one place the number appears.
pub fn numbers_in(text: &str) -> HashSet<u32> {
    let digits: Vec<u8> = text.bytes().collect();
    let mut out = HashSet::new();
    for w in digits.windows(5) {
        if w.iter().all(u8::is_ascii_digit) {
            let s = std::str::from_utf8(w).unwrap_or("0");
            out.insert(s.parse().unwrap_or(0));
        }
    }
    out
}

/// One passkey prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Passkey {
    pub key: u32,
    /// Where the needle was put in the context: 0 = at the start, 1 = right before the question
    /// (the needle starts at `round(depth × room)` of the room the filler leaves).
    pub depth: f64,
    /// The prompt's token ids (exactly the requested number).
    pub prompt: Vec<u32>,
    /// The needle's first token and its length in tokens.
    pub needle_at: usize,
    pub needle_len: usize,
}

/// The prompt of `key` at `depth` with exactly `budget` tokens: filler (from `filler`, starting
/// at `offset`, cycling), the needle at `depth` of the room the filler leaves, more filler, then
/// the question. `encode` turns text into the model's tokens.
pub fn passkey_prompt(
    encode: &dyn Fn(&str) -> Result<Vec<u32>>,
    key: u32,
    depth: f64,
    budget: usize,
    filler: &[u32],
    offset: usize,
) -> Result<Passkey> {
    let needle_ids = encode(&needle(key))?;
    let question = encode(&format_prompt("", PASSKEY_QUESTION))?;
    let Some(room) = budget.checked_sub(needle_ids.len() + question.len()) else {
        bail!(
            "a passkey prompt needs at least {} tokens (the sentence and the question), not \
             {budget}",
            needle_ids.len() + question.len()
        );
    };
    if room > 0 && filler.is_empty() {
        bail!("no filler text for the passkey prompts");
    }
    let depth = depth.clamp(0.0, 1.0);
    let before = (depth * room as f64).round() as usize;
    let mut prompt = Vec::with_capacity(budget);
    let take = |n: usize, from: usize, prompt: &mut Vec<u32>| {
        prompt.extend((0..n).map(|j| filler[(from + j) % filler.len()]));
    };
    take(before, offset, &mut prompt);
    let needle_at = prompt.len();
    prompt.extend_from_slice(&needle_ids);
    take(room - before, offset + before, &mut prompt);
    prompt.extend_from_slice(&question);
    Ok(Passkey {
        key,
        depth,
        prompt,
        needle_at,
        needle_len: needle_ids.len(),
    })
}

/// `n` passkey prompts of `budget` tokens: keys uniform over the 5-digit numbers not in
/// `forbidden`; depths uniform over [0, 1] (`deciles`: item `i` in decile `i mod 10`, uniform
/// within it, so every tenth of the context holds the same number of needles); filler offsets
/// uniform. Deterministic in `seed`.
#[allow(clippy::too_many_arguments)]
pub fn passkey_prompts(
    encode: &dyn Fn(&str) -> Result<Vec<u32>>,
    n: usize,
    budget: usize,
    filler: &[u32],
    forbidden: &HashSet<u32>,
    deciles: bool,
    seed: u64,
) -> Result<Vec<Passkey>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9A55_4E11);
    (0..n)
        .map(|i| {
            let key = loop {
                let k = rng.random_range(10_000..=99_999u32);
                if !forbidden.contains(&k) {
                    break k;
                }
            };
            let u: f64 = rng.random();
            let depth = if deciles {
                ((i % 10) as f64 + u) / 10.0
            } else {
                u
            };
            let offset = rng.random_range(0..filler.len().max(1));
            passkey_prompt(encode, key, depth, budget, filler, offset)
        })
        .collect()
}

/// Which tenth of the context a depth falls in (`0..10`).
pub fn decile(depth: f64) -> usize {
    ((depth * 10.0).floor() as usize).min(9)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy tokenizer: one token per byte.
    fn bytes(s: &str) -> Result<Vec<u32>> {
        Ok(s.bytes().map(u32::from).collect())
    }

    #[test]
    fn the_key_is_stated_once_at_its_depth_and_the_prompt_has_its_length() {
        let filler: Vec<u32> = "the quick brown fox jumps. "
            .bytes()
            .map(u32::from)
            .collect();
        for (depth, budget) in [(0.0, 200), (0.5, 200), (1.0, 200), (0.3, 1000)] {
            let p = passkey_prompt(&bytes, 48213, depth, budget, &filler, 7).unwrap();
            assert_eq!(p.prompt.len(), budget);
            let text = String::from_utf8(p.prompt.iter().map(|&b| b as u8).collect()).unwrap();
            assert_eq!(text.matches("48213").count(), 1, "{text}");
            // the needle is where the depth puts it in the room the filler leaves
            let needle_text = needle(48213);
            let room = budget - needle_text.len() - format_prompt("", PASSKEY_QUESTION).len();
            assert_eq!(p.needle_at, (depth * room as f64).round() as usize);
            assert_eq!(&text[p.needle_at..p.needle_at + p.needle_len], needle_text);
            assert!(text.ends_with("\n\nQuestion: What is the pass key?\nAnswer:"));
        }
        assert!(passkey_prompt(&bytes, 12345, 0.5, 20, &filler, 0).is_err());
        assert_eq!(passkey_answer(48213), " 48213");
    }

    #[test]
    fn keys_in_the_filler_are_never_drawn_and_deciles_are_even() {
        let text = "in 10000 or 99999 and 123456 years";
        let forbidden = numbers_in(text);
        assert!(forbidden.contains(&10000) && forbidden.contains(&12345));
        assert!(forbidden.contains(&23456) && !forbidden.contains(&11111));
        let filler = bytes(text).unwrap();
        let items = passkey_prompts(&bytes, 40, 150, &filler, &forbidden, true, 3).unwrap();
        assert!(items.iter().all(|p| !forbidden.contains(&p.key)));
        assert!(items.iter().all(|p| (10_000..=99_999).contains(&p.key)));
        for (i, p) in items.iter().enumerate() {
            assert_eq!(decile(p.depth), i % 10, "item {i} at depth {}", p.depth);
        }
        // the same seed gives the same prompts
        assert_eq!(
            items,
            passkey_prompts(&bytes, 40, 150, &filler, &forbidden, true, 3).unwrap()
        );
    }
}
