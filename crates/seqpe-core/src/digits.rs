//! Positions written as digit strings: the input language of the SeqPE encoder.
//!
//! Each coordinate of an n-dimensional position is written in base 10, left padded with the digit
//! `0` to a fixed width, and the coordinates are concatenated in order (row, col, …). The width is
//! set by the largest *supported* position, not by the training length:
//! `max_digits = len(str(max_per_axis - 1))` (reference `PeUtils.get_digit_num`). So with the text
//! recipe (`pe_max_position = 20000`) position 123 becomes `0 0 1 2 3`, and with the image recipe
//! (100 per axis) patch (3, 14) becomes `0 3 1 4`.
//!
//! Pads are the digit `0` itself; the reference computes a pad mask but never uses it, so
//! [`DigitTokenizer::pad_mask`] is provided for inspection only.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The numeric base. The reference fixes it at 10 (vocabulary = the ten digits).
pub const BASE: usize = 10;

/// A position that cannot be written with the tokenizer's digit width.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigitError {
    #[error(
        "position {position:?} does not fit the digit width: coordinate {axis} = {value} needs \
         {needed} digits but the encoder was built with {max_digits} per axis (largest representable \
         coordinate {largest}); evaluate shorter inputs or smaller grids, or train a run with a \
         larger range (`--set model.seqpe_max_position=N`: a trained run keeps its digit width)"
    )]
    TooLarge {
        position: Vec<usize>,
        axis: usize,
        value: usize,
        needed: usize,
        max_digits: usize,
        largest: usize,
    },
    #[error("position {position:?} has {got} coordinates but the tokenizer is {dims}-dimensional")]
    WrongDims {
        position: Vec<usize>,
        got: usize,
        dims: usize,
    },
    #[error("flat position buffer of length {len} is not a multiple of dims = {dims}")]
    RaggedBuffer { len: usize, dims: usize },
}

/// Number of decimal characters of `x` (`len(str(x))`; 0 has one digit).
pub fn decimal_len(mut x: usize) -> usize {
    let mut n = 1;
    while x >= BASE {
        x /= BASE;
        n += 1;
    }
    n
}

/// The reference digit width for positions in `[0, max_per_axis)`: `len(str(max_per_axis - 1))`.
pub fn max_digits_for(max_per_axis: usize) -> usize {
    decimal_len(max_per_axis.max(1) - 1)
}

/// The per-axis maximum the reference derives from `pe_max_position` for `dims` dimensions:
/// the whole `pe_max_position` in 1-D, `int(sqrt(pe_max_position))` in 2-D, and in general the
/// integer `dims`-th root (the largest `r` with `r^dims <= pe_max_position`).
pub fn per_axis_max(pe_max_position: usize, dims: usize) -> usize {
    assert!(dims >= 1, "dims must be at least 1");
    if dims == 1 {
        return pe_max_position;
    }
    let mut r = (pe_max_position as f64).powf(1.0 / dims as f64).round() as usize;
    let pow = |r: usize| (0..dims).try_fold(1usize, |acc, _| acc.checked_mul(r));
    while r > 0 && pow(r).is_none_or(|p| p > pe_max_position) {
        r -= 1;
    }
    while pow(r + 1).is_some_and(|p| p <= pe_max_position) {
        r += 1;
    }
    r
}

/// Writes n-dimensional positions as fixed-width digit sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitTokenizer {
    /// Digits per coordinate.
    pub max_digits: usize,
    /// Number of coordinates per position.
    pub dims: usize,
}

impl DigitTokenizer {
    pub fn new(max_digits: usize, dims: usize) -> Self {
        assert!(
            max_digits >= 1 && dims >= 1,
            "max_digits and dims must be >= 1"
        );
        Self { max_digits, dims }
    }

    /// The reference rule: digit width from the largest supported position per axis.
    pub fn for_max_per_axis(max_per_axis: usize, dims: usize) -> Self {
        Self::new(max_digits_for(max_per_axis), dims)
    }

    /// Sequence length `L = dims * max_digits` (the CLS token is not counted).
    pub fn seq_len(&self) -> usize {
        self.dims * self.max_digits
    }

    /// Largest representable coordinate: `10^max_digits - 1`.
    pub fn largest(&self) -> usize {
        BASE.saturating_pow(self.max_digits as u32) - 1
    }

    /// Digits of one position, most significant first, each coordinate left-padded with 0.
    pub fn encode(&self, position: &[usize]) -> Result<Vec<u8>, DigitError> {
        let mut out = Vec::with_capacity(self.seq_len());
        self.encode_into(position, &mut out)?;
        Ok(out)
    }

    fn encode_into(&self, position: &[usize], out: &mut Vec<u8>) -> Result<(), DigitError> {
        if position.len() != self.dims {
            return Err(DigitError::WrongDims {
                position: position.to_vec(),
                got: position.len(),
                dims: self.dims,
            });
        }
        for (axis, &value) in position.iter().enumerate() {
            let needed = decimal_len(value);
            if needed > self.max_digits {
                return Err(DigitError::TooLarge {
                    position: position.to_vec(),
                    axis,
                    value,
                    needed,
                    max_digits: self.max_digits,
                    largest: self.largest(),
                });
            }
            let start = out.len();
            out.resize(start + self.max_digits, 0);
            let mut v = value;
            for slot in (start..start + self.max_digits).rev() {
                out[slot] = (v % BASE) as u8;
                v /= BASE;
            }
        }
        Ok(())
    }

    /// Digits of many positions given as a flat row-major buffer `[M * dims]`; returns `[M * L]`.
    pub fn encode_flat(&self, positions: &[usize]) -> Result<Vec<u8>, DigitError> {
        if positions.len() % self.dims != 0 {
            return Err(DigitError::RaggedBuffer {
                len: positions.len(),
                dims: self.dims,
            });
        }
        let mut out = Vec::with_capacity(positions.len() / self.dims * self.seq_len());
        for p in positions.chunks(self.dims) {
            self.encode_into(p, &mut out)?;
        }
        Ok(out)
    }

    /// Batch API: `[M * dims]` flat positions → `[M, L]` int tensor of digit ids.
    pub fn encode_tensor<B: Backend>(
        &self,
        positions: &[usize],
        device: &B::Device,
    ) -> Result<Tensor<B, 2, Int>, DigitError> {
        let digits = self.encode_flat(positions)?;
        let m = positions.len() / self.dims;
        let ids: Vec<i64> = digits.into_iter().map(i64::from).collect();
        Ok(Tensor::from_data(
            TensorData::new(ids, [m, self.seq_len()]),
            device,
        ))
    }

    /// Reference pad mask (1 = real digit, 0 = left pad; a coordinate 0 keeps its last digit).
    /// The reference computes it but does not use it (`mask_padding = False`).
    pub fn pad_mask(&self, position: &[usize]) -> Result<Vec<u8>, DigitError> {
        self.encode(position)?; // validates
        let mut mask = Vec::with_capacity(self.seq_len());
        for &value in position {
            let real = decimal_len(value);
            mask.extend((0..self.max_digits).map(|t| u8::from(t >= self.max_digits - real)));
        }
        Ok(mask)
    }

    /// Slot index of each digit (`0..L`), used by the slot embedding.
    pub fn slot_ids(&self) -> Vec<usize> {
        (0..self.seq_len()).collect()
    }

    /// Coordinate (dimension) index of each digit slot: `t / max_digits`.
    pub fn dim_ids(&self) -> Vec<usize> {
        (0..self.seq_len()).map(|t| t / self.max_digits).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples_from_the_reference() {
        let text = DigitTokenizer::for_max_per_axis(20_000, 1);
        assert_eq!(text.max_digits, 5);
        assert_eq!(text.encode(&[123]).unwrap(), vec![0, 0, 1, 2, 3]);
        assert_eq!(text.pad_mask(&[123]).unwrap(), vec![0, 0, 1, 1, 1]);
        let image = DigitTokenizer::for_max_per_axis(per_axis_max(10_000, 2), 2);
        assert_eq!(image.max_digits, 2);
        assert_eq!(image.encode(&[3, 14]).unwrap(), vec![0, 3, 1, 4]);
        assert_eq!(image.pad_mask(&[3, 14]).unwrap(), vec![0, 1, 1, 1]);
        assert_eq!(image.dim_ids(), vec![0, 0, 1, 1]);
        // The paper's figure: patch (2, 3) of a 4x4 grid is "0 2 0 3".
        assert_eq!(image.encode(&[2, 3]).unwrap(), vec![0, 2, 0, 3]);
    }

    #[test]
    fn zero_and_largest_and_out_of_range() {
        let t = DigitTokenizer::new(5, 1);
        assert_eq!(t.encode(&[0]).unwrap(), vec![0; 5]);
        assert_eq!(t.pad_mask(&[0]).unwrap(), vec![0, 0, 0, 0, 1]);
        assert_eq!(t.encode(&[99_999]).unwrap(), vec![9; 5]);
        let err = t.encode(&[100_000]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("100000") && msg.contains("5"), "{msg}");
        assert!(matches!(err, DigitError::TooLarge { needed: 6, .. }));
        assert!(matches!(
            t.encode(&[1, 2]),
            Err(DigitError::WrongDims { got: 2, .. })
        ));
    }

    #[test]
    fn three_dimensional_layout() {
        let t = DigitTokenizer::new(3, 3);
        assert_eq!(
            t.encode(&[7, 42, 905]).unwrap(),
            vec![0, 0, 7, 0, 4, 2, 9, 0, 5]
        );
        assert_eq!(t.dim_ids(), vec![0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert!(t.encode(&[1000, 0, 0]).is_err());
        assert!(matches!(
            t.encode_flat(&[1, 2, 3, 4]),
            Err(DigitError::RaggedBuffer { .. })
        ));
    }

    #[test]
    fn digit_width_rule() {
        assert_eq!(max_digits_for(1), 1);
        assert_eq!(max_digits_for(10), 1);
        assert_eq!(max_digits_for(11), 2);
        assert_eq!(max_digits_for(100), 2);
        assert_eq!(max_digits_for(20_000), 5);
        assert_eq!(max_digits_for(100_000), 5);
        assert_eq!(max_digits_for(100_001), 6);
        assert_eq!(per_axis_max(10_000, 2), 100);
        assert_eq!(per_axis_max(10_001, 2), 100);
        assert_eq!(per_axis_max(9_999, 2), 99);
        assert_eq!(per_axis_max(1_000_000, 3), 100);
        assert_eq!(per_axis_max(999_999, 3), 99);
        assert_eq!(per_axis_max(512, 1), 512);
    }
}
