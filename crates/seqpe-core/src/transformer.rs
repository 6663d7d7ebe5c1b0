//! The one pre-LN transformer stack of the project.
//!
//! The SeqPE encoder, the GPT of `seqpe-text`, the ViT of `seqpe-vision` and the QA model all run
//! this stack: `h += Drop(Attn(LN1(h)))`, then `h += Drop(MLP(LN2(h)))`, with the position
//! information of each layer passed in as a [`LayerPosition`] (see [`crate::attention`]).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::attention::{
    linear_2d, normal_linear, AttentionOptions, AttnMask, KvCache, LayerPosition, SelfAttention,
    SelfAttentionConfig,
};

/// MLP activation.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    /// GELU with the tanh approximation (GPT-2 `gelu_new`; the SeqPE encoder).
    GeluTanh,
    /// Exact (erf) GELU (timm ViT).
    Gelu,
}

/// Configuration of a [`Transformer`] stack.
#[derive(Config, Debug)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    /// Hidden width of the MLP as a multiple of `d_model`.
    #[config(default = 4)]
    pub mlp_ratio: usize,
    #[config(default = 0.0)]
    pub attn_dropout: f64,
    #[config(default = 0.0)]
    pub resid_dropout: f64,
    #[config(default = "Activation::GeluTanh")]
    pub activation: Activation,
    #[config(default = 1e-5)]
    pub ln_eps: f64,
    #[config(default = true)]
    pub qkv_bias: bool,
    #[config(default = 0.02)]
    pub init_std: f64,
    /// Init std of the residual output projections (attention `proj`, MLP `proj`); `None`:
    /// `init_std`. GPT-2 uses `0.02/√(2·n_layers)` (HF `c_proj` init).
    #[config(default = "None")]
    pub resid_init_std: Option<f64>,
}

/// Two-layer feed-forward network `d → ratio·d → d`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub fc: Linear<B>,
    pub proj: Linear<B>,
    pub dropout: Dropout,
    pub activation: Activation,
}

impl<B: Backend> Mlp<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let x = linear_2d(&self.fc, x);
        let x = match self.activation {
            Activation::GeluTanh => gelu_tanh(x),
            Activation::Gelu => gelu(x),
        };
        self.dropout.forward(linear_2d(&self.proj, x))
    }
}

/// GELU with the tanh approximation (GPT-2 `gelu_new`), written with the identity
/// `½(1 + tanh(u)) = σ(2u)`: `x·σ(2·√(2/π)·(x + 0.044715·x³))`. Same function as
/// `burn::tensor::activation::gelu_approximate`, about twice as fast on the CPU backend.
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    const TWO_SQRT_2_OVER_PI: f64 = 1.595_769_121_605_730_8;
    let cube = x.clone() * x.clone() * x.clone();
    let u = (x.clone() + cube * 0.044715) * TWO_SQRT_2_OVER_PI;
    x * sigmoid(u)
}

/// One pre-LN block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub ln1: LayerNorm<B>,
    pub attn: SelfAttention<B>,
    pub ln2: LayerNorm<B>,
    pub mlp: Mlp<B>,
}

impl<B: Backend> Block<B> {
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: AttnMask,
        position: &LayerPosition<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 3> {
        let x = x.clone()
            + self
                .attn
                .forward(self.ln1.forward(x), mask, position, options);
        x.clone() + self.mlp.forward(self.ln2.forward(x))
    }
}

impl<B: Backend> Block<B> {
    /// [`Self::forward`] for the next tokens of a sequence whose earlier keys and values are in
    /// `cache` (see [`SelfAttention::forward_cached`]).
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        mask: AttnMask,
        position: &LayerPosition<B>,
        options: AttentionOptions,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let x = x.clone()
            + self
                .attn
                .forward_cached(self.ln1.forward(x), mask, position, options, cache);
        x.clone() + self.mlp.forward(self.ln2.forward(x))
    }

    /// The output row of the last token only (`[b, n, d] → [b, 1, d]`), exact under the causal and
    /// the full mask; see [`SelfAttention::forward_last`].
    pub fn forward_last(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let n = x.dims()[1];
        let last = x.clone().narrow(1, n - 1, 1);
        let h = last + self.attn.forward_last(self.ln1.forward(x));
        h.clone() + self.mlp.forward(self.ln2.forward(h))
    }
}

/// A stack of pre-LN blocks (no final LayerNorm: models add their own).
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    pub blocks: Vec<Block<B>>,
}

impl TransformerConfig {
    pub fn init_block<B: Backend>(&self, device: &B::Device) -> Block<B> {
        let d = self.d_model;
        let resid_std = self.resid_init_std.unwrap_or(self.init_std);
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.ln_eps)
                .init(device)
        };
        let mut attn = SelfAttentionConfig::new(d, self.n_heads)
            .with_attn_dropout(self.attn_dropout)
            .with_resid_dropout(self.resid_dropout)
            .with_qkv_bias(self.qkv_bias)
            .with_init_std(self.init_std)
            .init(device);
        if self.resid_init_std.is_some() {
            attn.proj = normal_linear(d, d, true, resid_std, device);
        }
        Block {
            ln1: ln(),
            attn,
            ln2: ln(),
            mlp: Mlp {
                fc: normal_linear(d, self.mlp_ratio * d, true, self.init_std, device),
                proj: normal_linear(self.mlp_ratio * d, d, true, resid_std, device),
                dropout: DropoutConfig::new(self.resid_dropout).init(),
                activation: self.activation,
            },
        }
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Transformer<B> {
        Transformer {
            blocks: (0..self.n_layers)
                .map(|_| self.init_block(device))
                .collect(),
        }
    }
}

impl<B: Backend> Transformer<B> {
    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Fresh (empty) key/value caches, one per layer.
    pub fn new_cache(&self) -> Vec<KvCache<B>> {
        (0..self.blocks.len()).map(|_| KvCache::default()).collect()
    }

    /// Runs every block on the next tokens of a sequence, with one cache per layer.
    pub fn forward_cached(
        &self,
        mut x: Tensor<B, 3>,
        mask: AttnMask,
        position: impl Fn(usize) -> LayerPosition<B>,
        options: AttentionOptions,
        caches: &mut [KvCache<B>],
    ) -> Tensor<B, 3> {
        assert_eq!(caches.len(), self.blocks.len(), "one cache per layer");
        for (i, (block, cache)) in self.blocks.iter().zip(caches.iter_mut()).enumerate() {
            x = block.forward_cached(x, mask, &position(i), options, cache);
        }
        x
    }

    /// Runs every block; `position(i)` gives layer `i`'s position context.
    pub fn forward(
        &self,
        mut x: Tensor<B, 3>,
        mask: AttnMask,
        position: impl Fn(usize) -> LayerPosition<B>,
        options: AttentionOptions,
    ) -> Tensor<B, 3> {
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, mask, &position(i), options);
        }
        x
    }
}
