//! QA records, the prompt format, loaders, long-context building and the built-in cloze task.
//!
//! Sections, in reading order:
//!
//! 1. [`QaItem`] and the one prompt format ([`format_prompt`], [`answer_target`]).
//! 2. Loaders for users' data: [`load_jsonl`], [`load_squad`], [`load_qa_path`].
//! 3. Long contexts the reference's way: [`build_long_contexts`] places each SQuAD question's
//!    gold paragraph at a random depth among distractor paragraphs of other articles.
//! 4. The built-in cloze task from plain documents: [`build_cloze`], [`cloze_task`],
//!    [`contexts_at`], [`trivial_baselines`].
//!
//! Every length is measured by the caller's `count: &dyn Fn(&str) -> usize`, so contexts are
//! sized in the model's own tokens.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_datasets::text::{Document, TextSplits};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::lenient_em;

// ------------------------------------------------------------------------------------------------
// 1. Records and the prompt format
// ------------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------------
// 2. Loaders
// ------------------------------------------------------------------------------------------------

/// Read a whole UTF-8 text file, naming the file on failure.
fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (it must exist and be UTF-8 text)",
            path.display()
        )
    })
}

/// The JSON type of a value, for error messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Load a JSON-lines QA file in the reference's format: one object per line,
///
/// ```json
/// {"index": 0, "input": "<context and question>", "outputs": ["answer", "other answer"]}
/// ```
///
/// `input` is used verbatim as the prompt, `outputs` are the gold answers (a non-empty list of
/// non-blank strings), `index` (a number or a string) becomes the id; without `index` the id is
/// `<file name>:<line>`. Other fields are ignored, blank lines are skipped. Every error names the
/// file and the line.
pub fn load_jsonl(path: &Path) -> Result<Vec<QaItem>> {
    let text = read_text(path)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let example = r#"{"index": 0, "input": "...", "outputs": ["..."]}"#;
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{}: line {line_no}", path.display());
        let value: Value = serde_json::from_str(line).map_err(|e| {
            anyhow!("{at}: not JSON ({e}); each line must be one JSON object like {example}")
        })?;
        let Value::Object(obj) = &value else {
            bail!(
                "{at}: expected a JSON object, found {}; each line must look like {example}",
                json_kind(&value)
            );
        };
        let prompt = match obj.get("input") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => bail!(
                "{at}: field `input` must be a string (the prompt), found {}",
                json_kind(other)
            ),
            None => bail!("{at}: missing field `input` (the prompt: context and question)"),
        };
        let answers = match obj.get("outputs") {
            Some(Value::Array(list)) if list.is_empty() => {
                bail!("{at}: empty `outputs` list; give at least one gold answer")
            }
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(k, v)| match v {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                    Value::String(_) => Err(anyhow!(
                        "{at}: `outputs[{k}]` is blank; gold answers must contain text"
                    )),
                    other => Err(anyhow!(
                        "{at}: `outputs[{k}]` must be a string, found {}",
                        json_kind(other)
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(Value::String(s)) => bail!(
                "{at}: field `outputs` must be a list of strings, found the single string {s:?}; \
                 write [{s:?}]"
            ),
            Some(other) => bail!(
                "{at}: field `outputs` must be a list of strings (the gold answers), found {}",
                json_kind(other)
            ),
            None => bail!("{at}: missing field `outputs` (the list of gold answers)"),
        };
        let id = match obj.get("index") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            None => format!("{file_name}:{line_no}"),
            Some(other) => bail!(
                "{at}: field `index` must be a number or a string, found {}",
                json_kind(other)
            ),
        };
        items.push(QaItem {
            id,
            prompt,
            answers,
        });
    }
    Ok(items)
}

/// One answerable SQuAD question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquadQuestion {
    pub id: String,
    pub question: String,
    /// Distinct answer texts, in file order; never empty.
    pub answers: Vec<String>,
}

/// A SQuAD paragraph: its context and its answerable questions (possibly none: the paragraph
/// still serves as a distractor for other articles' questions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquadParagraph {
    pub context: String,
    pub questions: Vec<SquadQuestion>,
}

/// A SQuAD article (a Wikipedia page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquadArticle {
    pub title: String,
    pub paragraphs: Vec<SquadParagraph>,
}

/// The content of a SQuAD file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SquadData {
    pub articles: Vec<SquadArticle>,
    /// SQuAD v2.0 questions left out because they have no answer (`is_impossible: true` or an
    /// empty `answers` list).
    pub skipped_unanswerable: usize,
}

impl SquadData {
    /// Number of (answerable) questions kept.
    pub fn question_count(&self) -> usize {
        self.articles
            .iter()
            .flat_map(|a| &a.paragraphs)
            .map(|p| p.questions.len())
            .sum()
    }
}

/// Field access on SQuAD JSON with errors that name the file and the JSON path.
struct SquadReader<'a> {
    path: &'a Path,
}

impl SquadReader<'_> {
    fn err(&self, at: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!(
            "{}: {at}: {msg} (expected SQuAD v1.1/v2.0: {{\"data\": [{{\"title\", \"paragraphs\": \
             [{{\"context\", \"qas\": [{{\"id\", \"question\", \"answers\": [{{\"text\"}}]}}]}}]}}]}})",
            self.path.display()
        )
    }

    fn field<'v>(&self, obj: &'v Value, at: &str, key: &str) -> Result<&'v Value> {
        match obj {
            Value::Object(map) => map
                .get(key)
                .ok_or_else(|| self.err(at, format!("missing \"{key}\""))),
            other => Err(self.err(
                at,
                format!("expected an object, found {}", json_kind(other)),
            )),
        }
    }

    fn string<'v>(&self, obj: &'v Value, at: &str, key: &str) -> Result<&'v str> {
        match self.field(obj, at, key)? {
            Value::String(s) => Ok(s),
            other => Err(self.err(
                &format!("{at}.{key}"),
                format!("expected a string, found {}", json_kind(other)),
            )),
        }
    }

    fn list<'v>(&self, obj: &'v Value, at: &str, key: &str) -> Result<&'v [Value]> {
        match self.field(obj, at, key)? {
            Value::Array(list) => Ok(list),
            other => Err(self.err(
                &format!("{at}.{key}"),
                format!("expected a list, found {}", json_kind(other)),
            )),
        }
    }
}

/// Load a SQuAD v1.1 or v2.0 JSON file.
///
/// Unanswerable v2.0 questions (`is_impossible: true`, or an empty `answers` list) are skipped and
/// counted in [`SquadData::skipped_unanswerable`]; their paragraphs are kept. Duplicate answer
/// texts (SQuAD dev lists up to five, often equal) are merged. Errors name the file and the JSON
/// path of the bad record, e.g. `data[3].paragraphs[0].qas[2]: missing "question"`.
pub fn load_squad(path: &Path) -> Result<SquadData> {
    let text = read_text(path)?;
    let root: Value = serde_json::from_str(&text).map_err(|e| {
        let hint = if e.to_string().contains("trailing characters") {
            "; if this is JSON lines (one object per line), name the file .jsonl"
        } else {
            ""
        };
        anyhow!(
            "{}: not valid JSON ({e}){hint}; a .json file must be SQuAD v1.1/v2.0",
            path.display()
        )
    })?;
    let r = SquadReader { path };
    let mut out = SquadData::default();
    for (ai, article) in r.list(&root, "top level", "data")?.iter().enumerate() {
        let at_a = format!("data[{ai}]");
        let title = match article.get("title") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let mut paragraphs = Vec::new();
        for (pi, para) in r.list(article, &at_a, "paragraphs")?.iter().enumerate() {
            let at_p = format!("{at_a}.paragraphs[{pi}]");
            let context = r.string(para, &at_p, "context")?.to_string();
            let mut questions = Vec::new();
            for (qi, qa) in r.list(para, &at_p, "qas")?.iter().enumerate() {
                let at_q = format!("{at_p}.qas[{qi}]");
                let id = match r.field(qa, &at_q, "id")? {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(r.err(
                            &format!("{at_q}.id"),
                            format!("expected a string, found {}", json_kind(other)),
                        ))
                    }
                };
                let question = r.string(qa, &at_q, "question")?.to_string();
                let impossible = matches!(qa.get("is_impossible"), Some(Value::Bool(true)));
                // v2.0 unanswerable questions may omit `answers`; answerable ones must have it.
                let raw_answers: &[Value] = if impossible && qa.get("answers").is_none() {
                    &[]
                } else {
                    r.list(qa, &at_q, "answers")?
                };
                let mut answers: Vec<String> = Vec::new();
                for (k, ans) in raw_answers.iter().enumerate() {
                    let at_k = format!("{at_q}.answers[{k}]");
                    let t = r.string(ans, &at_k, "text")?;
                    if t.trim().is_empty() {
                        return Err(r.err(&at_k, "blank answer \"text\""));
                    }
                    if !answers.iter().any(|a| a == t) {
                        answers.push(t.to_string());
                    }
                }
                if impossible || answers.is_empty() {
                    out.skipped_unanswerable += 1;
                    continue;
                }
                questions.push(SquadQuestion {
                    id,
                    question,
                    answers,
                });
            }
            paragraphs.push(SquadParagraph { context, questions });
        }
        out.articles.push(SquadArticle { title, paragraphs });
    }
    Ok(out)
}

/// How SQuAD files met by [`load_qa_path`] become prompts (see [`build_long_contexts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquadOptions {
    /// Prompt length (context + question) in the caller's tokens.
    pub target_tokens: usize,
    /// Seed of the distractor choice and gold depth.
    pub seed: u64,
}

/// What [`load_qa_path`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QaSet {
    /// JSON-lines items in file order, then the SQuAD questions (see [`load_qa_path`]).
    pub items: Vec<QaItem>,
    /// The files read, in the order read.
    pub files: Vec<PathBuf>,
    /// SQuAD v2.0 unanswerable questions left out.
    pub skipped_unanswerable: usize,
    /// SQuAD questions left out because gold paragraph + question exceed the target length
    /// (their ids are in [`LongContexts::skipped_too_long`]; here only the count).
    pub skipped_too_long: usize,
}

/// Load QA data from a file or a folder (`--qa-data FILE|DIR`):
///
/// * `*.jsonl`: JSON lines ([`load_jsonl`]), prompts used as they are;
/// * `*.json`: SQuAD v1.1/v2.0 ([`load_squad`]); the questions get long contexts by
///   [`build_long_contexts`] with `squad`'s target and seed;
/// * a folder: every `.jsonl` and `.json` file directly in it, sorted by name (other files are
///   ignored). The SQuAD articles of all its `.json` files form one pool, so distractors may come
///   from any of them.
///
/// Anything else, or a folder with no such file, or no question at all, is an error.
pub fn load_qa_path(
    path: &Path,
    squad: &SquadOptions,
    count: &dyn Fn(&str) -> usize,
) -> Result<QaSet> {
    let files = if path.is_dir() {
        let mut files = Vec::new();
        let entries = fs::read_dir(path)
            .with_context(|| format!("cannot list the folder {}", path.display()))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list the folder {}", path.display()))?;
            let p = entry.path();
            if p.is_file() && matches!(qa_extension(&p), Some("jsonl" | "json")) {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            bail!(
                "{}: the folder holds no .jsonl or .json file; pass JSON-lines QA files \
                 ({{\"index\", \"input\", \"outputs\"}} per line) or SQuAD .json files",
                path.display()
            );
        }
        files
    } else if path.is_file() {
        match qa_extension(path) {
            Some("jsonl" | "json") => vec![path.to_path_buf()],
            _ => bail!(
                "{}: unknown QA file type; use .jsonl for JSON lines \
                 ({{\"index\", \"input\", \"outputs\"}} per line) or .json for SQuAD v1.1/v2.0",
                path.display()
            ),
        }
    } else {
        bail!(
            "{}: no such file or folder; pass a .jsonl/.json file or a folder of them",
            path.display()
        );
    };

    let mut set = QaSet::default();
    let mut articles = Vec::new();
    for file in &files {
        if qa_extension(file) == Some("jsonl") {
            set.items.extend(load_jsonl(file)?);
        } else {
            let data = load_squad(file)?;
            set.skipped_unanswerable += data.skipped_unanswerable;
            articles.extend(data.articles);
        }
    }
    set.files = files;
    if articles
        .iter()
        .any(|a| a.paragraphs.iter().any(|p| !p.questions.is_empty()))
    {
        let built = build_long_contexts(&articles, squad.target_tokens, squad.seed, count)
            .with_context(|| format!("building SQuAD contexts from {}", path.display()))?;
        set.skipped_too_long = built.skipped_too_long.len();
        set.items.extend(built.items.into_iter().map(|b| b.item));
    }
    if set.items.is_empty() {
        bail!(
            "{}: no usable question found (skipped: {} unanswerable, {} longer than the target \
             of {} tokens)",
            path.display(),
            set.skipped_unanswerable,
            set.skipped_too_long,
            squad.target_tokens
        );
    }
    Ok(set)
}

fn qa_extension(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

// ------------------------------------------------------------------------------------------------
// 3. Long contexts
// ------------------------------------------------------------------------------------------------

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
struct PoolEntry<'a> {
    text: &'a str,
    /// Paragraphs of the gold's group (article, document) are never its distractors.
    group: usize,
    tokens: usize,
}

/// A filled context.
struct Filled {
    prompt: String,
    tokens: usize,
    depth: f64,
    paragraphs: usize,
}

enum Fill {
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
fn fill_context(
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
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser: spreads a seed over all bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream of one named thing (an item, a split) under `seed`.
fn keyed_rng(seed: u64, key: &str) -> ChaCha8Rng {
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

// ------------------------------------------------------------------------------------------------
// 4. The built-in cloze task
// ------------------------------------------------------------------------------------------------

/// The blank that replaces the answer word in a cloze question.
pub const BLANK: &str = "_____";
/// Cloze questions read `"Fill in the blank: <sentence with _____>"`.
pub const CLOZE_QUESTION_PREFIX: &str = "Fill in the blank: ";
/// Words a sentence needs to be a cloze question.
pub const MIN_SENTENCE_WORDS: usize = 6;
/// Longest sentence, in words, used for a cloze question (Austen's sentences can run past a
/// hundred words; a question should stay short next to the context).
pub const MAX_SENTENCE_WORDS: usize = 40;
/// Letters an answer word needs.
pub const MIN_ANSWER_LETTERS: usize = 4;

/// A small English stop list (function words, auxiliaries, pronouns, common adverbs and forms of
/// address): such words are never answers, so answers are content words or names.
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "ago", "all",
    "almost", "alone", "along", "already", "also", "although", "always", "am", "among", "amongst",
    "an", "and", "another", "any", "anybody", "anyhow", "anyone", "anything", "anyway", "anywhere",
    "are", "around", "as", "at", "away", "back", "be", "became", "because", "become", "becomes",
    "been", "before", "beforehand", "behind", "being", "below", "beside", "besides", "between",
    "beyond", "both", "but", "by", "came", "can", "cannot", "come", "comes", "could", "did", "do",
    "does", "doing", "done", "down", "during", "each", "either", "else", "elsewhere", "enough",
    "even", "ever", "every", "everybody", "everyone", "everything", "everywhere", "except", "few",
    "first", "for", "former", "formerly", "from", "further", "get", "gets", "give", "given",
    "gives", "go", "goes", "going", "gone", "got", "had", "has", "have", "having", "he", "hence",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in",
    "indeed", "into", "is", "it", "its", "itself", "just", "last", "least", "less", "let", "like",
    "made", "madam", "make", "makes", "many", "may", "me", "meanwhile", "might", "mine", "miss",
    "mister", "more", "moreover", "most", "mostly", "much", "must", "my", "myself", "neither",
    "never", "nevertheless", "next", "no", "nobody", "none", "noone", "nor", "not", "nothing",
    "now", "nowhere", "of", "off", "often", "on", "once", "one", "only", "onto", "or", "other",
    "others", "otherwise", "ought", "our", "ours", "ourselves", "out", "over", "own", "per",
    "perhaps", "quite", "rather", "really", "said", "same", "say", "says", "see", "seem", "seemed",
    "seeming", "seems", "several", "shall", "she", "should", "since", "so", "some", "somehow",
    "someone", "something", "sometime", "sometimes", "somewhere", "still", "such", "than", "that",
    "the", "their", "theirs", "them", "themselves", "then", "thence", "there", "thereafter",
    "thereby", "therefore", "therein", "thereupon", "these", "they", "this", "those", "though",
    "through", "throughout", "thus", "till", "to", "together", "too", "took", "toward", "towards",
    "under", "unless", "until", "up", "upon", "us", "very", "via", "was", "we", "well", "went",
    "were", "what", "whatever", "when", "whence", "whenever", "where", "whereas", "whereby",
    "wherein", "whether", "which", "while", "whither", "who", "whoever", "whole", "whom", "whose",
    "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours", "yourself",
    "yourselves",
];

/// Whether `word` (any case) is in [`STOP_WORDS`].
pub fn is_stop_word(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
        .contains(word.to_lowercase().as_str())
}

/// Whether a word may be a cloze answer: alphabetic only, at least [`MIN_ANSWER_LETTERS`]
/// letters, not a stop word.
pub fn is_eligible_word(word: &str) -> bool {
    word.chars().count() >= MIN_ANSWER_LETTERS
        && word.chars().all(char::is_alphabetic)
        && !is_stop_word(word)
}

/// The word inside a whitespace token: the token without leading and trailing non-alphanumeric
/// characters (`"Darcy,"` → `"Darcy"`, `"``"` → `""`), as a byte range of the token.
fn word_span(token: &str) -> (usize, usize) {
    let start = token
        .char_indices()
        .find(|(_, c)| c.is_alphanumeric())
        .map(|(i, _)| i);
    match start {
        None => (0, 0),
        Some(start) => {
            let end = token
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_alphanumeric())
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(start);
            (start, end)
        }
    }
}

fn word_of(token: &str) -> &str {
    let (s, e) = word_span(token);
    &token[s..e]
}

/// Closing quotes and brackets that may follow a sentence's final punctuation
/// (`."`, Brown's `. ''`, `?)`).
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '\u{201D}' | '\u{2019}' | '\u{00BB}'
    )
}

/// Abbreviations whose final period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Mt", "Ft", "Prof", "Rev", "Gen", "Col", "Capt",
    "Lt", "Sgt", "Gov", "Sen", "Rep", "Messrs", "Co", "Inc", "Ltd", "Corp", "No", "vs", "Jan",
    "Feb", "Mar", "Apr", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec",
];

/// Whether a token ends a sentence: its last character before closing quotes/brackets is `.`,
/// `!` or `?`, and a `.` does not belong to an abbreviation (`Mr.`, `Dr.`), an initial (`J.`) or a
/// dotted abbreviation (`U.S.`, `a.m.`).
fn ends_sentence(token: &str) -> bool {
    let core = token.trim_end_matches(is_closer);
    match core.chars().last() {
        Some('!' | '?') => true,
        Some('.') => {
            let word = core
                .trim_end_matches('.')
                .trim_start_matches(|c: char| !c.is_alphanumeric());
            let initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
            let dotted = word.contains('.') && word.chars().any(char::is_alphabetic);
            !(initial || dotted || ABBREVIATIONS.contains(&word))
        }
        _ => false,
    }
}

/// Split text into sentences: a rule-based splitter on whitespace tokens.
///
/// A sentence ends after a token ending in `.`, `!` or `?` (before any closing quotes/brackets),
/// except abbreviations (see `ABBREVIATIONS`), single-capital initials and dotted abbreviations,
/// and except when the next word starts with a lower-case letter (`"Why?" he asked.`).
/// Tokens that are only closing quotes/brackets right after the end (Brown's `''`) stay with the
/// sentence, so the Brown corpus's spaced punctuation (`he left . ''`) works as well as normal
/// text (`he left."`). Whitespace (line breaks included) is normalised to single spaces; a final
/// fragment without end punctuation is a sentence too.
pub fn split_sentences(text: &str) -> Vec<String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < tokens.len() {
        let end_here = ends_sentence(tokens[i]);
        i += 1;
        if end_here {
            while i < tokens.len() && tokens[i].chars().all(is_closer) {
                i += 1;
            }
            // `"Why?" he asked.`: a lower-case continuation means the sentence goes on.
            let continues = tokens
                .get(i)
                .and_then(|t| t.chars().find(|c| c.is_alphanumeric()))
                .is_some_and(char::is_lowercase);
            if !continues {
                sentences.push(tokens[start..i].join(" "));
                start = i;
            }
        }
    }
    if start < tokens.len() {
        sentences.push(tokens[start..].join(" "));
    }
    sentences
}

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
/// depth among passages of **other** documents of `pool`, filled as in [`build_long_contexts`]
/// (prompt ≤ target, within about one passage of it).
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
/// the whole prompt when it is not in [`format_prompt`]'s shape.
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

    #[test]
    fn prompt_round_trip() {
        let p = format_prompt("ctx\n\npara", "Who?");
        assert_eq!(p, "ctx\n\npara\n\nQuestion: Who?\nAnswer:");
        assert_eq!(split_prompt(&p), Some(("ctx\n\npara", "Who?")));
        assert_eq!(split_prompt("no format"), None);
        assert_eq!(answer_target("  Paris \n"), " Paris");
    }

    #[test]
    fn sentences_normal_text_and_abbreviations() {
        let s =
            split_sentences("Mr. Darcy came in.  She smiled!\n\"Why?\" he asked. J. Smith left");
        assert_eq!(
            s,
            vec![
                "Mr. Darcy came in.",
                "She smiled!",
                "\"Why?\" he asked.",
                "J. Smith left"
            ]
        );
        let s = split_sentences("He lived in the U.S. for years. Then left.");
        assert_eq!(s, vec!["He lived in the U.S. for years.", "Then left."]);
    }

    #[test]
    fn sentences_brown_spaced_punctuation() {
        let s = split_sentences("He said `` yes . ''\nThen he left ; the end ? Fine !");
        assert_eq!(
            s,
            vec!["He said `` yes . ''", "Then he left ; the end ?", "Fine !"]
        );
    }

    #[test]
    fn word_spans() {
        assert_eq!(word_of("Darcy,"), "Darcy");
        assert_eq!(word_of("``"), "");
        assert_eq!(word_of("\"Well"), "Well");
        assert_eq!(word_of("_very_"), "very");
        assert!(is_eligible_word("Darcy"));
        assert!(!is_eligible_word("which"));
        assert!(!is_eligible_word("cat"));
        assert!(!is_eligible_word("Darcy's"));
        assert!(!is_eligible_word("1960s"));
    }

    #[test]
    fn stop_list_is_lowercase_and_unique() {
        let set: HashSet<_> = STOP_WORDS.iter().collect();
        assert_eq!(set.len(), STOP_WORDS.len());
        assert!(STOP_WORDS
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
        assert!(is_stop_word("Which"));
    }

    #[test]
    fn lazy_permutation_is_a_permutation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut perm = LazyPermutation::new(50);
        let mut seen: Vec<usize> = std::iter::from_fn(|| perm.draw(&mut rng)).collect();
        assert_eq!(seen.len(), 50);
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn most_frequent_ties_go_to_first() {
        let got = most_frequent(["b", "A", "a", "B", "c"].into_iter());
        assert_eq!(got.as_deref(), Some("b"));
        assert_eq!(most_frequent(std::iter::empty()), None);
    }
}
