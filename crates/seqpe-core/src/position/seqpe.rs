//! SeqPE as a position encoding of a main model: the encoder output for every grid position, fed
//! to the model in one of three ways ([`SeqPeInjection`]).
//!
//! * `AttnScalar` (the GPT recipe): one shared `Linear(D → 2D)` gives `p_q`, `p_k`; every layer's
//!   logits become `(q·k + p_q·p_k)/sqrt(d_head)`.
//! * `AttnMul` (the ViT recipe): a `Linear(D → 2D)` per layer; `q ⊙ p_q`, `k ⊙ p_k`. Prefix tokens
//!   (the ViT CLS) use a separately learned position vector, not the encoder.
//! * `InputAdd`: the table is added to the token embeddings.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{LayerPositions, PositionContext, PositionError, PositionGrid};
use crate::attention::{linear_2d, normal_linear, LayerPosition};
use crate::digits::max_digits_for;
use crate::encoder::{SeqPeEncoder, SeqPeEncoderConfig};

/// Largest `[groups, heads, t, t]` bias (elements) built for `attn_scalar`; above it the
/// equivalent widened q/k form is used.
pub const DENSE_BIAS_MAX_ELEMENTS: usize = 16 << 20;

/// How SeqPE enters the main model. Serialised by its command-line name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqPeInjection {
    InputAdd,
    AttnScalar,
    AttnMul,
}

impl SeqPeInjection {
    /// The command-line name (`input_add`, `attn_scalar`, `attn_mul`).
    pub fn name(self) -> &'static str {
        match self {
            Self::InputAdd => "input_add",
            Self::AttnScalar => "attn_scalar",
            Self::AttnMul => "attn_mul",
        }
    }
}

impl std::fmt::Display for SeqPeInjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SeqPeInjection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "input_add" => Ok(Self::InputAdd),
            "attn_scalar" => Ok(Self::AttnScalar),
            "attn_mul" => Ok(Self::AttnMul),
            other => Err(format!(
                "unknown SeqPE injection `{other}`; choose input_add, attn_scalar or attn_mul"
            )),
        }
    }
}

/// SeqPE settings of a main model.
#[derive(Config, Debug)]
pub struct SeqPeConfig {
    /// The encoder (its `out_dim` must equal the main model's width).
    pub encoder: SeqPeEncoderConfig,
    #[config(default = "SeqPeInjection::AttnScalar")]
    pub injection: SeqPeInjection,
    /// One q/k projection per layer (`multi`, the ViT recipe) instead of one shared (`single`).
    #[config(default = false)]
    pub per_layer: bool,
    /// Use `p_q = p_k = P` without any projection (the reference's `none`).
    #[config(default = false)]
    pub no_projection: bool,
    #[config(default = 0.02)]
    pub init_std: f64,
    /// Initial bias of the q/k projections (0 = the reference). With `attn_mul`, 1 starts
    /// `q ⊙ p_q` close to plain attention instead of near zero.
    #[config(default = 0.0)]
    pub qk_bias: f64,
    /// Multiplies the `attn_scalar` term `p_q·p_k` (the reference's `seqpe_scalar_scale`, 1.0).
    #[config(default = 1.0)]
    pub scalar_scale: f64,
    /// The trained range per coordinate (`pe_max_position`), over which the regularizers sample
    /// positions (`None`: every position the digits can write, `10^max_digits`).
    #[config(default = "None")]
    pub trained_range: Option<usize>,
}

impl SeqPeConfig {
    pub fn init<B: Backend>(
        &self,
        d_model: usize,
        n_heads: usize,
        n_layers: usize,
        prefix: usize,
        device: &B::Device,
    ) -> SeqPePositions<B> {
        assert_eq!(
            self.encoder.out_dim, d_model,
            "the SeqPE encoder's out_dim must equal the model width"
        );
        let projections = match (self.injection, self.no_projection, self.per_layer) {
            (SeqPeInjection::InputAdd, _, _) | (_, true, _) => 0,
            (_, false, true) => n_layers,
            (_, false, false) => 1,
        };
        SeqPePositions {
            encoder: self.encoder.init(device),
            qk: (0..projections)
                .map(|_| {
                    let mut lin = normal_linear(d_model, 2 * d_model, true, self.init_std, device);
                    if self.qk_bias != 0.0 {
                        lin.bias = Some(
                            Initializer::Constant {
                                value: self.qk_bias,
                            }
                            .init([2 * d_model], device),
                        );
                    }
                    lin
                })
                .collect(),
            prefix_pos: (prefix > 0).then(|| {
                Initializer::Normal {
                    mean: 0.0,
                    std: self.init_std,
                }
                .init([prefix, d_model], device)
            }),
            injection: self.injection,
            n_heads,
            scalar_scale: self.scalar_scale,
            trained_range: self
                .trained_range
                .unwrap_or_else(|| crate::digits::BASE.pow(self.encoder.max_digits as u32)),
        }
    }
}

/// The SeqPE settings of a main model (GPT or ViT), as they appear in a run configuration:
/// flattened into the model's settings, so `config.json` and `--set model.seqpe_d_model=…` use the
/// `seqpe_` names. [`Self::config`] is the one place that turns them into a [`SeqPeConfig`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeqPeSettings {
    /// Encoder width, heads and layers (reference: text 768/12/2, ViT-S 384/6/2).
    #[serde(rename = "seqpe_d_model")]
    pub d_model: usize,
    #[serde(rename = "seqpe_heads")]
    pub heads: usize,
    #[serde(rename = "seqpe_layers")]
    pub layers: usize,
    /// The trained range per coordinate (`pe_max_position`: text 20000; ViT 100 per axis); the
    /// digit width follows from it.
    #[serde(rename = "seqpe_max_position", alias = "seqpe_max_per_axis")]
    pub max_position: usize,
    /// Residual dropout of the encoder (reference 0.1).
    #[serde(rename = "seqpe_dropout")]
    pub dropout: f64,
    /// How SeqPE enters the model: `attn_scalar` (GPT recipe), `attn_mul` (ViT recipe), `input_add`.
    #[serde(rename = "seqpe_inject")]
    pub inject: SeqPeInjection,
    /// One q/k projection per layer (the ViT's `multi`) instead of one shared (the GPT's `single`).
    #[serde(rename = "seqpe_per_layer", default)]
    pub per_layer: bool,
    /// Initial bias of the q/k projections (0 = reference; see [`SeqPeConfig::qk_bias`]).
    #[serde(rename = "seqpe_qk_bias", default)]
    pub qk_bias: f64,
    /// Scale of the `attn_scalar` term (reference `seqpe_scalar_scale` = 1).
    #[serde(rename = "seqpe_scalar_scale", default = "one")]
    pub scalar_scale: f64,
    /// `None`: the reference init (std 0.02 everywhere). `Some(w)`: the positional path — the
    /// encoder's `out_proj` and the q/k projections — starts as the reference's does at width `w`
    /// (std `0.02·√(w / fan_in)`), so a narrow model's position term is not ~(w/width)× weaker.
    #[serde(rename = "seqpe_init_width", default)]
    pub init_width: Option<usize>,
}

fn one() -> f64 {
    1.0
}

impl SeqPeSettings {
    /// Checks what building the encoder would otherwise panic on, or train into NaN with: a width
    /// its heads do not divide, no layers, a dropout that is not a probability, a non-finite
    /// scale. The error names the `model.seqpe_*` setting.
    pub fn check(&self) -> Result<(), String> {
        if self.heads == 0 || self.d_model == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(format!(
                "model.seqpe_d_model ({}) must be a positive multiple of model.seqpe_heads ({})",
                self.d_model, self.heads
            ));
        }
        if self.layers == 0 {
            return Err("model.seqpe_layers must be at least 1".into());
        }
        if self.max_position == 0 {
            return Err("model.seqpe_max_position must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "model.seqpe_dropout must be at least 0 and below 1, not {}",
                self.dropout
            ));
        }
        for (name, value) in [
            ("model.seqpe_qk_bias", self.qk_bias),
            ("model.seqpe_scalar_scale", self.scalar_scale),
        ] {
            if !value.is_finite() {
                return Err(format!("{name} must be a finite number, not {value}"));
            }
        }
        if self.init_width == Some(0) {
            return Err("model.seqpe_init_width must be positive (or null)".into());
        }
        Ok(())
    }
}

/// The reference GPT's trained range per window token: `pe_max_position` 20,000 for 512-token
/// windows (`text_seqpe/runs/ours_gpt2_wt103.sh`).
pub const TEXT_RANGE_PER_TOKEN: f64 = 20_000.0 / 512.0;
/// The reference ViT's trained range per grid side: 100 positions per axis for its 14 × 14 patch
/// grid (`image_seqpe/runs/ours_vit.sh`).
pub const GRID_RANGE_PER_SIDE: f64 = 100.0 / 14.0;

/// SeqPE's trained range for a 1-D window of `window` tokens with the reference's ratio, rounded
/// to the nearest hundred as the reference's round 20,000 is (512 gives back 20,000; 128: 5,000).
/// The recipe is a ratio: copying the absolute 20,000 onto a shorter window would make the window
/// a far smaller share of the trained range than the reference's 2.6 %
/// (`docs/reference-notes.md`, note 20).
pub fn text_range(window: usize) -> usize {
    (((window as f64 * TEXT_RANGE_PER_TOKEN) / 100.0).round() as usize * 100).max(100)
}

/// SeqPE's trained range per axis for a `side × side` grid with the reference's ratio, rounded
/// (14 gives back 100; 7: 50).
pub fn grid_range(side: usize) -> usize {
    (side as f64 * GRID_RANGE_PER_SIDE).round() as usize
}

impl SeqPeSettings {
    /// The reference settings for an encoder of width `d_model` (`d_model/64` heads, 2 layers,
    /// dropout 0.1, reference init) with the given trained range and injection.
    pub fn reference(d_model: usize, max_position: usize, inject: SeqPeInjection) -> Self {
        Self {
            d_model,
            heads: (d_model / 64).max(1),
            layers: 2,
            max_position,
            dropout: 0.1,
            inject,
            per_layer: inject == SeqPeInjection::AttnMul,
            qk_bias: 0.0,
            scalar_scale: 1.0,
            init_width: None,
        }
    }

    /// The SeqPE configuration of a main model of width `model_width` whose positions have `dims`
    /// coordinates, each in `0..range` (text: `max_position`; ViT (row, col): `max_position`;
    /// ViT flat index: `max_position²`).
    pub fn config(&self, dims: usize, range: usize, model_width: usize) -> SeqPeConfig {
        let std_for = |fan_in: usize| match self.init_width {
            Some(w) => 0.02 * (w as f64 / fan_in as f64).sqrt(),
            None => 0.02,
        };
        let encoder = SeqPeEncoderConfig::new(
            dims,
            max_digits_for(range),
            self.d_model,
            model_width,
            self.heads,
        )
        .with_n_layers(self.layers)
        .with_resid_dropout(self.dropout)
        .with_out_init_std(Some(std_for(self.d_model)));
        SeqPeConfig::new(encoder)
            .with_injection(self.inject)
            .with_per_layer(self.per_layer)
            .with_qk_bias(self.qk_bias)
            .with_scalar_scale(self.scalar_scale)
            .with_init_std(std_for(model_width))
            .with_trained_range(Some(range))
    }
}

/// SeqPE wired into a main model.
#[derive(Module, Debug)]
pub struct SeqPePositions<B: Backend> {
    pub encoder: SeqPeEncoder<B>,
    /// q/k projections `D → 2D`: none, one shared, or one per layer.
    pub qk: Vec<Linear<B>>,
    /// Learned position vectors of the prefix tokens (ViT CLS: `cls_token_pos_embed`).
    pub prefix_pos: Option<Param<Tensor<B, 2>>>,
    pub injection: SeqPeInjection,
    pub n_heads: usize,
    /// Multiplies the `attn_scalar` term.
    pub scalar_scale: f64,
    /// The trained range per coordinate: the regularizers sample positions in `0..trained_range`
    /// ([`crate::SeqPeRegularizer::for_encoding`]).
    pub trained_range: usize,
}

impl<B: Backend> SeqPePositions<B> {
    /// The distillation loss's head chunks: the encoder width / 64 (`pe_embed_dim / 64`).
    pub fn distill_chunks(&self) -> usize {
        (self.encoder.d_model() / 64).max(1)
    }

    /// Encoder output for the grid positions, `[groups * grid_len, out_dim]`.
    pub fn table(&self, grid: &PositionGrid) -> Result<Tensor<B, 2>, PositionError> {
        Ok(self.encoder.encode_chunked(&grid.flat_positions(), 4096)?)
    }

    pub(crate) fn context(
        &self,
        grid: &PositionGrid,
        table: Option<Tensor<B, 2>>,
    ) -> Result<PositionContext<B>, PositionError> {
        let table = match table {
            Some(t) => t,
            None => self.table(grid)?,
        };
        let (g, n) = (grid.groups(), grid.grid_len());
        let d = self.encoder.out_dim();
        assert_eq!(
            table.dims(),
            [g * n, d],
            "SeqPE table does not match the grid"
        );
        let mut p = table.reshape([g, n, d]);
        match (&self.prefix_pos, grid.prefix) {
            (_, 0) => {}
            (Some(pre), k) if pre.dims()[0] == k => {
                p = Tensor::cat(
                    vec![pre.val().unsqueeze_dim::<3>(0).expand([g, k, d]), p],
                    1,
                );
            }
            (_, k) => {
                return Err(PositionError::Unsupported(format!(
                    "this SeqPE encoding has no position vectors for {k} prefix tokens"
                )))
            }
        }
        if self.injection == SeqPeInjection::InputAdd {
            return Ok(PositionContext {
                input: Some(p),
                ..PositionContext::none()
            });
        }
        let t = grid.len();
        let h = self.n_heads;
        let heads = |x: Tensor<B, 3>| x.reshape([g, t, h, d / h]).swap_dims(1, 2);
        let make = |q: Tensor<B, 3>, k: Tensor<B, 3>| {
            let (q, k) = (heads(q), heads(k));
            match self.injection {
                SeqPeInjection::AttnMul => LayerPosition::Multiply { q, k },
                _ if self.scalar_scale != 1.0 => LayerPosition::ScalarProduct {
                    q: q * self.scalar_scale,
                    k,
                },
                _ => LayerPosition::ScalarProduct { q, k },
            }
        };
        let project = |lin: &Linear<B>| {
            let y = linear_2d(lin, p.clone());
            make(y.clone().narrow(2, 0, d), y.narrow(2, d, d))
        };
        let layers = match self.qk.len() {
            0 => LayerPositions::Shared(make(p.clone(), p.clone())),
            1 => LayerPositions::Shared(project(&self.qk[0])),
            _ => LayerPositions::PerLayer(self.qk.iter().map(project).collect()),
        };
        // attn_scalar on short inputs: one [groups, heads, t, t] bias shared by every layer and
        // batch row is cheaper than widening q and k in each layer; long inputs keep the
        // memory-light widened form (no t×t tensor).
        let layers = match layers {
            LayerPositions::Shared(LayerPosition::ScalarProduct { q, k })
                if g * h * t * t <= DENSE_BIAS_MAX_ELEMENTS =>
            {
                let scale = 1.0 / ((d / h) as f64).sqrt();
                let bias = q.matmul(k.swap_dims(2, 3)) * scale;
                LayerPositions::Shared(LayerPosition::Bias { bias })
            }
            other => other,
        };
        Ok(PositionContext {
            input: None,
            layers,
            grid: None,
        })
    }
}
