//! Gradients of `softmax` and `log_softmax` under Burn's autodiff (the workspace's patched
//! `burn-autodiff`, `vendor/README.md`, makes each one tracked operation with a closed-form
//! backward) against central finite differences of a softmax written here in f64.

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Tensor, TensorData};

type AD = Autodiff<Flex>;
const DEV: FlexDevice = FlexDevice;
const SHAPE: [usize; 3] = [2, 3, 4];

/// Deterministic inputs spread over a few units (no RNG: the tests of this crate share Burn's).
fn values(n: usize, scale: f64, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|i| scale * ((i as f64) * 1.37 + phase).sin())
        .collect()
}

/// Row-major index of `[a, b, c]` in `SHAPE`.
fn at(a: usize, b: usize, c: usize) -> usize {
    (a * SHAPE[1] + b) * SHAPE[2] + c
}

/// `softmax` (or `log_softmax`) of `x` along `dim`, in f64.
fn reference(x: &[f64], dim: usize, log: bool) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    let n = SHAPE[dim];
    for a in 0..SHAPE[0] {
        for b in 0..SHAPE[1] {
            for c in 0..SHAPE[2] {
                let mut idx = [a, b, c];
                if idx[dim] != 0 {
                    continue; // one pass per line along `dim`
                }
                let line: Vec<usize> = (0..n)
                    .map(|k| {
                        idx[dim] = k;
                        at(idx[0], idx[1], idx[2])
                    })
                    .collect();
                let max = line.iter().map(|&i| x[i]).fold(f64::MIN, f64::max);
                let sum: f64 = line.iter().map(|&i| (x[i] - max).exp()).sum();
                for &i in &line {
                    out[i] = if log {
                        x[i] - max - sum.ln()
                    } else {
                        (x[i] - max).exp() / sum
                    };
                }
            }
        }
    }
    out
}

/// The gradient of `Σ weights ⊙ f(x)` by central differences of the f64 reference.
fn finite_difference(x: &[f64], weights: &[f64], dim: usize, log: bool) -> Vec<f64> {
    let objective = |x: &[f64]| -> f64 {
        reference(x, dim, log)
            .iter()
            .zip(weights)
            .map(|(y, w)| y * w)
            .sum()
    };
    let h = 1e-5;
    (0..x.len())
        .map(|i| {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[i] += h;
            down[i] -= h;
            (objective(&up) - objective(&down)) / (2.0 * h)
        })
        .collect()
}

/// Burn's forward values and input gradient of `Σ weights ⊙ f(x)`.
fn burn_gradient(x: &[f64], weights: &[f64], dim: usize, log: bool) -> (Vec<f32>, Vec<f32>) {
    let tensor = |v: &[f64]| {
        let data: Vec<f32> = v.iter().map(|&e| e as f32).collect();
        Tensor::<AD, 3>::from_data(TensorData::new(data, SHAPE), &DEV)
    };
    let input = tensor(x).require_grad();
    let output = if log {
        log_softmax(input.clone(), dim)
    } else {
        softmax(input.clone(), dim)
    };
    let loss = (output.clone() * tensor(weights)).sum();
    let grads = loss.backward();
    let grad = input.grad(&grads).expect("the input is tracked");
    let flat = |t: Tensor<Flex, 3>| t.into_data().to_vec::<f32>().unwrap();
    (flat(output.inner()), flat(grad))
}

fn check(dim: usize, log: bool) {
    let n = SHAPE.iter().product();
    let x = values(n, 3.0, 0.3);
    let weights = values(n, 1.0, 1.1);
    let (forward, gradient) = burn_gradient(&x, &weights, dim, log);
    let (want_forward, want_gradient) = (
        reference(&x, dim, log),
        finite_difference(&x, &weights, dim, log),
    );
    for (i, (got, want)) in forward.iter().zip(&want_forward).enumerate() {
        assert!(
            (*got as f64 - want).abs() < 1e-5,
            "dim {dim} log {log}: value {i} is {got}, want {want}"
        );
    }
    for (i, (got, want)) in gradient.iter().zip(&want_gradient).enumerate() {
        assert!(
            (*got as f64 - want).abs() < 1e-4,
            "dim {dim} log {log}: gradient {i} is {got}, want {want}"
        );
    }
    // the gradients are not all ~0 (a backward that dropped them would pass the bound above)
    assert!(want_gradient.iter().any(|g| g.abs() > 0.05));
}

#[test]
fn softmax_gradient_matches_finite_differences() {
    for dim in 0..3 {
        check(dim, false);
    }
}

#[test]
fn log_softmax_gradient_matches_finite_differences() {
    for dim in 0..3 {
        check(dim, true);
    }
}
