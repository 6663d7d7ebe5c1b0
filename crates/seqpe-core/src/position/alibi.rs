//! ALiBi (Press et al.): a per-head linear penalty on the query–key distance.

use core::marker::PhantomData;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::{LayerPositions, PositionContext, PositionError, PositionGrid};
use crate::attention::LayerPosition;

/// The standard ALiBi slopes: for `n` a power of two, `2^(-8/n)`, `2^(-16/n)`, …; otherwise the
/// slopes of the closest smaller power of two followed by every other slope of twice that.
pub fn alibi_slopes(n: usize) -> Vec<f64> {
    fn pow2(n: usize) -> Vec<f64> {
        let start = 2f64.powf(-8.0 / n as f64);
        (1..=n).map(|i| start.powi(i as i32)).collect()
    }
    if n.is_power_of_two() {
        return pow2(n);
    }
    let closest = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let mut slopes = pow2(closest);
    slopes.extend(pow2(2 * closest).into_iter().step_by(2).take(n - closest));
    slopes
}

/// Where the ALiBi bias enters the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlibiForm {
    /// Press et al.: `q·k/√d_h − slope·(i − j)` (the default: the standard, stronger baseline).
    #[default]
    Standard,
    /// The SeqPE reference code: the bias is added before the `1/√d_h` scaling, i.e. every slope
    /// is divided by `√d_h`.
    Reference,
}

/// ALiBi for causal sequences (no parameters).
#[derive(Module, Debug)]
pub struct Alibi<B: Backend> {
    pub n_heads: usize,
    /// Multiplies the standard slopes (1, or `1/√d_h` for [`AlibiForm::Reference`]).
    pub slope_scale: f64,
    _backend: PhantomData<B>,
}

impl<B: Backend> Alibi<B> {
    /// The standard form ([`AlibiForm::Standard`]).
    pub fn new(n_heads: usize) -> Self {
        Self {
            n_heads,
            slope_scale: 1.0,
            _backend: PhantomData,
        }
    }

    /// ALiBi in the given form for heads of size `head_dim`.
    pub fn with_form(n_heads: usize, head_dim: usize, form: AlibiForm) -> Self {
        let slope_scale = match form {
            AlibiForm::Standard => 1.0,
            AlibiForm::Reference => 1.0 / (head_dim as f64).sqrt(),
        };
        Self {
            slope_scale,
            ..Self::new(n_heads)
        }
    }

    pub(crate) fn context(
        &self,
        grid: &PositionGrid,
        device: &B::Device,
    ) -> Result<PositionContext<B>, PositionError> {
        if grid.dims() != 1 || grid.prefix != 0 {
            return Err(PositionError::Unsupported(
                "ALiBi is defined for 1-D causal sequences; use rope2d, rope-mixed or seqpe for grids"
                    .into(),
            ));
        }
        let slopes: Vec<f32> = alibi_slopes(self.n_heads)
            .into_iter()
            .map(|s| (s * self.slope_scale) as f32)
            .collect();
        let slopes = Tensor::from_data(TensorData::new(slopes, [1, self.n_heads, 1, 1]), device);
        Ok(PositionContext {
            input: None,
            layers: LayerPositions::Shared(LayerPosition::LinearBias { slopes }),
            grid: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_match_the_standard_formula() {
        // Press et al.: 8 heads → 1/2, 1/4, …, 1/256.
        let s8 = alibi_slopes(8);
        for (i, s) in s8.iter().enumerate() {
            assert!((s - 0.5f64.powi(i as i32 + 1)).abs() < 1e-12);
        }
        // 12 heads: the 8-head slopes, then 2^-0.5·k for odd k of the 16-head list.
        let s12 = alibi_slopes(12);
        assert_eq!(s12.len(), 12);
        assert_eq!(&s12[..8], &s8[..]);
        let s16 = alibi_slopes(16);
        for (j, s) in s12[8..].iter().enumerate() {
            assert!((s - s16[2 * j]).abs() < 1e-12);
        }
        assert!((s16[0] - 2f64.powf(-0.5)).abs() < 1e-12);
    }
}
