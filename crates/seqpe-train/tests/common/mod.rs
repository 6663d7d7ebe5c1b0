//! The toy task both test files train: a one-layer causal model with SeqPE on a synthetic
//! stream, its settings and run helpers, and a small run configuration.
#![allow(dead_code)]

use std::path::Path;

use anyhow::Result;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use seqpe_core::transformer::{Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, PeKind, PositionContext, PositionEncoding, PositionEncodingConfig,
    PositionGrid, RegularizerSettings, SeqPeInjection, SeqPeSettings,
};
use seqpe_train::config::RunConfig;
use seqpe_train::run::RunDir;
use seqpe_train::schedule::Decay;
use seqpe_train::{
    fit, DataParallel, FitOptions, FitSummary, Goal, Metric, PositionedModel, Task, TrainSettings,
};
use serde::{Deserialize, Serialize};

pub type B = Autodiff<Flex>;

/// The backend RNG is process-global: tests that train take turns.
pub static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
pub const DEV: burn::backend::flex::FlexDevice = burn::backend::flex::FlexDevice;
pub const VOCAB: usize = 11;
pub const N: usize = 8;

#[derive(Module, Debug)]
pub struct Toy<B: Backend> {
    embed: Embedding<B>,
    positions: PositionEncoding<B>,
    stack: Transformer<B>,
    head: Linear<B>,
}

impl<B: Backend> PositionedModel<B> for Toy<B> {
    fn positions(&self) -> &PositionEncoding<B> {
        &self.positions
    }
}

impl<B: Backend> Toy<B> {
    /// `dropout`: the SeqPE encoder's (the main model has none).
    fn new(device: &B::Device, dropout: f64) -> Self {
        let seqpe = SeqPeSettings {
            dropout,
            ..SeqPeSettings::reference(16, 20_000, SeqPeInjection::AttnScalar)
        };
        Toy {
            embed: EmbeddingConfig::new(VOCAB, 16).init(device),
            positions: PositionEncodingConfig::new(PeKind::SeqPe, 16, 2, 1, vec![N])
                .with_seqpe(Some(seqpe.config(1, 20_000, 16)))
                .init(device),
            stack: TransformerConfig::new(16, 2, 1).init(device),
            head: LinearConfig::new(16, VOCAB).init(device),
        }
    }

    fn forward(&self, tokens: Tensor<B, 2, Int>, ctx: &PositionContext<B>) -> Tensor<B, 3> {
        let x = ctx.add_to_input(self.embed.forward(tokens));
        let h = self.stack.forward(
            x,
            AttnMask::Causal,
            |i| ctx.layer(i),
            AttentionOptions::default(),
        );
        self.head.forward(h)
    }
}

pub fn token(i: usize) -> i64 {
    ((i * 7 + i / 5) % VOCAB) as i64
}

/// Next-token prediction on a fixed synthetic stream, cut into 32 blocks of 8.
pub struct ToyTask {
    grid: PositionGrid,
    /// Multiply the loss of this (0-based) step by NaN.
    poison_at: Option<usize>,
}

pub struct ToyBatch<B: Backend> {
    inputs: Tensor<B, 2, Int>,
    labels: Tensor<B, 1, Int>,
    step: usize,
}

pub fn block_batch<B: Backend>(
    indices: &[usize],
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 1, Int>) {
    let b = indices.len();
    let inputs: Vec<i64> = indices
        .iter()
        .flat_map(|&k| (0..N).map(move |i| token(k * N + i)))
        .collect();
    let labels: Vec<i64> = indices
        .iter()
        .flat_map(|&k| (0..N).map(move |i| token(k * N + i + 1)))
        .collect();
    (
        Tensor::from_data(TensorData::new(inputs, [b, N]), device),
        Tensor::from_data(TensorData::new(labels, [b * N]), device),
    )
}

impl Task<B> for ToyTask {
    type Model = Toy<B>;
    type Batch = ToyBatch<B>;

    fn train_len(&self) -> usize {
        32
    }
    fn grid(&self) -> &PositionGrid {
        &self.grid
    }
    fn batch(
        &self,
        indices: &[usize],
        step: usize,
        device: &burn::backend::flex::FlexDevice,
    ) -> Result<ToyBatch<B>> {
        let (inputs, labels) = block_batch(indices, device);
        Ok(ToyBatch {
            inputs,
            labels,
            step,
        })
    }
    fn loss(&self, model: &Toy<B>, batch: ToyBatch<B>, ctx: &PositionContext<B>) -> Tensor<B, 1> {
        let [b, n] = batch.inputs.dims();
        let logits = model.forward(batch.inputs, ctx).reshape([b * n, VOCAB]);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, batch.labels);
        if self.poison_at == Some(batch.step) {
            loss * f32::NAN
        } else {
            loss
        }
    }
    fn validate(
        &self,
        model: &Toy<<B as AutodiffBackend>::InnerBackend>,
        device: &burn::backend::flex::FlexDevice,
    ) -> Result<Metric> {
        let (inputs, labels) = block_batch(&[0, 1, 2, 3], device);
        let ctx = model.positions.context(&self.grid, 4, None, device)?;
        let logits = model.forward(inputs, &ctx).reshape([4 * N, VOCAB]);
        let loss = CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, labels);
        Ok(Metric::new(
            "valid_loss",
            loss.into_scalar().elem(),
            Goal::Minimize,
        ))
    }
    fn unit(&self) -> (&'static str, usize) {
        ("tokens", N)
    }
}

pub fn settings(steps: usize, eval_every: usize, checkpoint_every: usize) -> TrainSettings {
    TrainSettings {
        batch_size: 4,
        steps,
        lr: 3e-3,
        warmup_steps: 2,
        warmup_start_lr: 0.0,
        final_lr: 0.0,
        decay: Decay::Linear,
        weight_decay: 0.01,
        grad_clip: 5.0,
        label_smoothing: 0.0,
        seed: 7,
        eval_every,
        valid_limit: 0,
        checkpoint_every,
        precision: seqpe_train::Precision::F32,
        regularizer: RegularizerSettings {
            contrastive_batch: 4,
            contrastive_candidates: 8,
            distill_windows: 2,
            distill_per_window: 4,
            shift_windows: 2,
            // shift often, so both shifted and unshifted steps occur in a few steps
            shift_rate: 0.3,
            ..RegularizerSettings::reference(1)
        },
    }
}

pub fn train(
    dir: &Path,
    s: &TrainSettings,
    resume: bool,
    stop_after: Option<usize>,
    poison_at: Option<usize>,
) -> Result<FitSummary> {
    train_on(
        dir,
        s,
        resume,
        stop_after,
        poison_at,
        DataParallel::single(),
        0.1,
    )
}

/// `dropout`: the SeqPE encoder's (reference 0.1). Data-parallel peers draw other dropout masks
/// than one device, so the comparisons of the two train without.
pub fn train_on(
    dir: &Path,
    s: &TrainSettings,
    resume: bool,
    stop_after: Option<usize>,
    poison_at: Option<usize>,
    parallel: DataParallel,
    dropout: f64,
) -> Result<FitSummary> {
    let run = RunDir::new(dir);
    run.prepare(resume)?;
    let task = ToyTask {
        grid: PositionGrid::sequence(N),
        poison_at,
    };
    <B as Backend>::seed(&DEV, s.seed);
    let model = Toy::<B>::new(&DEV, dropout);
    fit(
        &task,
        model,
        s,
        &FitOptions {
            run,
            resume,
            stop_after,
            label: "toy".into(),
            parallel,
        },
        &DEV,
    )
}

pub fn metric_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn step_losses(dir: &Path) -> Vec<(u64, f64)> {
    metric_lines(dir)
        .iter()
        .filter(|v| v.get("loss").is_some())
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

pub fn saved_step(dir: &Path) -> u64 {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("checkpoint/state.json")).unwrap())
            .unwrap();
    state["step"].as_u64().unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToyConfig {
    pub preset: String,
    pub width: usize,
    pub train: TrainSettings,
}

#[derive(Debug, Clone, Copy)]
pub enum ToyPreset {
    Small,
    Long,
}

impl seqpe_train::config::Preset for ToyPreset {
    const WHAT: &'static str = "toy";
    const ALL: &'static [Self] = &[Self::Small, Self::Long];
    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Long => "long",
        }
    }
}

impl RunConfig for ToyConfig {
    type Preset = ToyPreset;
    fn from_preset(p: ToyPreset) -> Self {
        use seqpe_train::config::Preset;
        let steps = match p {
            ToyPreset::Small => 6,
            ToyPreset::Long => 60,
        };
        ToyConfig {
            preset: p.name().into(),
            width: 16,
            train: settings(steps, 2, 2),
        }
    }
    fn validate(&self) -> Result<()> {
        if self.width == 0 {
            anyhow::bail!("width must be positive");
        }
        Ok(())
    }
    fn train(&self) -> &TrainSettings {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainSettings {
        &mut self.train
    }
}

/// The logged values of two runs (losses, ranking accuracy, gradient norms), compared step by
/// step within `tol` (relative); at least one step with a distillation loss.
pub fn assert_same_steps(one: &Path, two: &Path, tol: f64) {
    let keys = [
        "loss",
        "contrastive",
        "distill",
        "ranking_acc",
        "grad_norm",
        "encoder_grad_norm",
    ];
    let c = RunDir::new(one)
        .compare_steps(&RunDir::new(two), &keys)
        .unwrap();
    eprintln!("largest relative difference: {:e} ({})", c.largest, c.at);
    assert!(c.largest <= tol, "one device vs two peers: {}", c.at);
    assert!(c.distilled, "no step had a distillation loss to compare");
}
