//! Behavioural tests of seqpe-core on the Flex CPU backend (named explicitly).

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::DropoutConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use seqpe_core::attention::{scaled_dot_product, AttentionOptions, AttnMask, LayerPosition};
use seqpe_core::position::{PositionEncodingConfig, SeqPeConfig, SeqPeInjection};
use seqpe_core::regularizers::{contrastive_loss, distill_loss};
use seqpe_core::sampling::{
    ContrastiveConfig, ContrastiveSampler, TransferConfig, TransferSampler,
};
use seqpe_core::transformer::TransformerConfig;
use seqpe_core::{PeKind, PeTableCache, PositionGrid, SeqPeEncoder, SeqPeEncoderConfig};

/// Burn's backend seed is global: every test holds this lock, so a test that seeds and then
/// initialises a model starts from the same weights however the tests interleave (the
/// contrastive test below started from another encoder on some parallel runs and missed its bar).
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

type B = Flex;
type AD = Autodiff<Flex>;
const DEV: FlexDevice = FlexDevice;

fn to_vec<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn small_encoder<Bk: Backend>(dims: usize, digits: usize, out: usize) -> SeqPeEncoder<Bk> {
    SeqPeEncoderConfig::new(dims, digits, 32, out, 2)
        .with_resid_dropout(0.0)
        .init(&DEV_OF::<Bk>())
}

#[allow(non_snake_case)]
fn DEV_OF<Bk: Backend>() -> Bk::Device {
    Default::default()
}

/// Collects (name, has non-zero gradient) for every float parameter.
struct GradProbe<'a> {
    grads: &'a <AD as AutodiffBackend>::Gradients,
    path: Vec<String>,
    seen: Vec<(String, bool)>,
}

impl ModuleVisitor<AD> for GradProbe<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
        let g = param.val().grad(self.grads);
        let nonzero = g.is_some_and(|g| to_vec(g.abs().sum())[0] > 0.0);
        self.seen.push((self.path.join("."), nonzero));
    }
}

#[test]
fn gradients_reach_every_encoder_parameter() {
    let _rng = rng_lock();
    for dims in [1, 2, 3] {
        let enc: SeqPeEncoder<AD> = SeqPeEncoderConfig::new(dims, 2, 32, 16, 2)
            .with_resid_dropout(0.1)
            .init(&DEV);
        let mut ct = ContrastiveSampler::new(
            ContrastiveConfig {
                batch: 4,
                candidates: 8,
                ..ContrastiveConfig::image(dims, 30, 2, 4)
            },
            1,
        );
        let batch = ct.sample();
        let c = ct.config.candidates;
        let p = ct.config.batch;
        let zp = enc.encode(&batch.pivots).unwrap();
        let zc = enc.encode(&batch.candidates).unwrap().reshape([p, c, 16]);
        let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::<AD, 1, Int>::from_data(TensorData::new(labels, [p]), &DEV);
        let mut tr = TransferSampler::new(
            TransferConfig {
                window: vec![if dims == 1 { 8 } else { 4 }; dims],
                max_per_axis: 30,
                batch: 2,
                per_window: 6,
            },
            2,
        );
        let kd = tr.sample();
        let zt = enc.encode(&kd.teacher).unwrap().reshape([2, 6, 16]);
        let zs = enc.encode(&kd.student).unwrap().reshape([2, 6, 16]);
        let loss = contrastive_loss(zp, zc, labels) + distill_loss(zt, zs, 2, 0.8);
        let grads = loss.backward();
        let mut probe = GradProbe {
            grads: &grads,
            path: vec![],
            seen: vec![],
        };
        enc.visit(&mut probe);
        // token, slot, (dim), cls, 2 blocks × 12 tensors, final LN ×2, out_proj ×2
        let expected = 2 + usize::from(dims > 1) + 1 + 2 * 12 + 2 + 2;
        assert_eq!(probe.seen.len(), expected, "{:?}", probe.seen);
        let missing: Vec<_> = probe.seen.iter().filter(|(_, ok)| !ok).collect();
        assert!(
            missing.is_empty(),
            "dims={dims}: no gradient for {missing:?}"
        );
    }
}

/// Fraction of pivots whose nearest candidate gets the highest logit.
fn ranking_accuracy(enc: &SeqPeEncoder<B>, sampler: &mut ContrastiveSampler, rounds: usize) -> f32 {
    let (p, c) = (sampler.config.batch, sampler.config.candidates);
    let mut hits = 0;
    for _ in 0..rounds {
        let b = sampler.sample();
        let zp = enc.encode(&b.pivots).unwrap();
        let d = zp.dims()[1];
        let zc = enc.encode(&b.candidates).unwrap().reshape([p, c, d]);
        let logits = zc.matmul(zp.unsqueeze_dim::<3>(2)).reshape([p, c]);
        let best = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap();
        hits += best
            .iter()
            .zip(&b.labels)
            .filter(|(a, l)| **a as usize == **l)
            .count();
    }
    hits as f32 / (rounds * p) as f32
}

#[test]
fn contrastive_training_improves_ranking() {
    let _rng = rng_lock();
    let cfg = ContrastiveConfig {
        batch: 32,
        candidates: 16,
        ..ContrastiveConfig::text(1000, 3)
    };
    <AD as Backend>::seed(&DEV, 17);
    let mut enc: SeqPeEncoder<AD> = SeqPeEncoderConfig::new(1, 3, 32, 32, 2)
        .with_resid_dropout(0.0)
        .init(&DEV);
    let mut eval_sampler = ContrastiveSampler::new(cfg.clone(), 999);
    let before = ranking_accuracy(&enc.valid(), &mut eval_sampler.clone(), 8);
    let mut train = ContrastiveSampler::new(cfg.clone(), 5);
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for _ in 0..300 {
        let b = train.sample();
        let zp = enc.encode(&b.pivots).unwrap();
        let zc = enc.encode(&b.candidates).unwrap().reshape([32, 16, 32]);
        let labels: Vec<i64> = b.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::<AD, 1, Int>::from_data(TensorData::new(labels, [32]), &DEV);
        let loss = contrastive_loss(zp, zc, labels);
        last_loss = to_vec(loss.clone())[0];
        first_loss.get_or_insert(last_loss);
        let grads = GradientsParams::from_grads(loss.backward(), &enc);
        enc = optim.step(3e-3, enc, grads);
    }
    let after = ranking_accuracy(&enc.valid(), &mut eval_sampler, 8);
    println!(
        "ranking accuracy {before:.3} -> {after:.3}; loss {:?} -> {last_loss}",
        first_loss
    );
    assert!(after > before + 0.2, "ranking accuracy {before} -> {after}");
    assert!(last_loss < first_loss.unwrap() * 0.7);
}

fn random<Bk: Backend>(shape: [usize; 4]) -> Tensor<Bk, 4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &DEV_OF::<Bk>())
}

#[test]
fn chunked_fused_and_autodiff_attention_agree() {
    let _rng = rng_lock();
    let no_drop = DropoutConfig::new(0.0).init();
    let (q, k, v) = (
        random::<B>([2, 3, 37, 8]),
        random::<B>([2, 3, 37, 8]),
        random::<B>([2, 3, 37, 8]),
    );
    for mask in [AttnMask::Causal, AttnMask::Full] {
        // inner backend: fused kernel
        let fused = scaled_dot_product(
            q.clone(),
            k.clone(),
            v.clone(),
            0.3,
            mask,
            None,
            &no_drop,
            AttentionOptions { query_chunk: 1024 },
        );
        // autodiff backend: the explicit path, whole and in chunks of 5 queries
        let qa = Tensor::<AD, 4>::from_inner(q.clone());
        let ka = Tensor::<AD, 4>::from_inner(k.clone());
        let va = Tensor::<AD, 4>::from_inner(v.clone());
        let whole = scaled_dot_product(
            qa.clone(),
            ka.clone(),
            va.clone(),
            0.3,
            mask,
            None,
            &no_drop,
            AttentionOptions { query_chunk: 1024 },
        );
        let chunked = scaled_dot_product(
            qa,
            ka,
            va,
            0.3,
            mask,
            None,
            &no_drop,
            AttentionOptions { query_chunk: 5 },
        );
        let (f, w, c) = (
            to_vec(fused),
            to_vec(whole.inner()),
            to_vec(chunked.inner()),
        );
        assert!(max_abs_diff(&f, &w) < 1e-5, "{mask:?} fused vs explicit");
        assert!(max_abs_diff(&w, &c) < 1e-5, "{mask:?} chunked vs whole");
    }
    // causal: the first query sees only the first key, so its output is v[0]
    let out = scaled_dot_product(
        q,
        k,
        v.clone(),
        1.0,
        AttnMask::Causal,
        None,
        &no_drop,
        AttentionOptions { query_chunk: 4 },
    );
    let first = to_vec(out.narrow(2, 0, 1));
    assert!(max_abs_diff(&first, &to_vec(v.narrow(2, 0, 1))) < 1e-6);
}

#[test]
fn attn_scalar_equals_an_explicit_bias_before_scaling() {
    let _rng = rng_lock();
    // softmax((q·k + pq·pk)/sqrt(dh)) v computed by hand vs the ScalarProduct path
    let cfg = TransformerConfig::new(16, 2, 1).with_resid_dropout(0.0);
    let ad_block = cfg.init_block::<AD>(&DEV);
    let block = ad_block.valid();
    let x: Tensor<B, 3> = Tensor::random([1, 6, 16], Distribution::Normal(0.0, 1.0), &DEV);
    let pq = random::<B>([1, 2, 6, 8]);
    let pk = random::<B>([1, 2, 6, 8]);
    let pos = LayerPosition::ScalarProduct {
        q: pq.clone(),
        k: pk.clone(),
    };
    let ours = block.attn.forward(
        x.clone(),
        AttnMask::Causal,
        &pos,
        AttentionOptions::default(),
    );
    // the precomputed-bias form used for short inputs
    let dense = pq.clone().matmul(pk.clone().swap_dims(2, 3)) / 8f32.sqrt();
    let bias = LayerPosition::Bias {
        bias: dense.clone(),
    };
    let ours_bias = block.attn.forward(
        x.clone(),
        AttnMask::Causal,
        &bias,
        AttentionOptions::default(),
    );
    // and the explicit, chunked path of the autodiff backend
    let ad_bias = LayerPosition::Bias {
        bias: Tensor::from_inner(dense),
    };
    let ours_ad = ad_block.attn.forward(
        Tensor::from_inner(x.clone()),
        AttnMask::Causal,
        &ad_bias,
        AttentionOptions { query_chunk: 4 },
    );
    // by hand
    let qkv = block.attn.qkv.forward(x);
    let split = |i: usize| {
        qkv.clone()
            .narrow(2, i * 16, 16)
            .reshape([1, 6, 2, 8])
            .swap_dims(1, 2)
    };
    let (q, k, v) = (split(0), split(1), split(2));
    let logits = (q.matmul(k.swap_dims(2, 3)) + pq.matmul(pk.swap_dims(2, 3))) / 8f32.sqrt();
    let mask = Tensor::<B, 2, burn::tensor::Bool>::tril_mask([6, 6], 0, &DEV)
        .reshape([1, 1, 6, 6])
        .expand([1, 2, 6, 6]);
    let probs = burn::tensor::activation::softmax(logits.mask_fill(mask, -1e9), 3);
    let by_hand = block
        .attn
        .proj
        .forward(probs.matmul(v).swap_dims(1, 2).reshape([1, 6, 16]));
    let by_hand = to_vec(by_hand);
    assert!(max_abs_diff(&to_vec(ours), &by_hand) < 1e-5);
    assert!(max_abs_diff(&to_vec(ours_bias), &by_hand) < 1e-5);
    assert!(max_abs_diff(&to_vec(ours_ad.inner()), &by_hand) < 1e-5);
}

#[test]
fn rope_scores_depend_only_on_relative_offset() {
    let _rng = rng_lock();
    use seqpe_core::attention::apply_rotary;
    for kind in [PeKind::Rope, PeKind::Rope2d] {
        let cfg = PositionEncodingConfig::new(kind, 16, 1, 1, vec![8]);
        let pe = cfg.init::<B>(&DEV);
        let grid = if kind == PeKind::Rope {
            PositionGrid::sequence(40)
        } else {
            PositionGrid::new(0, vec![6, 7])
        };
        let ctx = pe.context(&grid, 1, None, &DEV).unwrap();
        let LayerPosition::Rotary { cos, sin } = ctx.layer(0) else {
            panic!("rotary expected")
        };
        // the same q and k vector at every position
        let qv: Tensor<B, 4> = Tensor::random([1, 1, 1, 16], Distribution::Normal(0.0, 1.0), &DEV);
        let kv: Tensor<B, 4> = Tensor::random([1, 1, 1, 16], Distribution::Normal(0.0, 1.0), &DEV);
        let n = grid.len();
        let q = apply_rotary(qv.expand([1, 1, n, 16]), cos.clone(), sin.clone());
        let k = apply_rotary(kv.expand([1, 1, n, 16]), cos, sin);
        let scores = to_vec(q.matmul(k.swap_dims(2, 3)));
        let s = |i: usize, j: usize| scores[i * n + j];
        if kind == PeKind::Rope {
            for (i, j, di) in [(0, 3, 10), (5, 1, 20), (30, 30, 7)] {
                assert!(
                    (s(i, j) - s(i + di, j + di)).abs() < 1e-3,
                    "rope offset {i},{j}"
                );
            }
            assert!(
                (s(0, 3) - s(0, 9)).abs() > 1e-3,
                "scores do depend on the offset"
            );
        } else {
            // (r, c) → r*7 + c; shift both by (dr, dc)
            let at = |r: usize, c: usize| r * 7 + c;
            for ((r1, c1), (r2, c2), (dr, dc)) in
                [((0, 0), (1, 2), (3, 4)), ((2, 5), (0, 1), (1, 1))]
            {
                let a = s(at(r1, c1), at(r2, c2));
                let b = s(at(r1 + dr, c1 + dc), at(r2 + dr, c2 + dc));
                assert!((a - b).abs() < 1e-3, "rope2d offset");
            }
        }
    }
}

#[test]
fn learned_interpolation_keeps_the_endpoints() {
    let _rng = rng_lock();
    let cfg = PositionEncodingConfig::new(PeKind::Learned, 8, 2, 1, vec![5]);
    let pe = cfg.init::<B>(&DEV);
    let seqpe_core::PositionEncoding::Learned(l) = &pe else {
        panic!()
    };
    let table = to_vec(l.weight.val());
    // a shorter input reads the first rows (GPT-2), it does not squeeze the table
    let short = to_vec(l.resized(&[3]).unwrap());
    assert_eq!(short, table[..3 * 8].to_vec());
    let big = to_vec(l.resized(&[17]).unwrap());
    assert_eq!(big.len(), 17 * 8);
    assert!(
        max_abs_diff(&big[..8], &table[..8]) < 1e-6,
        "first row kept"
    );
    assert!(
        max_abs_diff(&big[16 * 8..], &table[4 * 8..]) < 1e-6,
        "last row kept"
    );
    // the middle row (x = 2.0) equals row 2 exactly; row 2 of 17 (x = 0.5) is the mean of rows 0, 1
    assert!(max_abs_diff(&big[8 * 8..9 * 8], &table[2 * 8..3 * 8]) < 1e-6);
    let mean: Vec<f32> = (0..8).map(|j| 0.5 * (table[j] + table[8 + j])).collect();
    assert!(max_abs_diff(&big[2 * 8..3 * 8], &mean) < 1e-6);
    // 2-D bicubic to a larger grid keeps shape and is finite
    let cfg2 = PositionEncodingConfig::new(PeKind::Learned, 8, 2, 1, vec![3, 3]).with_prefix(1);
    let pe2 = cfg2.init::<B>(&DEV);
    let ctx = pe2
        .context(&PositionGrid::new(1, vec![5, 6]), 2, None, &DEV)
        .unwrap();
    let input = ctx.input.unwrap();
    assert_eq!(input.dims(), [1, 31, 8]);
    assert!(to_vec(input).iter().all(|v| v.is_finite()));
}

fn seqpe_config(dims: usize, d: usize, injection: SeqPeInjection, per_layer: bool) -> SeqPeConfig {
    SeqPeConfig::new(SeqPeEncoderConfig::new(dims, 2, 16, d, 1).with_resid_dropout(0.0))
        .with_injection(injection)
        .with_per_layer(per_layer)
}

#[test]
fn every_encoding_runs_through_the_shared_stack_in_1d_and_2d() {
    let _rng = rng_lock();
    let (d, h, layers) = (16, 2, 2);
    let stack = TransformerConfig::new(d, h, layers).init::<B>(&DEV);
    let cases: Vec<(PeKind, Option<SeqPeConfig>, PositionGrid, AttnMask)> = vec![
        (
            PeKind::SeqPe,
            Some(seqpe_config(1, d, SeqPeInjection::AttnScalar, false)),
            PositionGrid::sequence(12),
            AttnMask::Causal,
        ),
        (
            PeKind::SeqPe,
            Some(seqpe_config(1, d, SeqPeInjection::InputAdd, false)),
            PositionGrid::sequence(12),
            AttnMask::Causal,
        ),
        (
            PeKind::SeqPe,
            Some(seqpe_config(2, d, SeqPeInjection::AttnMul, true)),
            PositionGrid::new(1, vec![3, 4]),
            AttnMask::Full,
        ),
        (
            PeKind::Learned,
            None,
            PositionGrid::sequence(12),
            AttnMask::Causal,
        ),
        (
            PeKind::Sinusoidal,
            None,
            PositionGrid::new(1, vec![3, 4]),
            AttnMask::Full,
        ),
        (
            PeKind::Rope,
            None,
            PositionGrid::sequence(12),
            AttnMask::Causal,
        ),
        (
            PeKind::Rope2d,
            None,
            PositionGrid::new(1, vec![3, 4]),
            AttnMask::Full,
        ),
        (
            PeKind::RopeMixed,
            None,
            PositionGrid::new(1, vec![3, 4]),
            AttnMask::Full,
        ),
        (
            PeKind::Alibi,
            None,
            PositionGrid::sequence(12),
            AttnMask::Causal,
        ),
        (
            PeKind::None,
            None,
            PositionGrid::sequence(12),
            AttnMask::Causal,
        ),
    ];
    let mut outputs = Vec::new();
    for (kind, seqpe, grid, mask) in cases {
        let trained = if grid.dims() == 1 {
            vec![12]
        } else {
            vec![3, 4]
        };
        let mut cfg =
            PositionEncodingConfig::new(kind, d, h, layers, trained).with_prefix(grid.prefix);
        cfg.seqpe = seqpe;
        let pe = cfg.init::<B>(&DEV);
        assert_eq!(pe.kind(), kind);
        let batch = 3;
        let x: Tensor<B, 3> =
            Tensor::random([batch, grid.len(), d], Distribution::Normal(0.0, 1.0), &DEV);
        let ctx = pe
            .context(&grid, batch, None, &DEV)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let y = stack.forward(
            ctx.add_to_input(x.clone()),
            mask,
            |i| ctx.layer(i),
            AttentionOptions::default(),
        );
        assert_eq!(y.dims(), [batch, grid.len(), d]);
        let y = to_vec(y);
        assert!(y.iter().all(|v| v.is_finite()), "{kind:?}");
        outputs.push((kind, y));
        let _ = x;
    }
    // position information changes the output (NoPE is the last case)
    let nope = &outputs.last().unwrap().1;
    for (kind, y) in &outputs[..outputs.len() - 1] {
        if y.len() == nope.len() {
            assert!(max_abs_diff(y, nope) > 1e-4, "{kind:?} had no effect");
        }
    }
}

#[test]
fn seqpe_extrapolates_and_caches_its_table() {
    let _rng = rng_lock();
    let cfg = PositionEncodingConfig::new(PeKind::SeqPe, 16, 2, 1, vec![8]).with_seqpe(Some(
        SeqPeConfig::new(SeqPeEncoderConfig::new(1, 5, 16, 16, 1).with_resid_dropout(0.0)),
    ));
    let pe = cfg.init::<B>(&DEV);
    let cache = PeTableCache::new();
    for len in [8, 64, 64, 8, 4096] {
        let grid = PositionGrid::sequence(len);
        let ctx = cache.context(&pe, &grid, 2, &DEV).unwrap();
        // short inputs get one shared dense bias, long ones the widened q/k form
        match ctx.layer(0) {
            LayerPosition::Bias { bias } => assert_eq!(bias.dims(), [1, 2, len, len]),
            LayerPosition::ScalarProduct { .. } => assert!(len >= 2048),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(cache.builds(), 3, "one build per distinct length");
    // a position beyond the digit width is an error, not a panic
    let err = cache
        .context(&pe, &PositionGrid::sequence(100_001), 1, &DEV)
        .unwrap_err();
    assert!(err.to_string().contains("100000"), "{err}");
    assert!(
        err.to_string().contains("model.seqpe_max_position"),
        "the error names the setting: {err}"
    );
}

#[test]
fn shifted_groups_tile_over_the_batch() {
    let _rng = rng_lock();
    let cfg = PositionEncodingConfig::new(PeKind::SeqPe, 16, 2, 1, vec![4])
        .with_seqpe(Some(seqpe_config(1, 16, SeqPeInjection::AttnScalar, false)));
    let pe = cfg.init::<B>(&DEV);
    let grid = PositionGrid::sequence(4).with_starts(vec![0, 10]);
    let ctx = pe.context(&grid, 4, None, &DEV).unwrap();
    let LayerPosition::Bias { bias: q } = ctx.layer(0) else {
        panic!()
    };
    assert_eq!(q.dims(), [4, 2, 4, 4]);
    let rows: Vec<Vec<f32>> = (0..4).map(|b| to_vec(q.clone().narrow(0, b, 1))).collect();
    assert_eq!(rows[0], rows[2]);
    assert_eq!(rows[1], rows[3]);
    assert_ne!(rows[0], rows[1]);
    // the context says which positions it encodes (tasks with position-dependent targets read
    // the shifted corners there)
    assert_eq!(ctx.grid.as_ref(), Some(&grid));
}

#[test]
fn reference_import_names_the_offending_key() {
    let _rng = rng_lock();
    use seqpe_core::reference::{load_reference_encoder, SafetensorsFile};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // a file with a wrong-shaped token embedding
    let d = 8usize;
    let bad: Vec<u8> = vec![0u8; 10 * (d + 1) * 4];
    let views = vec![(
        "token_of_seqpe_embed.weight".to_string(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![10, d + 1], &bad)
            .unwrap(),
    )];
    let path = dir.join("bad.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let file = SafetensorsFile::open(&path).unwrap();
    let cfg = SeqPeEncoderConfig::new(1, 3, d, 4, 1);
    let err = load_reference_encoder::<B>(&file, &cfg, &DEV)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token_of_seqpe_embed.weight") && err.contains("[10, 8]"),
        "{err}"
    );
    // truncated file
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = SafetensorsFile::open(&cut).err().unwrap().to_string();
    assert!(
        err.contains("cut.safetensors") && err.contains("truncated"),
        "{err}"
    );
    // missing file
    let err = SafetensorsFile::open(dir.join("nope.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
}

/// Found by the `reference_weights` fuzz target (docs/reliability.md): a file whose `config`
/// asks for 3 heads over a width of 8 made the encoder's constructor panic; now an error naming
/// the file and the setting, before any model is built. A width the tensors do not back is refused
/// by the token embedding's shape before anything of that width is allocated.
#[test]
fn reference_weights_of_an_impossible_configuration_are_an_error() {
    let _rng = rng_lock();
    use seqpe_core::reference::{load_reference_encoder, SafetensorsFile};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-found/reference-heads-not-dividing-width.safetensors");
    let file = SafetensorsFile::open(&path).unwrap();
    let config = file.reference_config().unwrap();
    assert_eq!((config.d_model, config.heads), (8, 3));
    let err = load_reference_encoder::<B>(&file, &config.encoder_config(), &DEV)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("reference-heads-not-dividing-width.safetensors")
            && err.contains("d_model 8 must be a positive multiple of heads 3"),
        "{err}"
    );
    let huge = SeqPeEncoderConfig::new(2, 2, 1 << 30, 8, 1);
    let err = load_reference_encoder::<B>(&file, &huge, &DEV)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("token_of_seqpe_embed.weight"), "{err}");
}

#[test]
fn small_encoder_shapes() {
    let _rng = rng_lock();
    let enc = small_encoder::<B>(2, 2, 12);
    let out = enc.encode(&[0, 0, 3, 14, 99, 99]).unwrap();
    assert_eq!(out.dims(), [3, 12]);
    assert!(enc.encode(&[100, 0]).is_err());
}
