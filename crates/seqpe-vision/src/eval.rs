//! `eval-vit`: top-1 accuracy at several image sizes.
//!
//! Test images are resized to each size (bilinear; the patch stays, so the grid grows, e.g.
//! 7×7 → 28×28 from 28 to 112 pixels). The position context — for SeqPE the encoder table of the
//! whole grid — is computed once per size through a [`PeTableCache`] and shared by every batch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor};
use seqpe_core::{AttentionOptions, PeKind, PeTableCache};
use seqpe_datasets::vision::ImageSet;
use seqpe_train::run::RunDir;
use seqpe_train::{PositionedModel, Precision};
use serde::{Deserialize, Serialize};

use crate::config::VisionConfig;
use crate::data::{Batcher, EvalSplit, ImageSource, TestImages};
use crate::model::Vit;

/// Correct predictions out of a number of images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub correct: usize,
    pub total: usize,
}

impl Accuracy {
    pub fn top1(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// Images per forward pass at a given number of tokens per image (bounded activations).
pub fn eval_batch_size(tokens: usize) -> usize {
    (32_768 / tokens.max(1)).clamp(4, 256)
}

/// Top-1 accuracy of `model` on `set`, every image resized to `size × size`. The position
/// context is built once (from `cache` for SeqPE) and broadcast over every batch.
pub fn accuracy<B: Backend>(
    model: &Vit<B>,
    set: &ImageSet,
    size: usize,
    batcher: &Batcher,
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<Accuracy> {
    let grid = model.grid_for(size, size)?;
    let ctx = model.inference_context(&grid, 1, cache, device)?;
    let per_batch = eval_batch_size(grid.len());
    let options = AttentionOptions { query_chunk: 512 };
    let mut acc = Accuracy::default();
    let indices: Vec<usize> = (0..set.len).collect();
    for chunk in indices.chunks(per_batch) {
        let (images, labels) = batcher.batch::<B>(set, chunk, size, None, device);
        let logits = model.forward_with(images, &ctx, options);
        let pred: Tensor<B, 1, Int> = logits.argmax(1).reshape([chunk.len()]);
        let correct: i64 = pred.equal(labels).int().sum().into_scalar().elem();
        acc.correct += correct as usize;
        acc.total += chunk.len();
    }
    Ok(acc)
}

/// One row of the evaluation table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizeResult {
    /// Image side in pixels.
    pub size: usize,
    /// Patches per axis.
    pub grid: usize,
    pub images: usize,
    pub top1: f64,
    pub seconds: f64,
}

/// The evaluation of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub run: PathBuf,
    pub pe: PeKind,
    pub dims: usize,
    pub train_size: usize,
    pub patch: usize,
    pub split: String,
    /// Images in the whole test split (the evaluation may use a subset).
    pub test_split_images: usize,
    pub results: Vec<SizeResult>,
    /// Position tables computed (one per size for SeqPE, 0 otherwise).
    pub pe_tables_built: usize,
    /// The arithmetic of the forward passes (reports before the setting existed: f32).
    #[serde(default)]
    pub precision: Precision,
}

impl EvalReport {
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} ({}, dims {}; trained at {}px = {}×{} patches; {} split)\n\
             | size | grid | × train | images | top-1 % |\n|---:|---:|---:|---:|---:|\n",
            self.run.display(),
            self.pe,
            self.dims,
            self.train_size,
            self.train_size / self.patch,
            self.train_size / self.patch,
            self.split
        );
        for r in &self.results {
            s += &format!(
                "| {} | {}×{} | {:.1} | {} | {:.2} |\n",
                r.size,
                r.grid,
                r.grid,
                r.size as f64 / self.train_size as f64,
                r.images,
                100.0 * r.top1
            );
        }
        s
    }
}

/// Loads the model of a run folder (`best/` if present, else the latest checkpoint).
pub fn load_run<B: Backend>(run: &RunDir, device: &B::Device) -> Result<(VisionConfig, Vit<B>)> {
    let cfg: VisionConfig = seqpe_train::config::load(run)?;
    let model = run.load_trained(cfg.model.init::<B>(device)?, device)?;
    Ok((cfg, model))
}

/// Evaluates a run on the test split at each size with `limit` images (0 = all).
pub fn evaluate_run<B: Backend>(
    run_path: &Path,
    sizes: &[usize],
    source: &ImageSource,
    limit: usize,
    device: &B::Device,
) -> Result<EvalReport> {
    evaluate_run_on::<B>(
        run_path,
        sizes,
        source,
        EvalSplit::Test,
        limit,
        Precision::F32,
        device,
    )
}

/// [`evaluate_run`] on the test split or on the run's validation images (for choosing settings
/// without looking at the test split), the weights cast to `precision` (bf16: the forward pass in
/// bf16).
pub fn evaluate_run_on<B: Backend>(
    run_path: &Path,
    sizes: &[usize],
    source: &ImageSource,
    split: EvalSplit,
    limit: usize,
    precision: Precision,
    device: &B::Device,
) -> Result<EvalReport> {
    precision.check()?;
    let run = RunDir::new(run_path);
    let (cfg, model) = load_run::<B>(&run, device)?;
    let model = precision.cast_model(model);
    let m = &cfg.model;
    let test = TestImages::load_split(
        source,
        split,
        cfg.data.valid_images,
        m.image_size,
        m.channels,
    )?;
    if test.native.channels != m.channels {
        return Err(anyhow!(
            "{} has {}-channel images but the model of {} was trained on {} channels",
            source.describe(),
            test.native.channels,
            run_path.display(),
            m.channels
        ));
    }
    let batcher = Batcher::new(cfg.data.mean.clone(), cfg.data.std.clone());
    let cache = PeTableCache::new();
    let mut results = Vec::new();
    for &size in sizes {
        let started = Instant::now();
        let set = test.at(size, limit)?;
        let acc = accuracy(&model, &set, size, &batcher, &cache, device)?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "  {size}px ({}×{} patches): top-1 {:.2}% on {} images ({seconds:.1}s)",
            size / m.patch,
            size / m.patch,
            100.0 * acc.top1(),
            acc.total
        );
        results.push(SizeResult {
            size,
            grid: size / m.patch,
            images: acc.total,
            top1: acc.top1(),
            seconds,
        });
    }
    Ok(EvalReport {
        run: run_path.to_path_buf(),
        pe: m.pe,
        dims: m.dims,
        train_size: m.image_size,
        patch: m.patch,
        split: split.name().into(),
        test_split_images: test.native.len,
        results,
        pe_tables_built: cache.builds(),
        precision,
    })
}

/// The position vectors of a `side × side` grid as a model sees them, `[side², d]`: the SeqPE
/// encoder output, the (resized) learned table or the sinusoidal table
/// ([`seqpe_core::PositionEncoding::position_vectors`]); `None` for the encodings that act
/// inside attention only.
pub fn position_vectors<B: Backend>(model: &Vit<B>, side: usize) -> Result<Option<Tensor<B, 2>>> {
    let grid = model.grid_for(side * model.patch, side * model.patch)?;
    Ok(model
        .positions
        .position_vectors(&grid, &model.cls_token.device())?)
}

/// Cosine similarity of position `(row, col)`'s vector with every position of a `side × side`
/// grid, row-major (`None` when the encoding has no per-position vectors). With `centered`, the
/// mean vector of the grid is subtracted first, so a component shared by every position (which
/// the q/k projections turn into a constant) does not hide the position-dependent part.
pub fn similarity_map<B: Backend>(
    model: &Vit<B>,
    side: usize,
    row: usize,
    col: usize,
    centered: bool,
) -> Result<Option<Vec<f32>>> {
    let Some(table) = position_vectors(model, side)? else {
        return Ok(None);
    };
    let [n, d] = table.dims();
    let mut values: Vec<f32> = table
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| anyhow!("{e:?}"))?;
    if centered {
        let mut mean = vec![0f32; d];
        for row in values.chunks(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v / n as f32;
            }
        }
        for row in values.chunks_mut(d) {
            for (v, m) in row.iter_mut().zip(&mean) {
                *v -= m;
            }
        }
    }
    let at = row * side + col;
    let norm = |i: usize| {
        values[i * d..(i + 1) * d]
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt()
            .max(1e-12)
    };
    let centre = &values[at * d..(at + 1) * d];
    let nc = norm(at);
    Ok(Some(
        (0..n)
            .map(|i| {
                let dot: f32 = values[i * d..(i + 1) * d]
                    .iter()
                    .zip(centre)
                    .map(|(a, b)| a * b)
                    .sum();
                dot / (norm(i) * nc)
            })
            .collect(),
    ))
}
