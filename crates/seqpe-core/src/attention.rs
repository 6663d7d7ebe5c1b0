//! Multi-head self-attention with a single seam for position information.
//!
//! Every position encoding in this crate reaches attention through [`LayerPosition`]: an additive
//! linear bias (ALiBi), a rotation of q/k (RoPE, RoPE-2D, RoPE-Mixed), an element-wise modulation
//! of q/k (SeqPE `attn_mul`, the ViT recipe) or an extra dot-product term (SeqPE `attn_scalar`,
//! the GPT recipe). Encodings that act on the input (`input_add`, learned absolute, sinusoidal)
//! pass [`LayerPosition::None`].
//!
//! `attn_scalar` adds `p_q·p_k` to `q·k` *before* the `1/sqrt(d_head)` scaling. That equals one dot
//! product of the concatenations `[q | p_q]·[k | p_k]` under the same scaling, which is how it is
//! computed here: no `[heads, n, n]` bias tensor is ever built, so long inputs stay cheap.
//!
//! Scores are computed one query chunk at a time ([`AttentionOptions::query_chunk`]): at most one
//! `[batch, heads, chunk, n]` score tensor exists per layer, so 8k+ token inputs fit in memory.
//! With a causal mask a chunk only reads the keys it can see.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor};

/// Large negative logit for masked entries (finite, so a fully masked row never yields NaN).
const MASKED: f32 = -1.0e9;

/// Which keys each query may attend to.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum AttnMask {
    /// Query `i` sees keys `0..=i` (GPT, and the SeqPE encoder by default).
    Causal,
    /// Every query sees every key (ViT, the SeqPE encoder's `bi` option).
    Full,
}

/// Position information for one attention layer. Tensors broadcast over the batch when their
/// first dimension is 1; otherwise it equals the batch size.
#[derive(Debug, Clone)]
pub enum LayerPosition<B: Backend> {
    /// The encoding acts elsewhere (input embeddings) or there is none.
    None,
    /// Rotate q and k (RoPE family). `cos`/`sin`: `[b|1, heads|1, n, d_head/2]`, rotate-half layout.
    Rotary {
        cos: Tensor<B, 4>,
        sin: Tensor<B, 4>,
    },
    /// SeqPE `attn_mul`: `q ← q ⊙ p_q`, `k ← k ⊙ p_k`. Shapes `[b|1, heads, n, d_head]`.
    Multiply { q: Tensor<B, 4>, k: Tensor<B, 4> },
    /// SeqPE `attn_scalar`: logits `(q·k + p_q·p_k)/sqrt(d_head)`. Shapes `[b|1, heads, n, d_pe]`.
    ScalarProduct { q: Tensor<B, 4>, k: Tensor<B, 4> },
    /// ALiBi: logits `+= -slope_h · (i − j)` after scaling. `slopes`: `[1, heads, 1, 1]`.
    LinearBias { slopes: Tensor<B, 4> },
    /// A precomputed additive bias on the scaled logits, `[b|1, heads|1, n, n]`. SeqPE
    /// `attn_scalar` uses it for short inputs: `p_q·p_kᵀ/√d_h` is computed once per forward pass and
    /// shared by every layer and batch row, instead of widening q and k in every layer.
    Bias { bias: Tensor<B, 4> },
}

impl<B: Backend> LayerPosition<B> {
    /// `f` applied to every tensor of the context (each `[b|1, heads|1, n, ·]`): the one walk over
    /// the variants that tiling and casting a context share ([`crate::PositionContext::cast`]).
    pub fn map(self, f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>) -> Self {
        match self {
            LayerPosition::None => LayerPosition::None,
            LayerPosition::Rotary { cos, sin } => LayerPosition::Rotary {
                cos: f(cos),
                sin: f(sin),
            },
            LayerPosition::Multiply { q, k } => LayerPosition::Multiply { q: f(q), k: f(k) },
            LayerPosition::ScalarProduct { q, k } => {
                LayerPosition::ScalarProduct { q: f(q), k: f(k) }
            }
            LayerPosition::LinearBias { slopes } => LayerPosition::LinearBias { slopes: f(slopes) },
            LayerPosition::Bias { bias } => LayerPosition::Bias { bias: f(bias) },
        }
    }
}

/// Extra logits added after scaling.
#[derive(Debug, Clone, Copy)]
pub enum ScoreBias<'a, B: Backend> {
    /// ALiBi slopes `[1, heads, 1, 1]`: `−slope·(i − j)`.
    Linear(&'a Tensor<B, 4>),
    /// A dense bias `[b|1, heads|1, nq, nk]`.
    Dense(&'a Tensor<B, 4>),
}

/// Runtime options of attention that do not change the weights.
#[derive(Debug, Clone, Copy)]
pub struct AttentionOptions {
    /// Queries per score block. Inputs longer than this are processed chunk by chunk.
    pub query_chunk: usize,
}

impl Default for AttentionOptions {
    fn default() -> Self {
        Self { query_chunk: 1024 }
    }
}

/// `x1*cos − x2*sin | x2*cos + x1*sin` over the two halves of the last dimension.
pub fn apply_rotary<B: Backend>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, h, n, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..n, 0..half]);
    let x2 = x.slice([0..b, 0..h, 0..n, half..d]);
    Tensor::cat(
        vec![
            x1.clone() * cos.clone() - x2.clone() * sin.clone(),
            x2 * cos + x1 * sin,
        ],
        3,
    )
}

fn batch_to<B: Backend>(t: Tensor<B, 4>, batch: usize) -> Tensor<B, 4> {
    let [tb, h, n, d] = t.dims();
    if tb == batch {
        t
    } else {
        t.expand([batch, h, n, d])
    }
}

/// Scaled dot-product attention over `q [b,h,nq,dk]`, `k [b,h,nk,dk]`, `v [b,h,nk,dv]`.
///
/// `scale` multiplies `q·k`; `bias` (ALiBi slopes or a dense bias) is added after scaling; probabilities go
/// through `dropout` (active only under autodiff). Queries are processed in chunks of
/// `options.query_chunk`. Without autodiff, dropout or bias, the backend's fused kernel is used.
pub fn scaled_dot_product<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    scale: f64,
    mask: AttnMask,
    bias: Option<ScoreBias<'_, B>>,
    dropout: &Dropout,
    options: AttentionOptions,
) -> Tensor<B, 4> {
    let device = q.device();
    let [b, h, nq, _] = q.dims();
    let nk = k.dims()[2];
    let causal = mask == AttnMask::Causal;
    let needs_dropout = B::ad_enabled(&device) && dropout.prob > 0.0;
    let dense = match bias {
        Some(ScoreBias::Dense(b)) => Some(b),
        _ => None,
    };
    let linear = match bias {
        Some(ScoreBias::Linear(s)) => Some(s),
        _ => None,
    };
    if !B::ad_enabled(&device) && !needs_dropout && linear.is_none() && nq == nk {
        // `attn_scalar`'s widened keys are wider than the values. LibTorch's fused CPU kernel
        // only takes equal widths and otherwise falls back to a path ~10× slower at 4k tokens
        // (measured with torch 2.9, one thread), so on LibTorch the values are padded with zeros
        // to the key width and the padding is dropped from the output. Flex's and CubeCL's
        // kernels take unequal widths, and padding would only add work there.
        let (dk, dv) = (q.dims()[3], v.dims()[3]);
        let pad = dk > dv && B::name(&device).contains("libtorch");
        let v = if pad {
            let [vb, vh, vn, _] = v.dims();
            Tensor::cat(vec![v, Tensor::zeros([vb, vh, vn, dk - dv], &device)], 3)
        } else {
            v
        };
        let out = burn::tensor::module::attention(
            q,
            k,
            v,
            None,
            // expanded so that backends without broadcasting in the fused kernel accept it
            dense.map(|d| d.clone().expand([b, h, nq, nk])),
            AttentionModuleOptions {
                scale: Some(scale),
                softcap: None,
                is_causal: causal,
            },
        );
        return if pad { out.narrow(3, 0, dv) } else { out };
    }
    // With a causal mask the queries are the last `nq` of the `nk` keys (nq == nk in training).
    let q_offset = nk - nq;
    let chunk = options.query_chunk.max(1);
    let dv = v.dims()[3];
    let mut outputs = Vec::with_capacity(nq.div_ceil(chunk));
    let mut start = 0;
    while start < nq {
        let len = chunk.min(nq - start);
        let klen = if causal { q_offset + start + len } else { nk };
        let qc = if len == nq {
            q.clone()
        } else {
            q.clone().narrow(2, start, len)
        };
        let (kc, vc) = if klen == nk {
            (k.clone(), v.clone())
        } else {
            (k.clone().narrow(2, 0, klen), v.clone().narrow(2, 0, klen))
        };
        let mut scores = qc.matmul(kc.swap_dims(2, 3)) * scale;
        if let Some(bias) = dense {
            let [bb, bh, _, _] = bias.dims();
            let rows = bias
                .clone()
                .slice([0..bb, 0..bh, start..start + len, 0..klen]);
            scores = scores + rows;
        }
        if causal || linear.is_some() {
            // distance[i, j] = (query position) − (key position)
            let qpos = Tensor::<B, 1, Int>::arange(
                (q_offset + start) as i64..(q_offset + start + len) as i64,
                &device,
            )
            .reshape([len, 1]);
            let kpos = Tensor::<B, 1, Int>::arange(0..klen as i64, &device).reshape([1, klen]);
            let distance = qpos.sub(kpos); // [len, klen]
            if let Some(slopes) = linear {
                // in the slopes' dtype (bf16 in a mixed-precision step; a no-op at f32)
                let d = distance
                    .clone()
                    .float()
                    .cast(slopes.dtype())
                    .reshape([1, 1, len, klen]);
                scores = scores + d.mul(slopes.clone().neg());
            }
            if causal {
                let blocked = distance.lower_elem(0).reshape([1, 1, len, klen]);
                scores = scores.mask_fill(blocked.expand([b, h, len, klen]), MASKED);
            }
        }
        let probs = dropout.forward(softmax(scores, 3));
        outputs.push(probs.matmul(vc));
        start += len;
    }
    let out = if outputs.len() == 1 {
        outputs.pop().unwrap()
    } else {
        Tensor::cat(outputs, 2)
    };
    debug_assert_eq!(out.dims(), [b, h, nq, dv]);
    out
}

/// Configuration of [`SelfAttention`].
#[derive(Config, Debug)]
pub struct SelfAttentionConfig {
    pub d_model: usize,
    pub n_heads: usize,
    /// Dropout on attention probabilities (reference `attn_pdrop`).
    #[config(default = 0.0)]
    pub attn_dropout: f64,
    /// Dropout on the output projection (reference `resid_pdrop`).
    #[config(default = 0.0)]
    pub resid_dropout: f64,
    #[config(default = true)]
    pub qkv_bias: bool,
    /// Standard deviation of the normal init of the weights (biases start at 0).
    #[config(default = 0.02)]
    pub init_std: f64,
}

/// Fused-QKV multi-head self-attention (GPT-2 / timm layout: one `d → 3d` projection whose columns
/// are `[q | k | v]`, each split into contiguous head slices).
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub qkv: Linear<B>,
    pub proj: Linear<B>,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    pub n_heads: usize,
}

/// Applies `linear` to the last dimension of `x` through a 2-D matrix product.
///
/// Burn's `Linear` on a `[b, n, d]` input computes the weight gradient as a batched product
/// followed by a sum over `b`, which materialises `b` copies of the weight gradient; flattening the
/// leading dimensions first makes the backward pass one GEMM (7× faster for the SeqPE encoder's
/// thousands of 6-token sequences, measured with `examples/encoder_profile.rs`).
pub fn linear_2d<B: Backend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = linear.forward(x.reshape([rows, d_in]));
    let mut out = dims;
    out[D - 1] = y.dims()[1];
    y.reshape(out)
}

/// A `Linear` with normal(0, std) weights and zero bias: the reference init everywhere.
pub fn normal_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_bias(false)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    linear.bias = bias.then(|| Initializer::Zeros.init([d_out], device));
    linear
}

impl SelfAttentionConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> SelfAttention<B> {
        assert!(
            self.d_model % self.n_heads == 0,
            "d_model {} is not divisible by n_heads {}",
            self.d_model,
            self.n_heads
        );
        SelfAttention {
            qkv: normal_linear(
                self.d_model,
                3 * self.d_model,
                self.qkv_bias,
                self.init_std,
                device,
            ),
            proj: normal_linear(self.d_model, self.d_model, true, self.init_std, device),
            attn_dropout: DropoutConfig::new(self.attn_dropout).init(),
            resid_dropout: DropoutConfig::new(self.resid_dropout).init(),
            n_heads: self.n_heads,
        }
    }
}

/// The keys and values a layer has computed so far (incremental decoding). Keys are stored as
/// attention uses them: rotated (RoPE), modulated (`attn_mul`) or widened with `p_k`
/// (`attn_scalar`), so later queries need only their own position information.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// `[b, heads, t, d_k]` and `[b, heads, t, d_head]`.
    pub k: Option<Tensor<B, 4>>,
    pub v: Option<Tensor<B, 4>>,
}

impl<B: Backend> Default for KvCache<B> {
    fn default() -> Self {
        Self { k: None, v: None }
    }
}

impl<B: Backend> KvCache<B> {
    /// Cached positions.
    pub fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `k`, `v` of new tokens and returns all keys and values.
    fn extend(&mut self, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let k = match self.k.take() {
            Some(old) => Tensor::cat(vec![old, k], 2),
            None => k,
        };
        let v = match self.v.take() {
            Some(old) => Tensor::cat(vec![old, v], 2),
            None => v,
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        (k, v)
    }
}

impl<B: Backend> SelfAttention<B> {
    /// `x [b, n, d] → [b, n, d]` (after the output projection and residual dropout).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: AttnMask,
        position: &LayerPosition<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 3> {
        self.forward_inner(x, mask, position, options, None)
    }

    /// Incremental decoding: `x [b, n_new, d]` are the next tokens after the `cache.len()`
    /// cached ones; `position` holds their rows only (queries and new keys; a dense bias covers
    /// every key). Their keys and values are appended to `cache`. With a causal mask this equals
    /// the last `n_new` rows of [`Self::forward`] over the whole sequence.
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        mask: AttnMask,
        position: &LayerPosition<B>,
        options: AttentionOptions,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        self.forward_inner(x, mask, position, options, Some(cache))
    }

    fn forward_inner(
        &self,
        x: Tensor<B, 3>,
        mask: AttnMask,
        position: &LayerPosition<B>,
        options: AttentionOptions,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, n, d] = x.dims();
        let h = self.n_heads;
        let dh = d / h;
        let heads = |t: Tensor<B, 3>| t.reshape([b, n, h, dh]).swap_dims(1, 2);
        let qkv = linear_2d(&self.qkv, x);
        let q = heads(qkv.clone().narrow(2, 0, d));
        let k = heads(qkv.clone().narrow(2, d, d));
        let v = heads(qkv.narrow(2, 2 * d, d));
        let scale = 1.0 / (dh as f64).sqrt();
        let (q, k, bias) = match position {
            LayerPosition::None => (q, k, None),
            LayerPosition::Rotary { cos, sin } => (
                apply_rotary(q, cos.clone(), sin.clone()),
                apply_rotary(k, cos.clone(), sin.clone()),
                None,
            ),
            LayerPosition::Multiply { q: pq, k: pk } => (q * pq.clone(), k * pk.clone(), None),
            LayerPosition::ScalarProduct { q: pq, k: pk } => (
                Tensor::cat(vec![q, batch_to(pq.clone(), b)], 3),
                Tensor::cat(vec![k, batch_to(pk.clone(), b)], 3),
                None,
            ),
            LayerPosition::LinearBias { slopes } => (q, k, Some(ScoreBias::Linear(slopes))),
            LayerPosition::Bias { bias } => (q, k, Some(ScoreBias::Dense(bias))),
        };
        let (k, v) = match cache {
            Some(c) => c.extend(k, v),
            None => (k, v),
        };
        let out = scaled_dot_product(q, k, v, scale, mask, bias, &self.attn_dropout, options);
        let out = out.swap_dims(1, 2).reshape([b, n, d]);
        self.resid_dropout.forward(linear_2d(&self.proj, out))
    }

    /// The output row of the **last** token only, `[b, n, d] → [b, 1, d]`, with every token as a
    /// key/value and no position context. The last query sees every key under both the causal and
    /// the full mask, so this equals the last row of [`Self::forward`] while computing the query,
    /// the scores and the output projection for one row instead of `n`. The SeqPE encoder uses it
    /// in its final block, whose only consumed output is the CLS row.
    pub fn forward_last(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, d] = x.dims();
        let h = self.n_heads;
        let dh = d / h;
        let w = self.qkv.weight.val();
        let bias = self.qkv.bias.as_ref().map(|p| p.val());
        let last = x.clone().narrow(1, n - 1, 1).reshape([b, d]);
        let mut q = last.matmul(w.clone().narrow(1, 0, d));
        let mut kv = x.reshape([b * n, d]).matmul(w.narrow(1, d, 2 * d));
        if let Some(bias) = bias {
            q = q + bias.clone().narrow(0, 0, d).unsqueeze_dim(0);
            kv = kv + bias.narrow(0, d, 2 * d).unsqueeze_dim(0);
        }
        let q = q.reshape([b, 1, h, dh]).swap_dims(1, 2);
        let kv = kv.reshape([b, n, 2 * d]);
        let k = kv
            .clone()
            .narrow(2, 0, d)
            .reshape([b, n, h, dh])
            .swap_dims(1, 2);
        let v = kv.narrow(2, d, d).reshape([b, n, h, dh]).swap_dims(1, 2);
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (dh as f64).sqrt());
        let probs = self.attn_dropout.forward(softmax(scores, 3));
        let out = probs.matmul(v).swap_dims(1, 2).reshape([b, d]);
        self.resid_dropout
            .forward(self.proj.forward(out))
            .reshape([b, 1, d])
    }
}
