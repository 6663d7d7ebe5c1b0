//! QA files a user brings (`--qa FILE`): JSON lines and SQuAD v1.1/v2.0, through the loader the
//! commands call (with SQuAD's long contexts built from the loaded articles).
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_qa::data::{load_jsonl, load_qa_path, load_squad, SquadOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let dir = seqpe_fuzz::fresh_dir("qa");
    let name = if first & 1 == 0 { "q.jsonl" } else { "q.json" };
    let path = seqpe_fuzz::write(&dir, name, bytes);
    let _ = load_jsonl(&path);
    let _ = load_squad(&path);
    let count = |text: &str| text.split_whitespace().count();
    let _ = load_qa_path(
        &path,
        &SquadOptions {
            target_tokens: 256,
            seed: 1,
        },
        &count,
    );
});
