//! [`TrainSettings`]: the `train` section of every run configuration (text, vision, QA), so
//! every model has the same names in `config.json` and `--set train.…=`.

use seqpe_core::RegularizerSettings;
use serde::{Deserialize, Serialize};

use crate::optim::OptimSettings;
use crate::schedule::{Decay, LrSchedule};

/// Optimisation, schedule, regularizers and bookkeeping of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub batch_size: usize,
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub warmup_steps: usize,
    /// Learning rate at the first warm-up step (HF: 0; the ViT recipe: 1e-6).
    #[serde(default)]
    pub warmup_start_lr: f64,
    /// Learning rate at the last step (GPT recipe: 0; ViT recipe: 1e-5).
    #[serde(default)]
    pub final_lr: f64,
    /// Decay after the warm-up: `linear` (GPT recipe) or `cosine` (ViT recipe).
    pub decay: Decay,
    /// AdamW weight decay of the main model's matrices. Biases, norms, position tables and the
    /// CLS token take none, nor does the SeqPE encoder (the reference's no-decay lists).
    pub weight_decay: f32,
    /// Global-norm clip, applied separately to the main model and to the SeqPE encoder.
    pub grad_clip: f64,
    /// Label smoothing of the task's cross-entropy (0 = none).
    #[serde(default)]
    pub label_smoothing: f64,
    pub seed: u64,
    /// Validate (and keep the best model) every this many steps; 0 = only after the last step.
    pub eval_every: usize,
    /// Validation examples per evaluation (text: blocks; vision: images; QA: questions;
    /// 0 = the whole validation split).
    #[serde(alias = "eval_blocks")]
    pub valid_limit: usize,
    /// Write a checkpoint every this many steps; 0 = only after the last step and at
    /// `--stop-after`.
    pub checkpoint_every: usize,
    /// SeqPE regularizer sizes and weights and the encoder's learning-rate scale (ignored by
    /// other encodings).
    #[serde(flatten)]
    pub regularizer: RegularizerSettings,
    /// The arithmetic of each step ([`Precision`]): `f32` (the default) or `bf16` compute on f32
    /// master weights.
    #[serde(default)]
    pub precision: Precision,
}

/// The floating-point format a training step computes in (`train.precision`, `--precision`).
/// Parameters, optimizer state and checkpoints stay f32 whatever it is (the master weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout: the default, and bit for bit what runs computed before the setting
    /// existed.
    #[default]
    F32,
    /// Mixed precision as PyTorch's bf16 autocast and the reference's bf16 runs: each step
    /// computes the forward pass (the SeqPE encoder and its regularizers included) on a bf16 copy
    /// of the f32 parameters, its losses are cast back to f32, and the gradients reach the f32
    /// parameters through the cast. bf16 keeps f32's range, so no loss scaling is needed.
    Bf16,
    /// f16 compute: refused. Its range underflows small gradients unless the loss is scaled, and
    /// seqpe has no loss scaling; use `bf16`.
    F16,
    /// TF32 matmul staging (a CUDA mode): refused. Burn 0.21 offers no switch for it (its CUDA
    /// matmul stages f32 operands as TF32 already, docs/backends.md), and CPUs have no TF32.
    Tf32,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
            Precision::Tf32 => "tf32",
        }
    }

    /// The dtype a step computes in when it is not f32.
    pub fn compute_dtype(self) -> Option<burn::tensor::DType> {
        match self {
            Precision::Bf16 => Some(burn::tensor::DType::BF16),
            Precision::F32 | Precision::F16 | Precision::Tf32 => None,
        }
    }

    /// `model` with every float parameter cast to this precision's compute dtype (itself at f32).
    /// Inside an autodiff graph the cast is differentiable, so gradients reach the f32 originals.
    pub fn cast_model<B: burn::tensor::backend::Backend, M: burn::module::Module<B>>(
        self,
        model: M,
    ) -> M {
        struct Cast(burn::tensor::DType);
        impl<B: burn::tensor::backend::Backend> burn::module::ModuleMapper<B> for Cast {
            fn map_float<const D: usize>(
                &mut self,
                param: burn::module::Param<burn::tensor::Tensor<B, D>>,
            ) -> burn::module::Param<burn::tensor::Tensor<B, D>> {
                let (id, tensor, mapper) = param.consume();
                burn::module::Param::from_mapped_value(id, tensor.cast(self.0), mapper)
            }
        }
        match self.compute_dtype() {
            Some(dtype) => model.map(&mut Cast(dtype)),
            None => model,
        }
    }

    /// Refuses the formats seqpe cannot train in, saying why and what to use.
    pub fn check(self) -> anyhow::Result<()> {
        match self {
            Precision::F32 | Precision::Bf16 => Ok(()),
            Precision::F16 => anyhow::bail!(
                "precision f16 needs loss scaling (f16 underflows small gradients), which \
                 seqpe does not have; use bf16, which keeps f32's range"
            ),
            Precision::Tf32 => anyhow::bail!(
                "precision tf32 is a CUDA matmul mode Burn 0.21 has no switch for (its CUDA \
                 matmul already stages f32 operands as TF32: docs/backends.md); use f32 or bf16"
            ),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TrainSettings {
    /// Checks the settings every training loop needs (a run with them would otherwise panic or
    /// end without a model).
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.steps == 0 {
            anyhow::bail!("train.steps must be at least 1 (a run of 0 steps has no model)");
        }
        if self.batch_size == 0 {
            anyhow::bail!("train.batch_size must be at least 1");
        }
        self.precision.check()?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            anyhow::bail!("train.lr must be a positive number, not {}", self.lr);
        }
        // A setting outside its range trains into a non-finite loss a few steps later (a weight
        // decay of -1e300 did at step 2, with advice about the learning rate): say which here.
        let ranges: [(&str, f64, bool); 5] = [
            (
                "train.warmup_start_lr",
                self.warmup_start_lr,
                self.warmup_start_lr >= 0.0,
            ),
            ("train.final_lr", self.final_lr, self.final_lr >= 0.0),
            (
                "train.weight_decay",
                self.weight_decay.into(),
                self.weight_decay >= 0.0,
            ),
            ("train.grad_clip", self.grad_clip, self.grad_clip > 0.0),
            (
                "train.label_smoothing",
                self.label_smoothing,
                (0.0..1.0).contains(&self.label_smoothing),
            ),
        ];
        for (name, value, in_range) in ranges {
            if !(value.is_finite() && in_range) {
                let range = match name {
                    "train.grad_clip" => "a positive number",
                    "train.label_smoothing" => "at least 0 and below 1",
                    _ => "a number of at least 0",
                };
                anyhow::bail!("{name} must be {range}, not {value}");
            }
        }
        Ok(())
    }

    /// The learning-rate schedule these settings describe.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            peak: self.lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.steps,
            decay: self.decay,
            warmup_start: self.warmup_start_lr,
            final_lr: self.final_lr,
        }
    }

    /// The optimizer settings: PyTorch's AdamW defaults with this weight decay, both groups
    /// clipped at `grad_clip`, the encoder's learning rate scaled by `encoder_lr_scale`.
    pub fn optim(&self) -> OptimSettings {
        OptimSettings {
            encoder_lr_scale: self.regularizer.encoder_lr_scale,
            ..OptimSettings::clipped(self.weight_decay, self.grad_clip)
        }
    }
}

/// The checks every main model's settings share (the GPT, the ViT, the probes' models): a width
/// its heads divide, dropouts that are probabilities, and the SeqPE encoder's own
/// ([`SeqPeSettings::check`]); each error names its `model.` setting. Settings outside these
/// used to panic while the model was built (`model.dropout=1.5`, `model.seqpe_heads=3`).
pub fn check_model(
    d_model: usize,
    n_heads: usize,
    dropout: f64,
    attn_dropout: f64,
    seqpe: &seqpe_core::position::SeqPeSettings,
) -> anyhow::Result<()> {
    if n_heads == 0 || d_model == 0 || !d_model.is_multiple_of(n_heads) {
        anyhow::bail!(
            "model.d_model ({d_model}) must be a positive multiple of model.n_heads ({n_heads})"
        );
    }
    for (name, p) in [
        ("model.dropout", dropout),
        ("model.attn_dropout", attn_dropout),
    ] {
        if !(0.0..1.0).contains(&p) {
            anyhow::bail!("{name} must be at least 0 and below 1, not {p}");
        }
    }
    seqpe.check().map_err(anyhow::Error::msg)
}

/// A RoPE base must be a positive finite number (0 made every rotation infinite).
pub fn check_rope_base(base: f64) -> anyhow::Result<()> {
    if !(base.is_finite() && base > 0.0) {
        anyhow::bail!("model.rope_base must be a positive number, not {base}");
    }
    Ok(())
}
