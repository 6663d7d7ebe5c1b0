//! The ViT, top to bottom in one file (timm `VisionTransformer` layout).
//!
//! ```text
//! image [b, c, H, W] ─ patches (p×p, row-major) ─ Linear(c·p·p → d)   (= Conv2d, stride p)
//!                    ─ prepend CLS token (+ input-side positions) ─ dropout
//!                    ─ the shared pre-LN stack, full attention, exact GELU, qkv bias
//!                      (per-layer position context) ─ final LN ─ Linear head on the CLS row
//! ```
//! Position information has exactly one seam: [`Vit::positions`], a
//! [`seqpe_core::PositionEncoding`]. With SeqPE (the ViT recipe, `attn_mul`) nothing is added at
//! the input: the encoder turns every patch's (row, col) digits into a vector, the CLS token gets
//! its own learned vector, and a per-layer `Linear(D → 2D)` of that table multiplies q and k.
//!
//! Images of any size divisible by the patch work: the grid (and so the position table) grows
//! with the image; see [`Vit::grid_for`].

use anyhow::{bail, Result};
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use seqpe_core::attention::normal_linear;
use seqpe_core::transformer::{Activation, Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, PeKind, PositionContext, PositionEncoding, PositionEncodingConfig,
    PositionGrid,
};
use seqpe_train::PositionedModel;

use crate::config::ModelSettings;

/// A Vision Transformer classifier.
#[derive(Module, Debug)]
pub struct Vit<B: Backend> {
    /// Linear map of a flattened `c × p × p` patch (channel-major, like a strided Conv2d).
    pub patch_embed: Linear<B>,
    /// The learned CLS token `[d]`.
    pub cls_token: Param<Tensor<B, 1>>,
    pub positions: PositionEncoding<B>,
    pub dropout: Dropout,
    pub stack: Transformer<B>,
    pub norm: LayerNorm<B>,
    pub head: Linear<B>,
    /// Patch side in pixels.
    pub patch: usize,
    /// Coordinates of a patch position: 2 = (row, col), 1 = the row-major index.
    pub dims: usize,
}

/// The reference RoPE bases of the ViT baselines (`rotary` 10000, `rotary_2d` class default 100,
/// RoPE-Mixed 10).
pub fn default_rope_base(kind: PeKind) -> f64 {
    match kind {
        PeKind::Rope2d => 100.0,
        PeKind::RopeMixed => 10.0,
        _ => 10_000.0,
    }
}

impl ModelSettings {
    /// Patches per axis at the training resolution.
    pub fn train_side(&self) -> usize {
        self.image_size / self.patch
    }

    /// The trained grid as the position encoding sees it (`[side, side]`, or `[side²]` for
    /// `dims = 1`).
    pub fn trained_extent(&self) -> Vec<usize> {
        let s = self.train_side();
        if self.dims == 1 {
            vec![s * s]
        } else {
            vec![s, s]
        }
    }

    /// The SeqPE trained range per coordinate: `max_per_axis` for (row, col), `max_per_axis²`
    /// for the flat index.
    pub fn seqpe_range(&self) -> usize {
        if self.dims == 1 {
            self.seqpe.max_position * self.seqpe.max_position
        } else {
            self.seqpe.max_position
        }
    }

    /// The position-encoding configuration these settings describe.
    pub fn position_config(&self) -> PositionEncodingConfig {
        let seqpe = (self.pe == PeKind::SeqPe).then(|| {
            self.seqpe
                .config(self.dims, self.seqpe_range(), self.d_model)
        });
        PositionEncodingConfig::new(
            self.pe,
            self.d_model,
            self.n_heads,
            self.n_layers,
            self.trained_extent(),
        )
        .with_prefix(1)
        .with_seqpe(seqpe)
        .with_rope_base(self.rope_base.unwrap_or(default_rope_base(self.pe)))
    }

    /// A freshly initialised ViT: timm's init (truncated normal 0.02 for linears, the CLS token
    /// and position tables, zero biases) and PyTorch's `Conv2d` default for the patch embedding
    /// (uniform ±1/√fan_in), as the reference keeps it.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Vit<B>> {
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            bail!(
                "d_model {} is not divisible by n_heads {}",
                self.d_model,
                self.n_heads
            );
        }
        if self.patch == 0 || !self.image_size.is_multiple_of(self.patch) {
            bail!(
                "image_size {} is not a multiple of the patch size {}",
                self.image_size,
                self.patch
            );
        }
        let d = self.d_model;
        let fan_in = self.channels * self.patch * self.patch;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let conv_default = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        Ok(Vit {
            patch_embed: Linear {
                weight: conv_default.init([fan_in, d], device),
                bias: Some(conv_default.init([d], device)),
            },
            cls_token: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([d], device),
            positions: self.position_config().init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            stack: TransformerConfig::new(d, self.n_heads, self.n_layers)
                .with_mlp_ratio(self.mlp_ratio)
                .with_resid_dropout(self.dropout)
                .with_attn_dropout(self.attn_dropout)
                .with_activation(Activation::Gelu)
                .with_ln_eps(1e-6)
                .with_qkv_bias(true)
                .init(device),
            norm: LayerNormConfig::new(d).with_epsilon(1e-6).init(device),
            head: normal_linear(d, self.num_classes, true, 0.02, device),
            patch: self.patch,
            dims: self.dims,
        })
    }
}

impl<B: Backend> PositionedModel<B> for Vit<B> {
    fn positions(&self) -> &PositionEncoding<B> {
        &self.positions
    }
}

impl<B: Backend> Vit<B> {
    /// Where the tokens of an `height × width` image sit: the CLS (unpositioned prefix), then the
    /// patch grid at the origin (`[h/p, w/p]`, or `[h/p · w/p]` with `dims = 1`).
    pub fn grid_for(&self, height: usize, width: usize) -> Result<PositionGrid> {
        let p = self.patch;
        if !height.is_multiple_of(p) || !width.is_multiple_of(p) || height == 0 || width == 0 {
            bail!("image size {height}×{width} is not a multiple of the patch size {p}");
        }
        let (gh, gw) = (height / p, width / p);
        Ok(if self.dims == 1 {
            PositionGrid::new(1, vec![gh * gw])
        } else {
            PositionGrid::new(1, vec![gh, gw])
        })
    }

    /// `[b, c, H, W] → [b, (H/p)·(W/p), d]`, patches in row-major order.
    pub fn embed_patches(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, c, h, w] = images.dims();
        let p = self.patch;
        let (gh, gw) = (h / p, w / p);
        let patches = images
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p]);
        self.patch_embed.forward(patches)
    }

    /// Logits `[b, classes]` for `images [b, c, H, W]` with the positions of `context` (built for
    /// [`Self::grid_for`]`(H, W)`).
    pub fn forward_with(
        &self,
        images: Tensor<B, 4>,
        context: &PositionContext<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 2> {
        let x = self.embed_patches(images);
        let [b, _, d] = x.dims();
        let cls = self.cls_token.val().reshape([1, 1, d]).expand([b, 1, d]);
        let x = Tensor::cat(vec![cls, x], 1);
        let x = self.dropout.forward(context.add_to_input(x));
        let h = self
            .stack
            .forward(x, AttnMask::Full, |i| context.layer(i), options);
        let h = self.norm.forward(h);
        let cls_out = h.narrow(1, 0, 1).reshape([b, d]);
        self.head.forward(cls_out)
    }

    /// Logits for `images` at their own size (computing any SeqPE table on the fly).
    pub fn forward(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        let [b, _, h, w] = images.dims();
        let grid = self.grid_for(h, w)?;
        let ctx = self.positions.context(&grid, b, None, &images.device())?;
        Ok(self.forward_with(images, &ctx, AttentionOptions::default()))
    }

    pub fn num_classes(&self) -> usize {
        self.head.weight.dims()[1]
    }

    pub fn channels(&self) -> usize {
        self.patch_embed.weight.dims()[0] / (self.patch * self.patch)
    }
}
