//! Settings from outside: a run's saved `config.json`, a `--config FILE` and `--set
//! section.field=value` lines, for text, vision and QA runs (the first byte chooses), parsed and
//! validated as the commands do; settings that pass and describe a small model are then built
//! into one (a validated config must never panic while its model is built).
#![no_main]
use burn::backend::Flex;
use libfuzzer_sys::fuzz_target;
use seqpe_qa::config::QaConfig;
use seqpe_text::config::TextConfig;
use seqpe_train::config::{build, load, RunConfig};
use seqpe_train::run::RunDir;
use seqpe_vision::config::VisionConfig;

fn check<C: RunConfig>(preset: &str, text: &[u8], build_model: impl Fn(&C)) {
    let dir = seqpe_fuzz::fresh_dir("run");
    let path = seqpe_fuzz::write(&dir, "config.json", text);
    let mut valid = Vec::new();
    valid.extend(load::<C>(&RunDir::new(&dir)).ok());
    valid.extend(build::<C>(preset, Some(&path), |_| {}, &[]).ok());
    if let Ok(text) = std::str::from_utf8(text) {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        valid.extend(build::<C>(preset, None, |_| {}, &lines).ok());
    }
    for cfg in &valid {
        build_model(cfg);
    }
}

fn small_gpt(m: &seqpe_text::config::ModelSettings) {
    let s = &m.seqpe;
    if m.d_model <= 64
        && m.n_layers <= 3
        && m.vocab_size <= 512
        && m.block_size <= 64
        && s.d_model <= 64
        && s.layers <= 3
        && s.max_position <= 1_000_000
    {
        let _ = m.init::<Flex>(&Default::default());
    }
}

fn small_vit(m: &seqpe_vision::config::ModelSettings) {
    let s = &m.seqpe;
    if m.d_model <= 64
        && m.n_layers <= 3
        && m.mlp_ratio <= 8
        && m.num_classes <= 100
        && m.channels <= 4
        && m.image_size <= 64
        && m.image_size / m.patch.max(1) <= 16
        && s.d_model <= 64
        && s.layers <= 3
        && s.max_position <= 10_000
    {
        let _ = m.init::<Flex>(&Default::default());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, text)) = data.split_first() else {
        return;
    };
    match first % 3 {
        0 => check::<TextConfig>("tiny", text, |c| small_gpt(&c.model)),
        1 => check::<VisionConfig>("tiny", text, |c| small_vit(&c.model)),
        _ => check::<QaConfig>("tiny", text, |c| small_gpt(&c.model)),
    }
});
