//! [`PositionGrid`]: where the tokens of one forward pass sit.

use crate::sampling::{unravel, window_positions};

/// `prefix` unpositioned tokens (e.g. the ViT CLS) followed by a row-major grid of `extent`
/// (`[n]` for a sequence, `[rows, cols]` for patches, any n-D), whose corner is one of `starts`
/// (`[groups * dims]`; batch row `b` uses group `b mod groups`). Training shifts the corner
/// (random-shift windows); inference uses a single group at the origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PositionGrid {
    pub prefix: usize,
    pub extent: Vec<usize>,
    pub starts: Vec<usize>,
}

impl PositionGrid {
    /// Positions `0..len` of a sequence.
    pub fn sequence(len: usize) -> Self {
        Self::new(0, vec![len])
    }

    /// A grid at the origin after `prefix` unpositioned tokens.
    pub fn new(prefix: usize, extent: Vec<usize>) -> Self {
        let dims = extent.len();
        assert!(dims >= 1, "a grid needs at least one axis");
        Self {
            prefix,
            extent,
            starts: vec![0; dims],
        }
    }

    /// The same grid with other corners (`[groups * dims]`).
    pub fn with_starts(mut self, starts: Vec<usize>) -> Self {
        assert!(
            !starts.is_empty() && starts.len() % self.dims() == 0,
            "starts must hold whole positions"
        );
        self.starts = starts;
        self
    }

    pub fn dims(&self) -> usize {
        self.extent.len()
    }

    /// Grid positions per group.
    pub fn grid_len(&self) -> usize {
        self.extent.iter().product()
    }

    /// Tokens per sequence (prefix + grid).
    pub fn len(&self) -> usize {
        self.prefix + self.grid_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn groups(&self) -> usize {
        self.starts.len() / self.dims()
    }

    pub fn start(&self, group: usize) -> &[usize] {
        let d = self.dims();
        &self.starts[group * d..(group + 1) * d]
    }

    pub fn is_at_origin(&self) -> bool {
        self.starts.iter().all(|&s| s == 0)
    }

    /// Every grid position of every group, flat `[groups * grid_len * dims]` (no prefix).
    pub fn flat_positions(&self) -> Vec<usize> {
        (0..self.groups())
            .flat_map(|g| window_positions(self.start(g), &self.extent))
            .collect()
    }

    /// Grid coordinates relative to the corner, flat `[grid_len * dims]`.
    pub fn relative_positions(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.grid_len() * self.dims());
        for i in 0..self.grid_len() {
            unravel(i, &self.extent, &mut out);
        }
        out
    }

    /// The 1-D token index used by 1-D encodings on any grid: prefix tokens are `0..prefix`, grid
    /// token `i` (row-major) of group `g` is `prefix + start_g + i` (the start only in 1-D).
    pub fn flat_token_indices(&self, group: usize) -> Vec<usize> {
        let offset = if self.dims() == 1 {
            self.start(group)[0]
        } else {
            0
        };
        (0..self.prefix)
            .chain((0..self.grid_len()).map(|i| self.prefix + offset + i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_enumeration() {
        let g = PositionGrid::new(1, vec![2, 3]).with_starts(vec![0, 0, 5, 7]);
        assert_eq!(g.len(), 7);
        assert_eq!(g.groups(), 2);
        let flat = g.flat_positions();
        assert_eq!(&flat[..4], &[0, 0, 0, 1]);
        assert_eq!(&flat[12..16], &[5, 7, 5, 8]);
        assert_eq!(g.flat_token_indices(1), vec![0, 1, 2, 3, 4, 5, 6]);
        let s = PositionGrid::sequence(3).with_starts(vec![10]);
        assert_eq!(s.flat_token_indices(0), vec![10, 11, 12]);
    }
}
