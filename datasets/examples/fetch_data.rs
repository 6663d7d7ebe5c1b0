//! Fetch (or reuse) all real data into the cache and print what was found.
//!
//! `cargo run -p seqpe-datasets --example fetch_data [text|vision|all]`; the cache is
//! `$SEQPE_DATA` or `./data`. The CLI's `cargo xtask fetch-data` does the same through the library.

use std::time::Instant;

use seqpe_datasets::cache::DataDir;
use seqpe_datasets::{fetch, text, vision};

fn main() -> Result<(), seqpe_datasets::DataError> {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let dir = DataDir::default();
    println!("data cache: {}", dir.root().display());
    if what == "text" || what == "all" {
        let t = Instant::now();
        let src = fetch::text(&dir)?;
        println!(
            "text: downloaded {:?} in {:.1}s",
            src.downloaded,
            t.elapsed().as_secs_f64()
        );
        let brown = text::load_brown(&src.brown)?;
        let words: usize = brown.iter().map(|d| d.words()).sum();
        println!("brown: {} documents, {words} words", brown.len());
        for d in text::load_austen(&src.austen)? {
            println!("austen: {:<17} {:>7} words", d.name, d.words());
        }
        let s = text::default_splits(&dir)?;
        println!("default splits (words): {:?}", s.word_counts());
    }
    if what == "vision" || what == "all" {
        let t = Instant::now();
        let src = fetch::vision(&dir)?;
        println!(
            "vision: downloaded {:?} in {:.1}s",
            src.downloaded,
            t.elapsed().as_secs_f64()
        );
        let (train, test) = vision::fashion_mnist(&dir)?;
        println!(
            "fashion-mnist: train {} test {} ({}x{}x{}), classes {:?}",
            train.len, test.len, train.height, train.width, train.channels, train.classes
        );
    }
    Ok(())
}
