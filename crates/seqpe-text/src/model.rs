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
use seqpe_core::digits::max_digits_for;
use seqpe_core::position::{SeqPeConfig, SeqPeInjection};
use seqpe_core::transformer::{Activation, Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, PeKind, PositionContext, PositionEncoding, PositionEncodingConfig,
    PositionGrid, SeqPeEncoderConfig,
};

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

/// Parses `--pe` for text (RoPE-2D and RoPE-Mixed are grid encodings, so not offered here).
pub fn text_pe_kind(name: &str) -> Result<PeKind> {
    let kind: PeKind = name.parse().map_err(|e: String| anyhow!(e))?;
    match kind {
        PeKind::Rope2d | PeKind::RopeMixed => Err(anyhow!(
            "`{name}` is a grid encoding; for text choose seqpe, ape, sin, rope, alibi or nope"
        )),
        k => Ok(k),
    }
}

impl ModelSettings {
    /// The position-encoding configuration these settings describe.
    pub fn position_config(&self) -> Result<PositionEncodingConfig> {
        let kind = text_pe_kind(&self.pe)?;
        let seqpe = (kind == PeKind::SeqPe)
            .then(|| -> Result<SeqPeConfig> {
                let encoder = SeqPeEncoderConfig::new(
                    1,
                    max_digits_for(self.seqpe_max_position),
                    self.seqpe_d_model,
                    self.d_model,
                    self.seqpe_heads,
                )
                .with_n_layers(self.seqpe_layers)
                .with_resid_dropout(self.seqpe_dropout);
                let injection: SeqPeInjection =
                    self.seqpe_inject.parse().map_err(|e: String| anyhow!(e))?;
                if injection == SeqPeInjection::AttnMul {
                    return Err(anyhow!(
                        "attn_mul is the ViT recipe; for text use attn_scalar or input_add"
                    ));
                }
                Ok(SeqPeConfig::new(encoder).with_injection(injection))
            })
            .transpose()?;
        Ok(PositionEncodingConfig::new(
            kind,
            self.d_model,
            self.n_heads,
            self.n_layers,
            vec![self.block_size],
        )
        .with_seqpe(seqpe)
        .with_rope_base(self.rope_base))
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Gpt<B>> {
        if self.d_model % self.n_heads != 0 {
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
            positions: self.position_config()?.init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            stack: TransformerConfig::new(self.d_model, self.n_heads, self.n_layers)
                .with_resid_dropout(self.dropout)
                .with_attn_dropout(self.attn_dropout)
                .with_activation(Activation::GeluTanh)
                .init(device),
            ln_f: LayerNormConfig::new(self.d_model).init(device),
        })
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
        let x = context.add_to_input(self.token_embed.forward(tokens));
        let x = self.dropout.forward(x);
        let h = self
            .stack
            .forward(x, AttnMask::Causal, |i| context.layer(i), options);
        let h = self.ln_f.forward(h);
        // tied LM head: logits = h · Eᵀ
        let [b, n, d] = h.dims();
        let e = self.token_embed.weight.val();
        h.reshape([b * n, d])
            .matmul(e.transpose())
            .reshape([b, n, self.vocab_size()])
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
