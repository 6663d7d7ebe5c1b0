//! Tests of the QA data layer: loaders, long-context building, the cloze task and baselines.
//! Token counts are whitespace word counts.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use seqpe_datasets::text::Document;
use seqpe_qa::data::*;
use seqpe_qa::metrics::{lenient_em, strict_em, trivial_baselines};

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

const WORDS: &dyn Fn(&str) -> usize = &words;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).expect("write test file");
    p
}

fn err_text<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.expect_err("expected an error"))
}

// ------------------------------------------------------------------------------------------------
// JSON lines
// ------------------------------------------------------------------------------------------------

#[test]
fn jsonl_good_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "good.jsonl",
        "{\"index\": 7, \"input\": \"ctx\\n\\nQuestion: q\\nAnswer:\", \"outputs\": [\"a\", \"b\"], \"length\": 3}\n\
         \n\
         {\"index\": \"x-1\", \"input\": \"p2\", \"outputs\": [\"c\"]}\n\
         {\"input\": \"p3\", \"outputs\": [\"d\"]}\n",
    );
    let items = load_jsonl(&p).expect("loads");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].id, "7");
    assert_eq!(items[0].prompt, "ctx\n\nQuestion: q\nAnswer:");
    assert_eq!(items[0].answers, vec!["a", "b"]);
    assert_eq!(items[1].id, "x-1");
    // No index: file name and line number (blank line 2 counted).
    assert_eq!(items[2].id, "good.jsonl:4");
}

#[test]
fn jsonl_errors_name_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = r#"{"index": 0, "input": "p", "outputs": ["a"]}"#;
    let cases = [
        (
            "notjson.jsonl",
            format!("{good}\nthis is not json\n"),
            "line 2",
            "not JSON",
        ),
        (
            "missing.jsonl",
            format!("{good}\n{good}\n{{\"index\": 2, \"input\": \"p\"}}\n"),
            "line 3",
            "missing field `outputs`",
        ),
        (
            "empty.jsonl",
            "{\"index\": 0, \"input\": \"p\", \"outputs\": []}\n".to_string(),
            "line 1",
            "empty `outputs` list",
        ),
        (
            "noinput.jsonl",
            "{\"index\": 0, \"outputs\": [\"a\"]}\n".to_string(),
            "line 1",
            "missing field `input`",
        ),
        (
            "blank.jsonl",
            "{\"index\": 0, \"input\": \"p\", \"outputs\": [\"a\", \"  \"]}\n".to_string(),
            "line 1",
            "`outputs[1]` is blank",
        ),
        (
            "array.jsonl",
            "[1, 2]\n".to_string(),
            "line 1",
            "expected a JSON object",
        ),
    ];
    for (name, text, line, what) in cases {
        let p = write(dir.path(), name, &text);
        let msg = err_text(load_jsonl(&p));
        assert!(msg.contains(name), "{name}: {msg}");
        assert!(msg.contains(line), "{name}: {msg}");
        assert!(msg.contains(what), "{name}: {msg}");
    }
    let msg = err_text(load_jsonl(&dir.path().join("absent.jsonl")));
    assert!(msg.contains("absent.jsonl"), "{msg}");
}

// ------------------------------------------------------------------------------------------------
// SQuAD
// ------------------------------------------------------------------------------------------------

/// Text of paragraph `p` of article `a`: `len` unique tokens.
fn para_text(a: usize, p: usize, len: usize) -> String {
    (0..len)
        .map(|w| format!("art{a}par{p}word{w}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A SQuAD v1.1 JSON document: `articles` articles of `paras` paragraphs of 15–29 words, one
/// question per paragraph.
fn squad_json(articles: usize, paras: usize) -> serde_json::Value {
    let data: Vec<_> = (0..articles)
        .map(|a| {
            let paragraphs: Vec<_> = (0..paras)
                .map(|p| {
                    serde_json::json!({
                        "context": para_text(a, p, 15 + (a * 7 + p * 3) % 15),
                        "qas": [{
                            "id": format!("q{a}-{p}"),
                            "question": format!("Which word follows art{a}par{p}word2 ?"),
                            "answers": [
                                {"text": format!("art{a}par{p}word3"), "answer_start": 0},
                                {"text": format!("art{a}par{p}word3"), "answer_start": 0}
                            ]
                        }]
                    })
                })
                .collect();
            serde_json::json!({"title": format!("Article {a}"), "paragraphs": paragraphs})
        })
        .collect();
    serde_json::json!({"version": "1.1", "data": data})
}

fn squad_articles(articles: usize, paras: usize) -> Vec<SquadArticle> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "squad.json",
        &squad_json(articles, paras).to_string(),
    );
    load_squad(&p).expect("loads").articles
}

#[test]
fn squad_v1_loads_and_merges_duplicate_answers() {
    let articles = squad_articles(3, 2);
    assert_eq!(articles.len(), 3);
    assert_eq!(articles[1].title, "Article 1");
    assert_eq!(articles[1].paragraphs.len(), 2);
    let q = &articles[1].paragraphs[0].questions[0];
    assert_eq!(q.id, "q1-0");
    assert_eq!(q.answers, vec!["art1par0word3"]);
}

#[test]
fn squad_v2_skips_unanswerable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = serde_json::json!({
        "version": "v2.0",
        "data": [{
            "title": "T",
            "paragraphs": [{
                "context": "Paris is the capital of France .",
                "qas": [
                    {"id": "a", "question": "Capital of France?", "is_impossible": false,
                     "answers": [{"text": "Paris", "answer_start": 0}]},
                    {"id": "b", "question": "Capital of Mars?", "is_impossible": true,
                     "answers": [], "plausible_answers": [{"text": "Paris", "answer_start": 0}]},
                    {"id": "c", "question": "Capital of Venus?", "answers": []},
                    {"id": "d", "question": "Capital of Pluto?", "is_impossible": true}
                ]
            }]
        }]
    });
    let p = write(dir.path(), "v2.json", &json.to_string());
    let data = load_squad(&p).expect("loads");
    assert_eq!(data.skipped_unanswerable, 3);
    assert_eq!(data.question_count(), 1);
    assert_eq!(data.articles[0].paragraphs[0].questions[0].id, "a");
}

#[test]
fn squad_errors_name_file_and_json_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut json = squad_json(2, 2);
    let qa = &mut json["data"][1]["paragraphs"][0]["qas"][0];
    qa.as_object_mut().expect("object").remove("question");
    let p = write(dir.path(), "bad_question.json", &json.to_string());
    let msg = err_text(load_squad(&p));
    assert!(msg.contains("bad_question.json"), "{msg}");
    assert!(
        msg.contains("data[1].paragraphs[0].qas[0]: missing \"question\""),
        "{msg}"
    );

    let mut json = squad_json(1, 1);
    json["data"][0]["paragraphs"][0]["context"] = serde_json::json!(5);
    let p = write(dir.path(), "bad_context.json", &json.to_string());
    let msg = err_text(load_squad(&p));
    assert!(msg.contains("bad_context.json"), "{msg}");
    assert!(msg.contains("data[0].paragraphs[0].context"), "{msg}");

    let p = write(dir.path(), "nodata.json", "{\"version\": \"1.1\"}");
    let msg = err_text(load_squad(&p));
    assert!(
        msg.contains("nodata.json") && msg.contains("missing \"data\""),
        "{msg}"
    );

    let p = write(dir.path(), "lines.json", "{\"a\": 1}\n{\"a\": 2}\n");
    let msg = err_text(load_squad(&p));
    assert!(
        msg.contains("lines.json") && msg.contains(".jsonl"),
        "{msg}"
    );
}

// ------------------------------------------------------------------------------------------------
// Long contexts
// ------------------------------------------------------------------------------------------------

#[test]
fn long_contexts_gold_once_length_and_depth() {
    let articles = squad_articles(40, 5);
    let target = 300;
    let longest = articles
        .iter()
        .flat_map(|a| &a.paragraphs)
        .map(|p| words(&p.context))
        .max()
        .expect("paragraphs");
    let built = build_long_contexts(&articles, target, 11, WORDS).expect("builds");
    assert!(built.skipped_too_long.is_empty());
    assert_eq!(built.items.len(), 200);
    let mut depths = Vec::new();
    for b in &built.items {
        let (a, p) = {
            let id = b.item.id.trim_start_matches('q');
            let (a, p) = id.split_once('-').expect("id a-p");
            (
                a.parse::<usize>().expect("a"),
                p.parse::<usize>().expect("p"),
            )
        };
        let gold = &articles[a].paragraphs[p].context;
        assert_eq!(b.item.prompt.matches(gold.as_str()).count(), 1);
        // No other paragraph of the gold's own article is a distractor.
        for (k, other) in articles[a].paragraphs.iter().enumerate() {
            if k != p {
                assert!(!b.item.prompt.contains(&other.context));
            }
        }
        let (context, question) = split_prompt(&b.item.prompt).expect("prompt format");
        assert_eq!(question, articles[a].paragraphs[p].questions[0].question);
        let paras: Vec<&str> = context.split("\n\n").collect();
        assert_eq!(paras.len(), b.paragraphs);
        let pos = paras.iter().position(|x| x == gold).expect("gold present");
        assert!((b.depth - pos as f64 / (paras.len() - 1) as f64).abs() < 1e-12);
        assert_eq!(b.tokens, words(&b.item.prompt));
        assert!(b.tokens <= target, "{} > {target}", b.tokens);
        assert!(b.tokens + longest >= target, "{} too short", b.tokens);
        depths.push(b.depth);
    }
    let mean = depths.iter().sum::<f64>() / depths.len() as f64;
    assert!((0.4..0.6).contains(&mean), "mean depth {mean}");
    for (lo, hi) in [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0001)] {
        let k = depths.iter().filter(|&&d| d >= lo && d < hi).count();
        assert!(k >= 20, "only {k} of 200 depths in [{lo}, {hi})");
    }
    // Deterministic for a seed, different for another.
    let again = build_long_contexts(&articles, target, 11, WORDS).expect("builds");
    assert_eq!(again, built);
    let other = build_long_contexts(&articles, target, 12, WORDS).expect("builds");
    assert_ne!(other.items, built.items);
}

#[test]
fn long_contexts_error_when_pool_too_small() {
    let articles = squad_articles(3, 2);
    let msg = err_text(build_long_contexts(&articles, 10_000, 0, WORDS));
    assert!(msg.contains("10000"), "{msg}");
    assert!(msg.contains("cannot fill"), "{msg}");
    assert!(msg.contains("only"), "{msg}");
}

#[test]
fn long_contexts_skip_gold_longer_than_target() {
    let articles = squad_articles(10, 3);
    let built = build_long_contexts(&articles, 30, 0, WORDS).expect("builds");
    assert!(!built.skipped_too_long.is_empty());
    assert_eq!(built.items.len() + built.skipped_too_long.len(), 30);
    assert!(built.items.iter().all(|b| b.tokens <= 30));
}

// ------------------------------------------------------------------------------------------------
// load_qa_path
// ------------------------------------------------------------------------------------------------

#[test]
fn qa_path_file_and_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SquadOptions {
        target_tokens: 200,
        seed: 1,
    };
    let j = write(
        dir.path(),
        "a.jsonl",
        "{\"index\": 0, \"input\": \"p\", \"outputs\": [\"x\"]}\n",
    );
    write(dir.path(), "b.json", &squad_json(10, 3).to_string());
    write(dir.path(), "notes.txt", "ignored");

    let one = load_qa_path(&j, &opts, WORDS).expect("jsonl file");
    assert_eq!(one.items.len(), 1);

    let all = load_qa_path(dir.path(), &opts, WORDS).expect("folder");
    assert_eq!(all.files.len(), 2);
    assert_eq!(all.items.len(), 1 + 30);
    assert_eq!(all.items[0].id, "0");
    assert!(all.items[1..].iter().all(|i| words(&i.prompt) <= 200));

    let t = write(dir.path(), "c.csv", "a,b");
    let msg = err_text(load_qa_path(&t, &opts, WORDS));
    assert!(msg.contains("c.csv") && msg.contains(".jsonl"), "{msg}");

    let empty = tempfile::tempdir().expect("tempdir");
    let msg = err_text(load_qa_path(empty.path(), &opts, WORDS));
    assert!(msg.contains("no .jsonl or .json"), "{msg}");

    let msg = err_text(load_qa_path(&dir.path().join("nope"), &opts, WORDS));
    assert!(msg.contains("no such file"), "{msg}");
}

// ------------------------------------------------------------------------------------------------
// Cloze
// ------------------------------------------------------------------------------------------------

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fo", "gu", "pe", "zi", "ho", "ja",
];
const FILLERS: [&str; 6] = ["the", "and", "of", "with", "which", "it"];

fn pseudo_word(n: u64) -> String {
    (0..3)
        .map(|k| SYLLABLES[((n >> (4 * k)) & 15) as usize])
        .collect()
}

/// Text of roughly `n_words` words: sentences of 7–12 words mixing stop words and made-up
/// content words; Brown style puts spaces around the final period and one sentence per line.
fn synthetic_text(seed: u64, n_words: usize, brown: bool) -> String {
    let mut rng = Lcg(seed.wrapping_mul(7919).wrapping_add(13));
    let mut sentences = Vec::new();
    let mut total = 0;
    while total < n_words {
        let len = 7 + (rng.next() % 6) as usize;
        let mut ws: Vec<String> = (0..len)
            .map(|_| {
                if rng.next().is_multiple_of(4) {
                    FILLERS[(rng.next() % 6) as usize].to_string()
                } else {
                    pseudo_word(rng.next() % 4096)
                }
            })
            .collect();
        let first = &mut ws[0];
        *first = first[..1].to_uppercase() + &first[1..];
        let end = if brown { " ." } else { "." };
        sentences.push(format!("{}{end}", ws.join(" ")));
        total += len;
    }
    sentences.join(if brown { "\n" } else { " " })
}

fn corpus() -> Vec<Document> {
    let mut docs: Vec<Document> = (0..30)
        .map(|i| Document::new(format!("doc{i:02}"), synthetic_text(i, 400, i % 2 == 0)))
        .collect();
    let mut novel = String::from("THE NOVEL\n\nBy Someone\n\nVOLUME I\n\n");
    for ch in 1..=5 {
        novel.push_str(&format!("CHAPTER {ch}\n\n"));
        novel.push_str(&synthetic_text(100 + ch, 300, false));
        novel.push_str("\n\n");
    }
    docs.push(Document::new("novel", novel));
    docs
}

fn cloze_cfg() -> ClozeConfig {
    ClozeConfig {
        passage_tokens: 40,
        target_tokens: 400,
        questions_per_split: SplitCounts {
            train: 30,
            valid: 5,
            test: 12,
        },
        valid_fraction: 0.2,
        test_fraction: 0.2,
        piece_words: 1000,
        seed: 5,
    }
}

#[test]
fn pseudo_documents_by_chapter_and_by_size() {
    let docs = corpus();
    let novel = docs.last().expect("novel");
    let parts = pseudo_documents(novel, 1000);
    let names: Vec<&str> = parts.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "novel/front",
            "novel/ch001",
            "novel/ch002",
            "novel/ch003",
            "novel/ch004",
            "novel/ch005"
        ]
    );
    assert!(parts
        .iter()
        .all(|d| !d.text.contains("CHAPTER") && !d.text.contains("VOLUME")));
    // The tiny front matter makes no passage.
    assert!(passages(&parts[0].name, &parts[0].text, 40, WORDS).is_empty());

    let long = Document::new("long", synthetic_text(1, 1000, false));
    let pieces = pseudo_documents(&long, 300);
    assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    assert_eq!(pieces[0].name, "long/p01");
    assert!(pieces.iter().all(|d| words(&d.text) <= 300));
    let total: usize = pieces.iter().map(|d| words(&d.text)).sum();
    assert_eq!(total, words(&long.text));

    let short = &docs[0];
    assert_eq!(pseudo_documents(short, 1000), vec![short.clone()]);
}

#[test]
fn passages_have_about_the_requested_size() {
    let text = synthetic_text(3, 600, true);
    let ps = passages("d", &text, 50, WORDS);
    assert!(ps.len() >= 8);
    for p in &ps {
        assert_eq!(p.tokens, words(&p.text));
        assert!(p.tokens <= 50 + 25, "{}", p.tokens);
        assert!(p.tokens >= 25, "{}", p.tokens);
    }
    // All words kept, in order.
    let joined: Vec<String> = ps.iter().map(|p| p.text.clone()).collect();
    assert_eq!(
        joined.join(" "),
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

#[test]
fn document_splits_are_disjoint_and_deterministic() {
    let docs = corpus();
    let s = split_documents(&docs, 0.2, 0.2, 9).expect("splits");
    let names = |d: &[Document]| d.iter().map(|x| x.name.clone()).collect::<HashSet<_>>();
    let (tr, va, te) = (names(&s.train), names(&s.valid), names(&s.test));
    assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
    assert_eq!(tr.len() + va.len() + te.len(), docs.len());
    assert_eq!((va.len(), te.len()), (6, 6));
    // Independent of input order.
    let mut reversed = docs.clone();
    reversed.reverse();
    let r = split_documents(&reversed, 0.2, 0.2, 9).expect("splits");
    assert_eq!(names(&r.test), te);
    assert_eq!(split_documents(&docs, 0.2, 0.2, 9).expect("splits"), s);
    let other = split_documents(&docs, 0.2, 0.2, 10).expect("splits");
    assert_ne!(names(&other.test), te);

    assert!(split_documents(&docs, 0.6, 0.5, 0).is_err());
    assert!(split_documents(&docs[..2], 0.3, 0.3, 0).is_err());
    let dup = vec![docs[0].clone(), docs[0].clone(), docs[1].clone()];
    assert!(err_text(split_documents(&dup, 0.0, 0.3, 0)).contains("twice"));
}

#[test]
fn cloze_questions_and_contexts() {
    let docs = corpus();
    let cfg = cloze_cfg();
    let task = cloze_task(&docs, &cfg, WORDS).expect("task");
    assert_eq!(task.train.questions.len(), 30);
    assert_eq!(task.valid.questions.len(), 5);
    assert_eq!(task.test.questions.len(), 12);

    // Pools of different splits come from different original documents.
    let origin = |p: &Passage| p.doc.split('/').next().unwrap_or("").to_string();
    let train_docs: HashSet<String> = task.train.pool.iter().map(origin).collect();
    let test_docs: HashSet<String> = task.test.pool.iter().map(origin).collect();
    let valid_docs: HashSet<String> = task.valid.pool.iter().map(origin).collect();
    assert!(train_docs.is_disjoint(&test_docs) && train_docs.is_disjoint(&valid_docs));
    assert!(valid_docs.is_disjoint(&test_docs));

    for split in [&task.train, &task.valid, &task.test] {
        let items = split
            .contexts_at(cfg.target_tokens, cfg.seed, WORDS)
            .expect("contexts");
        assert_eq!(items.len(), split.questions.len());
        for (q, b) in split.questions.iter().zip(&items) {
            assert_eq!(b.item.id, q.id);
            assert_eq!(b.item.answers, vec![q.answer.clone()]);
            // The question blanks the answer, which occurs exactly once in the gold passage.
            assert!(q.question.starts_with("Fill in the blank: "));
            assert_eq!(q.question.matches("_____").count(), 1);
            assert!(!q.question.to_lowercase().contains(&q.answer.to_lowercase()));
            assert!(is_eligible_word(&q.answer));
            let in_gold = q
                .gold_passage
                .split_whitespace()
                .filter(|t| {
                    t.trim_matches(|c: char| !c.is_alphanumeric())
                        .eq_ignore_ascii_case(&q.answer)
                })
                .count();
            assert_eq!(in_gold, 1, "{} in {}", q.answer, q.gold_passage);
            assert!(q.gold_passage.contains(&q.sentence));
            assert!((6..=40).contains(&q.sentence.split_whitespace().count()));
            assert_eq!(
                q.sentence.replacen(&q.answer, "_____", 1),
                q.question["Fill in the blank: ".len()..]
            );
            // The context holds the gold passage once, hence the answer; the question is last.
            assert_eq!(b.item.prompt.matches(q.gold_passage.as_str()).count(), 1);
            assert!(b.item.prompt.contains(&q.answer));
            assert!(b
                .item
                .prompt
                .ends_with(&format!("Question: {}\nAnswer:", q.question)));
            // Distractors come from other documents only.
            for p in &split.pool {
                if p.doc == q.doc && p.text != q.gold_passage {
                    assert!(!b.item.prompt.contains(&p.text));
                }
            }
            assert!(b.tokens <= cfg.target_tokens);
            assert!(
                b.tokens + 2 * cfg.passage_tokens >= cfg.target_tokens,
                "{}",
                b.tokens
            );
            assert!(b.paragraphs >= 2);
        }
    }

    // build_cloze is cloze_task + contexts_at at the configured length.
    let built = build_cloze(&docs, &cfg, WORDS).expect("build");
    assert_eq!(
        built.test,
        task.test
            .contexts_at(cfg.target_tokens, cfg.seed, WORDS)
            .expect("contexts")
    );
    assert_eq!(built.train.len(), 30);
}

#[test]
fn cloze_is_deterministic_for_a_seed() {
    let docs = corpus();
    let cfg = cloze_cfg();
    let a = build_cloze(&docs, &cfg, WORDS).expect("build");
    let b = build_cloze(&docs, &cfg, WORDS).expect("build");
    assert_eq!(a, b);
    let c = build_cloze(
        &docs,
        &ClozeConfig {
            seed: 6,
            ..cloze_cfg()
        },
        WORDS,
    )
    .expect("build");
    assert_ne!(a.test, c.test);
}

#[test]
fn cloze_same_questions_at_two_lengths() {
    let docs = corpus();
    let cfg = cloze_cfg();
    let task = cloze_task(&docs, &cfg, WORDS).expect("task");
    let short = task.test.contexts_at(400, 1, WORDS).expect("1x");
    let long = task.test.contexts_at(800, 1, WORDS).expect("2x");
    assert_eq!(short.len(), long.len());
    for ((s, l), q) in short.iter().zip(&long).zip(&task.test.questions) {
        assert_eq!(s.item.id, l.item.id);
        assert_eq!(s.item.answers, l.item.answers);
        let (_, qs) = split_prompt(&s.item.prompt).expect("format");
        let (_, ql) = split_prompt(&l.item.prompt).expect("format");
        assert_eq!(qs, ql);
        assert!(l.item.prompt.contains(&q.gold_passage));
        assert!(s.tokens <= 400 && l.tokens <= 800 && l.tokens > s.tokens);
        assert!(l.paragraphs > s.paragraphs);
    }
}

#[test]
fn cloze_errors_are_explained() {
    let docs = corpus();
    let too_many = ClozeConfig {
        questions_per_split: SplitCounts {
            train: 10,
            valid: 5,
            test: 10_000,
        },
        ..cloze_cfg()
    };
    let msg = err_text(cloze_task(&docs, &too_many, WORDS));
    assert!(msg.contains("test split") && msg.contains("10000"), "{msg}");

    let small_target = ClozeConfig {
        target_tokens: 50,
        ..cloze_cfg()
    };
    assert!(err_text(cloze_task(&docs, &small_target, WORDS)).contains("twice"));

    let task = cloze_task(&docs, &cloze_cfg(), WORDS).expect("task");
    let msg = err_text(task.test.contexts_at(1_000_000, 0, WORDS));
    assert!(
        msg.contains("1000000") && msg.contains("cannot fill"),
        "{msg}"
    );
}

// ------------------------------------------------------------------------------------------------
// Baselines
// ------------------------------------------------------------------------------------------------

fn built(id: &str, context: &str, answer: &str) -> BuiltItem {
    BuiltItem {
        item: QaItem {
            id: id.into(),
            prompt: format_prompt(context, "Fill in the blank: a _____ here"),
            answers: vec![answer.into()],
        },
        depth: 0.0,
        tokens: 0,
        paragraphs: 1,
    }
}

#[test]
fn baselines_on_handmade_items() {
    let train = vec![
        built("t0", "x", "Darcy"),
        built("t1", "x", "darcy"),
        built("t2", "x", "Bingley"),
    ];
    let test = vec![
        // Most frequent training answer: right.
        built("e0", "Darcy went home", "Darcy"),
        // Most frequent eligible context word ("horse", twice; "the" is a stop word): right.
        built("e1", "the horse and the horse and the mill", "horse"),
        // Both wrong.
        built("e2", "the mill and the mill", "river"),
        // Context word guess right only.
        built("e3", "Emma Emma Knightley", "emma"),
    ];
    let b = trivial_baselines(&train, &test);
    assert_eq!(b.most_frequent_answer, "Darcy");
    assert_eq!(b.n, 4);
    assert!((b.most_frequent_answer_em - 25.0).abs() < 1e-9);
    // e0 guess "Darcy" (once, first), e1 "horse", e3 "Emma".
    assert!((b.most_frequent_context_word_em - 75.0).abs() < 1e-9);
}

#[test]
fn baselines_on_cloze_are_low() {
    let docs = corpus();
    let built = build_cloze(&docs, &cloze_cfg(), WORDS).expect("build");
    let b = trivial_baselines(&built.train, &built.test);
    assert_eq!(b.n, built.test.len());
    assert!(b.most_frequent_answer_em <= 20.0, "{b:?}");
    assert!(b.most_frequent_context_word_em <= 20.0, "{b:?}");
}

#[test]
fn em_examples() {
    let paris = vec!["Paris".to_string()];
    assert!(lenient_em("Paris, France", &paris));
    assert!(!strict_em("Paris, France", &paris));
    assert!(strict_em("  paris.\nmore", &paris));
}
