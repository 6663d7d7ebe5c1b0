//! Helpers shared by the seqpe-text integration tests: a small real corpus written to a temp
//! folder, a tiny configuration, and readers of a run's logs.
#![allow(dead_code, unused_imports)]

pub use std::path::{Path, PathBuf};

pub use burn::backend::flex::FlexDevice;
pub use burn::backend::{Autodiff, Flex};
pub use burn::module::AutodiffModule;
pub use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
pub use seqpe_core::PeKind;
pub use seqpe_datasets::text::Document;
pub use seqpe_text::config::TextConfig;
pub use seqpe_text::data::{eval_chunks, train_tokenizer, TokenStream};
pub use seqpe_text::eval::{evaluate_run, load_run, CorpusSource};
pub use seqpe_text::train::{train, TrainOptions};
pub use seqpe_train::run::RunDir;
use seqpe_train::Session;

pub type AD = Autodiff<Flex>;
pub const DEV: FlexDevice = FlexDevice;

/// Burn's backend random generator (and burn-collective's local server) is process-global, so
/// the tests of one binary take turns: a test that trains seeds the generator and initialises a
/// model, and another test drawing from it at the same time changed its starting weights (seen
/// once: APE ended at 2.90 instead of 1.98 in `tiny_model_overfits_a_real_passage`).
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The opening of *Pride and Prejudice* (public domain), a short real passage.
pub const AUSTEN: &str = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered the rightful property of some one or other of their daughters. \"My dear Mr. Bennet,\" said his lady to him one day, \"have you heard that Netherfield Park is let at last?\" Mr. Bennet replied that he had not. \"But it is,\" returned she; \"for Mrs. Long has just been here, and she told me all about it.\" Mr. Bennet made no answer. \"Do you not want to know who has taken it?\" cried his wife impatiently. \"You want to tell me, and I have no objection to hearing it.\" This was invitation enough.";

/// A temporary folder, removed when the returned guard is dropped (also when a test fails).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A flat folder of .txt files: the last is test, the second last valid.
pub fn write_corpus(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let words: Vec<&str> = AUSTEN.split_whitespace().collect();
    for (i, name) in ["a.txt", "b.txt", "c.txt", "d.txt"].iter().enumerate() {
        // rotate the passage so that the documents differ
        let k = (i * 17) % words.len();
        let text = [&words[k..], &words[..k]].concat().join(" ");
        std::fs::write(corpus.join(name), format!("{text}\n{text}\n")).unwrap();
    }
    corpus
}

pub fn tiny_config(pe: PeKind, steps: usize) -> TextConfig {
    let mut cfg = TextConfig::preset("tiny").unwrap();
    cfg.model.pe = pe;
    cfg.model.vocab_size = 300;
    cfg.model.d_model = 32;
    cfg.model.n_heads = 2;
    cfg.model.n_layers = 1;
    cfg.model.block_size = 16;
    cfg.model.seqpe.d_model = 16;
    cfg.model.seqpe.max_position = 1000;
    cfg.train.batch_size = 4;
    cfg.train.steps = steps;
    cfg.train.warmup_steps = 2;
    cfg.train.lr = 3e-3;
    cfg.train.eval_every = 1000;
    cfg.train.valid_limit = 4;
    cfg.train.checkpoint_every = 3;
    let r = &mut cfg.train.regularizer;
    r.contrastive_batch = 4;
    r.contrastive_candidates = 8;
    r.distill_windows = 2;
    r.distill_per_window = 8;
    r.shift_windows = 2;
    r.shift_pool = 16;
    r.shift_rate = 0.3;
    cfg
}

pub fn options(run: &Path, corpus: &Path) -> TrainOptions {
    TrainOptions {
        session: Session::fresh(run),
        corpus: CorpusSource::Dir(corpus.to_path_buf()),
        tokenizer: None,
    }
}

pub fn logged_losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((v["step"].as_u64()?, v.get("loss")?.as_f64()?))
        })
        .collect()
}
