//! Run configuration: presets (`tiny`, `bench`, `gpt2-small`) as plain serialisable structs. Any
//! field can be overridden from a JSON file or with `--set section.field=value`.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The GPT and its position encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    /// Training length (tokens per sequence).
    pub block_size: usize,
    /// Dropout on embeddings, residual branches (GPT-2: 0.1).
    pub dropout: f64,
    /// Attention-probability dropout.
    pub attn_dropout: f64,
    /// `seqpe`, `ape`, `sin`, `rope`, `alibi`, `nope`.
    pub pe: String,
    /// How SeqPE enters the model: `attn_scalar` (the GPT recipe) or `input_add`.
    pub seqpe_inject: String,
    /// SeqPE encoder width, heads and layers (reference: 768, 12, 2).
    pub seqpe_d_model: usize,
    pub seqpe_heads: usize,
    pub seqpe_layers: usize,
    /// Largest trained position (`pe_max_position`); the digit width follows from it.
    pub seqpe_max_position: usize,
    pub seqpe_dropout: f64,
    pub rope_base: f64,
}

/// Optimisation, regularizers and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f32,
    /// Global-norm clip, applied to the model and (separately) the SeqPE encoder.
    pub grad_clip: f64,
    pub seed: u64,
    /// Validate (and keep the best) every this many steps.
    pub eval_every: usize,
    /// Validation blocks per evaluation (0 = the whole validation split).
    pub eval_blocks: usize,
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

/// Everything a text run needs; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub preset: String,
    pub model: ModelSettings,
    pub train: TrainSettings,
}

impl TextConfig {
    pub const PRESETS: [&'static str; 3] = ["tiny", "bench", "gpt2-small"];

    pub fn preset(name: &str) -> Result<Self> {
        let train = TrainSettings {
            batch_size: 16,
            steps: 600,
            lr: 1e-3,
            warmup_steps: 60,
            weight_decay: 0.0,
            grad_clip: 5.0,
            seed: 10086,
            eval_every: 200,
            eval_blocks: 64,
            checkpoint_every: 100,
            contrastive_weight: 0.1,
            distill_weight: 0.1,
            shift_rate: 0.1,
            shift_pool: 320,
            contrastive_batch: 16,
            contrastive_candidates: 32,
            distill_windows: 16,
            distill_per_window: 32,
            shift_windows: 16,
        };
        let model = ModelSettings {
            vocab_size: 4096,
            d_model: 128,
            n_heads: 4,
            n_layers: 2,
            block_size: 64,
            dropout: 0.1,
            attn_dropout: 0.0,
            pe: "seqpe".into(),
            seqpe_inject: "attn_scalar".into(),
            seqpe_d_model: 64,
            seqpe_heads: 1,
            seqpe_layers: 2,
            seqpe_max_position: 20_000,
            seqpe_dropout: 0.1,
            rope_base: 10_000.0,
        };
        Ok(match name {
            // The reference encodes ~1.3k regularizer positions per 16k main tokens; with tiny's
            // 1k-token batches the full 16×32 + 16×32 sampling would cost 7× the main model, so
            // tiny keeps the proportions smaller: 8 pivots × 16 candidates, 8 windows × 16.
            "tiny" => Self {
                preset: name.into(),
                model,
                train: TrainSettings {
                    contrastive_batch: 8,
                    contrastive_candidates: 16,
                    distill_windows: 8,
                    distill_per_window: 16,
                    shift_windows: 8,
                    ..train
                },
            },
            "bench" => Self {
                preset: name.into(),
                model: ModelSettings {
                    vocab_size: 8192,
                    d_model: 256,
                    n_heads: 4,
                    n_layers: 4,
                    block_size: 256,
                    seqpe_d_model: 128,
                    seqpe_heads: 2,
                    ..model
                },
                train: TrainSettings {
                    batch_size: 8,
                    steps: 2000,
                    lr: 5e-4,
                    warmup_steps: 200,
                    eval_every: 500,
                    ..train
                },
            },
            "gpt2-small" => Self {
                preset: name.into(),
                model: ModelSettings {
                    vocab_size: 50_257,
                    d_model: 768,
                    n_heads: 12,
                    n_layers: 12,
                    block_size: 512,
                    seqpe_d_model: 768,
                    seqpe_heads: 12,
                    ..model
                },
                train: TrainSettings {
                    batch_size: 32,
                    steps: 100_000,
                    lr: 5e-5,
                    warmup_steps: 4000,
                    eval_every: 5000,
                    eval_blocks: 0,
                    checkpoint_every: 1000,
                    ..train
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        let mut c = TextConfig::preset("bench").unwrap();
        assert_eq!(
            (c.model.vocab_size, c.model.d_model, c.model.n_layers),
            (8192, 256, 4)
        );
        assert_eq!((c.model.block_size, c.train.batch_size), (256, 8));
        c.apply_overrides(&["train.steps=7".into(), "model.pe=ape".into()])
            .unwrap();
        assert_eq!(c.train.steps, 7);
        assert_eq!(c.model.pe, "ape");
        assert!(c.apply_overrides(&["train.nope=1".into()]).is_err());
        assert!(c.apply_overrides(&["train.steps=abc".into()]).is_err());
        assert!(TextConfig::preset("huge").is_err());
    }
}
