//! `bench vision`: training and inference throughput (images/s) per PE method, on synthetic
//! images of a preset's shape (`tiny`: 28 px, 7×7 grid, 4 layers; `vit-s`: 224 px, 14×14 grid,
//! 12 layers of width 384). Training steps are the real [`crate::train::train_step`] (SeqPE with
//! its regularizers); inference is one forward pass per batch with the cached position table.

use std::time::Instant;

use anyhow::Result;
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use seqpe_core::training::SeqPeRegularizer;
use seqpe_core::{AttentionOptions, PeTableCache};
use seqpe_train::optim::{GroupedAdamW, OptimSettings};
use serde::{Deserialize, Serialize};

use crate::config::VisionConfig;
use crate::model::Vit;
use crate::train::{regularizer_config, train_step};

/// One measured configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub preset: String,
    pub pe: String,
    pub backend: String,
    pub batch: usize,
    pub image_size: usize,
    pub params: usize,
    pub train_images_per_s: f64,
    pub infer_images_per_s: f64,
}

fn sync<B: Backend>(t: Tensor<B, 2>) {
    let _ = t.into_data();
}

/// Times `steps` training steps (after one warm-up step) and `steps` inference batches for every
/// preset × PE method.
pub fn run<B: AutodiffBackend>(
    presets: &[String],
    pes: &[String],
    steps: usize,
    batch: Option<usize>,
    overrides: &[String],
    device: &B::Device,
    backend: &str,
) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for preset in presets {
        for pe in pes {
            let mut cfg = VisionConfig::preset(preset)?;
            cfg.model.pe = pe.clone();
            cfg.train.batch_size = batch.unwrap_or(if preset == "tiny" { 64 } else { 8 });
            cfg.apply_overrides(overrides)?;
            cfg.validate()?;
            rows.push(bench_one::<B>(&cfg, steps.max(1), device, backend)?);
            let r = rows.last().unwrap();
            eprintln!(
                "{preset} {pe}: train {:.1} img/s, inference {:.1} img/s",
                r.train_images_per_s, r.infer_images_per_s
            );
        }
    }
    Ok(rows)
}

fn bench_one<B: AutodiffBackend>(
    cfg: &VisionConfig,
    steps: usize,
    device: &B::Device,
    backend: &str,
) -> Result<BenchRow> {
    let m = &cfg.model;
    let b = cfg.train.batch_size;
    let s = m.image_size;
    B::seed(device, 1);
    let mut model: Vit<B> = m.init(device)?;
    let params = model.num_params();
    let mut optim = GroupedAdamW::<B, Vit<B>>::new(OptimSettings {
        weight_decay: cfg.train.weight_decay,
        ..OptimSettings::default()
    });
    let mut reg = model
        .positions
        .seqpe()
        .map(|_| SeqPeRegularizer::new(regularizer_config(cfg), 1));
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let grid = model.grid_for(s, s)?;
    let images = || {
        Tensor::<B, 4>::random(
            [b, m.channels, s, s],
            Distribution::Normal(0.0, 1.0),
            device,
        )
    };
    let labels: Vec<i64> = (0..b).map(|i| (i % m.num_classes) as i64).collect();
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [b]), device);
    let mut train_time = 0.0;
    for i in 0..=steps {
        let x = images();
        let started = Instant::now();
        let out = train_step(
            model,
            &mut optim,
            reg.as_mut(),
            x,
            labels.clone(),
            &loss_fn,
            &grid,
            1e-4,
        )?;
        model = out.model;
        if i > 0 {
            train_time += started.elapsed().as_secs_f64();
        }
    }
    let valid = model.valid();
    let cache = PeTableCache::new();
    let ctx = valid.positions.context_cached(&grid, 1, &cache, device)?;
    let mut infer_time = 0.0;
    for i in 0..=steps {
        let x = Tensor::<B::InnerBackend, 4>::random(
            [b, m.channels, s, s],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        let started = Instant::now();
        sync(valid.forward_with(x, &ctx, AttentionOptions::default()));
        if i > 0 {
            infer_time += started.elapsed().as_secs_f64();
        }
    }
    Ok(BenchRow {
        preset: cfg.preset.clone(),
        pe: m.pe.clone(),
        backend: backend.into(),
        batch: b,
        image_size: s,
        params,
        train_images_per_s: (steps * b) as f64 / train_time.max(1e-9),
        infer_images_per_s: (steps * b) as f64 / infer_time.max(1e-9),
    })
}

/// The results as a Markdown table.
pub fn table(rows: &[BenchRow]) -> String {
    let mut s = String::from(
        "| preset | PE | backend | batch | size | params | train img/s | inference img/s |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.2}M | {:.1} | {:.1} |\n",
            r.preset,
            r.pe,
            r.backend,
            r.batch,
            r.image_size,
            r.params as f64 / 1e6,
            r.train_images_per_s,
            r.infer_images_per_s
        );
    }
    s
}
