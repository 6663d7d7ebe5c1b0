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

use anyhow::{anyhow, bail, Result};
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use seqpe_core::attention::normal_linear;
use seqpe_core::digits::max_digits_for;
use seqpe_core::position::{SeqPeConfig, SeqPeInjection};
use seqpe_core::transformer::{Activation, Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, PeKind, PositionContext, PositionEncoding, PositionEncodingConfig,
    PositionGrid, SeqPeEncoderConfig,
};

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

/// Parses `--pe` for images (ALiBi is a 1-D causal bias, so not offered here).
pub fn vision_pe_kind(name: &str) -> Result<PeKind> {
    let kind: PeKind = name.parse().map_err(|e: String| anyhow!(e))?;
    match kind {
        PeKind::Alibi => Err(anyhow!(
            "`alibi` is a 1-D causal bias; for images choose seqpe, ape, sin, rope, rope2d, \
             rope-mixed or nope"
        )),
        k => Ok(k),
    }
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
            self.seqpe_max_per_axis * self.seqpe_max_per_axis
        } else {
            self.seqpe_max_per_axis
        }
    }

    /// The position-encoding configuration these settings describe.
    pub fn position_config(&self) -> Result<PositionEncodingConfig> {
        let kind = vision_pe_kind(&self.pe)?;
        let seqpe = (kind == PeKind::SeqPe)
            .then(|| -> Result<SeqPeConfig> {
                let encoder = SeqPeEncoderConfig::new(
                    self.dims,
                    max_digits_for(self.seqpe_range()),
                    self.seqpe_d_model,
                    self.d_model,
                    self.seqpe_heads,
                )
                .with_n_layers(self.seqpe_layers)
                .with_resid_dropout(self.seqpe_dropout);
                let injection: SeqPeInjection =
                    self.seqpe_inject.parse().map_err(|e: String| anyhow!(e))?;
                if injection == SeqPeInjection::AttnScalar {
                    bail!("attn_scalar is the GPT recipe; for the ViT use attn_mul or input_add");
                }
                Ok(SeqPeConfig::new(encoder)
                    .with_injection(injection)
                    .with_per_layer(self.seqpe_per_layer))
            })
            .transpose()?;
        Ok(PositionEncodingConfig::new(
            kind,
            self.d_model,
            self.n_heads,
            self.n_layers,
            self.trained_extent(),
        )
        .with_prefix(1)
        .with_seqpe(seqpe)
        .with_rope_base(self.rope_base.unwrap_or(default_rope_base(kind))))
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Vit<B>> {
        if !self.d_model.is_multiple_of(self.n_heads) {
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
        let normal = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let mut positions = self.position_config()?.init(device);
        if let (PositionEncoding::SeqPe(s), true) = (&mut positions, self.seqpe_qk_bias != 0.0) {
            for lin in &mut s.qk {
                let n = lin.weight.dims()[1];
                lin.bias = Some(
                    Initializer::Constant {
                        value: self.seqpe_qk_bias,
                    }
                    .init([n], device),
                );
            }
        }
        Ok(Vit {
            patch_embed: normal_linear(
                self.channels * self.patch * self.patch,
                d,
                true,
                0.02,
                device,
            ),
            cls_token: normal.init([d], device),
            positions,
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
