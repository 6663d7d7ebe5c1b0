//! Run configuration: presets (`tiny`, `small`, `bench`, `gpt2-small`) as plain serialisable
//! structs. Any field can be overridden from a JSON file or with `--set section.field=value`.
//!
//! [`ModelSettings`] and what it builds sit together: its position-encoding configuration
//! ([`ModelSettings::position_config`]) and the freshly initialised [`Gpt`]
//! ([`ModelSettings::init`]).

use anyhow::{anyhow, bail, Result};
use burn::module::Initializer;
use burn::nn::{DropoutConfig, EmbeddingConfig, LayerNormConfig};
use burn::tensor::backend::Backend;
use seqpe_core::position::AlibiForm;
use seqpe_core::transformer::{Activation, TransformerConfig};
use seqpe_core::{
    text_range, PeKind, PositionEncodingConfig, RegularizerSettings, SeqPeInjection, SeqPeSettings,
};
use seqpe_train::config::{Preset, RunConfig};
use seqpe_train::schedule::Decay;
use seqpe_train::TrainSettings;
use serde::{Deserialize, Serialize};

use crate::model::Gpt;

/// The GPT and its position encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    /// Training length (tokens per sequence).
    pub block_size: usize,
    /// Dropout on embeddings and residual branches (GPT-2: 0.1).
    pub dropout: f64,
    /// Attention-probability dropout (GPT-2: 0.1).
    pub attn_dropout: f64,
    /// The position encoding: `seqpe`, `ape`, `sin`, `rope`, `alibi`, `nope`.
    pub pe: PeKind,
    /// SeqPE settings (`seqpe_d_model`, `seqpe_inject`, …; used when `pe` is `seqpe`).
    #[serde(flatten)]
    pub seqpe: SeqPeSettings,
    pub rope_base: f64,
    /// ALiBi as Press et al. (`standard`, the default) or as the SeqPE reference code adds it
    /// (`reference`: before the 1/√d_h scaling, i.e. slopes divided by √d_h).
    #[serde(default)]
    pub alibi_form: AlibiForm,
}

impl ModelSettings {
    /// Checks what building the GPT would otherwise panic on (widths, dropouts, the SeqPE
    /// encoder's settings, the RoPE base), naming the setting; every config holding these
    /// settings (text, QA, the sequence probes) calls it from its `validate`.
    pub fn check(&self) -> Result<()> {
        let (d, h) = (self.d_model, self.n_heads);
        seqpe_train::settings::check_model(d, h, self.dropout, self.attn_dropout, &self.seqpe)?;
        seqpe_train::settings::check_rope_base(self.rope_base)?;
        if self.vocab_size == 0 {
            bail!("model.vocab_size must be at least 1");
        }
        Ok(())
    }

    /// The position-encoding configuration these settings describe.
    pub fn position_config(&self) -> PositionEncodingConfig {
        let seqpe = self.seqpe.config(1, self.seqpe.max_position, self.d_model);
        PositionEncodingConfig::new(
            self.pe,
            self.d_model,
            self.n_heads,
            self.n_layers,
            vec![self.block_size],
        )
        .with_seqpe(Some(seqpe))
        .with_rope_base(self.rope_base)
        .with_alibi_form(self.alibi_form)
    }

    /// A freshly initialised GPT (GPT-2 init: normal 0.02, residual projections
    /// 0.02/√(2·n_layers)).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Gpt<B>> {
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return Err(anyhow!(
                "d_model {} is not divisible by n_heads {}",
                self.d_model,
                self.n_heads
            ));
        }
        Ok(Gpt {
            token_embed: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
            positions: self.position_config().init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            stack: TransformerConfig::new(self.d_model, self.n_heads, self.n_layers)
                .with_resid_dropout(self.dropout)
                .with_attn_dropout(self.attn_dropout)
                .with_activation(Activation::GeluTanh)
                .with_resid_init_std(Some(0.02 / (2.0 * self.n_layers as f64).sqrt()))
                .init(device),
            ln_f: LayerNormConfig::new(self.d_model).init(device),
        })
    }
}

/// Everything a text run needs; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub preset: String,
    pub model: ModelSettings,
    pub train: TrainSettings,
}

/// The encodings offered for text (RoPE-2D and RoPE-Mixed are grid encodings).
pub const TEXT_PES: [PeKind; 6] = [
    PeKind::SeqPe,
    PeKind::Learned,
    PeKind::Sinusoidal,
    PeKind::Rope,
    PeKind::Alibi,
    PeKind::None,
];

/// The text presets: `tiny` (the demo and the tests), `small` (the reports), `bench` (the
/// benchmarks), `gpt2-small` (the reference's GPT-2 recipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPreset {
    Tiny,
    Small,
    Bench,
    Gpt2Small,
}

impl Preset for TextPreset {
    const WHAT: &'static str = "text";
    const ALL: &'static [Self] = &[Self::Tiny, Self::Small, Self::Bench, Self::Gpt2Small];

    fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::Small => "small",
            Self::Bench => "bench",
            Self::Gpt2Small => "gpt2-small",
        }
    }
}

impl TextConfig {
    pub fn from_preset(p: TextPreset) -> Self {
        let train = TrainSettings {
            batch_size: 16,
            steps: 600,
            lr: 1e-3,
            warmup_steps: 60,
            warmup_start_lr: 0.0,
            final_lr: 0.0,
            decay: Decay::Linear,
            weight_decay: 0.0,
            grad_clip: 5.0,
            label_smoothing: 0.0,
            seed: 10086,
            eval_every: 200,
            valid_limit: 64,
            checkpoint_every: 100,
            precision: seqpe_train::Precision::F32,
            regularizer: RegularizerSettings::reference(1),
        };
        let model = ModelSettings {
            vocab_size: 4096,
            d_model: 128,
            n_heads: 4,
            n_layers: 2,
            block_size: 64,
            dropout: 0.1,
            attn_dropout: 0.1,
            pe: PeKind::SeqPe,
            // the trained range follows the window with the reference's ratio (20,000 / 512
            // positions per token: 2,500 for 64 tokens; reference-notes 23)
            seqpe: SeqPeSettings {
                heads: 1,
                ..SeqPeSettings::reference(64, text_range(64), SeqPeInjection::AttnScalar)
            },
            rope_base: 10_000.0,
            alibi_form: AlibiForm::Standard,
        };
        // The reference encodes ~1.3k regularizer positions per 16k main tokens; with 1k-token
        // batches the full 16×32 + 16×32 sampling would cost several times the main model, so the
        // CPU presets keep the proportions smaller: 8 pivots × 16 candidates, 8 windows × 16.
        let cpu_regularizer = RegularizerSettings {
            contrastive_batch: 8,
            contrastive_candidates: 16,
            distill_windows: 8,
            distill_per_window: 16,
            shift_windows: 8,
            ..RegularizerSettings::reference(1)
        };
        match p {
            // the demo and the tests: 2 × 128, 64-token blocks, 600 steps (a few minutes)
            TextPreset::Tiny => Self {
                preset: p.name().into(),
                model,
                train: TrainSettings {
                    regularizer: cpu_regularizer.scaled_to_window(64),
                    ..train
                },
            },
            // the reports: 4 × 128 on 128-token blocks, long enough for positions to matter
            TextPreset::Small => Self {
                preset: p.name().into(),
                model: ModelSettings {
                    n_layers: 4,
                    block_size: 128,
                    seqpe: SeqPeSettings {
                        max_position: text_range(128),
                        ..model.seqpe.clone()
                    },
                    ..model
                },
                train: TrainSettings {
                    batch_size: 8,
                    steps: 2000,
                    warmup_steps: 200,
                    eval_every: 500,
                    checkpoint_every: 250,
                    valid_limit: 64,
                    regularizer: cpu_regularizer.scaled_to_window(128),
                    ..train
                },
            },
            TextPreset::Bench => Self {
                preset: p.name().into(),
                model: ModelSettings {
                    vocab_size: 8192,
                    d_model: 256,
                    n_heads: 4,
                    n_layers: 4,
                    block_size: 256,
                    seqpe: SeqPeSettings {
                        heads: 2,
                        ..SeqPeSettings::reference(128, text_range(256), SeqPeInjection::AttnScalar)
                    },
                    ..model
                },
                train: TrainSettings {
                    batch_size: 8,
                    steps: 2000,
                    lr: 5e-4,
                    warmup_steps: 200,
                    eval_every: 500,
                    regularizer: RegularizerSettings::reference(1).scaled_to_window(256),
                    ..train
                },
            },
            // GPT-2 small on WikiText-103 (`runs/ours_gpt2_wt103.sh`)
            TextPreset::Gpt2Small => Self {
                preset: p.name().into(),
                model: ModelSettings {
                    vocab_size: 50_257,
                    d_model: 768,
                    n_heads: 12,
                    n_layers: 12,
                    block_size: 512,
                    seqpe: SeqPeSettings::reference(
                        768,
                        text_range(512),
                        SeqPeInjection::AttnScalar,
                    ),
                    ..model
                },
                train: TrainSettings {
                    batch_size: 32,
                    steps: 100_000,
                    lr: 5e-5,
                    warmup_steps: 4000,
                    eval_every: 5000,
                    valid_limit: 0,
                    checkpoint_every: 1000,
                    // the reference's own window: its 256 (`None`) is already half of it
                    regularizer: RegularizerSettings::reference(1),
                    ..train
                },
            },
        }
    }

    /// The preset called `name` (an error lists the names).
    pub fn preset(name: &str) -> Result<Self> {
        Ok(Self::from_preset(TextPreset::parse(name)?))
    }
}

impl RunConfig for TextConfig {
    type Preset = TextPreset;

    fn from_preset(p: TextPreset) -> Self {
        TextConfig::from_preset(p)
    }

    fn validate(&self) -> Result<()> {
        let m = &self.model;
        if !TEXT_PES.contains(&m.pe) {
            bail!(
                "`{}` is a grid encoding; for text choose one of {}",
                m.pe,
                TEXT_PES.map(|p| p.name()).join(", ")
            );
        }
        if m.seqpe.inject == SeqPeInjection::AttnMul {
            bail!("attn_mul is the ViT recipe; for text use attn_scalar or input_add");
        }
        m.check()?;
        if m.block_size == 0 || m.block_size >= m.seqpe.max_position {
            bail!(
                "block_size {} must be positive and below seqpe_max_position {}",
                m.block_size,
                m.seqpe.max_position
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use seqpe_train::config::{apply_overrides, build};

    /// Settings the GPT used to panic on while being built (`model.dropout=1.5`: exit 101 with a
    /// backtrace) or to train into NaN with are refused by `validate`, naming the setting.
    #[test]
    fn settings_a_model_cannot_be_built_with_are_refused() {
        for (set, want) in [
            (
                "model.dropout=1.5",
                "model.dropout must be at least 0 and below 1, not 1.5",
            ),
            (
                "model.attn_dropout=-0.5",
                "model.attn_dropout must be at least 0",
            ),
            (
                "model.d_model=0",
                "model.d_model (0) must be a positive multiple",
            ),
            ("model.n_heads=0", "of model.n_heads (0)"),
            (
                "model.seqpe_heads=3",
                "model.seqpe_d_model (64) must be a positive multiple of model.seqpe_heads (3)",
            ),
            ("model.seqpe_heads=0", "model.seqpe_heads (0)"),
            ("model.seqpe_d_model=0", "model.seqpe_d_model (0)"),
            (
                "model.seqpe_layers=0",
                "model.seqpe_layers must be at least 1",
            ),
            (
                "model.seqpe_dropout=1",
                "model.seqpe_dropout must be at least 0 and below 1",
            ),
            (
                "model.seqpe_init_width=0",
                "model.seqpe_init_width must be positive",
            ),
            (
                "model.rope_base=0",
                "model.rope_base must be a positive number, not 0",
            ),
            ("model.vocab_size=0", "model.vocab_size must be at least 1"),
        ] {
            let err = build::<TextConfig>("tiny", None, |_| {}, &[set.to_string()]).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{set}: {err:#}");
        }
    }

    /// The reference's ratios, not its absolute numbers: trained range 20,000 and contrastive
    /// window 256 for a 512-token window (reference-notes 23).
    #[test]
    fn every_preset_scales_the_reference_recipe_to_its_window() {
        let want = [
            ("tiny", 64, 2_500),
            ("small", 128, 5_000),
            ("bench", 256, 10_000),
        ];
        for (name, window, range) in want {
            let c = TextConfig::preset(name).unwrap();
            assert_eq!(c.model.block_size, window, "{name}");
            assert_eq!(c.model.seqpe.max_position, range, "{name}");
            assert_eq!(
                c.train.regularizer.contrastive_window,
                Some(window / 2),
                "{name}"
            );
        }
    }

    #[test]
    fn presets_and_overrides() {
        let mut c = TextConfig::preset("bench").unwrap();
        assert_eq!(
            (c.model.vocab_size, c.model.d_model, c.model.n_layers),
            (8192, 256, 4)
        );
        assert_eq!((c.model.block_size, c.train.batch_size), (256, 8));
        apply_overrides(
            &mut c,
            &[
                "train.steps=7".into(),
                "model.pe=ape".into(),
                "train.contrastive_batch=3".into(),
                "model.seqpe_d_model=32".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.train.steps, 7);
        assert_eq!(c.model.pe, PeKind::Learned);
        assert_eq!(c.train.regularizer.contrastive_batch, 3);
        assert_eq!(c.model.seqpe.d_model, 32);
        assert!(apply_overrides(&mut c, &["train.nope=1".into()]).is_err());
        assert!(apply_overrides(&mut c, &["train.steps=abc".into()]).is_err());
        assert!(apply_overrides(&mut c, &["model.pe=rope3d".into()]).is_err());
        let err = TextConfig::preset("huge").unwrap_err().to_string();
        assert!(
            err.contains("unknown text preset `huge`") && err.contains("gpt2-small"),
            "{err}"
        );
        for &p in TextPreset::ALL {
            let c = TextConfig::preset(p.name()).unwrap();
            assert_eq!(c.preset, p.name());
            c.validate().unwrap();
        }
        // the JSON names of the config (what --set and config.json use)
        let v = serde_json::to_value(TextConfig::preset("tiny").unwrap()).unwrap();
        assert_eq!(v["model"]["pe"], "seqpe");
        assert_eq!(v["model"]["seqpe_inject"], "attn_scalar");
        assert_eq!(v["train"]["decay"], "linear");
        assert!(v["train"]["contrastive_batch"].is_u64());
        // a grid encoding is refused for text
        let err = build::<TextConfig>("tiny", None, |_| {}, &["model.pe=rope2d".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("grid encoding"), "{err}");
    }

    #[test]
    fn gpt2_recipe_dropouts() {
        let c = TextConfig::preset("gpt2-small").unwrap();
        assert_eq!((c.model.dropout, c.model.attn_dropout), (0.1, 0.1));
        assert_eq!(c.model.seqpe.heads, 12);
        assert_eq!(c.train.regularizer, RegularizerSettings::reference(1));
        assert_eq!(c.model.seqpe.max_position, 20_000);
    }
}
