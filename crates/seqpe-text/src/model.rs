//! The GPT, top to bottom in one file (nanoGPT style).
//!
//! ```text
//! tokens ─ token embedding (+ input-side positions) ─ dropout
//!        ─ the shared pre-LN stack (per-layer position context) ─ final LN ─ tied LM head
//! ```
//! Position information has exactly one seam: [`Gpt::positions`], a
//! [`seqpe_core::PositionEncoding`]. With SeqPE (the GPT recipe, `attn_scalar`) nothing is added
//! at the input; one shared projection of the SeqPE table adds `p_q·p_k` to every layer's logits.
//!
//! A GPT is built (GPT-2 init) by [`ModelSettings::init`](crate::config::ModelSettings::init),
//! beside its settings.

use anyhow::Result;
use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use seqpe_core::transformer::Transformer;
use seqpe_core::{
    AttentionOptions, AttnMask, KvCache, PositionContext, PositionEncoding, PositionGrid,
};
use seqpe_train::PositionedModel;

/// A GPT-2-style causal language model.
#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    pub token_embed: Embedding<B>,
    pub positions: PositionEncoding<B>,
    pub dropout: Dropout,
    pub stack: Transformer<B>,
    pub ln_f: LayerNorm<B>,
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
