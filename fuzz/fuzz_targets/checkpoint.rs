//! Our own checkpoints: `best/model.mpk` of a run folder (a small SeqPE GPT), loaded as `eval-text`
//! and `generate` load it, against the run's `config.json` (structure, names, shapes, dtypes).
//!
//! Seed: `SEQPE_FUZZ_SEED=DIR` makes the first input write the weights of a freshly initialised
//! model of that configuration to `DIR/model.mpk`.
#![no_main]
use burn::backend::Flex;
use libfuzzer_sys::fuzz_target;
use seqpe_text::config::TextConfig;
use seqpe_text::eval::load_run;
use seqpe_train::run::{save_model, RunDir};

fn config() -> TextConfig {
    let mut cfg = TextConfig::preset("tiny").unwrap();
    let m = &mut cfg.model;
    (m.vocab_size, m.d_model, m.n_heads, m.n_layers, m.block_size) = (32, 8, 2, 1, 8);
    m.seqpe.d_model = 8;
    m.seqpe.layers = 1;
    m.seqpe.max_position = 99;
    cfg
}

fn run_dir() -> RunDir {
    let dir = seqpe_fuzz::scratch().join("run");
    std::fs::create_dir_all(dir.join("best")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config()).unwrap(),
    )
    .unwrap();
    RunDir::new(dir)
}

fuzz_target!(init: {
    let run = run_dir();
    if let Some(dir) = std::env::var_os("SEQPE_FUZZ_SEED") {
        let model = config().model.init::<Flex>(&Default::default()).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        save_model::<Flex, _>(&model, std::path::Path::new(&dir)).unwrap();
        std::fs::copy(std::path::Path::new(&dir).join("model.mpk"), run.best().join("model.mpk")).unwrap();
        load_run::<Flex>(&run, &Default::default()).expect("the seed loads");
    }
}, |data: &[u8]| {
    let run = RunDir::new(seqpe_fuzz::scratch().join("run"));
    std::fs::write(run.best().join("model.mpk"), data).unwrap();
    let _ = load_run::<Flex>(&run, &Default::default());
});
