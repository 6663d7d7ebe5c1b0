//! Greedy decoding with a key/value cache (`cargo xtask generate`, and the QA evaluation).
//!
//! The position context is built once for the whole sequence (prompt + the new tokens: for SeqPE
//! one encoder table, through a [`PeTableCache`]) and sliced per call
//! ([`PositionContext::step`]): the prompt is one forward pass that fills every layer's cache, then
//! each new token is one pass over that token alone. With SeqPE `attn_scalar`, the cache keeps
//! the keys widened with their `p_k`, so a new token's `p_q·p_k` against every cached key is the
//! one a full recomputation gives ([`CachedScalar::Correct`], the default);
//! [`CachedScalar::Reference`] reproduces the reference's generation, which drops that term after
//! the prompt.

use anyhow::{bail, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use seqpe_core::{CachedScalar, PeTableCache, PositionContext, PositionGrid};
use seqpe_train::PositionedModel;
use tokenizers::Tokenizer;

use crate::data::eot_id;
use crate::model::Gpt;

/// How to decode.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// At most this many new tokens (the QA protocol: 16).
    pub max_new_tokens: usize,
    /// Stop after generating any of these tokens (end of text, a newline).
    pub stop: Vec<u32>,
    /// The `attn_scalar` term against cached keys.
    pub scalar: CachedScalar,
}

impl GenerateOptions {
    /// The QA protocol for a tokenizer: 16 new tokens at most, stop at the end-of-text token or at
    /// any token that contains a newline.
    pub fn qa(tokenizer: &Tokenizer, scalar: CachedScalar) -> Self {
        let mut stop: Vec<u32> = (0..tokenizer.get_vocab_size(true) as u32)
            .filter(|&id| {
                tokenizer
                    .decode(&[id], false)
                    .is_ok_and(|s| s.contains('\n'))
            })
            .collect();
        stop.extend(eot_id(tokenizer));
        Self {
            max_new_tokens: 16,
            stop,
            scalar,
        }
    }
}

/// The position context for sequences of up to `total` tokens, from `cache` (one SeqPE table per
/// distinct length).
pub fn context_for<B: Backend>(
    model: &Gpt<B>,
    total: usize,
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<PositionContext<B>> {
    model.inference_context(&PositionGrid::sequence(total), 1, cache, device)
}

fn last_argmax<B: Backend>(logits: Tensor<B, 3>) -> u32 {
    let [_, n, v] = logits.dims();
    let last = logits.narrow(1, n - 1, 1).reshape([v]);
    let id: i64 = last.argmax(0).into_scalar().elem();
    id as u32
}

fn ids<B: Backend>(tokens: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, tokens.len()]), device)
}

/// Greedy continuation of `prompt` (token ids), at most `opts.max_new_tokens` tokens, stopping
/// after a stop token (which is included). `context` must cover `prompt.len() + max_new_tokens`
/// positions ([`context_for`]).
pub fn greedy<B: Backend>(
    model: &Gpt<B>,
    prompt: &[u32],
    context: &PositionContext<B>,
    opts: &GenerateOptions,
    device: &B::Device,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        bail!("cannot generate from an empty prompt");
    }
    let mut caches = model.stack.new_cache();
    let logits = model.forward_cached(
        ids::<B>(prompt, device),
        &context.step(0, prompt.len(), opts.scalar),
        &mut caches,
    );
    let mut next = last_argmax(logits);
    let mut out = Vec::with_capacity(opts.max_new_tokens);
    for i in 0..opts.max_new_tokens {
        out.push(next);
        if opts.stop.contains(&next) || i + 1 == opts.max_new_tokens {
            break;
        }
        let logits = model.forward_cached(
            ids::<B>(&[next], device),
            &context.step(prompt.len() + i, 1, opts.scalar),
            &mut caches,
        );
        next = last_argmax(logits);
    }
    Ok(out)
}

/// Greedy decoding by recomputing the whole sequence at every step (no cache): the reference
/// [`greedy`] is tested against.
pub fn greedy_recomputed<B: Backend>(
    model: &Gpt<B>,
    prompt: &[u32],
    context: &PositionContext<B>,
    opts: &GenerateOptions,
    device: &B::Device,
) -> Result<Vec<u32>> {
    let mut seq = prompt.to_vec();
    let mut out = Vec::new();
    for _ in 0..opts.max_new_tokens {
        let ctx = context.step(0, seq.len(), CachedScalar::Correct);
        let logits = model.forward_with(
            ids::<B>(&seq, device),
            &ctx,
            seqpe_core::AttentionOptions::default(),
        );
        let next = last_argmax(logits);
        out.push(next);
        seq.push(next);
        if opts.stop.contains(&next) {
            break;
        }
    }
    Ok(out)
}

/// Decodes `prompt` text and returns the generated text (stop token removed).
pub fn generate_text<B: Backend>(
    model: &Gpt<B>,
    tokenizer: &Tokenizer,
    prompt: &str,
    opts: &GenerateOptions,
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<String> {
    let enc = tokenizer
        .encode(prompt, false)
        .map_err(|e| anyhow::anyhow!("cannot tokenize the prompt: {e}"))?;
    let prompt_ids = enc.get_ids();
    let context = context_for(model, prompt_ids.len() + opts.max_new_tokens, cache, device)?;
    let mut out = greedy(model, prompt_ids, &context, opts, device)?;
    if out.last().is_some_and(|t| opts.stop.contains(t)) {
        out.pop();
    }
    tokenizer
        .decode(&out, false)
        .map_err(|e| anyhow::anyhow!("cannot decode the output: {e}"))
}
