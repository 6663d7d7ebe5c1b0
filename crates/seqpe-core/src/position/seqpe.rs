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
use crate::encoder::{SeqPeEncoder, SeqPeEncoderConfig};

/// Largest `[groups, heads, t, t]` bias (elements) built for `attn_scalar`; above it the
/// equivalent widened q/k form is used.
pub const DENSE_BIAS_MAX_ELEMENTS: usize = 16 << 20;

/// How SeqPE enters the main model.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SeqPeInjection {
    InputAdd,
    AttnScalar,
    AttnMul,
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
                .map(|_| normal_linear(d_model, 2 * d_model, true, self.init_std, device))
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
        }
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
}

impl<B: Backend> SeqPePositions<B> {
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
        })
    }
}
