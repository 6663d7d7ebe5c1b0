//! One abstraction for "a position encoding", used by text, vision and QA alike.
//!
//! A model describes where its tokens sit with a [`PositionGrid`] (a 1-D window of a sequence, or
//! an n-D grid of patches, optionally after unpositioned prefix tokens such as the ViT CLS) and asks
//! its [`PositionEncoding`] for a [`PositionContext`]: what to add to the input embeddings, and the
//! [`LayerPosition`] each attention layer receives. Nothing else in a model knows which encoding it
//! runs, so the GPT and the ViT each have exactly one seam for position information.
//!
//! | kind | acts on | extrapolation |
//! |---|---|---|
//! | [`PeKind::SeqPe`] | q/k scalar term (GPT), q/k modulation (ViT) or input | encode the new positions |
//! | [`PeKind::Learned`] | input | 1-D linear / 2-D bicubic resize of the table |
//! | [`PeKind::Sinusoidal`] | input | formula |
//! | [`PeKind::Rope`] | q/k rotation over the flat index | formula |
//! | [`PeKind::Rope2d`] | axial q/k rotation, one band of frequencies per axis | formula |
//! | [`PeKind::RopeMixed`] | learned per-layer/per-head mixed frequencies | formula |
//! | [`PeKind::Alibi`] | linear bias on attention logits | formula |
//! | [`PeKind::None`] | nothing | — |

mod alibi;
mod grid;
mod learned;
mod rope;
mod seqpe;
mod sinusoidal;

pub use alibi::{alibi_slopes, Alibi, AlibiForm};
pub use grid::PositionGrid;
pub use learned::LearnedPositions;
pub use rope::{Rope, RopeMixed};
pub use seqpe::{
    grid_range, text_range, SeqPeConfig, SeqPeInjection, SeqPePositions, SeqPeSettings,
    GRID_RANGE_PER_SIDE, TEXT_RANGE_PER_TOKEN,
};
pub use sinusoidal::{sinusoidal_table, Sinusoidal};

use core::marker::PhantomData;

use burn::config::Config;
use burn::module::{Module, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::attention::LayerPosition;
use crate::digits::DigitError;

/// Which position encoding a model uses. Serialised (in `config.json`) by its command-line name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PeKind {
    #[serde(rename = "seqpe")]
    SeqPe,
    #[serde(rename = "ape", alias = "learned")]
    Learned,
    #[serde(rename = "sin")]
    Sinusoidal,
    #[serde(rename = "rope")]
    Rope,
    #[serde(rename = "rope2d")]
    Rope2d,
    #[serde(rename = "rope-mixed")]
    RopeMixed,
    #[serde(rename = "alibi")]
    Alibi,
    #[serde(rename = "nope")]
    None,
}

impl PeKind {
    /// The command-line name (`seqpe`, `ape`, `sin`, `rope`, `rope2d`, `rope-mixed`, `alibi`, `nope`).
    pub fn name(self) -> &'static str {
        match self {
            PeKind::SeqPe => "seqpe",
            PeKind::Learned => "ape",
            PeKind::Sinusoidal => "sin",
            PeKind::Rope => "rope",
            PeKind::Rope2d => "rope2d",
            PeKind::RopeMixed => "rope-mixed",
            PeKind::Alibi => "alibi",
            PeKind::None => "nope",
        }
    }

    pub const ALL: [PeKind; 8] = [
        PeKind::SeqPe,
        PeKind::Learned,
        PeKind::Sinusoidal,
        PeKind::Rope,
        PeKind::Rope2d,
        PeKind::RopeMixed,
        PeKind::Alibi,
        PeKind::None,
    ];
}

impl std::fmt::Display for PeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.to_ascii_lowercase();
        PeKind::ALL
            .into_iter()
            .find(|k| k.name() == s || (s == "learned" && *k == PeKind::Learned))
            .ok_or_else(|| {
                let names: Vec<_> = PeKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown position encoding `{s}`; choose one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Why a position context could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PositionError {
    #[error(transparent)]
    Digits(#[from] DigitError),
    #[error("{0}")]
    Unsupported(String),
}

/// Configuration of a [`PositionEncoding`].
#[derive(Config, Debug)]
pub struct PositionEncodingConfig {
    pub kind: PeKind,
    /// Width of the main model.
    pub d_model: usize,
    /// Attention heads of the main model.
    pub n_heads: usize,
    /// Layers of the main model (per-layer projections / frequencies).
    pub n_layers: usize,
    /// The trained grid, e.g. `[512]` or `[7, 7]` (size of a learned table; 1-D RoPE etc. ignore it).
    pub trained: Vec<usize>,
    /// Unpositioned tokens before the grid (the ViT CLS token: 1).
    #[config(default = 0)]
    pub prefix: usize,
    /// SeqPE settings (required for [`PeKind::SeqPe`], ignored by the other kinds).
    #[config(default = "None")]
    pub seqpe: Option<SeqPeConfig>,
    /// RoPE base (`theta`): 10000 for text; the reference RoPE-2D class uses 100, RoPE-Mixed 10.
    #[config(default = 10000.0)]
    pub rope_base: f64,
    #[config(default = 0.02)]
    pub init_std: f64,
    /// Where ALiBi's bias enters (standard, or the reference's before-scaling form).
    #[config(default = "AlibiForm::Standard")]
    pub alibi_form: AlibiForm,
}

impl PositionEncodingConfig {
    /// The trained range per coordinate of an encoding that has one (SeqPE: its positions were
    /// trained in `0..range`, and the encoder sees beyond it positions it never trained on);
    /// `None` for the encodings that take any position alike.
    pub fn trained_range(&self) -> Option<usize> {
        match self.kind {
            PeKind::SeqPe => self.seqpe.as_ref().and_then(|s| s.trained_range),
            _ => None,
        }
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> PositionEncoding<B> {
        let dims = self.trained.len().max(1);
        let head_dim = self.d_model / self.n_heads;
        match self.kind {
            PeKind::SeqPe => PositionEncoding::SeqPe(
                self.seqpe
                    .as_ref()
                    .expect("PeKind::SeqPe needs a SeqPeConfig")
                    .init(
                        self.d_model,
                        self.n_heads,
                        self.n_layers,
                        self.prefix,
                        device,
                    ),
            ),
            PeKind::Learned => PositionEncoding::Learned(LearnedPositions::init(
                &self.trained,
                self.prefix,
                self.d_model,
                self.init_std,
                device,
            )),
            PeKind::Sinusoidal => PositionEncoding::Sinusoidal(Sinusoidal::new(self.d_model)),
            PeKind::Rope => PositionEncoding::Rope(Rope::new(head_dim, self.rope_base, false)),
            PeKind::Rope2d => PositionEncoding::Rope(Rope::new(head_dim, self.rope_base, true)),
            PeKind::RopeMixed => PositionEncoding::RopeMixed(RopeMixed::init(
                self.n_layers,
                self.n_heads,
                head_dim,
                dims,
                self.rope_base,
                device,
            )),
            PeKind::Alibi => {
                PositionEncoding::Alibi(Alibi::with_form(self.n_heads, head_dim, self.alibi_form))
            }
            PeKind::None => PositionEncoding::None(NoPosition::default()),
        }
    }
}

/// The encoding that does nothing ("NoPE").
#[derive(Module, Debug, Default)]
pub struct NoPosition<B: Backend> {
    _backend: PhantomData<B>,
}

/// A position encoding of any kind.
#[derive(Module, Debug)]
pub enum PositionEncoding<B: Backend> {
    SeqPe(SeqPePositions<B>),
    Learned(LearnedPositions<B>),
    Sinusoidal(Sinusoidal<B>),
    Rope(Rope<B>),
    RopeMixed(RopeMixed<B>),
    Alibi(Alibi<B>),
    None(NoPosition<B>),
}

/// Per-layer position information of one forward pass.
#[derive(Debug, Clone)]
pub enum LayerPositions<B: Backend> {
    /// The same context in every layer.
    Shared(LayerPosition<B>),
    /// One context per layer.
    PerLayer(Vec<LayerPosition<B>>),
}

/// What a position encoding contributes to one forward pass.
#[derive(Debug, Clone)]
pub struct PositionContext<B: Backend> {
    /// Added to the token embeddings: `[batch|1, tokens, d_model]`.
    pub input: Option<Tensor<B, 3>>,
    pub layers: LayerPositions<B>,
    /// The positions this context encodes ([`PositionEncoding::context`] records them; `None`
    /// for a context built by hand or a slice of one). On a random-shift training step its
    /// corners are the shifted windows, so a task whose targets hold for the unshifted positions
    /// only (the grid probes' coordinate regression) can tell such a step.
    pub grid: Option<PositionGrid>,
}

impl<B: Backend> PositionContext<B> {
    pub fn none() -> Self {
        Self {
            input: None,
            layers: LayerPositions::Shared(LayerPosition::None),
            grid: None,
        }
    }

    /// The context of layer `i`.
    pub fn layer(&self, i: usize) -> LayerPosition<B> {
        match &self.layers {
            LayerPositions::Shared(p) => p.clone(),
            LayerPositions::PerLayer(v) => v[i].clone(),
        }
    }

    /// Adds the input part (if any) to token embeddings `[batch, tokens, d]`.
    pub fn add_to_input(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.input {
            Some(p) => x + p.clone(),
            None => x,
        }
    }

    /// Every tensor of the context in `dtype` (a mixed-precision step computes in bf16, and the
    /// tables the parameter-free encodings build are f32).
    pub fn cast(self, dtype: burn::tensor::DType) -> Self {
        self.map(|t| t.cast(dtype), |t| t.cast(dtype))
    }

    /// `layer` applied to every layer's tensors, `input` to the input part.
    fn map(
        self,
        layer: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
        input: impl Fn(Tensor<B, 3>) -> Tensor<B, 3>,
    ) -> Self {
        Self {
            input: self.input.map(input),
            layers: match self.layers {
                LayerPositions::Shared(p) => LayerPositions::Shared(p.map(layer)),
                LayerPositions::PerLayer(v) => {
                    LayerPositions::PerLayer(v.into_iter().map(|p| p.map(&layer)).collect())
                }
            },
            grid: self.grid,
        }
    }
}

/// Repeats the group axis (dim 0) so that batch row `b` uses group `b mod K`.
pub(crate) fn tile_groups<B: Backend, const D: usize>(
    t: Tensor<B, D>,
    batch: usize,
) -> Tensor<B, D> {
    let k = t.dims()[0];
    if k == 1 || k == batch {
        return t;
    }
    let times = batch.div_ceil(k);
    let t = t.repeat_dim(0, times);
    if times * k == batch {
        t
    } else {
        t.narrow(0, 0, batch)
    }
}

impl<B: Backend> PositionEncoding<B> {
    pub fn kind(&self) -> PeKind {
        match self {
            PositionEncoding::SeqPe(_) => PeKind::SeqPe,
            PositionEncoding::Learned(_) => PeKind::Learned,
            PositionEncoding::Sinusoidal(_) => PeKind::Sinusoidal,
            PositionEncoding::Rope(r) if r.axial => PeKind::Rope2d,
            PositionEncoding::Rope(_) => PeKind::Rope,
            PositionEncoding::RopeMixed(_) => PeKind::RopeMixed,
            PositionEncoding::Alibi(_) => PeKind::Alibi,
            PositionEncoding::None(_) => PeKind::None,
        }
    }

    /// The SeqPE part, when this is SeqPE (for the regularizers and the table cache).
    pub fn seqpe(&self) -> Option<&SeqPePositions<B>> {
        match self {
            PositionEncoding::SeqPe(s) => Some(s),
            _ => None,
        }
    }

    /// The position context for `grid`, tiled to `batch` rows. `seqpe_table` may hold the SeqPE
    /// encoder output for the grid positions (`[groups * n, out_dim]`, see
    /// [`PositionGrid::flat_positions`]) when it was computed elsewhere (one merged encoder pass in
    /// training, or a [`crate::PeTableCache`] in inference); other encodings ignore it.
    pub fn context(
        &self,
        grid: &PositionGrid,
        batch: usize,
        seqpe_table: Option<Tensor<B, 2>>,
        device: &B::Device,
    ) -> Result<PositionContext<B>, PositionError> {
        let mut ctx = match self {
            PositionEncoding::SeqPe(s) => s.context(grid, seqpe_table)?,
            PositionEncoding::Learned(l) => l.context(grid)?,
            PositionEncoding::Sinusoidal(s) => s.context(grid, device),
            PositionEncoding::Rope(r) => r.context(grid, device)?,
            PositionEncoding::RopeMixed(r) => r.context(grid, device)?,
            PositionEncoding::Alibi(a) => a.context(grid, device)?,
            PositionEncoding::None(_) => PositionContext::none(),
        };
        ctx.grid = Some(grid.clone());
        Ok(ctx.tiled(batch))
    }

    /// Parameters that take no weight decay beyond the usual 1-D ones (biases, norms): learned
    /// position tables, the SeqPE prefix (CLS) position vectors and RoPE-Mixed frequencies —
    /// timm's `no_weight_decay()` list (`pos_embed`, `cls_token`, `freqs`). The SeqPE encoder is
    /// a separate optimizer group (see [`Self::seqpe`]); its projections `qk` do decay.
    pub fn no_decay_params(&self) -> Vec<ParamId> {
        match self {
            PositionEncoding::Learned(l) => vec![l.weight.id],
            PositionEncoding::SeqPe(s) => s.prefix_pos.iter().map(|p| p.id).collect(),
            PositionEncoding::RopeMixed(r) => vec![r.freqs.id],
            _ => Vec::new(),
        }
    }

    /// The per-position vectors of `grid` (prefix tokens excluded), `[groups * grid_len, d]`, for
    /// the encodings that have them: SeqPE (the encoder output), learned (the table, resized as
    /// at inference) and sinusoidal; `None` for the encodings that act inside attention only.
    /// Diagnostics use it to measure how distinct the positions are.
    pub fn position_vectors(
        &self,
        grid: &PositionGrid,
        device: &B::Device,
    ) -> Result<Option<Tensor<B, 2>>, PositionError> {
        Ok(match self {
            PositionEncoding::SeqPe(s) => Some(s.table(grid)?),
            PositionEncoding::Learned(l) => {
                if !grid.is_at_origin() {
                    return Ok(None);
                }
                Some(l.resized(&grid.extent)?)
            }
            PositionEncoding::Sinusoidal(s) => {
                let ctx = s.context(&PositionGrid::new(0, grid.extent.clone()), device);
                ctx.input.map(|t| {
                    let [g, n, d] = t.dims();
                    t.reshape([g * n, d])
                })
            }
            _ => None,
        })
    }
}

/// How the SeqPE `attn_scalar` term treats cached keys during incremental decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CachedScalar {
    /// `p_q·p_k` between a new token and every cached key, as in a full recomputation (the
    /// cached keys keep their `p_k`).
    #[default]
    Correct,
    /// The reference's generation: the term is computed only among the tokens of the current
    /// call, so after the prompt a new token gets no position term at all (spec §6).
    Reference,
}

impl<B: Backend> PositionContext<B> {
    /// The context of the `len` tokens at positions `start..start + len` of a context built for a
    /// whole (longer) sequence, for incremental decoding: input rows, rotations and `attn_*`
    /// rows of those tokens (queries and their keys), dense-bias rows of those queries against
    /// every key up to `start + len`. With [`CachedScalar::Reference`], the SeqPE `attn_scalar`
    /// term is dropped after the first call (`start > 0`); the query keeps its width (zeros) so
    /// the cached, widened keys still line up.
    pub fn step(&self, start: usize, len: usize, scalar: CachedScalar) -> Self {
        let rows = |t: &Tensor<B, 4>| t.clone().narrow(2, start, len);
        let drop = scalar == CachedScalar::Reference && start > 0;
        let step_layer = |p: &LayerPosition<B>| match p {
            LayerPosition::None => LayerPosition::None,
            LayerPosition::Rotary { cos, sin } => LayerPosition::Rotary {
                cos: rows(cos),
                sin: rows(sin),
            },
            LayerPosition::Multiply { q, k } => LayerPosition::Multiply {
                q: rows(q),
                k: rows(k),
            },
            LayerPosition::ScalarProduct { q, k } => LayerPosition::ScalarProduct {
                q: if drop { rows(q).zeros_like() } else { rows(q) },
                k: rows(k),
            },
            LayerPosition::LinearBias { slopes } => LayerPosition::LinearBias {
                slopes: slopes.clone(),
            },
            LayerPosition::Bias { bias } if drop => {
                let _ = bias;
                LayerPosition::None
            }
            LayerPosition::Bias { bias } => LayerPosition::Bias {
                bias: rows(bias).narrow(3, 0, start + len),
            },
        };
        Self {
            input: self.input.as_ref().map(|t| t.clone().narrow(1, start, len)),
            layers: match &self.layers {
                LayerPositions::Shared(p) => LayerPositions::Shared(step_layer(p)),
                LayerPositions::PerLayer(v) => {
                    LayerPositions::PerLayer(v.iter().map(step_layer).collect())
                }
            },
            // a slice of the positions, not a grid of its own
            grid: None,
        }
    }

    /// Every tensor's group axis repeated to `batch` rows ([`tile_groups`]; the ALiBi slopes
    /// have one group and stay as they are).
    fn tiled(self, batch: usize) -> Self {
        self.map(|t| tile_groups(t, batch), |t| tile_groups(t, batch))
    }
}
