//! A `tokenizer.json` a user brings (`train-text --tokenizer FILE`, `generate`): loaded for a
//! model of 512 token embeddings, then used on a text as training would.
//!
//! Seed: `SEQPE_FUZZ_SEED=DIR` makes the first input write a trained byte-level BPE to
//! `DIR/tokenizer.json`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_datasets::text::Document;
use seqpe_text::data::{load_tokenizer_for, train_tokenizer};

const VOCAB: usize = 512;

fuzz_target!(init: {
    if let Some(dir) = std::env::var_os("SEQPE_FUZZ_SEED") {
        let docs = [Document::new("seed", "the cat sat on the mat; the dog sat on the log. 123")];
        let tok = train_tokenizer(&docs, 300).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        tok.save(std::path::Path::new(&dir).join("tokenizer.json"), false).unwrap();
    }
}, |data: &[u8]| {
    let path = seqpe_fuzz::write(seqpe_fuzz::scratch(), "tokenizer.json", data);
    if let Ok(tok) = load_tokenizer_for(&path, VOCAB) {
        if let Ok(encoding) = tok.encode("The cat sat. <|endoftext|> 3.14 ünïcode", false) {
            assert!(encoding.get_ids().iter().all(|&id| (id as usize) < VOCAB));
        }
    }
});
