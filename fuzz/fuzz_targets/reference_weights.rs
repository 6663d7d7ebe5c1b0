//! Reference weights in safetensors (`seqpe_core::reference`, the parity import): the header,
//! the `config` metadata, then every tensor against the encoder that config describes (names,
//! dtypes, shapes).
//!
//! Seed: `SEQPE_FUZZ_SEED=DIR` makes the first input write a small complete file (2 axes, 2 digits,
//! width 8, one layer) to `DIR/encoder.safetensors`, and check that it loads.
#![no_main]
use burn::backend::Flex;
use libfuzzer_sys::fuzz_target;
use safetensors::tensor::TensorView;
use seqpe_core::reference::{load_reference_encoder, SafetensorsFile};

fn seed() -> Vec<u8> {
    let (dims, digits, d, out, layers) = (2usize, 2usize, 8usize, 8usize, 1usize);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("token_of_seqpe_embed.weight".into(), vec![10, d]),
        ("pos_of_seqpe_embed.weight".into(), vec![dims * digits, d]),
        ("cls_token_embed".into(), vec![d]),
        ("dim_token_embed".into(), vec![dims, d]),
        ("layernorm.weight".into(), vec![d]),
        ("layernorm.bias".into(), vec![d]),
        ("out_proj.weight".into(), vec![out, d]),
        ("out_proj.bias".into(), vec![out]),
    ];
    for i in 0..layers {
        let k = |name: &str| format!("transformers.{i}.{name}");
        for ln in ["layernorm_1", "layernorm_2"] {
            shapes.push((k(&format!("{ln}.weight")), vec![d]));
            shapes.push((k(&format!("{ln}.bias")), vec![d]));
        }
        for (name, din, dout) in [
            ("attn.c_attn", d, 3 * d),
            ("attn.c_proj", d, d),
            ("mlp.c_fc", d, 4 * d),
            ("mlp.c_proj", 4 * d, d),
        ] {
            shapes.push((k(&format!("{name}.weight")), vec![din, dout]));
            shapes.push((k(&format!("{name}.bias")), vec![dout]));
        }
    }
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|(_, s)| {
            (0..s.iter().product::<usize>())
                .flat_map(|i| ((i % 7) as f32 * 0.01).to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(String, TensorView)> = shapes
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            let view = TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes).unwrap();
            (name.clone(), view)
        })
        .collect();
    let config = format!(
        r#"{{"dims":{dims},"max_digits":{digits},"d_model":{d},"heads":2,"layers":{layers},"out_dim":{out}}}"#
    );
    let meta = std::collections::HashMap::from([("config".to_string(), config)]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn load(bytes: &[u8]) -> Result<(), String> {
    let path = seqpe_fuzz::write(seqpe_fuzz::scratch(), "encoder.safetensors", bytes);
    let file = SafetensorsFile::open(&path).map_err(|e| e.to_string())?;
    let config = file.reference_config().map_err(|e| e.to_string())?;
    let _ = file.metadata();
    load_reference_encoder::<Flex>(&file, &config.encoder_config(), &Default::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fuzz_target!(init: {
    if let Some(dir) = std::env::var_os("SEQPE_FUZZ_SEED") {
        let bytes = seed();
        load(&bytes).expect("the seed loads");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join("encoder.safetensors"), bytes).unwrap();
    }
}, |data: &[u8]| {
    let _ = load(data);
});
