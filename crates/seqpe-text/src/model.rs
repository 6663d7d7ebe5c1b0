//! The GPT, top to bottom in one file (nanoGPT style).
//!
//! ```text
//! tokens ─ token embedding (+ input-side positions) ─ dropout
//!        ─ the shared pre-LN stack (per-layer position context) ─ final LN ─ tied LM head
//! ```
//! Position information has exactly one seam: [`Gpt::positions`], a
//! [`seqpe_core::PositionEncoding`]. With SeqPE (the GPT recipe, `attn_scalar`) nothing is added
//! at the input; one shared projection of the SeqPE table adds `p_q·p_k` to every layer's logits.

use anyhow::{anyhow, Result};
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use seqpe_core::transformer::{Activation, Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, KvCache, PeKind, PositionContext, PositionEncoding,
    PositionEncodingConfig, PositionGrid,
};
use seqpe_train::PositionedModel;

use crate::config::ModelSettings;

/// A GPT-2-style causal language model.
#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    pub token_embed: Embedding<B>,
    pub positions: PositionEncoding<B>,
    pub dropout: Dropout,
    pub stack: Transformer<B>,
    pub ln_f: LayerNorm<B>,
}

impl ModelSettings {
    /// The position-encoding configuration these settings describe.
    pub fn position_config(&self) -> PositionEncodingConfig {
        let seqpe = (self.pe == PeKind::SeqPe)
            .then(|| self.seqpe.config(1, self.seqpe.max_position, self.d_model));
        PositionEncodingConfig::new(
            self.pe,
            self.d_model,
            self.n_heads,
            self.n_layers,
            vec![self.block_size],
        )
        .with_seqpe(seqpe)
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

impl<B: Backend> PositionedModel<B> for Gpt<B> {
    fn positions(&self) -> &PositionEncoding<B> {
        &self.positions
    }
}

impl<B: Backend> Gpt<B> {
    /// Logits `[batch, n, vocab]` for `tokens [batch, n]` at the positions of `context`.
    pub fn forward_with(
        &self,
        tokens: Tensor<B, 2, Int>,
        context: &PositionContext<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 3> {
        self.head(self.hidden(tokens, context, options))
    }

    /// Incremental decoding: logits `[batch, n_new, vocab]` of the next tokens of sequences
    /// whose earlier keys and values are in `caches` (one per layer, from
    /// [`Transformer::new_cache`]); `context` holds the new tokens' rows only
    /// ([`PositionContext::step`]). Equals the last rows of [`Self::forward_with`] over the whole
    /// sequence.
    pub fn forward_cached(
        &self,
        tokens: Tensor<B, 2, Int>,
        context: &PositionContext<B>,
        caches: &mut [KvCache<B>],
    ) -> Tensor<B, 3> {
        let x = context.add_to_input(self.token_embed.forward(tokens));
        let x = self.dropout.forward(x);
        let h = self.stack.forward_cached(
            x,
            AttnMask::Causal,
            |i| context.layer(i),
            AttentionOptions::default(),
            caches,
        );
        self.head(self.ln_f.forward(h))
    }

    /// The tied LM head: `h [b, n, d] → logits [b, n, vocab]` (`h · Eᵀ`).
    pub fn head(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, d] = h.dims();
        let e = self.token_embed.weight.val();
        h.reshape([b * n, d])
            .matmul(e.transpose())
            .reshape([b, n, self.vocab_size()])
    }

    /// The final hidden states `[batch, n, d]` (before the LM head), for losses that score only
    /// some positions.
    pub fn hidden(
        &self,
        tokens: Tensor<B, 2, Int>,
        context: &PositionContext<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 3> {
        let x = context.add_to_input(self.token_embed.forward(tokens));
        let x = self.dropout.forward(x);
        let h = self
            .stack
            .forward(x, AttnMask::Causal, |i| context.layer(i), options);
        self.ln_f.forward(h)
    }

    /// Logits for tokens at positions `0..n` (computing any SeqPE table on the fly).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        let [b, n] = tokens.dims();
        let ctx = self
            .positions
            .context(&PositionGrid::sequence(n), b, None, &tokens.device())?;
        Ok(self.forward_with(tokens, &ctx, AttentionOptions::default()))
    }

    pub fn vocab_size(&self) -> usize {
        self.token_embed.weight.dims()[0]
    }
}
