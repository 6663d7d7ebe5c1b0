//! Opt-in WGPU smoke test: the reference parity check and one encoder training step on the WGPU
//! backend. Needs a Vulkan driver (a GPU, or lavapipe from `mesa-vulkan-drivers`), so it is
//! compiled only with `--features wgpu` and ignored by default:
//!
//! ```sh
//! cargo xtask wgpu-smoke   # = cargo test -p seqpe-cli --no-default-features --features wgpu --test wgpu_smoke -- --ignored
//! ```
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Wgpu};
use burn::tensor::ElementConversion;
use seqpe_core::reference::{check_fixture, Tolerance};
use seqpe_core::training::{RegularizerConfig, SeqPeRegularizer};
use seqpe_core::SeqPeEncoderConfig;

fn parity_dir() -> PathBuf {
    std::env::var("SEQPE_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../seqpe-core/tests/fixtures/reference")
        })
}

#[test]
#[ignore = "needs a Vulkan driver; run with `cargo xtask wgpu-smoke`"]
fn wgpu_parity_and_training_step() {
    let device = WgpuDevice::default();
    for name in ["seqpe_1d.safetensors", "seqpe_2d.safetensors"] {
        let report =
            check_fixture::<Wgpu>(parity_dir().join(name), &device).expect("fixture loads");
        println!("{}", report.line(Tolerance::GPU));
        assert!(report.passes(Tolerance::GPU), "{name} parity on wgpu");
    }
    type B = Autodiff<Wgpu>;
    let enc = SeqPeEncoderConfig::new(1, 5, 64, 64, 1).init::<B>(&device);
    let mut reg = SeqPeRegularizer::new(RegularizerConfig::reference(vec![64], 20_000, 5, 1), 1);
    let step = reg.step(&enc, 0).expect("positions fit");
    let loss: f32 = step.loss.clone().into_scalar().elem();
    assert!(loss.is_finite() && loss > 0.0);
    let _grads = step.loss.backward();
    println!("wgpu encoder training step ok, regularizer loss {loss:.4}");
}
