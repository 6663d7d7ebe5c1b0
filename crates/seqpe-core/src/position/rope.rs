//! Rotary encodings: RoPE over the 1-D token index, axial RoPE-2D (one band of frequencies per
//! axis, any number of axes), and RoPE-Mixed (Heo et al.: learned per-layer, per-head frequencies
//! that mix the axes). All use the rotate-half layout of [`crate::attention::apply_rotary`];
//! unpositioned prefix tokens (the ViT CLS) get the identity rotation in the n-D variants.

use core::f64::consts::PI;
use core::marker::PhantomData;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};

use super::{LayerPositions, PositionContext, PositionError, PositionGrid};
use crate::attention::LayerPosition;

/// RoPE (1-D) or axial RoPE (n-D).
#[derive(Module, Debug)]
pub struct Rope<B: Backend> {
    pub head_dim: usize,
    pub base: f64,
    /// Axial: a band of frequencies per grid axis; otherwise the 1-D token index.
    pub axial: bool,
    _backend: PhantomData<B>,
}

impl<B: Backend> Rope<B> {
    pub fn new(head_dim: usize, base: f64, axial: bool) -> Self {
        assert!(head_dim % 2 == 0, "RoPE needs an even head size");
        Self {
            head_dim,
            base,
            axial,
            _backend: PhantomData,
        }
    }

    /// Rotation angles `[groups * tokens * head_dim/2]`.
    pub fn angles(&self, grid: &PositionGrid) -> Result<Vec<f64>, PositionError> {
        let half = self.head_dim / 2;
        let mut out = Vec::with_capacity(grid.groups() * grid.len() * half);
        if !self.axial {
            let inv: Vec<f64> = (0..half)
                .map(|i| self.base.powf(-2.0 * i as f64 / self.head_dim as f64))
                .collect();
            for g in 0..grid.groups() {
                for t in grid.flat_token_indices(g) {
                    out.extend(inv.iter().map(|f| t as f64 * f));
                }
            }
            return Ok(out);
        }
        let dims = grid.dims();
        if half % dims != 0 {
            return Err(PositionError::Unsupported(format!(
                "axial RoPE needs head_dim/2 = {half} divisible by the {dims} grid axes"
            )));
        }
        let band = half / dims;
        let inv: Vec<f64> = (0..band)
            .map(|j| self.base.powf(-(j as f64) / band as f64))
            .collect();
        let rel = grid.relative_positions();
        for g in 0..grid.groups() {
            let start = grid.start(g);
            out.extend(std::iter::repeat_n(0.0, grid.prefix * half));
            for p in rel.chunks(dims) {
                for axis in 0..dims {
                    let coord = (start[axis] + p[axis]) as f64;
                    out.extend(inv.iter().map(|f| coord * f));
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn context(
        &self,
        grid: &PositionGrid,
        device: &B::Device,
    ) -> Result<PositionContext<B>, PositionError> {
        let angles = self.angles(grid)?;
        let shape = [grid.groups(), 1, grid.len(), self.head_dim / 2];
        let (cos, sin) = cos_sin::<B>(&angles, shape, device);
        Ok(PositionContext {
            input: None,
            layers: LayerPositions::Shared(LayerPosition::Rotary { cos, sin }),
            grid: None,
        })
    }
}

fn cos_sin<B: Backend>(
    angles: &[f64],
    shape: [usize; 4],
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let cos: Vec<f32> = angles.iter().map(|a| a.cos() as f32).collect();
    let sin: Vec<f32> = angles.iter().map(|a| a.sin() as f32).collect();
    (
        Tensor::from_data(TensorData::new(cos, shape), device),
        Tensor::from_data(TensorData::new(sin, shape), device),
    )
}

/// RoPE-Mixed: `angle = Σ_axis coord_axis · f[layer, head, pair, axis]` with learned `f`.
#[derive(Module, Debug)]
pub struct RopeMixed<B: Backend> {
    /// `[layers, heads, head_dim/2, dims]`.
    pub freqs: Param<Tensor<B, 4>>,
}

impl<B: Backend> RopeMixed<B> {
    /// Init as in Heo et al. (2-D): per head a random angle θ; pair band `k` of each magnitude
    /// `base^(-j/band)` points in direction θ + kπ/2. 1-D: plain RoPE frequencies. n-D (n > 2):
    /// random unit directions.
    pub fn init(
        layers: usize,
        heads: usize,
        head_dim: usize,
        dims: usize,
        base: f64,
        device: &B::Device,
    ) -> Self {
        let half = head_dim / 2;
        let bands = if dims == 1 { 1 } else { 2 };
        assert!(
            half % bands == 0,
            "RoPE-Mixed needs head_dim divisible by 4"
        );
        let band = half / bands;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5e9e_u64);
        let mut values = Vec::with_capacity(layers * heads * half * dims);
        for _ in 0..layers {
            for _ in 0..heads {
                let theta = rng.random::<f64>() * 2.0 * PI;
                for k in 0..bands {
                    for j in 0..band {
                        let mag = base.powf(-(j as f64) / band as f64);
                        let dir: Vec<f64> = match dims {
                            1 => vec![1.0],
                            2 => {
                                let a = theta + k as f64 * PI / 2.0;
                                vec![a.cos(), a.sin()]
                            }
                            _ => {
                                let v: Vec<f64> =
                                    (0..dims).map(|_| rng.random::<f64>() - 0.5).collect();
                                let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
                                v.into_iter().map(|x| x / n).collect()
                            }
                        };
                        values.extend(dir.into_iter().map(|x| (x * mag) as f32));
                    }
                }
            }
        }
        let t = Tensor::from_data(TensorData::new(values, [layers, heads, half, dims]), device);
        Self {
            freqs: Param::from_tensor(t),
        }
    }

    pub(crate) fn context(
        &self,
        grid: &PositionGrid,
        device: &B::Device,
    ) -> Result<PositionContext<B>, PositionError> {
        let [layers, heads, half, dims] = self.freqs.dims();
        if grid.dims() != dims {
            return Err(PositionError::Unsupported(format!(
                "RoPE-Mixed was built for {dims}-D positions but the input grid is {}-D",
                grid.dims()
            )));
        }
        let (g, t) = (grid.groups(), grid.len());
        let rel = grid.relative_positions();
        let mut coords = Vec::with_capacity(g * t * dims);
        for group in 0..g {
            let start = grid.start(group);
            coords.extend(std::iter::repeat_n(0.0f32, grid.prefix * dims));
            for p in rel.chunks(dims) {
                coords.extend((0..dims).map(|a| (start[a] + p[a]) as f32));
            }
        }
        // in the frequencies' dtype (bf16 in a mixed-precision step; a no-op at f32)
        let pos = Tensor::<B, 4>::from_data(TensorData::new(coords, [g, 1, t, dims]), device)
            .cast(self.freqs.val().dtype())
            .expand([g, heads, t, dims]);
        let per_layer = (0..layers)
            .map(|l| {
                let f = self
                    .freqs
                    .val()
                    .narrow(0, l, 1)
                    .swap_dims(2, 3) // [1, heads, dims, half]
                    .expand([g, heads, dims, half]);
                let angles = pos.clone().matmul(f); // [g, heads, t, half]
                LayerPosition::Rotary {
                    cos: angles.clone().cos(),
                    sin: angles.sin(),
                }
            })
            .collect();
        Ok(PositionContext {
            input: None,
            layers: LayerPositions::PerLayer(per_layer),
            grid: None,
        })
    }
}
