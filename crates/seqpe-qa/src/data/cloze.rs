//! The built-in cloze task from plain documents (Children's-Book-Test style): documents are
//! split by document ([`split_documents`]), cut into pseudo-documents ([`pseudo_documents`]) and
//! passages ([`passages`]); [`cloze_task`] makes each split's questions once, and [`contexts_at`]
//! places them in contexts of any length ([`build_cloze`] does both at the configured length).

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use seqpe_datasets::text::{Document, TextSplits};
use serde::{Deserialize, Serialize};

use super::long_context::{fill_context, fnv1a, keyed_rng, mix, BuiltItem, Fill, PoolEntry};
use super::prompt::{format_prompt, QaItem};
use super::sentences::{is_eligible_word, split_sentences, word_of, word_span};

/// The blank that replaces the answer word in a cloze question.
pub const BLANK: &str = "_____";
/// Cloze questions read `"Fill in the blank: <sentence with _____>"`.
pub const CLOZE_QUESTION_PREFIX: &str = "Fill in the blank: ";
/// Words a sentence needs to be a cloze question.
pub const MIN_SENTENCE_WORDS: usize = 6;
/// Longest sentence, in words, used for a cloze question (Austen's sentences can run past a
/// hundred words; a question should stay short next to the context).
pub const MAX_SENTENCE_WORDS: usize = 40;

/// Whether a line is a heading of the given kind (`CHAPTER XII`, `Chapter 3.`, `VOLUME I`).
fn is_heading(line: &str, kind: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= 3
        && words[0]
            .trim_end_matches(['.', ':'])
            .eq_ignore_ascii_case(kind)
}

/// Cut a document into pseudo-documents so that a long text (a novel) provides "other
/// documents" for distractors:
///
/// * if it has at least two `CHAPTER …` heading lines (any case, at most three words), each
///   chapter is a pseudo-document named `<name>/ch001`, `<name>/ch002`, …; text before the first
///   heading is `<name>/front`; heading lines (`CHAPTER …`, `VOLUME …`) are dropped;
/// * any piece (or a document without chapters) longer than `piece_words` words is cut at
///   sentence boundaries into pieces of at most about `piece_words` words, named `…/p01`, `…/p02`;
/// * otherwise the document is kept whole, under its own name.
pub fn pseudo_documents(doc: &Document, piece_words: usize) -> Vec<Document> {
    let chapters = doc
        .text
        .lines()
        .filter(|l| is_heading(l, "chapter"))
        .count();
    let mut parts: Vec<Document> = Vec::new();
    if chapters >= 2 {
        let mut name = format!("{}/front", doc.name);
        let mut text = String::new();
        let mut k = 0;
        for line in doc.text.lines() {
            if is_heading(line, "chapter") {
                parts.push(Document::new(
                    std::mem::take(&mut name),
                    std::mem::take(&mut text),
                ));
                k += 1;
                name = format!("{}/ch{k:03}", doc.name);
            } else if !is_heading(line, "volume") {
                text.push_str(line);
                text.push('\n');
            }
        }
        parts.push(Document::new(name, text));
        parts.retain(|d| d.text.split_whitespace().next().is_some());
    } else {
        parts.push(doc.clone());
    }
    let piece_words = piece_words.max(1);
    let mut out = Vec::new();
    for part in parts {
        if part.text.split_whitespace().count() <= piece_words {
            out.push(part);
            continue;
        }
        let mut pieces: Vec<String> = Vec::new();
        let mut cur: Vec<String> = Vec::new();
        let mut cur_words = 0;
        for s in split_sentences(&part.text) {
            let w = s.split_whitespace().count();
            if !cur.is_empty() && cur_words + w > piece_words {
                pieces.push(cur.join(" "));
                cur.clear();
                cur_words = 0;
            }
            cur.push(s);
            cur_words += w;
        }
        if !cur.is_empty() {
            pieces.push(cur.join(" "));
        }
        for (k, text) in pieces.into_iter().enumerate() {
            out.push(Document::new(format!("{}/p{:02}", part.name, k + 1), text));
        }
    }
    out
}

/// A passage: consecutive sentences of one (pseudo-)document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// The (pseudo-)document it comes from.
    pub doc: String,
    /// Sentences joined by single spaces.
    pub text: String,
    /// Tokens of `text` by the caller's counter.
    pub tokens: usize,
}

/// Group a document's sentences into passages of about `passage_tokens` tokens: sentences are
/// added while the passage stays within `passage_tokens` (a longer sentence is a passage of its
/// own); a final remainder under half the size joins the previous passage. A document too short
/// for a passage of a quarter of the size yields none.
pub fn passages(
    doc_name: &str,
    text: &str,
    passage_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Passage> {
    let mut groups: Vec<(Vec<String>, usize)> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut cur_tokens = 0;
    for s in split_sentences(text) {
        let t = count(&s);
        if !cur.is_empty() && cur_tokens + t > passage_tokens {
            groups.push((std::mem::take(&mut cur), cur_tokens));
            cur_tokens = 0;
        }
        cur.push(s);
        cur_tokens += t;
    }
    if !cur.is_empty() {
        match groups.last_mut() {
            Some(last) if cur_tokens < passage_tokens / 2 => {
                last.0.extend(cur);
                last.1 += cur_tokens;
            }
            _ => groups.push((cur, cur_tokens)),
        }
    }
    let min_tokens = (passage_tokens / 4).max(1);
    groups
        .into_iter()
        .map(|(sentences, _)| {
            let text = sentences.join(" ");
            Passage {
                doc: doc_name.to_string(),
                tokens: count(&text),
                text,
            }
        })
        .filter(|p| p.tokens >= min_tokens)
        .collect()
}

/// Assign whole documents to train / valid / test, deterministically.
///
/// Documents are ordered by a seeded hash of their name; the first `round(n × test_fraction)`
/// go to test, the next `round(n × valid_fraction)` to valid, the rest to train (a split with a
/// positive fraction gets at least one document). The assignment depends on the names and the
/// seed only, not on the input order; within a split the input order is kept. Names must be
/// unique and train must keep at least one document.
pub fn split_documents(
    docs: &[Document],
    valid_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<TextSplits> {
    for (what, f) in [
        ("valid_fraction", valid_fraction),
        ("test_fraction", test_fraction),
    ] {
        if !(0.0..1.0).contains(&f) {
            bail!("{what} is {f}; it must be in [0, 1)");
        }
    }
    if valid_fraction + test_fraction >= 1.0 {
        bail!(
            "valid_fraction + test_fraction is {}; it must be below 1 so train keeps documents",
            valid_fraction + test_fraction
        );
    }
    let mut seen = HashSet::new();
    for d in docs {
        if !seen.insert(d.name.as_str()) {
            bail!(
                "document name {:?} appears twice; names must be unique to split by document",
                d.name
            );
        }
    }
    let n = docs.len();
    let take = |f: f64| {
        if f > 0.0 {
            ((n as f64 * f).round() as usize).max(1)
        } else {
            0
        }
    };
    let (n_test, n_valid) = (take(test_fraction), take(valid_fraction));
    if n_test + n_valid >= n {
        bail!(
            "{n} documents are too few to give {n_test} to test, {n_valid} to valid and at least \
             one to train; supply more documents or lower the fractions"
        );
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (mix(seed ^ fnv1a(&docs[i].name)), docs[i].name.as_str()));
    let pick = |range: std::ops::Range<usize>| {
        let mut idx: Vec<usize> = order[range].to_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| docs[i].clone()).collect::<Vec<_>>()
    };
    Ok(TextSplits {
        test: pick(0..n_test),
        valid: pick(n_test..n_test + n_valid),
        train: pick(n_test + n_valid..n),
    })
}

/// Questions wanted per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
}

/// Settings of the cloze task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeConfig {
    /// Size of a passage (the unit of gold and distractor text), in tokens.
    pub passage_tokens: usize,
    /// Prompt length (context + question) of [`build_cloze`]'s items, in tokens: the fine-tuning
    /// length. Gold passages are chosen so gold + question take at most half of it.
    pub target_tokens: usize,
    /// Questions per split.
    pub questions_per_split: SplitCounts,
    /// Share of documents for validation and test ([`split_documents`]); train gets the rest.
    pub valid_fraction: f64,
    pub test_fraction: f64,
    /// Longest pseudo-document in words ([`pseudo_documents`]).
    pub piece_words: usize,
    pub seed: u64,
}

impl Default for ClozeConfig {
    fn default() -> Self {
        ClozeConfig {
            passage_tokens: 100,
            target_tokens: 1024,
            questions_per_split: SplitCounts {
                train: 2000,
                valid: 200,
                test: 500,
            },
            valid_fraction: 0.1,
            test_fraction: 0.1,
            piece_words: 4000,
            seed: 0,
        }
    }
}

/// A cloze question, independent of any context length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClozeQuestion {
    /// `cloze-<split>-<number>`.
    pub id: String,
    /// `"Fill in the blank: <sentence with _____>"`.
    pub question: String,
    /// The blanked word, in its original case.
    pub answer: String,
    /// The sentence before blanking (as it appears in the gold passage).
    pub sentence: String,
    /// The passage that holds the sentence.
    pub gold_passage: String,
    /// The gold passage's (pseudo-)document: distractors come from other documents.
    pub doc: String,
}

/// One split of the cloze task: its passages (the distractor pool) and its questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeSplit {
    pub pool: Vec<Passage>,
    pub questions: Vec<ClozeQuestion>,
}

impl ClozeSplit {
    /// This split's questions in contexts of `target_tokens` (see [`contexts_at`]).
    pub fn contexts_at(
        &self,
        target_tokens: usize,
        seed: u64,
        count: &dyn Fn(&str) -> usize,
    ) -> Result<Vec<BuiltItem>> {
        contexts_at(&self.questions, &self.pool, target_tokens, seed, count)
    }
}

/// The cloze questions and passage pools of all three splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeTask {
    pub train: ClozeSplit,
    pub valid: ClozeSplit,
    pub test: ClozeSplit,
}

/// The cloze items of [`build_cloze`], at the configured target length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeSplits {
    pub train: Vec<BuiltItem>,
    pub valid: Vec<BuiltItem>,
    pub test: Vec<BuiltItem>,
}

/// Build the cloze task at `cfg.target_tokens`: [`cloze_task`], then [`contexts_at`] for each
/// split with `cfg.seed`.
///
/// For evaluation at several lengths (1×, 2×, 4×, … the fine-tuning length) on identical
/// questions, call [`cloze_task`] once and [`ClozeSplit::contexts_at`] per length instead.
pub fn build_cloze(
    docs: &[Document],
    cfg: &ClozeConfig,
    count: &dyn Fn(&str) -> usize,
) -> Result<ClozeSplits> {
    let task = cloze_task(docs, cfg, count)?;
    let at = |split: &ClozeSplit, name: &str| {
        split
            .contexts_at(cfg.target_tokens, cfg.seed, count)
            .with_context(|| format!("building the {name} split's cloze contexts"))
    };
    Ok(ClozeSplits {
        train: at(&task.train, "train")?,
        valid: at(&task.valid, "valid")?,
        test: at(&task.test, "test")?,
    })
}

/// Split `docs` by document ([`split_documents`]) and make each split's cloze questions
/// ([`cloze_task_from_splits`]).
pub fn cloze_task(
    docs: &[Document],
    cfg: &ClozeConfig,
    count: &dyn Fn(&str) -> usize,
) -> Result<ClozeTask> {
    let splits = split_documents(docs, cfg.valid_fraction, cfg.test_fraction, cfg.seed)?;
    cloze_task_from_splits(&splits, cfg, count)
}

/// Make the cloze questions of documents already split (e.g. the project's fixed
/// [`seqpe_datasets::text::default_splits`]; `cfg`'s fractions are then unused).
///
/// Per split: documents are cut into pseudo-documents ([`pseudo_documents`]) and passages
/// ([`passages`]), which form the split's distractor pool. Gold passages are visited in a seeded
/// random order, each at most once; a passage yields a question when one of its sentences with
/// [`MIN_SENTENCE_WORDS`] to [`MAX_SENTENCE_WORDS`] words has an eligible word ([`is_eligible_word`]) that occurs
/// exactly once in the passage (case-insensitively), so the answer is unambiguous. That word is
/// replaced by [`BLANK`] and the question is `"Fill in the blank: <sentence>"`. Passages whose
/// prompt (gold + question) would take more than half of `cfg.target_tokens` are not used as gold.
pub fn cloze_task_from_splits(
    splits: &TextSplits,
    cfg: &ClozeConfig,
    count: &dyn Fn(&str) -> usize,
) -> Result<ClozeTask> {
    if cfg.passage_tokens == 0 {
        bail!("passage_tokens must be positive");
    }
    if cfg.target_tokens < 2 * cfg.passage_tokens {
        bail!(
            "target_tokens ({}) must be at least twice passage_tokens ({}) so contexts hold \
             distractors besides the gold passage",
            cfg.target_tokens,
            cfg.passage_tokens
        );
    }
    let q = cfg.questions_per_split;
    Ok(ClozeTask {
        train: cloze_split("train", &splits.train, q.train, cfg, count)?,
        valid: cloze_split("valid", &splits.valid, q.valid, cfg, count)?,
        test: cloze_split("test", &splits.test, q.test, cfg, count)?,
    })
}

fn cloze_split(
    name: &str,
    docs: &[Document],
    wanted: usize,
    cfg: &ClozeConfig,
    count: &dyn Fn(&str) -> usize,
) -> Result<ClozeSplit> {
    let pool: Vec<Passage> = docs
        .iter()
        .flat_map(|d| pseudo_documents(d, cfg.piece_words))
        .flat_map(|d| passages(&d.name, &d.text, cfg.passage_tokens, count))
        .collect();
    let doc_count = pool
        .iter()
        .map(|p| p.doc.as_str())
        .collect::<HashSet<_>>()
        .len();
    if wanted > 0 && doc_count < 2 {
        bail!(
            "the {name} split has passages from {doc_count} document(s); distractors must come \
             from other documents, so it needs at least two (give it more documents or text)"
        );
    }
    let mut rng = keyed_rng(cfg.seed, &format!("cloze-questions-{name}"));
    let mut order: Vec<usize> = (0..pool.len()).collect();
    order.shuffle(&mut rng);
    let mut questions = Vec::with_capacity(wanted);
    for idx in order {
        if questions.len() == wanted {
            break;
        }
        let gold = &pool[idx];
        let Some((sentence, answer, question)) = make_cloze(&gold.text, &mut rng) else {
            continue;
        };
        if count(&format_prompt(&gold.text, &question)) > cfg.target_tokens / 2 {
            continue;
        }
        questions.push(ClozeQuestion {
            id: format!("cloze-{name}-{:05}", questions.len()),
            question,
            answer,
            sentence,
            gold_passage: gold.text.clone(),
            doc: gold.doc.clone(),
        });
    }
    if questions.len() < wanted {
        bail!(
            "the {name} split yields only {} cloze questions from {} passages, {wanted} \
             requested; lower questions_per_split.{name} or give the split more text",
            questions.len(),
            pool.len()
        );
    }
    Ok(ClozeSplit { pool, questions })
}

/// Make one cloze question from a passage: `(sentence, answer, question)`, or `None` when no
/// sentence qualifies.
fn make_cloze(passage: &str, rng: &mut ChaCha8Rng) -> Option<(String, String, String)> {
    let mut freq: HashMap<String, usize> = HashMap::new();
    for tok in passage.split_whitespace() {
        let w = word_of(tok);
        if !w.is_empty() {
            *freq.entry(w.to_lowercase()).or_default() += 1;
        }
    }
    let mut sentences: Vec<String> = split_sentences(passage)
        .into_iter()
        .filter(|s| {
            (MIN_SENTENCE_WORDS..=MAX_SENTENCE_WORDS).contains(&s.split_whitespace().count())
        })
        .collect();
    sentences.shuffle(rng);
    for sentence in sentences {
        let tokens: Vec<&str> = sentence.split_whitespace().collect();
        let mut candidates: Vec<usize> = (0..tokens.len())
            .filter(|&i| {
                let w = word_of(tokens[i]);
                is_eligible_word(w) && freq.get(&w.to_lowercase()) == Some(&1)
            })
            .collect();
        candidates.shuffle(rng);
        for i in candidates {
            let tok = tokens[i];
            let (s, e) = word_span(tok);
            let answer = tok[s..e].to_string();
            let blanked_tok = format!("{}{BLANK}{}", &tok[..s], &tok[e..]);
            let mut blanked: Vec<&str> = tokens.clone();
            blanked[i] = &blanked_tok;
            let question = format!("{CLOZE_QUESTION_PREFIX}{}", blanked.join(" "));
            // The question must not give the answer away, even inside another word.
            if question.to_lowercase().contains(&answer.to_lowercase()) {
                continue;
            }
            return Some((sentence, answer, question));
        }
    }
    None
}

/// Place cloze questions in contexts of `target_tokens`: the gold passage at a uniformly random
/// depth among passages of **other** documents of `pool`, filled as in
/// [`build_long_contexts`](super::long_context::build_long_contexts) (prompt ≤ target, within
/// about one passage of it).
///
/// Each question's randomness is keyed by `seed` and its id, and its first draw fixes the
/// relative depth, so the same question gets the same relative depth and nested distractor sets
/// at every target: lengths are compared on identical questions. An error names the question if
/// its gold passage does not fit or the pool cannot reach the target.
pub fn contexts_at(
    questions: &[ClozeQuestion],
    pool: &[Passage],
    target_tokens: usize,
    seed: u64,
    count: &dyn Fn(&str) -> usize,
) -> Result<Vec<BuiltItem>> {
    let mut groups: HashMap<&str, usize> = HashMap::new();
    let entries: Vec<PoolEntry<'_>> = pool
        .iter()
        .map(|p| {
            let next = groups.len();
            PoolEntry {
                text: &p.text,
                group: *groups.entry(p.doc.as_str()).or_insert(next),
                tokens: p.tokens,
            }
        })
        .collect();
    questions
        .iter()
        .map(|q| {
            // A gold document absent from the pool excludes nothing but the gold text itself,
            // which it cannot contain then.
            let group = groups.get(q.doc.as_str()).copied().unwrap_or(usize::MAX);
            let mut rng = keyed_rng(seed, &q.id);
            let fill = fill_context(
                &q.gold_passage,
                &q.question,
                group,
                &entries,
                target_tokens,
                &mut rng,
                count,
            )
            .with_context(|| format!("cloze question {}", q.id))?;
            match fill {
                Fill::Done(f) => Ok(BuiltItem {
                    item: QaItem {
                        id: q.id.clone(),
                        prompt: f.prompt,
                        answers: vec![q.answer.clone()],
                    },
                    depth: f.depth,
                    tokens: f.tokens,
                    paragraphs: f.paragraphs,
                }),
                Fill::GoldTooLong(tokens) => Err(anyhow!(
                    "cloze question {}: gold passage and question take {tokens} tokens, more \
                     than the target of {target_tokens}; use a larger target",
                    q.id
                )),
            }
        })
        .collect()
}
