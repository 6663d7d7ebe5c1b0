//! Decoding with the key/value cache equals recomputing the whole sequence, for every text
//! encoding; the reference's `attn_scalar` quirk equals a recomputation without the position term
//! for the tokens after the prompt.

mod common;
use common::*;
use seqpe_core::position::LayerPositions;
use seqpe_core::{AttentionOptions, CachedScalar, LayerPosition, PeTableCache, PositionContext};
use seqpe_text::generate::{context_for, greedy, greedy_recomputed, GenerateOptions};
use seqpe_text::model::Gpt;

const PROMPT: usize = 11;
const NEW: usize = 8;

fn model(pe: PeKind) -> Gpt<Flex> {
    let mut cfg = tiny_config(pe, 1);
    cfg.model.dropout = 0.0;
    cfg.model.attn_dropout = 0.0;
    cfg.model.seqpe.dropout = 0.0;
    cfg.model.seqpe.max_position = 20_000;
    // a large init of the positional path, so the SeqPE term visibly changes the logits
    cfg.model.seqpe.init_width = Some(4096);
    <Flex as burn::tensor::backend::Backend>::seed(&DEV, 3);
    cfg.model.init::<Flex>(&DEV).unwrap()
}

fn sequence() -> Vec<u32> {
    (0..(PROMPT + NEW) as u32)
        .map(|i| (i * 37 + 5) % 300)
        .collect()
}

fn ids(tokens: &[u32]) -> Tensor<Flex, 2, Int> {
    let v: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, tokens.len()]), &DEV)
}

/// Logits `[NEW, vocab]` predicting tokens `PROMPT..` of `seq`: the prompt in one cached call, then
/// one call per token.
fn cached_logits(
    m: &Gpt<Flex>,
    seq: &[u32],
    ctx: &PositionContext<Flex>,
    s: CachedScalar,
) -> Tensor<Flex, 2> {
    let mut caches = m.stack.new_cache();
    let first = m.forward_cached(ids(&seq[..PROMPT]), &ctx.step(0, PROMPT, s), &mut caches);
    let mut rows = vec![first.narrow(1, PROMPT - 1, 1)];
    for i in PROMPT..seq.len() - 1 {
        rows.push(m.forward_cached(ids(&seq[i..i + 1]), &ctx.step(i, 1, s), &mut caches));
    }
    let all = Tensor::cat(rows, 1);
    let [_, n, v] = all.dims();
    all.reshape([n, v])
}

/// The same rows from one pass over the whole sequence with `ctx`.
fn full_logits(m: &Gpt<Flex>, seq: &[u32], ctx: &PositionContext<Flex>) -> Tensor<Flex, 2> {
    let logits = m.forward_with(ids(&seq[..seq.len() - 1]), ctx, AttentionOptions::default());
    let [_, n, v] = logits.dims();
    logits
        .narrow(1, PROMPT - 1, n - PROMPT + 1)
        .reshape([n - PROMPT + 1, v])
}

fn max_diff(a: Tensor<Flex, 2>, b: Tensor<Flex, 2>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[test]
fn cached_decoding_equals_recomputation_for_every_encoding() {
    let seq = sequence();
    for pe in seqpe_text::config::TEXT_PES {
        let m = model(pe);
        // the context of exactly the scored sequence (SeqPE: one dense bias; compared unsliced),
        // and of a long one (SeqPE: q and k widened)
        for total in [seq.len() - 1, 3000] {
            let ctx = context_for(&m, total, &PeTableCache::new(), &DEV).unwrap();
            let whole = if total == seq.len() - 1 {
                ctx.clone()
            } else {
                ctx.step(0, seq.len() - 1, CachedScalar::Correct)
            };
            let full = full_logits(&m, &seq, &whole);
            let cached = cached_logits(&m, &seq, &ctx, CachedScalar::Correct);
            let d = max_diff(cached, full);
            assert!(
                d < 1e-4,
                "{pe} at total {total}: cached logits differ by {d}"
            );
            // greedy decoding through the cache matches greedy recomputation
            let o = GenerateOptions {
                max_new_tokens: NEW - 1,
                stop: vec![],
                scalar: CachedScalar::Correct,
            };
            assert_eq!(
                greedy(&m, &seq[..PROMPT], &ctx, &o, &DEV).unwrap(),
                greedy_recomputed(&m, &seq[..PROMPT], &ctx, &o, &DEV).unwrap(),
                "{pe}"
            );
        }
    }
}

/// Zeroes the position term of the query rows from `PROMPT` on.
fn strip_after_prompt(lp: LayerPosition<Flex>) -> LayerPosition<Flex> {
    let cut = |t: Tensor<Flex, 4>| {
        let [g, h, n, k] = t.dims();
        let keep = t.clone().narrow(2, 0, PROMPT);
        Tensor::cat(vec![keep, Tensor::zeros([g, h, n - PROMPT, k], &DEV)], 2)
    };
    match lp {
        LayerPosition::Bias { bias } => LayerPosition::Bias { bias: cut(bias) },
        LayerPosition::ScalarProduct { q, k } => LayerPosition::ScalarProduct { q: cut(q), k },
        other => other,
    }
}

#[test]
fn reference_quirk_equals_recomputation_without_the_term_after_the_prompt() {
    let m = model(PeKind::SeqPe);
    let seq = sequence();
    for total in [seq.len() - 1, 3000] {
        let ctx = context_for(&m, total, &PeTableCache::new(), &DEV).unwrap();
        let full = ctx.step(0, seq.len() - 1, CachedScalar::Correct);
        let stripped = PositionContext {
            input: full.input.clone(),
            layers: LayerPositions::Shared(strip_after_prompt(full.layer(0))),
            grid: None,
        };
        let quirk = cached_logits(&m, &seq, &ctx, CachedScalar::Reference);
        let d = max_diff(quirk.clone(), full_logits(&m, &seq, &stripped));
        assert!(d < 1e-4, "total {total}: {d}");
        // and the quirk does change the logits (else this test would check nothing)
        let correct = cached_logits(&m, &seq, &ctx, CachedScalar::Correct);
        let gap = max_diff(quirk, correct);
        assert!(
            gap > 1e-3,
            "total {total}: the quirk changed the logits by only {gap}"
        );
    }
}
