//! Fixed sinusoidal encoding (Vaswani et al.), added to the input over the 1-D token index.

use core::marker::PhantomData;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::{PositionContext, PositionGrid};

/// `pe[p, 2i] = sin(p / 10000^(2i/d))`, `pe[p, 2i+1] = cos(p / 10000^(2i/d))` for the given token
/// indices, flat `[indices.len() * d]`.
pub fn sinusoidal_table(indices: &[usize], d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * d);
    for &p in indices {
        for j in 0..d {
            let i = (j / 2) as f64;
            let angle = p as f64 / 10000f64.powf(2.0 * i / d as f64);
            out.push(if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    out
}

/// The sinusoidal encoding (no parameters).
#[derive(Module, Debug)]
pub struct Sinusoidal<B: Backend> {
    pub d_model: usize,
    _backend: PhantomData<B>,
}

impl<B: Backend> Sinusoidal<B> {
    pub fn new(d_model: usize) -> Self {
        Self {
            d_model,
            _backend: PhantomData,
        }
    }

    pub(crate) fn context(&self, grid: &PositionGrid, device: &B::Device) -> PositionContext<B> {
        let d = self.d_model;
        let groups = grid.groups();
        let mut values = Vec::with_capacity(groups * grid.len() * d);
        for g in 0..groups {
            values.extend(sinusoidal_table(&grid.flat_token_indices(g), d));
        }
        let input = Tensor::from_data(TensorData::new(values, [groups, grid.len(), d]), device);
        PositionContext {
            input: Some(input),
            ..PositionContext::none()
        }
    }
}
