//! Parses the real fetched data, when the cache holds it. Ignored by default (it needs
//! `cargo xtask fetch-data text` and `... vision` first); run with
//! `cargo test -p seqpe-datasets -- --ignored --nocapture`. Run so, each test fails (naming the
//! fetch command) when its data is missing, rather than passing without checking anything.

use seqpe_datasets::cache::DataDir;
use seqpe_datasets::text::{self, count_words};
use seqpe_datasets::vision;

/// `$SEQPE_DATA`, else the workspace's `data/` folder (tests run inside `datasets/`).
fn data_dir() -> DataDir {
    match std::env::var_os("SEQPE_DATA") {
        Some(v) if !v.is_empty() => DataDir::new(v),
        _ => DataDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data")),
    }
}

#[test]
#[ignore = "needs the real text data: run `cargo xtask fetch-data text` first"]
fn real_cached_text_data() {
    let dir = data_dir();
    assert!(
        DataDir::is_complete(&dir.brown_dir()) && DataDir::is_complete(&dir.austen_dir()),
        "the text data is not cached under {}: run `cargo xtask fetch-data text` first (or set \
         SEQPE_DATA); this test checks the real data and must not pass without it",
        dir.root().display()
    );
    {
        let brown = text::load_brown(&dir.brown_dir()).unwrap();
        let brown_words: usize = brown.iter().map(|d| count_words(&d.text)).sum();
        println!("brown: {} documents, {brown_words} words", brown.len());
        assert_eq!(brown.len(), 500);
        assert!(
            (1_000_000..1_300_000).contains(&brown_words),
            "{brown_words}"
        );
        assert!(brown.iter().all(|d| !d.text.contains("/at ")));

        let austen = text::load_austen(&dir.austen_dir()).unwrap();
        let mut total = 0;
        for d in &austen {
            let w = count_words(&d.text);
            total += w;
            println!(
                "austen: {:<17} {:>7} words {:>6} lines",
                d.name,
                w,
                d.text.lines().count()
            );
        }
        println!("austen: {} novels, {total} words", austen.len());
        assert_eq!(austen.len(), 6);
        assert!((650_000..800_000).contains(&total), "{total}");
        let emma = austen.iter().find(|d| d.name == "emma").unwrap();
        assert!(emma.text.starts_with("EMMA"));
        assert!(emma
            .text
            .contains("Emma Woodhouse, handsome, clever, and rich"));

        let s = text::default_splits(&dir).unwrap();
        let (tr, va, te) = s.word_counts();
        println!(
            "default splits: train {} docs / {tr} words, valid {} / {va}, test {} / {te}",
            s.train.len(),
            s.valid.len(),
            s.test.len()
        );
        assert_eq!(s.train.len(), 504);
    }
}

#[test]
#[ignore = "needs the real images: run `cargo xtask fetch-data vision` first"]
fn real_cached_vision_data() {
    let dir = data_dir();
    assert!(
        DataDir::is_complete(&dir.fashion_mnist_dir()),
        "Fashion-MNIST is not cached under {}: run `cargo xtask fetch-data vision` first (or set \
         SEQPE_DATA); this test checks the real data and must not pass without it",
        dir.root().display()
    );
    {
        let (train, test) = vision::fashion_mnist(&dir).unwrap();
        println!(
            "fashion-mnist: train {} × {}×{}×{}, test {}; train class counts {:?}",
            train.len,
            train.height,
            train.width,
            train.channels,
            test.len,
            train.class_counts()
        );
        assert_eq!((train.len, test.len), (60_000, 10_000));
        assert_eq!((train.height, train.width, train.channels), (28, 28, 1));
        assert!(train.class_counts().iter().all(|&c| c == 6_000));
        assert!(test.class_counts().iter().all(|&c| c == 1_000));
    }
}
