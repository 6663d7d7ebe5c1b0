//! Users' QA data (`--qa-data FILE|DIR`): [`load_qa_path`] reads JSON-lines prompts as given
//! and gives SQuAD questions long contexts ([`super::long_context`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::loaders::{load_jsonl, load_squad};
use super::long_context::build_long_contexts;
use super::prompt::QaItem;

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
    /// (their ids are in
    /// [`LongContexts::skipped_too_long`](super::long_context::LongContexts::skipped_too_long);
    /// here only the count).
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
