//! How distinct a position table is: a cheap number to watch during training.
//!
//! A position encoding that carries information gives different positions different vectors.
//! After subtracting the table's mean vector (a component every position shares tells attention
//! nothing about position), [`table_stats`] reports the mean and the smallest cosine similarity
//! between the positions, and the participation ratio `(Σλ)² / Σλ²` of the covariance spectrum,
//! an effective rank (1 when every position differs along a single direction, up to the width
//! when the differences fill every dimension equally).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Distinctness of the rows of a position table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Mean cosine similarity between distinct (mean-centred) positions.
    pub mean_cosine: f64,
    /// Smallest cosine similarity between two (mean-centred) positions.
    pub min_cosine: f64,
    /// Participation ratio of the centred table's covariance (effective rank).
    pub participation_ratio: f64,
    /// Root-mean-square norm of the rows before centring.
    pub rms_norm: f64,
    /// Root-mean-square norm of the centred rows: the size of what differs between positions
    /// (its ratio to [`Self::rms_norm`] is the share of the table that carries position).
    #[serde(default)]
    pub centred_rms_norm: f64,
}

/// Statistics of a `[n, d]` table (`n ≥ 2`).
pub fn table_stats<B: Backend>(table: Tensor<B, 2>) -> TableStats {
    let (values, n, d) = host(table);
    stats_of(&values, n, d)
}

/// A `[n, d]` table's values on the host, row-major, with its shape.
fn host<B: Backend>(table: Tensor<B, 2>) -> (Vec<f32>, usize, usize) {
    let [n, d] = table.dims();
    let values = table
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("a float table");
    (values, n, d)
}

/// [`table_stats`] on a row-major host buffer.
pub fn stats_of(values: &[f32], n: usize, d: usize) -> TableStats {
    assert!(n >= 2 && values.len() == n * d, "need at least two rows");
    let rows: Vec<&[f32]> = values.chunks(d).collect();
    let rms_norm = (rows
        .iter()
        .map(|r| r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>())
        .sum::<f64>()
        / n as f64)
        .sqrt();
    let mut mean = vec![0f64; d];
    for r in &rows {
        for (m, &x) in mean.iter_mut().zip(r.iter()) {
            *m += x as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect())
        .collect();
    let norms: Vec<f64> = centred
        .iter()
        .map(|r| r.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12))
        .collect();
    // Gram matrix of the centred rows: cosines from it, and tr(C), ‖C‖_F² of the covariance
    // C = XᵀX equal tr(G), ‖G‖_F² of G = XXᵀ.
    let (mut sum_cos, mut min_cos, mut pairs) = (0f64, f64::MAX, 0usize);
    let (mut trace, mut frob) = (0f64, 0f64);
    for i in 0..n {
        for j in i..n {
            let g: f64 = centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum();
            if i == j {
                trace += g;
                frob += g * g;
            } else {
                frob += 2.0 * g * g;
                let c = g / (norms[i] * norms[j]);
                sum_cos += c;
                min_cos = min_cos.min(c);
                pairs += 1;
            }
        }
    }
    TableStats {
        mean_cosine: sum_cos / pairs as f64,
        min_cosine: min_cos,
        participation_ratio: if frob > 0.0 {
            trace * trace / frob
        } else {
            0.0
        },
        rms_norm,
        centred_rms_norm: (trace / n as f64).sqrt(),
    }
}

/// How a grid table's differences split over its axes: the two-way decomposition of the centred
/// sum of squares of a `rows × cols` table (row-major, `[rows·cols, d]`): the share explained by
/// the row means (what tells rows apart), by the column means (what tells columns apart), and
/// the rest (interaction). An encoding that orders rows but not columns has a column share near
/// 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AxisShares {
    pub row: f64,
    pub column: f64,
    pub interaction: f64,
}

/// [`AxisShares`] of a `[rows·cols, d]` table whose rows are a `rows × cols` grid, row-major.
pub fn table_axis_shares<B: Backend>(table: Tensor<B, 2>, rows: usize, cols: usize) -> AxisShares {
    let (values, _, d) = host(table);
    axis_shares(&values, rows, cols, d)
}

/// [`AxisShares`] of a row-major host buffer of `rows × cols` positions of width `d`.
pub fn axis_shares(values: &[f32], rows: usize, cols: usize, d: usize) -> AxisShares {
    assert!(
        rows >= 1 && cols >= 1 && values.len() == rows * cols * d,
        "a full grid"
    );
    let at = |r: usize, c: usize, k: usize| values[(r * cols + c) * d + k] as f64;
    let (mut row_ss, mut col_ss, mut total) = (0f64, 0f64, 0f64);
    for k in 0..d {
        let grand: f64 = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| at(r, c, k))
            .sum::<f64>()
            / (rows * cols) as f64;
        for r in 0..rows {
            let m = (0..cols).map(|c| at(r, c, k)).sum::<f64>() / cols as f64;
            row_ss += cols as f64 * (m - grand).powi(2);
        }
        for c in 0..cols {
            let m = (0..rows).map(|r| at(r, c, k)).sum::<f64>() / rows as f64;
            col_ss += rows as f64 * (m - grand).powi(2);
        }
        for r in 0..rows {
            for c in 0..cols {
                total += (at(r, c, k) - grand).powi(2);
            }
        }
    }
    let total = total.max(1e-300);
    AxisShares {
        row: row_ss / total,
        column: col_ss / total,
        interaction: ((total - row_ss - col_ss) / total).max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_shares_by_hand() {
        // a 2 × 3 table of width 1 that varies with the row only: all row
        let rows_only = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0];
        let s = axis_shares(&rows_only, 2, 3, 1);
        assert!(
            (s.row - 1.0).abs() < 1e-12 && s.column.abs() < 1e-12,
            "{s:?}"
        );
        // width 2: dimension 0 = column index (0, 1, 2), dimension 1 = 0: all column
        let cols_only: Vec<f32> = (0..2)
            .flat_map(|_| (0..3).flat_map(|c| [c as f32, 0.0]))
            .collect();
        let s = axis_shares(&cols_only, 2, 3, 2);
        assert!(
            (s.column - 1.0).abs() < 1e-12 && s.row.abs() < 1e-12,
            "{s:?}"
        );
        // x = r + c on a 2 × 2 grid: grand mean 1, row means 0.5 / 1.5, column means alike:
        // row SS = 2·(0.25 + 0.25) = 1, column SS = 1, total = 1 + 0 + 0 + 1 = 2
        let s = axis_shares(&[0.0, 1.0, 1.0, 2.0], 2, 2, 1);
        assert!(
            (s.row - 0.5).abs() < 1e-12 && (s.column - 0.5).abs() < 1e-12,
            "{s:?}"
        );
        assert!(s.interaction.abs() < 1e-12);
        // x = r·c (XOR-like on 2 × 2: 0, 0, 0, 1): grand 0.25, row means 0 / 0.5, SS_row =
        // 2·(0.0625 + 0.0625) = 0.25, SS_col = 0.25, total = 3·0.0625 + 0.5625 = 0.75
        let s = axis_shares(&[0.0, 0.0, 0.0, 1.0], 2, 2, 1);
        assert!((s.row - 1.0 / 3.0).abs() < 1e-12 && (s.interaction - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn identical_rows_and_orthogonal_rows() {
        // rows along one direction (plus a shared offset): effective rank 1, cosines ±1
        let line: Vec<f32> = (0..4).flat_map(|i| [5.0 + i as f32, 5.0]).collect();
        let s = stats_of(&line, 4, 2);
        assert!((s.participation_ratio - 1.0).abs() < 1e-9, "{s:?}");
        assert!((s.min_cosine + 1.0).abs() < 1e-9);
        // centred rows ±0.5, ±1.5 along x: rms √((0.25 + 2.25) / 2) = √1.25
        assert!((s.centred_rms_norm - 1.25f64.sqrt()).abs() < 1e-9, "{s:?}");
        // a centred simplex in 3-D (4 orthonormal basis rows minus their mean): rank 3
        let eye: Vec<f32> = (0..4)
            .flat_map(|i| (0..4).map(move |j| if i == j { 1.0 } else { 0.0 }))
            .collect();
        let s = stats_of(&eye, 4, 4);
        assert!((s.participation_ratio - 3.0).abs() < 1e-9, "{s:?}");
        assert!((s.mean_cosine + 1.0 / 3.0).abs() < 1e-9);
        assert!((s.rms_norm - 1.0).abs() < 1e-9);
        // each centred row has squared norm (3/4)² + 3·(1/4)² = 3/4
        assert!((s.centred_rms_norm - 0.75f64.sqrt()).abs() < 1e-9);
    }
}
