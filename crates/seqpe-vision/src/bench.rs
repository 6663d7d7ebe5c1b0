//! `bench vision`: training and inference throughput (images/s) per PE method, on synthetic
//! images of a preset's shape (`tiny`: 28 px, 7×7 grid, 4 layers; `vit-s`: 224 px, 14×14 grid,
//! 12 layers of width 384). Training steps are the training loop's own
//! [`seqpe_train::fit::train_step`] (SeqPE with its regularizers); inference is one forward pass per batch with the cached position table.

use std::time::Instant;

use anyhow::Result;
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_core::{AttentionOptions, PeKind, PeTableCache};
use seqpe_datasets::vision::ImageSet;
use seqpe_train::config::build;
use seqpe_train::fit::{optimizer_for, position_regularizer, train_step};
use seqpe_train::Task;
use serde::{Deserialize, Serialize};

use crate::config::VisionConfig;
use crate::data::{Augment, Batcher};
use crate::model::Vit;
use crate::train::ClassifyTask;

/// One measured configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub preset: String,
    pub pe: PeKind,
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
    pes: &[PeKind],
    steps: usize,
    batch: Option<usize>,
    overrides: &[String],
    device: &B::Device,
    backend: &str,
) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for preset in presets {
        for &pe in pes {
            let bench_batch = batch.unwrap_or(if preset == "vit-s" { 8 } else { 64 });
            let cfg: VisionConfig = build(
                preset,
                None,
                |c: &mut VisionConfig| {
                    c.model.pe = pe;
                    c.train.batch_size = bench_batch;
                },
                overrides,
            )?;
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

/// `n` random images of the model's shape.
fn synthetic(n: usize, m: &crate::config::ModelSettings, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = m.image_size;
    ImageSet {
        images: (0..n * s * s * m.channels).map(|_| rng.random()).collect(),
        labels: (0..n).map(|i| (i % m.num_classes) as u32).collect(),
        len: n,
        height: s,
        width: s,
        channels: m.channels,
        classes: (0..m.num_classes).map(|c| c.to_string()).collect(),
    }
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
    let batcher = Batcher::new(vec![0.5; m.channels], vec![0.25; m.channels]);
    let no_aug = Augment {
        crop_padding: 0,
        hflip: false,
    };
    let task = ClassifyTask::new(
        synthetic((steps + 1) * b, m, 1),
        synthetic(b, m, 2),
        s,
        m.trained_extent(),
        batcher.clone(),
        no_aug,
        1,
        0.0,
    );
    B::seed(device, 1);
    let mut model: Vit<B> = m.init(device)?;
    let params = model.num_params();
    let mut optim = optimizer_for::<B, Vit<B>>(&model, &cfg.train);
    let mut reg = position_regularizer(&task, &model, &cfg.train);
    let mut train_time = 0.0;
    for i in 0..=steps {
        let indices: Vec<usize> = (i * b..(i + 1) * b).collect();
        let batch = <ClassifyTask as Task<B>>::batch(&task, &indices, i, device)?;
        let started = Instant::now();
        let (next, _) = train_step(
            &task,
            model,
            &mut optim,
            reg.as_mut(),
            batch,
            b,
            1e-4,
            cfg.train.precision,
            device,
        )?;
        model = next;
        if i > 0 {
            train_time += started.elapsed().as_secs_f64();
        }
    }
    let valid = model.valid();
    let grid = valid.grid_for(s, s)?;
    let cache = PeTableCache::new();
    let ctx = cache.context(&valid.positions, &grid, 1, device)?;
    let mut infer_time = 0.0;
    for i in 0..=steps {
        let indices: Vec<usize> = (i * b..(i + 1) * b).collect();
        let (x, _) = batcher.batch::<B::InnerBackend>(&task.train, &indices, s, None, device);
        let started = Instant::now();
        sync(valid.forward_with(x, &ctx, AttentionOptions::default()));
        if i > 0 {
            infer_time += started.elapsed().as_secs_f64();
        }
    }
    Ok(BenchRow {
        preset: cfg.preset.clone(),
        pe: m.pe,
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
