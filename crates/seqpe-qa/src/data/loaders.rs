//! Loaders of QA files: JSON lines in the reference's format ([`load_jsonl`]) and SQuAD
//! v1.1/v2.0 JSON ([`load_squad`]). Every error names the file and the line or JSON path.

use std::fs;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prompt::QaItem;

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
