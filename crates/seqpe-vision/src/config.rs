//! Run configuration: presets (`tiny`, `vit-s`) as plain serialisable structs. Any field can be
//! overridden from a JSON file or with `--set section.field=value`.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The ViT and its position encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    /// Training resolution (square images of `image_size × image_size` pixels).
    pub image_size: usize,
    /// Patch side in pixels; the grid is `image_size / patch` per axis at training time and grows
    /// with the image at evaluation.
    pub patch: usize,
    /// Image channels (taken from the data when a run starts).
    pub channels: usize,
    /// Classes (taken from the data when a run starts).
    pub num_classes: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    pub mlp_ratio: usize,
    /// Dropout on the residual branches and after the position-added input (timm `drop_rate`).
    pub dropout: f64,
    pub attn_dropout: f64,
    /// `seqpe`, `ape`, `sin`, `rope`, `rope2d`, `rope-mixed`, `nope`.
    pub pe: String,
    /// Coordinates given to the position encoding: 2 = (row, col) (the ViT recipe); 1 = the
    /// row-major patch index (the ablation; the grid is flattened for every encoding).
    pub dims: usize,
    /// How SeqPE enters the model: `attn_mul` (the ViT recipe) or `input_add`.
    pub seqpe_inject: String,
    /// One q/k projection per layer (`multi`, the ViT recipe) instead of one shared (`single`).
    pub seqpe_per_layer: bool,
    /// SeqPE encoder width, heads and layers (reference ViT-S: 384, 6, 2).
    pub seqpe_d_model: usize,
    pub seqpe_heads: usize,
    pub seqpe_layers: usize,
    /// The encoder's trained range per axis (reference: 100 → 2 digits per axis). With `dims = 1`
    /// the flat index ranges over `max_per_axis²` positions, which sets the digit width.
    pub seqpe_max_per_axis: usize,
    pub seqpe_dropout: f64,
    /// Initial bias of the SeqPE q/k projections. 0 is the reference (timm init: `q ⊙ p_q` then
    /// starts near 0, i.e. almost uniform attention, which long ImageNet runs grow out of); 1
    /// starts `attn_mul` close to plain attention (`q ⊙ (1 + small)`), which matters in short runs.
    #[serde(default)]
    pub seqpe_qk_bias: f64,
    /// RoPE base; `None` = the reference class defaults (rope 10000, rope2d 100, rope-mixed 10).
    pub rope_base: Option<f64>,
}

/// Optimisation, regularizers and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub batch_size: usize,
    pub steps: usize,
    /// Peak learning rate (cosine decay to `final_lr` after a warm-up from `warmup_start_lr`).
    pub lr: f64,
    pub warmup_steps: usize,
    pub warmup_start_lr: f64,
    pub final_lr: f64,
    /// Weight decay of the ViT (the SeqPE encoder uses 0).
    pub weight_decay: f32,
    /// Global-norm clip, applied to the ViT and (separately) the SeqPE encoder.
    pub grad_clip: f64,
    pub label_smoothing: f64,
    pub seed: u64,
    /// Validate (and keep the best) every this many steps.
    pub eval_every: usize,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: usize,
    pub contrastive_weight: f64,
    pub distill_weight: f64,
    pub shift_rate: f64,
    pub shift_pool: usize,
    /// Contrastive pivots × candidates and distillation windows × indices per step.
    pub contrastive_batch: usize,
    pub contrastive_candidates: usize,
    pub distill_windows: usize,
    pub distill_per_window: usize,
    /// Windows per shifted step.
    pub shift_windows: usize,
}

/// Data pipeline settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSettings {
    /// Training images held out (from the end of the training split) for validation / keep-best.
    pub valid_images: usize,
    /// Use only the first N training images (0 = all), e.g. to fit a CPU budget.
    pub train_subset: usize,
    /// Zero padding of the random crop (0 = no crop).
    pub crop_padding: usize,
    /// Random horizontal flips.
    pub hflip: bool,
    /// Per-channel normalisation; empty = computed from the training images at the start.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Default evaluation sizes (pixels; multiples of the patch).
    pub eval_sizes: Vec<usize>,
    /// Test images used per size (0 = the whole test split).
    pub eval_images: usize,
}

/// Everything a vision run needs; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub preset: String,
    pub model: ModelSettings,
    pub train: TrainSettings,
    pub data: DataSettings,
}

impl VisionConfig {
    pub const PRESETS: [&'static str; 2] = ["tiny", "vit-s"];

    pub fn preset(name: &str) -> Result<Self> {
        Ok(match name {
            // Fashion-MNIST 28×28, patch 4 → a 7×7 grid; 300 steps of 64 images (about a third
            // of an epoch) take a few minutes on 2 CPU cores. Random crops slow learning down in
            // so short a run, so only flips are on (`--set data.crop_padding=2` adds crops).
            "tiny" => Self {
                preset: name.into(),
                model: ModelSettings {
                    image_size: 28,
                    patch: 4,
                    channels: 1,
                    num_classes: 10,
                    d_model: 64,
                    n_heads: 4,
                    n_layers: 4,
                    mlp_ratio: 2,
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    pe: "seqpe".into(),
                    dims: 2,
                    seqpe_inject: "attn_mul".into(),
                    seqpe_per_layer: true,
                    seqpe_d_model: 32,
                    seqpe_heads: 1,
                    seqpe_layers: 2,
                    seqpe_max_per_axis: 100,
                    seqpe_dropout: 0.1,
                    seqpe_qk_bias: 0.0,
                    rope_base: None,
                },
                train: TrainSettings {
                    batch_size: 64,
                    steps: 300,
                    lr: 1e-3,
                    warmup_steps: 20,
                    warmup_start_lr: 1e-6,
                    final_lr: 1e-5,
                    weight_decay: 0.05,
                    grad_clip: 5.0,
                    label_smoothing: 0.0,
                    seed: 10086,
                    eval_every: 100,
                    checkpoint_every: 100,
                    contrastive_weight: 0.1,
                    distill_weight: 0.1,
                    shift_rate: 0.1,
                    shift_pool: 320,
                    contrastive_batch: 16,
                    contrastive_candidates: 32,
                    distill_windows: 8,
                    distill_per_window: 32,
                    shift_windows: 16,
                },
                data: DataSettings {
                    valid_images: 2000,
                    train_subset: 0,
                    crop_padding: 0,
                    hflip: true,
                    mean: vec![],
                    std: vec![],
                    eval_sizes: vec![28, 40, 56, 84, 112],
                    eval_images: 500,
                },
            },
            // ViT-S/16 at 224 (the reference ImageNet recipe, `runs/ours_vit.sh`).
            "vit-s" => Self {
                preset: name.into(),
                model: ModelSettings {
                    image_size: 224,
                    patch: 16,
                    channels: 3,
                    num_classes: 1000,
                    d_model: 384,
                    n_heads: 6,
                    n_layers: 12,
                    mlp_ratio: 4,
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    pe: "seqpe".into(),
                    dims: 2,
                    seqpe_inject: "attn_mul".into(),
                    seqpe_per_layer: true,
                    seqpe_d_model: 384,
                    seqpe_heads: 6,
                    seqpe_layers: 2,
                    seqpe_max_per_axis: 100,
                    seqpe_dropout: 0.1,
                    seqpe_qk_bias: 0.0,
                    rope_base: None,
                },
                train: TrainSettings {
                    batch_size: 1024,
                    // 400 epochs of ImageNet-1k at batch 1024 (1251 steps per epoch)
                    steps: 400 * 1251,
                    lr: 1.2e-3,
                    warmup_steps: 20 * 1251,
                    warmup_start_lr: 1e-6,
                    final_lr: 1e-5,
                    weight_decay: 0.05,
                    grad_clip: 5.0,
                    label_smoothing: 0.1,
                    seed: 10086,
                    eval_every: 1251,
                    checkpoint_every: 1251,
                    contrastive_weight: 0.1,
                    distill_weight: 0.1,
                    shift_rate: 0.1,
                    shift_pool: 320,
                    contrastive_batch: 32,
                    contrastive_candidates: 64,
                    distill_windows: 32,
                    distill_per_window: 64,
                    shift_windows: 32,
                },
                data: DataSettings {
                    valid_images: 10_000,
                    train_subset: 0,
                    crop_padding: 0,
                    hflip: true,
                    mean: vec![0.485, 0.456, 0.406],
                    std: vec![0.229, 0.224, 0.225],
                    eval_sizes: vec![224, 320, 384, 448, 512, 640, 672],
                    eval_images: 0,
                },
            },
            other => bail!(
                "unknown preset `{other}`; choose one of {}",
                Self::PRESETS.join(", ")
            ),
        })
    }

    /// Applies `section.field=value` overrides (see [`seqpe_train::config::apply_overrides`]).
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<()> {
        seqpe_train::config::apply_overrides(self, overrides)
    }

    /// Merges a JSON file of (partial) settings into this config.
    pub fn apply_file(&mut self, path: &std::path::Path) -> Result<()> {
        seqpe_train::config::apply_file(self, path)
    }

    /// Checks the settings that would otherwise fail deep inside a run.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        if m.patch == 0 || !m.image_size.is_multiple_of(m.patch) {
            bail!(
                "image_size {} is not a multiple of the patch size {}",
                m.image_size,
                m.patch
            );
        }
        if !m.d_model.is_multiple_of(m.n_heads) {
            bail!(
                "d_model {} is not divisible by n_heads {}",
                m.d_model,
                m.n_heads
            );
        }
        if !(1..=2).contains(&m.dims) {
            bail!(
                "dims must be 1 (flat patch index) or 2 (row, col), not {}",
                m.dims
            );
        }
        let side = m.image_size / m.patch;
        if m.pe == "seqpe" && side >= m.seqpe_max_per_axis {
            bail!(
                "the training grid ({side} per axis) must be smaller than seqpe_max_per_axis ({})",
                m.seqpe_max_per_axis
            );
        }
        for &s in &self.data.eval_sizes {
            if s % m.patch != 0 {
                bail!(
                    "evaluation size {s} is not a multiple of the patch size {}",
                    m.patch
                );
            }
        }
        crate::model::vision_pe_kind(&m.pe)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        let mut c = VisionConfig::preset("vit-s").unwrap();
        assert_eq!(
            (c.model.d_model, c.model.n_layers, c.model.n_heads),
            (384, 12, 6)
        );
        assert_eq!(c.model.image_size / c.model.patch, 14);
        c.apply_overrides(&["train.steps=7".into(), "model.pe=ape".into()])
            .unwrap();
        assert_eq!(c.train.steps, 7);
        assert_eq!(c.model.pe, "ape");
        assert!(c.apply_overrides(&["train.nope=1".into()]).is_err());
        assert!(c.apply_overrides(&["train.steps=abc".into()]).is_err());
        assert!(VisionConfig::preset("huge").is_err());
        let t = VisionConfig::preset("tiny").unwrap();
        t.validate().unwrap();
        let mut bad = t.clone();
        bad.model.image_size = 30;
        assert!(bad.validate().is_err());
    }
}
