//! Build the cloze task from the project's real corpora and print what it looks like.
//!
//! ```text
//! cargo run -p seqpe-qa --example cloze_stats [TARGET_WORDS]
//! ```
//!
//! The corpora are fetched into `$SEQPE_DATA` (default `./data`) on the first run, as
//! `cargo xtask fetch-data text` does, and reused afterwards.
//!
//! Lengths are whitespace words here (the model uses its BPE tokenizer). It prints the pseudo-
//! document and passage counts, a sample question, the document split, the trivial baselines, and
//! checks that the same test questions build at 1×, 2×, 4× the target.

use anyhow::{Context, Result};
use seqpe_datasets::cache::DataDir;
use seqpe_datasets::fetch;
use seqpe_datasets::text::{self, Document};
use seqpe_qa::data::{cloze_task, cloze_task_from_splits, ClozeConfig};
use seqpe_qa::metrics::trivial_baselines;

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn main() -> Result<()> {
    let target: usize = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .with_context(|| format!("TARGET_WORDS must be a number, got {a:?}"))?,
        None => 512,
    };
    let dir = DataDir::default();
    fetch::text(&dir)?;
    let splits = text::default_splits(&dir)?;
    let cfg = ClozeConfig {
        target_tokens: target,
        ..ClozeConfig::default()
    };
    let count: &dyn Fn(&str) -> usize = &words;

    // 1. Our own split by document over all 506 documents.
    let all: Vec<Document> = splits
        .train
        .iter()
        .chain(&splits.valid)
        .chain(&splits.test)
        .cloned()
        .collect();
    let t0 = std::time::Instant::now();
    let task = cloze_task(&all, &cfg, count)?;
    println!(
        "cloze_task over {} documents: {:?}",
        all.len(),
        t0.elapsed()
    );
    for (name, split) in [
        ("train", &task.train),
        ("valid", &task.valid),
        ("test", &task.test),
    ] {
        let docs: std::collections::HashSet<&str> =
            split.pool.iter().map(|p| p.doc.as_str()).collect();
        let mean = split.pool.iter().map(|p| p.tokens).sum::<usize>() as f64
            / split.pool.len().max(1) as f64;
        println!(
            "{name}: {} pseudo-docs, {} passages (mean {mean:.1} words), {} questions",
            docs.len(),
            split.pool.len(),
            split.questions.len()
        );
    }
    for q in task.test.questions.iter().take(3) {
        println!(
            "\n[{}] doc {}\n  {}\n  answer: {}",
            q.id, q.doc, q.question, q.answer
        );
    }
    let train = task.train.contexts_at(target, cfg.seed, count)?;
    let test = task.test.contexts_at(target, cfg.seed, count)?;
    let b = trivial_baselines(&train, &test);
    println!("\nbaselines (lenient EM, %): {b:?}");
    for k in [1, 2, 4] {
        let t0 = std::time::Instant::now();
        let items = task.test.contexts_at(k * target, cfg.seed, count)?;
        let mean = items.iter().map(|b| b.tokens).sum::<usize>() as f64 / items.len() as f64;
        let depth = items.iter().map(|b| b.depth).sum::<f64>() / items.len() as f64;
        println!(
            "test at {k}x ({} words): {} items, mean {mean:.1} words, mean depth {depth:.3} ({:?})",
            k * target,
            items.len(),
            t0.elapsed()
        );
    }

    // 2. The project's fixed split (all Brown in train, one novel each for valid and test).
    let fixed = ClozeConfig {
        questions_per_split: seqpe_qa::data::SplitCounts {
            train: 2000,
            valid: 200,
            test: 200,
        },
        ..cfg.clone()
    };
    let task = cloze_task_from_splits(&splits, &fixed, count)?;
    let chapters: std::collections::HashSet<&str> =
        task.test.pool.iter().map(|p| p.doc.as_str()).collect();
    let mut chapters: Vec<&str> = chapters.into_iter().collect();
    chapters.sort_unstable();
    println!(
        "\nfixed split: test novel cut into {} pseudo-docs ({} … {})",
        chapters.len(),
        chapters.first().unwrap_or(&""),
        chapters.last().unwrap_or(&"")
    );
    println!("  {}", chapters.join(" "));
    for q in task.test.questions.iter().take(3) {
        println!(
            "[{}] doc {}\n  {}\n  answer: {}",
            q.id, q.doc, q.question, q.answer
        );
    }
    let test = task.test.contexts_at(target, fixed.seed, count)?;
    let train = task.train.contexts_at(target, fixed.seed, count)?;
    println!(
        "fixed split baselines: {:?}",
        trivial_baselines(&train, &test)
    );
    Ok(())
}
