//! Fine-tuning lifts exact match on a small QA task the test writes itself: a `key value .` fact
//! and a question asking for the key's value (a copy from the context, as in the cloze task). A tiny GPT pre-trained for a few steps scores near 0; after fine-tuning through
//! the shared training loop it scores clearly above the trivial baseline. Also the bad inputs of
//! `train-qa`.

use std::path::Path;

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use seqpe_core::PeKind;
use seqpe_qa::config::QaConfig;
use seqpe_qa::eval::evaluate_run;
use seqpe_qa::task::{train, QaTrainOptions};
use seqpe_text::config::TextConfig;
use seqpe_text::eval::CorpusSource;
use seqpe_text::train::{train as train_text, TrainOptions};
use seqpe_train::{Precision, Session};

type AD = Autodiff<Flex>;
const DEV: FlexDevice = FlexDevice;

const KEYS: [&str; 12] = [
    "apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "ocean", "piano", "candle",
    "garden", "silver",
];
const VALUES: [&str; 12] = [
    "red", "blue", "green", "gold", "pink", "gray", "black", "white", "brown", "teal", "plum",
    "rose",
];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// One item: a fact `key value .`; the question asks for the key's value. (Fine-tuned sequences
/// are filled at the front with other items' facts, so the answer must be read from the item's
/// own context.)
fn item(rng: &mut Lcg, id: usize) -> (String, String) {
    let mut keys: Vec<usize> = Vec::new();
    while keys.is_empty() {
        let k = rng.next(KEYS.len());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let facts: Vec<(usize, usize)> = keys.iter().map(|&k| (k, rng.next(VALUES.len()))).collect();
    let context = facts
        .iter()
        .map(|(k, v)| format!("{} {} .", KEYS[*k], VALUES[*v]))
        .collect::<Vec<_>>()
        .join(" ");
    let (k, v) = facts[0];
    let prompt = format!(
        "{context}\n\nQuestion: Fill in the blank: {} _____\nAnswer:",
        KEYS[k]
    );
    let text = format!("{prompt} {}", VALUES[v]);
    let line = serde_json::json!({"index": id, "input": prompt, "outputs": [VALUES[v]]});
    (line.to_string(), text)
}

fn write_data(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut rng = Lcg(11);
    let mut lines = Vec::new();
    let mut corpus = Vec::new();
    for i in 0..600 {
        let (line, context) = item(&mut rng, i);
        lines.push(line);
        corpus.push(context);
    }
    let qa = dir.join("train.jsonl");
    std::fs::write(&qa, lines.join("\n")).unwrap();
    let mut test = Vec::new();
    for i in 0..40 {
        test.push(item(&mut rng, 10_000 + i).0);
    }
    let test_file = dir.join("test.jsonl");
    std::fs::write(&test_file, test.join("\n")).unwrap();
    // the text corpus of the pre-training (and of the tokenizer): the same kind of items
    let text = dir.join("corpus");
    std::fs::create_dir_all(&text).unwrap();
    for (name, part) in [("a.txt", 0..200), ("b.txt", 200..250), ("c.txt", 250..300)] {
        std::fs::write(text.join(name), corpus[part].join("\n")).unwrap();
    }
    (qa, test_file)
}

/// A tiny GPT with RoPE: the test is about the fine-tuning machinery (SeqPE's regularizers in the
/// loop are tested in seqpe-train), and relative positions let so small a model find the fact
/// nearest to the question in a few hundred steps.
fn text_config() -> TextConfig {
    let mut cfg = TextConfig::preset("tiny").unwrap();
    cfg.model.pe = PeKind::Rope;
    cfg.model.vocab_size = 600;
    cfg.model.d_model = 64;
    cfg.model.n_heads = 2;
    cfg.model.n_layers = 2;
    cfg.model.block_size = 32;
    cfg.model.dropout = 0.0;
    cfg.model.attn_dropout = 0.0;
    cfg.model.seqpe.d_model = 32;
    cfg.train.steps = 5;
    cfg.train.batch_size = 8;
    cfg.train.valid_limit = 2;
    cfg
}

fn qa_config(from: &Path, data: &Path) -> QaConfig {
    let mut cfg = QaConfig::preset("tiny").unwrap();
    cfg.from = from.to_path_buf();
    cfg.qa.data = Some(data.to_path_buf());
    cfg.qa.length = 48;
    cfg.qa.eval_factors = vec![1];
    cfg.qa.max_new_tokens = 4;
    cfg.train.steps = 300;
    cfg.train.batch_size = 16;
    cfg.train.lr = 3e-3;
    cfg.train.warmup_steps = 30;
    cfg.train.eval_every = 0;
    cfg.train.checkpoint_every = 0;
    let r = &mut cfg.train.regularizer;
    r.contrastive_batch = 4;
    r.contrastive_candidates = 8;
    r.distill_windows = 2;
    r.distill_per_window = 8;
    r.shift_windows = 2;
    cfg
}

#[test]
fn fine_tuning_lifts_exact_match_above_the_trivial_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (qa_file, test_file) = write_data(dir);
    let text_run = dir.join("text");
    train_text::<AD>(
        text_config(),
        &TrainOptions {
            session: Session::fresh(&text_run),
            corpus: CorpusSource::Dir(dir.join("corpus")),
            tokenizer: None,
        },
        &DEV,
    )
    .unwrap();
    let corpus = CorpusSource::Dir(dir.join("corpus"));
    let opts = |run: &Path, stop: Option<usize>| QaTrainOptions {
        session: Session {
            stop_after: stop,
            ..Session::fresh(run)
        },
        corpus: corpus.clone(),
    };
    // before fine-tuning: one step at learning rate 0 (the first warm-up step) saves the text
    // run's weights as a QA run
    let before = dir.join("qa-before");
    let mut zero = qa_config(&text_run, &qa_file);
    zero.train.steps = 1;
    train::<AD>(zero, &opts(&before, None), &DEV).unwrap();
    // every item of the test file at the fine-tuning length, f32
    let evaluate = |run: &Path| {
        evaluate_run::<Flex>(
            run,
            &[1],
            &corpus,
            Some(&test_file),
            0,
            None,
            Precision::F32,
            &DEV,
        )
        .unwrap()
    };
    let em_before = evaluate(&before).results[0].lenient_em;
    let qa_run = dir.join("qa");
    let summary = train::<AD>(qa_config(&text_run, &qa_file), &opts(&qa_run, None), &DEV).unwrap();
    assert_eq!(summary.steps, 300);
    let after = evaluate(&qa_run);
    println!("{}", after.table());
    let em = after.results[0].lenient_em;
    // the trivial baseline: the most frequent training answer, scored on the test items
    let train_items = seqpe_qa::data::load_jsonl(&qa_file).unwrap();
    let mut counts = std::collections::HashMap::new();
    for i in &train_items {
        *counts.entry(i.answers[0].clone()).or_insert(0usize) += 1;
    }
    let frequent = counts.into_iter().max_by_key(|(_, c)| *c).unwrap().0;
    let test_items = seqpe_qa::data::load_jsonl(&test_file).unwrap();
    let baseline = 100.0
        * test_items
            .iter()
            .filter(|i| seqpe_qa::metrics::lenient_em(&frequent, &i.answers))
            .count() as f64
        / test_items.len() as f64;
    assert!(em_before <= 10.0, "EM before fine-tuning {em_before}%");
    assert!(
        em >= baseline + 25.0,
        "EM after fine-tuning {em}% (before {em_before}%, most frequent answer {baseline}%)"
    );
}

#[test]
fn bad_inputs_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let corpus = CorpusSource::Dir(dir.join("corpus"));
    let opts = |run: &Path| QaTrainOptions {
        session: Session::fresh(run),
        corpus: corpus.clone(),
    };
    // --from a folder that is no run
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let err = train::<AD>(
        qa_config(&dir.join("empty"), &dir.join("x.jsonl")),
        &opts(&dir.join("r1")),
        &DEV,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("not a run folder"), "{err:#}");
    // --from a run of another model kind (a vision config)
    let other = dir.join("vision-run");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("config.json"),
        r#"{"preset": "tiny", "model": {"image_size": 28}}"#,
    )
    .unwrap();
    let err = train::<AD>(
        qa_config(&other, &dir.join("x.jsonl")),
        &opts(&dir.join("r2")),
        &DEV,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("not a text (GPT) run"),
        "{err:#}"
    );
    // a text run without its tokenizer
    let text = dir.join("text-no-tok");
    std::fs::create_dir_all(&text).unwrap();
    seqpe_train::checkpoint::write_json(&text.join("config.json"), &text_config()).unwrap();
    let err = train::<AD>(
        qa_config(&text, &dir.join("x.jsonl")),
        &opts(&dir.join("r3")),
        &DEV,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("tokenizer.json"), "{err:#}");
}

#[test]
fn a_zero_evaluation_factor_is_an_error_not_an_empty_report() {
    let err = seqpe_qa::eval::evaluate_run::<burn::backend::Flex>(
        std::path::Path::new("no-such-run"),
        &[0],
        &seqpe_text::eval::CorpusSource::Dir("no-such-corpus".into()),
        None,
        0,
        None,
        Precision::F32,
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("positive multiples"), "{err}");
}

#[test]
fn a_fine_tune_without_validation_items_is_refused() {
    use seqpe_qa::task::{QaExample, QaTask};
    let example = QaExample {
        ids: vec![1; 17],
        answer_at: 10,
        scored: 2,
    };
    let err = QaTask::new(vec![example], vec![], 16)
        .err()
        .expect("no validation examples")
        .to_string();
    assert!(err.contains("no QA validation examples"), "{err}");
}

#[test]
fn passkey_sequences_hold_one_number_at_its_place_and_have_the_fine_tuning_length() {
    use seqpe_qa::config::BuiltInTask;
    use seqpe_qa::task::load_data;
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    for split in ["train", "valid", "test"] {
        std::fs::create_dir_all(corpus.join(split)).unwrap();
        let text = (0..200)
            .map(|i| format!("The {split} river ran by stone {i} and the old garden in 1811."))
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(corpus.join(split).join("a.txt"), text).unwrap();
    }
    let source = CorpusSource::Dir(corpus);
    let splits = seqpe_text::eval::load_splits(&source).unwrap();
    let tokenizer = seqpe_text::data::train_tokenizer(&splits.train, 400).unwrap();
    let mut cfg = QaConfig::preset("tiny").unwrap();
    cfg.qa.task = BuiltInTask::Passkey;
    cfg.qa.train_questions = 12;
    cfg.qa.valid_questions = 4;
    let data = load_data(&cfg, &source, &tokenizer).unwrap();
    assert_eq!((data.train.len(), data.valid.len()), (12, 4));
    for e in data.train.iter().chain(&data.valid) {
        assert_eq!(e.ids.len(), cfg.qa.length + 1);
        let prompt = tokenizer.decode(&e.ids[..e.answer_at], false).unwrap();
        let answer = tokenizer
            .decode(&e.ids[e.answer_at..e.answer_at + e.scored - 1], false)
            .unwrap();
        let key = answer.trim();
        assert!(
            key.len() == 5 && key.bytes().all(|b| b.is_ascii_digit()),
            "{answer:?}"
        );
        assert_eq!(prompt.matches(key).count(), 1, "{prompt}");
        assert!(prompt.contains(&format!("The pass key is {key}.")));
        assert!(
            prompt.ends_with("Question: What is the pass key?\nAnswer:"),
            "{prompt}"
        );
    }
}

#[test]
fn a_passkey_run_is_scored_at_each_length_and_depth() {
    use seqpe_qa::config::BuiltInTask;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_data(dir);
    let text_run = dir.join("text");
    let corpus = CorpusSource::Dir(dir.join("corpus"));
    train_text::<AD>(
        text_config(),
        &TrainOptions {
            session: Session::fresh(&text_run),
            corpus: corpus.clone(),
            tokenizer: None,
        },
        &DEV,
    )
    .unwrap();
    let mut cfg = qa_config(&text_run, Path::new("unused"));
    cfg.qa.data = None;
    cfg.qa.task = BuiltInTask::Passkey;
    cfg.qa.train_questions = 16;
    cfg.qa.valid_questions = 4;
    cfg.qa.test_questions = 20;
    cfg.qa.length = 96;
    cfg.train.steps = 2;
    let run = dir.join("passkey");
    train::<AD>(
        cfg,
        &QaTrainOptions {
            session: Session::fresh(&run),
            corpus: corpus.clone(),
        },
        &DEV,
    )
    .unwrap();
    let report =
        evaluate_run::<Flex>(&run, &[1, 2], &corpus, None, 10, None, Precision::F32, &DEV).unwrap();
    assert_eq!(report.results.len(), 2);
    for (r, f) in report.results.iter().zip([1, 2]) {
        assert_eq!((r.factor, r.items), (f, 10));
        assert_eq!(r.target_tokens, seqpe_qa::task::prompt_budget(96 * f));
        assert_eq!(r.mean_prompt_tokens, r.target_tokens as f64);
        // ten items, one per tenth of the context
        assert_eq!(r.by_depth.len(), 10);
        let mean = r.by_depth.iter().sum::<f64>() / 10.0;
        assert!((mean - r.lenient_em).abs() < 1e-9, "{r:?}");
    }
    assert!(
        report.data.starts_with("passkey retrieval"),
        "{}",
        report.data
    );
    // a bf16 evaluation (the weights and position context cast, the answer's log-softmax in f32)
    // scores the same items: its answer perplexity within bf16's rounding of the f32 one
    let low =
        evaluate_run::<Flex>(&run, &[1], &corpus, None, 10, None, Precision::Bf16, &DEV).unwrap();
    assert_eq!(low.precision, Precision::Bf16);
    let (a, b) = (report.results[0].answer_ppl, low.results[0].answer_ppl);
    assert!(
        b.is_finite() && (a.ln() - b.ln()).abs() < 0.05,
        "f32 {a} bf16 {b}"
    );
    let err =
        evaluate_run::<Flex>(&run, &[1], &corpus, None, 1, None, Precision::F16, &DEV).unwrap_err();
    assert!(format!("{err:#}").contains("bf16"), "{err:#}");
}
