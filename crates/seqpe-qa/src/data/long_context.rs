//! Long contexts the reference's way: [`build_long_contexts`] places each SQuAD question's gold
//! paragraph at a random depth among distractor paragraphs of other articles. The filling
//! (`fill_context`) and the keyed random streams (`keyed_rng`) serve the cloze task too.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::loaders::SquadArticle;
use super::prompt::{format_prompt, QaItem, PARAGRAPH_SEPARATOR};

/// A QA item built from a gold paragraph and distractors, with what tests and analyses need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltItem {
    pub item: QaItem,
    /// Where the gold paragraph sits: its index among the context's paragraphs divided by
    /// (paragraphs − 1), so 0 = first, 1 = last (0 when it is alone).
    pub depth: f64,
    /// Tokens of `item.prompt` by the caller's counter (≤ the target).
    pub tokens: usize,
    /// Paragraphs in the context, gold included.
    pub paragraphs: usize,
}

/// The result of [`build_long_contexts`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LongContexts {
    pub items: Vec<BuiltItem>,
    /// Ids of questions left out because their gold paragraph and question alone exceed the
    /// target.
    pub skipped_too_long: Vec<String>,
}

/// One candidate paragraph of a distractor pool.
pub(super) struct PoolEntry<'a> {
    pub(super) text: &'a str,
    /// Paragraphs of the gold's group (article, document) are never its distractors.
    pub(super) group: usize,
    pub(super) tokens: usize,
}

/// A filled context.
pub(super) struct Filled {
    pub(super) prompt: String,
    pub(super) tokens: usize,
    pub(super) depth: f64,
    pub(super) paragraphs: usize,
}

pub(super) enum Fill {
    Done(Filled),
    /// Gold paragraph + question alone take this many tokens, over the target.
    GoldTooLong(usize),
}

/// Draws indices `0..n` in uniformly random order without materialising the permutation
/// (Fisher–Yates with the swapped positions in a map), so sampling k of n costs O(k).
struct LazyPermutation {
    n: usize,
    next: usize,
    moved: HashMap<usize, usize>,
}

impl LazyPermutation {
    fn new(n: usize) -> Self {
        LazyPermutation {
            n,
            next: 0,
            moved: HashMap::new(),
        }
    }

    fn draw(&mut self, rng: &mut ChaCha8Rng) -> Option<usize> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        let j = rng.random_range(i..self.n);
        let at_j = self.moved.get(&j).copied().unwrap_or(j);
        let at_i = self.moved.remove(&i).unwrap_or(i);
        if j != i {
            self.moved.insert(j, at_i);
        }
        self.next += 1;
        Some(at_j)
    }
}

/// Place `gold` at a uniformly random depth among distractors from `pool` (other groups only),
/// adding distractors in random order until the next one would push the prompt over `target`.
///
/// The first draw of `rng` fixes the relative depth, and the distractors come in the same order
/// whatever the target, so one item seed gives the same relative depth and nested distractor
/// sets at every target length. Errors when the pool runs out before the target is reached.
pub(super) fn fill_context(
    gold: &str,
    question: &str,
    group: usize,
    pool: &[PoolEntry<'_>],
    target: usize,
    rng: &mut ChaCha8Rng,
    count: &dyn Fn(&str) -> usize,
) -> Result<Fill> {
    let u: f64 = rng.random();
    let base = count(&format_prompt(gold, question));
    if base > target {
        return Ok(Fill::GoldTooLong(base));
    }
    let sep = count(PARAGRAPH_SEPARATOR);
    let mut estimate = base;
    let mut chosen: Vec<usize> = Vec::new();
    let mut perm = LazyPermutation::new(pool.len());
    let mut reached = false;
    while let Some(idx) = perm.draw(rng) {
        let entry = &pool[idx];
        if entry.group == group {
            continue;
        }
        let add = entry.tokens + sep;
        if estimate + add > target {
            reached = true;
            break;
        }
        estimate += add;
        chosen.push(idx);
    }
    if !reached {
        let available: usize = pool
            .iter()
            .filter(|e| e.group != group)
            .map(|e| e.tokens + sep)
            .sum();
        bail!(
            "cannot fill a context to the target of {target} tokens: the distractor pool (paragraphs \
             of other articles/documents) holds only {available} tokens in {} paragraphs, and the \
             gold paragraph with the question takes {base}; lower the target or supply more text",
            pool.iter().filter(|e| e.group != group).count()
        );
    }
    // The estimate adds per-paragraph counts; a subword tokenizer may count the joined text a
    // little differently, so check the real prompt and drop distractors while it is too long.
    loop {
        let n = chosen.len();
        let pos = ((u * (n + 1) as f64) as usize).min(n);
        let mut parts: Vec<&str> = chosen.iter().map(|&i| pool[i].text).collect();
        parts.insert(pos, gold);
        let prompt = format_prompt(&parts.join(PARAGRAPH_SEPARATOR), question);
        let tokens = count(&prompt);
        if tokens <= target || chosen.is_empty() {
            return Ok(Fill::Done(Filled {
                prompt,
                tokens,
                depth: if n == 0 { 0.0 } else { pos as f64 / n as f64 },
                paragraphs: n + 1,
            }));
        }
        chosen.pop();
    }
}

/// FNV-1a, a stable string hash (the std hasher may change between Rust releases).
pub(super) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser: spreads a seed over all bits.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream of one named thing (an item, a split) under `seed`.
pub(super) fn keyed_rng(seed: u64, key: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(fnv1a(key))))
}

/// Long contexts the reference's way: for each answerable SQuAD question, its gold paragraph is
/// placed at a uniformly random depth among distractor paragraphs drawn (without replacement,
/// uniformly) from **other** articles, paragraphs joined by `"\n\n"`. Distractors are added until
/// the next one would push the prompt ([`format_prompt`] of context and question) over
/// `target_tokens`, so every prompt is ≤ the target and within about one paragraph of it.
///
/// Deterministic for a seed: each question's stream is keyed by the seed and its id.
/// Questions whose gold paragraph and question alone exceed the target are left out and listed in
/// [`LongContexts::skipped_too_long`]. If the other articles cannot fill a context to the target,
/// the result is an error naming the target and the tokens available.
pub fn build_long_contexts(
    articles: &[SquadArticle],
    target_tokens: usize,
    seed: u64,
    count: &dyn Fn(&str) -> usize,
) -> Result<LongContexts> {
    let pool: Vec<PoolEntry<'_>> = articles
        .iter()
        .enumerate()
        .flat_map(|(ai, a)| a.paragraphs.iter().map(move |p| (ai, p.context.as_str())))
        .map(|(group, text)| PoolEntry {
            text,
            group,
            tokens: count(text),
        })
        .collect();
    let mut out = LongContexts::default();
    for (ai, article) in articles.iter().enumerate() {
        for para in &article.paragraphs {
            for q in &para.questions {
                let mut rng = keyed_rng(seed, &q.id);
                let fill = fill_context(
                    &para.context,
                    &q.question,
                    ai,
                    &pool,
                    target_tokens,
                    &mut rng,
                    count,
                )
                .with_context(|| format!("question {} of article {:?}", q.id, article.title))?;
                match fill {
                    Fill::Done(f) => out.items.push(BuiltItem {
                        item: QaItem {
                            id: q.id.clone(),
                            prompt: f.prompt,
                            answers: q.answers.clone(),
                        },
                        depth: f.depth,
                        tokens: f.tokens,
                        paragraphs: f.paragraphs,
                    }),
                    Fill::GoldTooLong(_) => out.skipped_too_long.push(q.id.clone()),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_permutation_is_a_permutation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut perm = LazyPermutation::new(50);
        let mut seen: Vec<usize> = std::iter::from_fn(|| perm.draw(&mut rng)).collect();
        assert_eq!(seen.len(), 50);
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }
}
