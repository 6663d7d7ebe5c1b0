//! [`SeqPeEncoder`]: the small causal transformer that turns a position's digits into a vector.
//!
//! ```text
//! digits [M, L] ─ token emb (10 rows) + slot emb (L rows) (+ dim emb, n-D only)
//!               ─ append CLS (last)  ─ K pre-LN blocks (causal over L+1 tokens)
//!               ─ final LN ─ take CLS row ─ out_proj ─ ÷ temperature ─→ [M, out_dim]
//! ```
//! Reference: `SequentialPE` in `ghrua/seqpe` (see `docs/reference-notes.md`). The CLS vector has
//! no slot or dimension embedding; leading zeros are ordinary digit tokens (no padding mask).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::attention::{normal_linear, AttentionOptions, AttnMask, LayerPosition};
use crate::digits::{DigitError, DigitTokenizer, BASE};
use crate::transformer::{Activation, Transformer, TransformerConfig};

/// Configuration of a [`SeqPeEncoder`]. Defaults follow the reference scripts.
#[derive(Config, Debug)]
pub struct SeqPeEncoderConfig {
    /// Coordinates per position (1 for text, 2 for image patches, any n ≥ 1).
    pub dims: usize,
    /// Digits per coordinate (`len(str(max_per_axis - 1))`, see [`crate::digits`]).
    pub max_digits: usize,
    /// Encoder width (`pe_embed_dim`).
    pub d_model: usize,
    /// Output size (`PE_OUT_PROJ_DIM`: the main model's width for attn_*/input_add).
    pub out_dim: usize,
    /// Attention heads of the encoder (reference: `d_model / 64`).
    pub n_heads: usize,
    #[config(default = 2)]
    pub n_layers: usize,
    #[config(default = true)]
    pub final_layernorm: bool,
    #[config(default = 0.1)]
    pub resid_dropout: f64,
    #[config(default = 0.0)]
    pub attn_dropout: f64,
    /// `Causal` (every script) or `Full` (the reference `bi` option).
    #[config(default = "AttnMask::Causal")]
    pub mask: AttnMask,
    /// Output is divided by this (`seqpe_temperature`).
    #[config(default = 1.0)]
    pub temperature: f64,
    #[config(default = 0.02)]
    pub init_std: f64,
    /// Init std of `out_proj` (`None`: `init_std`, the reference). A larger value starts the
    /// position embeddings larger (see `SeqPeSettings::init_width`).
    #[config(default = "None")]
    pub out_init_std: Option<f64>,
}

impl SeqPeEncoderConfig {
    /// The reference settings for a given maximum position per axis: `d_model/64` heads, 2 layers.
    pub fn reference(dims: usize, max_per_axis: usize, d_model: usize, out_dim: usize) -> Self {
        let tok = DigitTokenizer::for_max_per_axis(max_per_axis, dims);
        Self::new(
            dims,
            tok.max_digits,
            d_model,
            out_dim,
            (d_model / 64).max(1),
        )
    }

    pub fn tokenizer(&self) -> DigitTokenizer {
        DigitTokenizer::new(self.max_digits, self.dims)
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> SeqPeEncoder<B> {
        let d = self.d_model;
        let tokenizer = self.tokenizer();
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.init_std,
        };
        let embed = |rows| {
            EmbeddingConfig::new(rows, d)
                .with_initializer(normal.clone())
                .init(device)
        };
        SeqPeEncoder {
            token_embed: embed(BASE),
            slot_embed: embed(tokenizer.seq_len()),
            dim_embed: (self.dims > 1).then(|| normal.init([self.dims, d], device)),
            cls: normal.init([d], device),
            transformer: TransformerConfig::new(d, self.n_heads, self.n_layers)
                .with_attn_dropout(self.attn_dropout)
                .with_resid_dropout(self.resid_dropout)
                .with_activation(Activation::GeluTanh)
                .with_init_std(self.init_std)
                .init(device),
            final_ln: self
                .final_layernorm
                .then(|| LayerNormConfig::new(d).with_epsilon(1e-5).init(device)),
            out_proj: normal_linear(
                d,
                self.out_dim,
                true,
                self.out_init_std.unwrap_or(self.init_std),
                device,
            ),
            tokenizer,
            mask: self.mask,
            temperature: self.temperature,
        }
    }
}

/// The sequential position encoder.
#[derive(Module, Debug)]
pub struct SeqPeEncoder<B: Backend> {
    /// Digit embedding, one row per digit value.
    pub token_embed: Embedding<B>,
    /// Digit-slot embedding, one row per slot `0..L`.
    pub slot_embed: Embedding<B>,
    /// Coordinate embedding `[dims, d]`, added to every slot of that coordinate (n-D only).
    pub dim_embed: Option<Param<Tensor<B, 2>>>,
    /// The CLS vector appended after the digits; its output is the position embedding.
    pub cls: Param<Tensor<B, 1>>,
    pub transformer: Transformer<B>,
    pub final_ln: Option<LayerNorm<B>>,
    /// `d → out_dim` projection of the CLS row (stored `[d, out]`).
    pub out_proj: Linear<B>,
    pub tokenizer: DigitTokenizer,
    pub mask: AttnMask,
    pub temperature: f64,
}

impl<B: Backend> SeqPeEncoder<B> {
    /// The output width. Read without initialising a lazy parameter: asking a model's sizes must
    /// not draw its weights from the backend RNG (a training loop seeds that RNG per step).
    pub fn out_dim(&self) -> usize {
        self.out_proj.bias.as_ref().map_or_else(
            || self.out_proj.weight.lazy_shape().num_elements() / self.d_model(),
            |b| b.lazy_shape().num_elements(),
        )
    }

    /// The encoder width (read without initialising a lazy parameter, as [`Self::out_dim`]).
    pub fn d_model(&self) -> usize {
        self.cls.lazy_shape().num_elements()
    }

    pub fn dims(&self) -> usize {
        self.tokenizer.dims
    }

    pub fn device(&self) -> B::Device {
        self.cls.device()
    }

    /// Digit ids `[M, L]` → position embeddings `[M, out_dim]`.
    pub fn forward(&self, digits: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [m, l] = digits.dims();
        let d = self.d_model();
        let device = digits.device();
        let slots = Tensor::<B, 1, Int>::arange(0..l as i64, &device);
        let mut h = self.token_embed.forward(digits)
            + self
                .slot_embed
                .weight
                .val()
                .select(0, slots)
                .unsqueeze_dim(0);
        if let Some(dim_embed) = &self.dim_embed {
            let max_digits = self.tokenizer.max_digits as i64;
            let dim_ids = Tensor::<B, 1, Int>::arange(0..l as i64, &device).div_scalar(max_digits);
            h = h + dim_embed.val().select(0, dim_ids).unsqueeze_dim(0);
        }
        let cls = self.cls.val().reshape([1, 1, d]).expand([m, 1, d]);
        let mut h = Tensor::cat(vec![h, cls], 1);
        // Only the CLS (last) row of the last block is used: that block computes just that row.
        let blocks = &self.transformer.blocks;
        let (last, rest) = blocks
            .split_last()
            .expect("the encoder has at least one block");
        for block in rest {
            h = block.forward(
                h,
                self.mask,
                &LayerPosition::None,
                AttentionOptions::default(),
            );
        }
        let h = last.forward_last(h);
        let h = match &self.final_ln {
            Some(ln) => ln.forward(h),
            None => h,
        };
        let cls_out = h.reshape([m, d]);
        let out = self.out_proj.forward(cls_out);
        if self.temperature == 1.0 {
            out
        } else {
            out / self.temperature
        }
    }

    /// Encodes positions given as a flat row-major buffer `[M * dims]` → `[M, out_dim]`.
    pub fn encode(&self, positions: &[usize]) -> Result<Tensor<B, 2>, DigitError> {
        let digits = self.tokenizer.encode_tensor(positions, &self.device())?;
        Ok(self.forward(digits))
    }

    /// Like [`Self::encode`] but in slices of at most `chunk` positions (bounded memory for large
    /// inference tables, e.g. 32k text positions or a 100×100 grid).
    pub fn encode_chunked(
        &self,
        positions: &[usize],
        chunk: usize,
    ) -> Result<Tensor<B, 2>, DigitError> {
        let dims = self.dims();
        let step = chunk.max(1) * dims;
        if positions.len() <= step {
            return self.encode(positions);
        }
        let parts = positions
            .chunks(step)
            .map(|p| self.encode(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tensor::cat(parts, 0))
    }
}
