//! [`SeqPeRegularizer`]: everything SeqPE adds to one training step of a main model.
//!
//! Per step (reference `train.py` / `main.py::train_one_epoch`):
//! 1. the main-task positions: the default window at the origin, or (with probability
//!    `shift_rate`) windows from the fixed random-shift pool, tiled over the batch;
//! 2. one contrastive batch (pivots + candidates) and, on unshifted steps only, one distillation
//!    batch (students);
//! 3. **one** encoder pass over all of them (dropout active for all), split back into the main
//!    table, pivots, candidates and students; the teacher rows are the main table's rows at the
//!    sampled window indices;
//! 4. `w_ct · L_ct + w_kd · L_kd` (the latter only on unshifted steps), added to the task loss.
//!
//! This module is the training-time side of the position seam: [`SeqPeRegularizer::for_encoding`]
//! says whether a model's encoding has a training loss (only SeqPE does) and
//! [`training_context`] gives every encoding's position context for one step, so a training loop
//! never asks which encoding it runs.
//!
//! Data-parallel training ([`SeqPeRegularizer::step_shard`]): every peer draws the same batches
//! (the samplers are seeded alike and advance alike) and keeps its [`Shard`] of the pivots and of
//! the distillation windows; both losses are means over equal parts, so the mean of the peers'
//! losses is the one-device loss.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::digits::DigitError;
use crate::encoder::SeqPeEncoder;
use crate::position::{PositionContext, PositionEncoding, PositionError, PositionGrid};
use crate::regularizers::{contrastive_loss, distill_loss, ranking_accuracy};
use crate::sampling::{
    ContrastiveConfig, ContrastiveSampler, MainPositionConfig, MainPositionSampler, TransferConfig,
    TransferSampler,
};

/// Settings of the SeqPE regularizers for one main task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegularizerConfig {
    pub contrastive: ContrastiveConfig,
    pub transfer: TransferConfig,
    pub main: MainPositionConfig,
    /// `w_ct` (0.1 in every script).
    pub contrastive_weight: f64,
    /// `w_kd` (0.1 in every script).
    pub distill_weight: f64,
    /// Chunks of the embedding in the distillation loss (`pe_embed_dim / 64`).
    pub distill_chunks: usize,
    /// `seqpe_transfer_beta` (1.0 in the scripts).
    pub distill_beta: f64,
}

/// What SeqPE adds to a run's training settings: the sizes and weights of the regularizers (the
/// part of [`RegularizerConfig`] a run configuration exposes) and the encoder's learning-rate
/// scale. Models flatten it into their `train` settings, so `config.json` and
/// `--set train.contrastive_batch=…` use these names, and every one of these settings is read by
/// SeqPE runs only (a report reuses a baseline's run when only these differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegularizerSettings {
    /// `w_ct` (0.1 in every script).
    pub contrastive_weight: f64,
    /// `w_kd` (0.1 in every script).
    pub distill_weight: f64,
    /// Probability of a random-shift step (`pe_random_shift_rate`, 0.1).
    pub shift_rate: f64,
    /// Size of the fixed pool of shift windows (`pe_random_shift_downsample`: 320, QA 160).
    pub shift_pool: usize,
    /// Contrastive pivots × candidates per step.
    pub contrastive_batch: usize,
    pub contrastive_candidates: usize,
    /// Distillation windows × indices per window per step.
    pub distill_windows: usize,
    pub distill_per_window: usize,
    /// Windows per shifted step (`pe_main_batch_size`).
    pub shift_windows: usize,
    /// Learning-rate multiplier of the SeqPE encoder's optimizer group (reference: 1).
    #[serde(default = "one")]
    pub encoder_lr_scale: f64,
    /// Side of the contrastive "distributional" window, whose close positions make the hard
    /// comparisons: `None` is the reference's (text 256 = half its 512-token window; ViT the
    /// training grid's side). The 1-D presets whose window is shorter than 512 keep the
    /// reference's ratio, half the window ([`Self::scaled_to_window`], reference-notes 23); runs
    /// saved before this setting existed read `None`.
    #[serde(default)]
    pub contrastive_window: Option<usize>,
}

fn one() -> f64 {
    1.0
}

impl RegularizerSettings {
    /// The reference sizes: 1-D (text) 16×32 contrastive, 16×32 distillation, 16 shift windows;
    /// n-D (ViT) 32×64, 32×64, 32. Weights 0.1, shift rate 0.1 from a pool of 320.
    pub fn reference(dims: usize) -> Self {
        let (batch, per, windows) = if dims == 1 {
            (16, 32, 16)
        } else {
            (32, 64, 32)
        };
        Self {
            contrastive_weight: 0.1,
            distill_weight: 0.1,
            shift_rate: 0.1,
            shift_pool: 320,
            contrastive_batch: batch,
            contrastive_candidates: per,
            distill_windows: batch,
            distill_per_window: per,
            shift_windows: windows,
            encoder_lr_scale: 1.0,
            contrastive_window: None,
        }
    }

    /// These settings with the 1-D contrastive window scaled to a `window`-token main window by
    /// the reference's ratio (256 for 512 tokens: half the window).
    pub fn scaled_to_window(self, window: usize) -> Self {
        Self {
            contrastive_window: Some((window / 2).max(1)),
            ..self
        }
    }
}

impl RegularizerConfig {
    /// The recipe for a main window (`[512]` text, `[14, 14]` ViT) with the given sizes.
    /// `max_per_axis` is the trained range (`pe_max_position` in 1-D, 100 for ViT); the
    /// distillation takes at most the window's size of indices per window.
    pub fn new(
        window: Vec<usize>,
        max_per_axis: usize,
        max_digits: usize,
        distill_chunks: usize,
        settings: &RegularizerSettings,
    ) -> Self {
        let dims = window.len();
        let n: usize = window.iter().product();
        let mut contrastive = if dims == 1 {
            ContrastiveConfig::text(max_per_axis, max_digits)
        } else {
            let side = window.iter().copied().max().unwrap_or(1);
            ContrastiveConfig::image(dims, max_per_axis, max_digits, side)
        };
        contrastive.batch = settings.contrastive_batch;
        contrastive.candidates = settings.contrastive_candidates;
        if let Some(w) = settings.contrastive_window {
            contrastive.window = w;
        }
        Self {
            contrastive,
            transfer: TransferConfig {
                window: window.clone(),
                max_per_axis,
                batch: settings.distill_windows,
                per_window: settings.distill_per_window.min(n),
            },
            main: MainPositionConfig {
                window,
                max_per_axis,
                shift_rate: settings.shift_rate,
                shift_pool: settings.shift_pool,
                windows_per_step: settings.shift_windows,
            },
            contrastive_weight: settings.contrastive_weight,
            distill_weight: settings.distill_weight,
            distill_chunks,
            distill_beta: 1.0,
        }
    }

    /// [`Self::new`] with the reference sizes ([`RegularizerSettings::reference`]).
    pub fn reference(
        window: Vec<usize>,
        max_per_axis: usize,
        max_digits: usize,
        distill_chunks: usize,
    ) -> Self {
        let settings = RegularizerSettings::reference(window.len());
        Self::new(window, max_per_axis, max_digits, distill_chunks, &settings)
    }
}

/// One peer's part of a batch split into `count` equal contiguous parts (data parallelism).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, `0..count`.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole batch (one device).
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// The rows of a batch of `len` rows this part holds; an error when `len` does not split
    /// into `count` equal parts.
    pub fn range(&self, len: usize, what: &str) -> Result<std::ops::Range<usize>, ShardError> {
        if self.count == 0 || !len.is_multiple_of(self.count) || self.index >= self.count {
            return Err(ShardError {
                what: what.into(),
                len,
                count: self.count,
            });
        }
        let part = len / self.count;
        Ok(self.index * part..(self.index + 1) * part)
    }
}

/// A batch that does not split into equal parts, one per peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} ({len}) must be a multiple of the number of data-parallel peers ({count})")]
pub struct ShardError {
    pub what: String,
    pub len: usize,
    pub count: usize,
}

/// Why a regularizer step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Digits(#[from] DigitError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Position(#[from] PositionError),
}

/// Samplers of the SeqPE regularizers; serialisable so that resumed runs draw the same batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeqPeRegularizer {
    pub config: RegularizerConfig,
    pub contrastive: ContrastiveSampler,
    pub transfer: TransferSampler,
    pub main: MainPositionSampler,
}

/// What one step contributes.
pub struct RegularizedStep<B: Backend> {
    /// Where the main model's tokens sit this step (pass it to `PositionEncoding::context`).
    pub grid: PositionGrid,
    /// The encoder output for `grid` (`[groups * n, out_dim]`), from the merged pass.
    pub table: Tensor<B, 2>,
    /// `w_ct · L_ct + w_kd · L_kd`.
    pub loss: Tensor<B, 1>,
    pub contrastive: Tensor<B, 1>,
    /// `None` on shifted steps.
    pub distill: Option<Tensor<B, 1>>,
    /// Share of pivots whose nearest candidate has the largest logit (no gradient): whether the
    /// encoder ranks positions by distance.
    pub ranking_accuracy: Tensor<B, 1>,
    pub shifted: bool,
}

impl SeqPeRegularizer {
    /// The training-time loss of a model's position encoding on `grid` (a task's unshifted
    /// window, e.g. `[block]` or `[rows, cols]` after a CLS prefix): for SeqPE its regularizers,
    /// sampling over the trained range the encoding was built with, with these sizes and
    /// weights; `None` for every encoding that has no training loss.
    pub fn for_encoding<B: Backend>(
        positions: &PositionEncoding<B>,
        grid: &PositionGrid,
        sizes: &RegularizerSettings,
        seed: u64,
    ) -> Option<Self> {
        let s = positions.seqpe()?;
        let config = RegularizerConfig::new(
            grid.extent.clone(),
            s.trained_range,
            s.encoder.tokenizer.max_digits,
            s.distill_chunks(),
            sizes,
        );
        Some(Self::new(config, seed))
    }

    pub fn new(config: RegularizerConfig, seed: u64) -> Self {
        Self {
            contrastive: ContrastiveSampler::new(config.contrastive.clone(), seed ^ 0xC0),
            transfer: TransferSampler::new(config.transfer.clone(), seed ^ 0x7D),
            main: MainPositionSampler::new(config.main.clone(), seed ^ 0x3A),
            config,
        }
    }

    /// Draws this step's positions, runs the encoder once and returns the table and the loss.
    /// `prefix` is the number of unpositioned tokens of the main model (ViT CLS: 1).
    pub fn step<B: Backend>(
        &mut self,
        encoder: &SeqPeEncoder<B>,
        prefix: usize,
    ) -> Result<RegularizedStep<B>, DigitError> {
        match self.step_shard(encoder, prefix, Shard::WHOLE, 0) {
            Ok(step) => Ok(step),
            Err(StepError::Digits(e)) => Err(e),
            Err(e) => unreachable!("one part always splits and no context is built here: {e}"),
        }
    }

    /// [`Self::step`] for one data-parallel peer: the same draws as on one device (every peer's
    /// samplers advance alike), of which the losses use only `shard`'s pivots and distillation
    /// windows. The main table is whole on every peer (each needs it for its examples); its
    /// shift windows are rotated so that the peer's batch row 0, global row `first_row`, gets the
    /// window that row gets on one device (batch row `b` uses window `b mod windows`).
    pub fn step_shard<B: Backend>(
        &mut self,
        encoder: &SeqPeEncoder<B>,
        prefix: usize,
        shard: Shard,
        first_row: usize,
    ) -> Result<RegularizedStep<B>, StepError> {
        let cfg = &self.config;
        let main = self.main.next();
        let mut starts = main.starts;
        let window_dims = cfg.main.window.len().max(1);
        let windows = starts.len() / window_dims;
        if windows > 1 {
            starts.rotate_left((first_row % windows) * window_dims);
        }
        let grid = PositionGrid::new(prefix, cfg.main.window.clone()).with_starts(starts);
        let main_positions = grid.flat_positions();
        let mut ct = self.contrastive.sample();
        let mut kd = (!main.shifted).then(|| self.transfer.sample());
        let mut windows = cfg.transfer.batch;
        if shard != Shard::WHOLE {
            let dims = grid.dims();
            let c = cfg.contrastive.candidates;
            let p = shard.range(ct.labels.len(), "the contrastive batch")?;
            ct.pivots = ct.pivots[p.start * dims..p.end * dims].to_vec();
            ct.candidates = ct.candidates[p.start * c * dims..p.end * c * dims].to_vec();
            ct.labels = ct.labels[p].to_vec();
            if let Some(k) = kd.as_mut() {
                let n = cfg.transfer.per_window;
                let w = shard.range(windows, "the distillation windows")?;
                k.student = k.student[w.start * n * dims..w.end * n * dims].to_vec();
                k.indices = k.indices[w.start * n..w.end * n].to_vec();
                windows = w.len();
            }
        }

        let dims = grid.dims();
        let n_main = main_positions.len() / dims;
        let n_piv = ct.pivots.len() / dims;
        let n_cand = ct.candidates.len() / dims;
        let n_student = kd.as_ref().map_or(0, |k| k.student.len() / dims);
        let mut merged = main_positions;
        merged.extend_from_slice(&ct.pivots);
        merged.extend_from_slice(&ct.candidates);
        if let Some(k) = &kd {
            merged.extend_from_slice(&k.student);
        }
        let z = encoder.encode(&merged)?;
        let d = encoder.out_dim();
        let device = z.device();
        let table = z.clone().narrow(0, 0, n_main);
        let pivots = z.clone().narrow(0, n_main, n_piv);
        let candidates = z.clone().narrow(0, n_main + n_piv, n_cand).reshape([
            n_piv,
            cfg.contrastive.candidates,
            d,
        ]);
        let labels: Vec<i64> = ct.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n_piv]), &device);
        let ranking_accuracy = ranking_accuracy(&pivots, &candidates, &labels);
        let l_ct = contrastive_loss(pivots, candidates, labels);
        let mut loss = l_ct.clone() * cfg.contrastive_weight;
        let l_kd = kd.map(|k| {
            let w = windows;
            let n = cfg.transfer.per_window;
            let idx: Vec<i64> = k.indices.iter().map(|&i| i as i64).collect();
            let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [w * n]), &device);
            let teacher = table.clone().select(0, idx).reshape([w, n, d]);
            let student = z
                .clone()
                .narrow(0, n_main + n_piv + n_cand, n_student)
                .reshape([w, n, d]);
            distill_loss(teacher, student, cfg.distill_chunks, cfg.distill_beta)
        });
        if let Some(l) = &l_kd {
            loss = loss + l.clone() * cfg.distill_weight;
        }
        Ok(RegularizedStep {
            grid,
            table,
            loss,
            contrastive: l_ct,
            distill: l_kd,
            ranking_accuracy,
            shifted: main.shifted,
        })
    }
}

/// The position context of one training step of `batch` rows whose tokens sit on `grid`, and the
/// encoding's training loss: with a regularizer (SeqPE), the context comes from its merged
/// encoder pass (`shard` of a data-parallel peer whose first batch row is global row
/// `first_row`; [`Shard::WHOLE`] and 0 on one device), which also gives the regularizer losses;
/// without one, the encoding's plain context for `grid`.
pub fn training_context<B: Backend>(
    positions: &PositionEncoding<B>,
    grid: &PositionGrid,
    batch: usize,
    regularizer: Option<&mut SeqPeRegularizer>,
    shard: Shard,
    first_row: usize,
    device: &B::Device,
) -> Result<(PositionContext<B>, Option<RegularizedStep<B>>), StepError> {
    Ok(match (regularizer, positions.seqpe()) {
        (Some(r), Some(s)) => {
            let out = r.step_shard(&s.encoder, grid.prefix, shard, first_row)?;
            let ctx = positions.context(&out.grid, batch, Some(out.table.clone()), device)?;
            (ctx, Some(out))
        }
        _ => (positions.context(grid, batch, None, device)?, None),
    })
}

#[cfg(test)]
mod shard_tests {
    use super::Shard;

    #[test]
    fn shards_are_equal_contiguous_parts_or_an_error() {
        let part = |index, count, len| Shard { index, count }.range(len, "the batch");
        assert_eq!(part(0, 1, 8), Ok(0..8));
        assert_eq!(part(0, 2, 8), Ok(0..4));
        assert_eq!(part(1, 2, 8), Ok(4..8));
        assert_eq!(part(2, 4, 8), Ok(4..6));
        let err = part(1, 3, 8).unwrap_err();
        assert_eq!((err.len, err.count), (8, 3));
        assert!(err.to_string().contains("multiple of"), "{err}");
        assert!(part(2, 2, 8).is_err());
    }
}
