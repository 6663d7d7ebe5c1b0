//! Learned absolute positions (GPT-2 `wpe`, ViT `pos_embed`), resized when the input is longer or
//! larger than trained: linear interpolation in 1-D (endpoints kept, as `align_corners=True`) and
//! bicubic in 2-D (timm's `align_corners=False`). A shorter 1-D input reads the first rows, as
//! GPT-2 does (the table is never squeezed).

use burn::module::{Initializer, Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Int, Tensor, TensorData};

use super::{PositionContext, PositionError, PositionGrid};

/// A learned table: `prefix` rows for unpositioned tokens, then one row per trained grid position.
#[derive(Module, Debug)]
pub struct LearnedPositions<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub trained: Vec<usize>,
    pub prefix: usize,
}

impl<B: Backend> LearnedPositions<B> {
    pub fn init(trained: &[usize], prefix: usize, d: usize, std: f64, device: &B::Device) -> Self {
        let rows = prefix + trained.iter().product::<usize>();
        Self {
            weight: Initializer::Normal { mean: 0.0, std }.init([rows, d], device),
            trained: trained.to_vec(),
            prefix,
        }
    }

    /// The grid rows resized to `extent` (`[prod(extent), d]`).
    pub fn resized(&self, extent: &[usize]) -> Result<Tensor<B, 2>, PositionError> {
        let [rows, d] = self.weight.dims();
        let grid = self.weight.val().narrow(0, self.prefix, rows - self.prefix);
        if extent == self.trained.as_slice() {
            return Ok(grid);
        }
        match (self.trained.as_slice(), extent) {
            (&[n], &[m]) if m <= n => Ok(grid.narrow(0, 0, m)),
            (&[n], &[m]) => Ok(linear_resize(grid, n, m)),
            (&[h, w], &[h2, w2]) => {
                let img = grid.reshape([1, h, w, d]).permute([0, 3, 1, 2]);
                let out = interpolate(
                    img,
                    [h2, w2],
                    InterpolateOptions::new(InterpolateMode::Bicubic).with_align_corners(false),
                );
                Ok(out.permute([0, 2, 3, 1]).reshape([h2 * w2, d]))
            }
            _ => Err(PositionError::Unsupported(format!(
                "learned positions trained on a {:?} grid cannot be resized to {:?}",
                self.trained, extent
            ))),
        }
    }

    pub(crate) fn context(&self, grid: &PositionGrid) -> Result<PositionContext<B>, PositionError> {
        if grid.prefix != self.prefix {
            return Err(PositionError::Unsupported(format!(
                "learned table has {} prefix rows but the input has {} prefix tokens",
                self.prefix, grid.prefix
            )));
        }
        if !grid.is_at_origin() {
            return Err(PositionError::Unsupported(
                "learned absolute positions cannot be shifted (random shift is a SeqPE option)"
                    .into(),
            ));
        }
        let body = self.resized(&grid.extent)?;
        let table = if self.prefix > 0 {
            Tensor::cat(vec![self.weight.val().narrow(0, 0, self.prefix), body], 0)
        } else {
            body
        };
        Ok(PositionContext {
            input: Some(table.unsqueeze_dim(0)),
            ..PositionContext::none()
        })
    }
}

/// Linear interpolation of `n` rows to `m` rows with the end rows kept
/// (`x_j = j·(n−1)/(m−1)`). Differentiable (gathers and weights).
pub fn linear_resize<B: Backend>(rows: Tensor<B, 2>, n: usize, m: usize) -> Tensor<B, 2> {
    let device = rows.device();
    let d = rows.dims()[1];
    let (mut lo, mut hi, mut w) = (
        Vec::with_capacity(m),
        Vec::with_capacity(m),
        Vec::with_capacity(m),
    );
    for j in 0..m {
        let x = if m == 1 {
            0.0
        } else {
            j as f64 * (n - 1) as f64 / (m - 1) as f64
        };
        let i0 = (x.floor() as usize).min(n - 1);
        lo.push(i0 as i64);
        hi.push((i0 + 1).min(n - 1) as i64);
        w.push((x - i0 as f64) as f32);
    }
    let idx = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [m]), &device);
    let w = Tensor::<B, 1>::from_data(TensorData::new(w, [m]), &device).reshape([m, 1]);
    let a = rows.clone().select(0, idx(lo));
    let b = rows.select(0, idx(hi));
    let _ = d;
    a * (w.clone().neg() + 1.0) + b * w
}
