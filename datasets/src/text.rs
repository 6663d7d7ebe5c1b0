//! Text corpora for language modelling.
//!
//! Two real corpora are available offline (see [`crate::fetch`]): the Brown corpus (500 files of
//! `word/tag` tokens) and Jane Austen's six novels (an R lazy-load database, read by [`rdata`]).
//! [`default_splits`] turns them into train/valid/test splits whose assignment is fixed by
//! [`DEFAULT_SPLIT`], so every run and every machine evaluates on the same held-out novels.
//!
//! Users who have other corpora (WikiText, a folder of `.txt` files) load them with
//! [`load_corpus_dir`]. Everything here returns plain [`Document`]s; tokenization is the caller's
//! business.

pub mod rdata;

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::DataDir;
use crate::error::DataError;
use crate::fetch::FETCH_TEXT_COMMAND;

/// One text with a name that says where it came from (a Brown file id, a novel, a file name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub name: String,
    pub text: String,
}

impl Document {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Document {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Whitespace-separated words (see [`count_words`]).
    pub fn words(&self) -> usize {
        count_words(&self.text)
    }
}

/// A corpus split by document into train / validation / test.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextSplits {
    pub train: Vec<Document>,
    pub valid: Vec<Document>,
    pub test: Vec<Document>,
}

impl TextSplits {
    /// Word counts of (train, valid, test).
    pub fn word_counts(&self) -> (usize, usize, usize) {
        let sum = |docs: &[Document]| docs.iter().map(Document::words).sum();
        (sum(&self.train), sum(&self.valid), sum(&self.test))
    }

    /// Every split must hold some non-whitespace text: an empty split would make perplexity
    /// undefined (0/0) and usually means a wrong path.
    fn check_not_empty(&self, origin: &Path, hint: &str) -> Result<(), DataError> {
        for (split, docs) in [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ] {
            if !docs
                .iter()
                .any(|d| d.text.chars().any(|c| !c.is_whitespace()))
            {
                return Err(DataError::EmptyCorpus {
                    path: origin.to_path_buf(),
                    split: split.into(),
                    hint: hint.into(),
                });
            }
        }
        Ok(())
    }
}

/// Number of whitespace-separated words: the denominator of word-level perplexity, which keeps
/// perplexities comparable across tokenizers.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Which document goes to which split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitAssignment {
    /// Include every Brown file in train.
    pub brown_in_train: bool,
    /// Austen novels (variable names in `Rdata.rdb`) for each split.
    pub austen_train: &'static [&'static str],
    pub austen_valid: &'static [&'static str],
    pub austen_test: &'static [&'static str],
}

/// The fixed split used by [`default_splits`]: train = all 500 Brown files + four novels,
/// valid = *Northanger Abbey*, test = *Persuasion*.
///
/// Why by novel: held-out text must not share passages with training text, and whole novels give
/// long contiguous documents for long-context evaluation (77 k words for the validation novel,
/// 83 k for the test novel).
pub const DEFAULT_SPLIT: SplitAssignment = SplitAssignment {
    brown_in_train: true,
    austen_train: &[
        "sensesensibility",
        "prideprejudice",
        "mansfieldpark",
        "emma",
    ],
    austen_valid: &["northangerabbey"],
    austen_test: &["persuasion"],
};

/// Number of files in the Brown corpus.
pub const BROWN_FILE_COUNT: usize = 500;

/// The train/valid/test splits of the fetched corpora (see [`DEFAULT_SPLIT`]).
///
/// Needs `cargo xtask fetch-data text` to have run; otherwise the error says so.
pub fn default_splits(dir: &DataDir) -> Result<TextSplits, DataError> {
    let brown_dir = dir.brown_dir();
    let austen_dir = dir.austen_dir();
    for (what, path) in [
        ("the Brown corpus", &brown_dir),
        ("Jane Austen's novels", &austen_dir),
    ] {
        if !DataDir::is_complete(path) {
            return Err(DataError::NotFetched {
                what: what.into(),
                path: path.clone(),
                command: FETCH_TEXT_COMMAND.into(),
            });
        }
    }
    let brown = load_brown(&brown_dir)?;
    if brown.len() != BROWN_FILE_COUNT {
        return Err(DataError::format(
            &brown_dir,
            format!(
                "holds {} Brown files, expected {BROWN_FILE_COUNT}",
                brown.len()
            ),
            format!("delete the folder and run `{FETCH_TEXT_COMMAND}` again"),
        ));
    }
    let austen = load_austen(&austen_dir)?;
    let split = DEFAULT_SPLIT;
    let mut novels = austen;
    let mut take = |names: &[&str]| -> Result<Vec<Document>, DataError> {
        names
            .iter()
            .map(|name| {
                let i = novels.iter().position(|d| d.name == *name).ok_or_else(|| {
                    DataError::format(
                        austen_dir.join("Rdata.rdx"),
                        format!("the database has no novel `{name}`"),
                        format!("delete the folder and run `{FETCH_TEXT_COMMAND}` again"),
                    )
                })?;
                Ok(novels.remove(i))
            })
            .collect()
    };
    let mut train = if split.brown_in_train {
        brown
    } else {
        Vec::new()
    };
    train.extend(take(split.austen_train)?);
    let valid = take(split.austen_valid)?;
    let test = take(split.austen_test)?;
    let splits = TextSplits { train, valid, test };
    splits.check_not_empty(
        dir.text_dir().as_path(),
        &format!("the cache is damaged: delete it and run `{FETCH_TEXT_COMMAND}` again"),
    )?;
    Ok(splits)
}

/// Read a file as UTF-8, naming the file and the first bad byte on failure.
pub fn read_utf8(path: &Path) -> Result<String, DataError> {
    let bytes = fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    String::from_utf8(bytes).map_err(|e| DataError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Whether `name` is a Brown corpus file id: `c`, a category letter `a`–`r`, two digits.
pub fn is_brown_file_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 4
        && b[0] == b'c'
        && (b'a'..=b'r').contains(&b[1])
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
}

/// Strip the part-of-speech tags from Brown-format text.
///
/// Each token is `word/tag`; the tag follows the *last* `/` because words may contain slashes
/// (`1-1/2/cd` is the word `1-1/2`). A token without `/` is kept whole. Each non-blank input line
/// (a sentence) becomes one output line; a run of blank lines (a paragraph break) becomes one
/// empty line, so the document keeps its sentence and paragraph structure.
pub fn strip_brown_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len() / 2);
    let mut pending_break = false;
    for line in text.lines() {
        let mut words = line
            .split_whitespace()
            .map(|tok| match tok.rsplit_once('/') {
                Some((word, _tag)) if !word.is_empty() => word,
                _ => tok,
            })
            .peekable();
        if words.peek().is_none() {
            pending_break = !out.is_empty();
            continue;
        }
        if pending_break {
            out.push('\n');
            pending_break = false;
        }
        let mut first = true;
        for w in words {
            if !first {
                out.push(' ');
            }
            out.push_str(w);
            first = false;
        }
        out.push('\n');
    }
    out
}

/// Load the Brown corpus files (`ca01` … `cr09`) found in `dir`, sorted by id, tags stripped.
pub fn load_brown(dir: &Path) -> Result<Vec<Document>, DataError> {
    let hint = format!(
        "run `{FETCH_TEXT_COMMAND}`, or pass the folder that holds the Brown files ca01 … cr09"
    );
    if !dir.is_dir() {
        return Err(DataError::missing(dir, hint));
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DataError::io("list", dir, e))? {
        let entry = entry.map_err(|e| DataError::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_brown_file_name(&name) && entry.path().is_file() {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(DataError::format(
            dir,
            "no Brown corpus files (ca01 … cr09) in this folder",
            hint,
        ));
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = read_utf8(&dir.join(&name))?;
            Ok(Document {
                text: strip_brown_tags(&text),
                name,
            })
        })
        .collect()
}

/// Load every character-vector object of the R lazy-load database `dir/Rdata.rdb` +
/// `dir/Rdata.rdx` as a document (lines joined with `\n`, NA lines empty), in index order.
///
/// For janeaustenr these are the six novels, named `emma`, `mansfieldpark`, `northangerabbey`,
/// `persuasion`, `prideprejudice`, `sensesensibility`. Objects of other types are skipped.
pub fn load_austen(dir: &Path) -> Result<Vec<Document>, DataError> {
    let hint = format!(
        "run `{FETCH_TEXT_COMMAND}`, or pass the `data/` folder of an installed janeaustenr R \
         package"
    );
    let rdx_path = dir.join("Rdata.rdx");
    let rdb_path = dir.join("Rdata.rdb");
    for p in [&rdx_path, &rdb_path] {
        if !p.is_file() {
            return Err(DataError::missing(p, hint.clone()));
        }
    }
    let damaged = format!("the file is damaged: delete it and run `{FETCH_TEXT_COMMAND}` again");
    let rdx = fs::read(&rdx_path).map_err(|e| DataError::io("read", &rdx_path, e))?;
    let index = rdata::read_index(&rdx).map_err(|e| {
        DataError::format(
            &rdx_path,
            format!("not a readable R lazy-load index: {e}"),
            damaged.clone(),
        )
    })?;
    let rdb = fs::read(&rdb_path).map_err(|e| DataError::io("read", &rdb_path, e))?;
    let mut docs = Vec::new();
    for (name, offset, len) in &index.variables {
        let obj = rdata::read_block(&rdb, *offset, *len, index.compression).map_err(|e| {
            DataError::format(
                &rdb_path,
                format!("cannot read object `{name}`: {e}"),
                damaged.clone(),
            )
        })?;
        if let rdata::RValue::Character(lines) = obj.value {
            let mut text = String::new();
            for (i, line) in lines.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(line.as_deref().unwrap_or(""));
            }
            docs.push(Document {
                name: name.clone(),
                text,
            });
        }
    }
    if docs.is_empty() {
        return Err(DataError::format(
            &rdb_path,
            "the database holds no character vectors (no novels)",
            hint,
        ));
    }
    Ok(docs)
}

/// Load a user-supplied corpus folder. Recognised layouts, tried in this order:
///
/// 1. WikiText: `wiki.train.tokens`, `wiki.valid.tokens`, `wiki.test.tokens` (or the `.raw`
///    variants); one document per split file.
/// 2. `train/`, `valid/`, `test/` subfolders of `.txt` files (sorted by name).
/// 3. A flat folder of `.txt` files (sorted by name), split by document: the last file is test,
///    the second last valid, the rest train. Needs at least three files.
///
/// Every split must contain some non-whitespace text, and every file must be UTF-8.
pub fn load_corpus_dir(dir: &Path) -> Result<TextSplits, DataError> {
    if !dir.is_dir() {
        return Err(DataError::missing(
            dir,
            "pass a folder holding wiki.{train,valid,test}.tokens, train/valid/test subfolders of \
             .txt files, or at least three .txt files",
        ));
    }
    let splits = if let Some(ext) = ["tokens", "raw"]
        .into_iter()
        .find(|ext| dir.join(format!("wiki.train.{ext}")).is_file())
    {
        let load = |split: &str| -> Result<Vec<Document>, DataError> {
            let name = format!("wiki.{split}.{ext}");
            let path = dir.join(&name);
            if !path.is_file() {
                return Err(DataError::missing(
                    &path,
                    format!("a WikiText folder needs wiki.train.{ext}, wiki.valid.{ext} and wiki.test.{ext}"),
                ));
            }
            Ok(vec![Document::new(name, read_utf8(&path)?)])
        };
        TextSplits {
            train: load("train")?,
            valid: load("valid")?,
            test: load("test")?,
        }
    } else if ["train", "valid", "test"]
        .iter()
        .any(|s| dir.join(s).is_dir())
    {
        let load = |split: &str| -> Result<Vec<Document>, DataError> {
            let sub = dir.join(split);
            if !sub.is_dir() {
                return Err(DataError::missing(
                    &sub,
                    "a split-folder corpus needs train/, valid/ and test/ subfolders of .txt files",
                ));
            }
            txt_files(&sub)?
                .into_iter()
                .map(|p| Ok(Document::new(file_name(&p), read_utf8(&p)?)))
                .collect()
        };
        TextSplits {
            train: load("train")?,
            valid: load("valid")?,
            test: load("test")?,
        }
    } else {
        let files = txt_files(dir)?;
        if files.len() < 3 {
            return Err(DataError::format(
                dir,
                format!(
                    "found {} .txt files and no wiki.*.tokens or train/valid/test subfolders",
                    files.len()
                ),
                "a flat corpus folder needs at least three .txt files (the last two by name become \
                 valid and test); or use the WikiText or train/valid/test layout",
            ));
        }
        let mut docs = files
            .iter()
            .map(|p| Ok(Document::new(file_name(p), read_utf8(p)?)))
            .collect::<Result<Vec<_>, DataError>>()?;
        let test = docs.pop().expect("at least three files");
        let valid = docs.pop().expect("at least three files");
        TextSplits {
            train: docs,
            valid: vec![valid],
            test: vec![test],
        }
    };
    splits.check_not_empty(
        dir,
        "add text to that split (files must hold more than whitespace) or point at another folder",
    )?;
    Ok(splits)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.txt` files directly in `dir`, sorted by name.
fn txt_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DataError::io("list", dir, e))? {
        let entry = entry.map_err(|e| DataError::io("list", dir, e))?;
        let p = entry.path();
        if p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt")) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}
