//! A user's corpus folder (`train-text --corpus DIR`), loaded and split: the parts of the input
//! are its files, laid out as WikiText, as train/valid/test folders or flat by the first byte;
//! then the Brown corpus reader on the first part.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_datasets::text::{load_corpus_dir, strip_brown_tags};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let parts = seqpe_fuzz::parts(rest);
    let dir = seqpe_fuzz::fresh_dir("corpus");
    for (i, part) in parts.iter().enumerate() {
        let name = match first % 3 {
            0 => format!("wiki.{}.tokens", ["train", "valid", "test"][i % 3]),
            1 => format!("{}/{i}.txt", ["train", "valid", "test"][i % 3]),
            _ => format!("{i}.txt"),
        };
        seqpe_fuzz::write(&dir, &name, part);
    }
    if let Ok(splits) = load_corpus_dir(&dir) {
        let _ = splits.word_counts();
    }
    if let Ok(text) = std::str::from_utf8(parts[0]) {
        let _ = strip_brown_tags(text);
    }
});
