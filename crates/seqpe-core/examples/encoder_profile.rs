//! Rough timing of the SeqPE encoder pieces under autodiff (not a test):
//! `cargo run -p seqpe-core --example encoder_profile`.
use std::time::Instant;

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Int, Tensor};
use seqpe_core::transformer::TransformerConfig;
use seqpe_core::{AttentionOptions, AttnMask, LayerPosition, SeqPeEncoderConfig};

type AD = Autodiff<Flex>;

fn time(label: &str, f: impl Fn() -> Tensor<AD, 1>) {
    for i in 0..2 {
        let t = Instant::now();
        let loss = f();
        let f_ms = t.elapsed().as_secs_f64() * 1e3;
        let _ = loss.clone().into_data();
        let fwd = t.elapsed().as_secs_f64() * 1e3;
        let _g = loss.backward();
        let all = t.elapsed().as_secs_f64() * 1e3;
        if i == 1 {
            println!("{label:40} build {f_ms:7.1} fwd {fwd:7.1} ms, fwd+bwd {all:7.1} ms");
        }
    }
}

fn main() {
    regularizer_step();
    let dev = FlexDevice;
    let m = 1296;
    let d = 128;
    let enc = SeqPeEncoderConfig::new(1, 5, d, 256, 2)
        .with_resid_dropout(0.0)
        .init::<AD>(&dev);
    let positions: Vec<usize> = (0..m).map(|i| i * 7 % 20000).collect();
    let digits = enc.tokenizer.encode_tensor::<AD>(&positions, &dev).unwrap();
    time("whole encoder", || {
        enc.forward(digits.clone()).powi_scalar(2).mean()
    });
    time("token embedding", || {
        enc.token_embed
            .forward(digits.clone())
            .powi_scalar(2)
            .mean()
    });
    let x: Tensor<AD, 3> =
        Tensor::random([m, 6, d], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let stack = TransformerConfig::new(d, 2, 1).init::<AD>(&dev);
    let b = &stack.blocks[0];
    time("one block (causal)", || {
        b.forward(
            x.clone(),
            AttnMask::Causal,
            &LayerPosition::None,
            AttentionOptions::default(),
        )
        .powi_scalar(2)
        .mean()
    });
    time("one block (full)", || {
        b.forward(
            x.clone(),
            AttnMask::Full,
            &LayerPosition::None,
            AttentionOptions::default(),
        )
        .powi_scalar(2)
        .mean()
    });
    time("attention only (causal)", || {
        b.attn
            .forward(
                x.clone(),
                AttnMask::Causal,
                &LayerPosition::None,
                AttentionOptions::default(),
            )
            .powi_scalar(2)
            .mean()
    });
    time("mlp only", || {
        b.mlp.forward(x.clone()).powi_scalar(2).mean()
    });
    time("layer norm only", || {
        b.ln1.forward(x.clone()).powi_scalar(2).mean()
    });
    time("qkv linear only", || {
        b.attn.qkv.forward(x.clone()).powi_scalar(2).mean()
    });
    let x2 = x.clone().reshape([m * 6, d]);
    time("qkv linear on 2-D input", || {
        b.attn.qkv.forward(x2.clone()).powi_scalar(2).mean()
    });
    let h: Tensor<AD, 2> =
        Tensor::random([m * 6, 4 * d], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    time("gelu_approximate (burn)", || {
        burn::tensor::activation::gelu_approximate(h.clone()).mean()
    });
    time("gelu tanh via x*x*x", || {
        let inner = (h.clone() + h.clone() * h.clone() * h.clone() * 0.044715) * 0.7978845608028654;
        (h.clone() * (inner.tanh() + 1.0) * 0.5).mean()
    });
    time("gelu tanh via sigmoid", || {
        let u = (h.clone() + h.clone() * h.clone() * h.clone() * 0.044715) * 1.5957691216057308;
        (h.clone() * burn::tensor::activation::sigmoid(u)).mean()
    });
    time("gelu exact", || {
        burn::tensor::activation::gelu(h.clone()).mean()
    });
    let _ = Tensor::<AD, 1, Int>::arange(0..3, &dev);
}

/// The regularizer step of the text `bench` preset (encoder width 64 and 128).
#[allow(dead_code)]
pub fn regularizer_step() {
    use seqpe_core::training::{RegularizerConfig, SeqPeRegularizer};
    let dev = FlexDevice;
    for d in [64usize, 128] {
        let enc = SeqPeEncoderConfig::new(1, 5, d, 256, (d / 64).max(1)).init::<AD>(&dev);
        let mut reg = SeqPeRegularizer::new(
            RegularizerConfig::reference(vec![256], 20_000, 5, (d / 64).max(1)),
            1,
        );
        for i in 0..4 {
            let t = Instant::now();
            let out = reg.step(&enc, 0).unwrap();
            let loss = out.loss + out.table.powi_scalar(2).mean();
            let _ = loss.clone().into_data();
            let f = t.elapsed().as_secs_f64() * 1e3;
            let _g = loss.backward();
            if i > 0 {
                println!(
                    "regularizer step d={d}: fwd {f:.0} ms, fwd+bwd {:.0} ms",
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    }
}
