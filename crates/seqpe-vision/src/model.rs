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
//!
//! A ViT is built (timm's init) by [`ModelSettings::init`](crate::config::ModelSettings::init),
//! beside its settings.

use anyhow::{bail, Result};
use burn::module::{Module, Param};
use burn::nn::{Dropout, LayerNorm, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use seqpe_core::transformer::Transformer;
use seqpe_core::{AttentionOptions, AttnMask, PositionContext, PositionEncoding, PositionGrid};
use seqpe_train::PositionedModel;

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
            .reshape([b, gh * gw, c * p * p])
            // in the weights' dtype (bf16 in a mixed-precision step; a no-op at f32)
            .cast(self.patch_embed.weight.val().dtype());
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
        let h = self.hidden(images, context, options);
        let [b, _, d] = h.dims();
        let cls_out = h.narrow(1, 0, 1).reshape([b, d]);
        self.head.forward(cls_out)
    }

    /// The final (layer-normed) states of every token, `[b, 1 + patches, d]`: the CLS row first,
    /// then the patches row-major (for losses on the patch tokens, such as the position probes').
    pub fn hidden(
        &self,
        images: Tensor<B, 4>,
        context: &PositionContext<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 3> {
        let x = self.embed_patches(images);
        let [b, _, d] = x.dims();
        let cls = self.cls_token.val().reshape([1, 1, d]).expand([b, 1, d]);
        let x = Tensor::cat(vec![cls, x], 1);
        let x = self.dropout.forward(context.add_to_input(x));
        let h = self
            .stack
            .forward(x, AttnMask::Full, |i| context.layer(i), options);
        self.norm.forward(h)
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
