//! Probe run configurations: one preset per probe (`copy`, `reverse` on the GPT; `relative`,
//! `quadrant` on the ViT), as plain serialisable structs like every other run's, so `--set` and
//! `config.json` work as they do for text and vision.
//!
//! SeqPE follows the reference recipe scaled to the probe's window (docs/reference-notes.md): the
//! reference GPT trains positions up to 20,000 on 512-token windows (39× the window), its ViT up
//! to 100 per axis on a 14 × 14 grid (about 7× the side); the probes keep those ratios.

use anyhow::{bail, Result};
pub use seqpe_core::{grid_range, text_range};
use seqpe_core::{PeKind, RegularizerSettings, SeqPeInjection, SeqPeSettings};
use seqpe_train::config::{Preset, RunConfig};
use seqpe_train::schedule::Decay;
use seqpe_train::TrainSettings;
use serde::{Deserialize, Serialize};

/// The 1-D probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceTask {
    /// Repeat the string.
    Copy,
    /// Repeat the string backwards.
    Reverse,
}

/// The 2-D probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridTask {
    /// Is mark A left of, right of, above or below mark B.
    Relative,
    /// Which quadrant holds the mark.
    Quadrant,
}

impl Preset for SequenceTask {
    const WHAT: &'static str = "sequence probe";
    const ALL: &'static [Self] = &[Self::Copy, Self::Reverse];

    fn name(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::Reverse => "reverse",
        }
    }
}

impl Preset for GridTask {
    const WHAT: &'static str = "grid probe";
    const ALL: &'static [Self] = &[Self::Relative, Self::Quadrant];

    fn name(self) -> &'static str {
        match self {
            Self::Relative => "relative",
            Self::Quadrant => "quadrant",
        }
    }
}

/// Every probe, for the command line and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    Copy,
    Reverse,
    Relative,
    Quadrant,
}

impl Probe {
    pub const ALL: [Probe; 4] = [
        Probe::Copy,
        Probe::Reverse,
        Probe::Relative,
        Probe::Quadrant,
    ];

    pub fn name(self) -> &'static str {
        match (self.sequence(), self.grid()) {
            (Some(t), _) => t.name(),
            (_, Some(t)) => t.name(),
            (None, None) => unreachable!("every probe is a sequence or a grid probe"),
        }
    }

    /// The 1-D task of a sequence probe, `None` for a grid probe.
    pub fn sequence(self) -> Option<SequenceTask> {
        match self {
            Probe::Copy => Some(SequenceTask::Copy),
            Probe::Reverse => Some(SequenceTask::Reverse),
            _ => None,
        }
    }

    /// The 2-D task of a grid probe, `None` for a sequence probe.
    pub fn grid(self) -> Option<GridTask> {
        match self {
            Probe::Relative => Some(GridTask::Relative),
            Probe::Quadrant => Some(GridTask::Quadrant),
            _ => None,
        }
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The token ids of a sequence probe: the symbols are `0..alphabet`, then the separator, the end
/// token and padding; the vocabulary is `alphabet + 3`.
pub fn sep(alphabet: usize) -> u32 {
    alphabet as u32
}
pub fn end(alphabet: usize) -> u32 {
    alphabet as u32 + 1
}
pub fn pad(alphabet: usize) -> u32 {
    alphabet as u32 + 2
}
pub fn vocab(alphabet: usize) -> usize {
    alphabet + 3
}

/// What a sequence probe trains and evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceSettings {
    pub task: SequenceTask,
    /// Symbols of the strings.
    pub alphabet: usize,
    /// Training strings have `1..=train_len` symbols.
    pub train_len: usize,
    /// Evaluation bins end at these multiples of `train_len` (`1,2,4,8`: `1..L`, `L+1..2L`, …).
    pub eval_factors: Vec<usize>,
    /// Distinct string lengths evaluated per bin (evenly spaced over the bin).
    pub lengths_per_bin: usize,
    /// Test strings per bin.
    pub eval_examples: usize,
    /// Validation strings (lengths `1..=train_len`), for model selection.
    pub valid_examples: usize,
}

/// What a grid probe trains and evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSettings {
    pub task: GridTask,
    /// Training images are `grid × grid` pixels (one token each).
    pub grid: usize,
    /// Channels per pixel (≥ 2: a mark raises its own channel).
    pub channels: usize,
    /// Standard deviation of the noise of every channel of every pixel.
    pub noise: f64,
    /// What a mark adds to its channel.
    pub amp: f64,
    /// Weight of the patch tokens' coordinate regression (see `grid`'s module doc; 0 = off).
    pub aux_weight: f64,
    /// Test grid sizes.
    pub eval_grids: Vec<usize>,
    /// Test images per size.
    pub eval_examples: usize,
    /// Validation images (training size), for model selection.
    pub valid_examples: usize,
}

/// A sequence probe run (`copy`, `reverse`): saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceProbeConfig {
    pub preset: String,
    pub probe: SequenceSettings,
    pub model: seqpe_text::config::ModelSettings,
    pub train: TrainSettings,
}

/// A grid probe run (`relative`, `quadrant`): saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridProbeConfig {
    pub preset: String,
    pub probe: GridSettings,
    pub model: seqpe_vision::config::ModelSettings,
    pub train: TrainSettings,
}

/// The training settings every probe starts from (measured with the PyTorch twin,
/// `scripts/PROBES-FINDINGS.md`: batch 64, warm-up 100 then cosine to 0, weight decay 0.01,
/// clipping 1; the steps and learning rate are the modality's).
fn probe_train(dims: usize, steps: usize, lr: f64) -> TrainSettings {
    TrainSettings {
        batch_size: 64,
        steps,
        lr,
        warmup_steps: 100,
        warmup_start_lr: 0.0,
        final_lr: 0.0,
        decay: Decay::Cosine,
        weight_decay: 0.01,
        grad_clip: 1.0,
        label_smoothing: 0.0,
        seed: 1,
        eval_every: 500,
        valid_limit: 0,
        checkpoint_every: 500,
        precision: seqpe_train::Precision::F32,
        regularizer: probe_regularizer(dims),
    }
}

/// The SeqPE regularizer sizes of the probes: the reference's weights, shift rate and pool, and
/// its *proportion* of regularizer positions to main tokens rather than its absolute sizes. The
/// reference encodes about 8 % as many regularizer positions as its main model has tokens per
/// step (GPT: 16 × 32 + 16 × 32 per 32 × 512 tokens); its absolute n-D sizes (32 × 64 twice)
/// would make a probe's encoder cost five times its 2-layer ViT. Both probes therefore use
/// 8 pivots × 16 candidates and 8 distillation windows × 16 (the text CPU presets' sizes; 256
/// positions per step, about 22 % of a sequence batch's tokens and 6 % of a grid batch's) and 8
/// windows per shifted step.
fn probe_regularizer(dims: usize) -> RegularizerSettings {
    RegularizerSettings {
        contrastive_batch: 8,
        contrastive_candidates: 16,
        distill_windows: 8,
        distill_per_window: 16,
        shift_windows: 8,
        ..RegularizerSettings::reference(dims)
    }
}

impl SequenceProbeConfig {
    /// The preset of a sequence probe (`copy` or `reverse`): strings of 1–16 symbols over 4, a
    /// 3-layer width-64 GPT, 2,000 steps at lr 3e-3 (reverse needs the third layer to be exact
    /// within the budget; measured with the twin).
    pub fn for_task(task: SequenceTask) -> Self {
        let probe = SequenceSettings {
            task,
            alphabet: 4,
            train_len: 16,
            eval_factors: vec![1, 2, 4, 8],
            lengths_per_bin: 8,
            eval_examples: 200,
            valid_examples: 200,
        };
        let window = 2 * probe.train_len + 1;
        let d = 64;
        let model = seqpe_text::config::ModelSettings {
            vocab_size: vocab(probe.alphabet),
            d_model: d,
            n_heads: 4,
            n_layers: 3,
            block_size: window,
            dropout: 0.0,
            attn_dropout: 0.0,
            pe: PeKind::SeqPe,
            seqpe: SeqPeSettings::reference(d, text_range(window), SeqPeInjection::AttnScalar),
            rope_base: 10_000.0,
            alibi_form: Default::default(),
        };
        let mut train = probe_train(1, 2000, 3e-3);
        train.regularizer = train.regularizer.scaled_to_window(window);
        Self {
            preset: task.name().into(),
            probe,
            model,
            train,
        }
    }
}

impl SequenceProbeConfig {
    /// The quick preset of a sequence probe, for `cargo xtask demo`: strings of 1–8 symbols, a
    /// 2-layer GPT, 600 steps of 32 strings at the preset's learning rate, 50 test strings per
    /// bin (bins up to 8× as long), SeqPE's range scaled to the 17-token window as in the full
    /// preset. Measured 2026-12-06 on this project's machine (one core of two busy): about 25 s
    /// per baseline and 55 s for SeqPE, training and evaluation; APE and RoPE reach 100 % on the
    /// trained lengths.
    pub fn quick(task: SequenceTask) -> Self {
        let mut cfg = Self::for_task(task);
        cfg.preset = format!("{}-quick", task.name());
        cfg.probe.train_len = 8;
        cfg.probe.eval_examples = 50;
        cfg.probe.valid_examples = 100;
        let window = 2 * cfg.probe.train_len + 1;
        cfg.model.block_size = window;
        cfg.model.n_layers = 2;
        cfg.model.seqpe.max_position = text_range(window);
        cfg.train.regularizer = cfg.train.regularizer.scaled_to_window(window);
        cfg.train.batch_size = 32;
        cfg.train.steps = 600;
        cfg.train.eval_every = 200;
        cfg
    }
}

impl GridProbeConfig {
    /// The preset of a grid probe (`relative` or `quadrant`): 8 × 8 images of 3 channels, noise
    /// 0.25, marks +2, a 2-layer width-64 ViT with MLP ratio 2, coordinate regression weight
    /// 10, 1,500 steps at lr 2e-3 (measured with the twin: at noise 0.5 a noisy pixel sometimes
    /// looks like a mark and APE stalls near 92 %).
    pub fn for_task(task: GridTask) -> Self {
        let probe = GridSettings {
            task,
            grid: 8,
            channels: 3,
            noise: 0.25,
            amp: 2.0,
            aux_weight: 10.0,
            eval_grids: vec![8, 12, 16, 24, 32],
            eval_examples: 400,
            valid_examples: 400,
        };
        let d = 64;
        let model = seqpe_vision::config::ModelSettings {
            image_size: probe.grid,
            patch: 1,
            channels: probe.channels,
            num_classes: 4,
            d_model: d,
            n_heads: 4,
            n_layers: 2,
            mlp_ratio: 2,
            dropout: 0.0,
            attn_dropout: 0.0,
            pe: PeKind::SeqPe,
            dims: 2,
            // the ViT recipe with the vision presets' q/k bias of 1 (ablations.md): with the
            // reference's 0, `q ⊙ p_q` starts near zero and the probe learned slowly (relative,
            // seed 1, validation top-1 after 1,500 steps: 92.25 % with 0, 99.75 % with 1;
            // reference-notes 21)
            seqpe: SeqPeSettings {
                qk_bias: 1.0,
                ..SeqPeSettings::reference(d, grid_range(probe.grid), SeqPeInjection::AttnMul)
            },
            rope_base: None,
        };
        Self {
            preset: task.name().into(),
            probe,
            model,
            train: probe_train(2, 1500, 2e-3),
        }
    }
}

impl RunConfig for SequenceProbeConfig {
    type Preset = SequenceTask;

    fn from_preset(task: SequenceTask) -> Self {
        Self::for_task(task)
    }

    fn validate(&self) -> Result<()> {
        let (p, m) = (&self.probe, &self.model);
        if p.alphabet < 2 || p.train_len == 0 || p.eval_factors.is_empty() {
            bail!(
                "probe.alphabet must be ≥ 2, probe.train_len positive and probe.eval_factors \
                 non-empty"
            );
        }
        if m.vocab_size != vocab(p.alphabet) {
            bail!(
                "model.vocab_size must be probe.alphabet + 3 = {} (the symbols, separator, end \
                 and padding)",
                vocab(p.alphabet)
            );
        }
        if m.block_size != 2 * p.train_len + 1 {
            bail!(
                "model.block_size must be 2 · probe.train_len + 1 = {} (the longest training \
                 input)",
                2 * p.train_len + 1
            );
        }
        if !seqpe_text::config::TEXT_PES.contains(&m.pe) {
            bail!(
                "`{}` is a grid encoding; the sequence probes take the text encodings",
                m.pe
            );
        }
        let longest = 2 * p.train_len * p.eval_factors.iter().max().copied().unwrap_or(1) + 1;
        if m.position_config()
            .trained_range()
            .is_some_and(|range| longest > range)
        {
            bail!(
                "the longest test input ({longest} tokens) is beyond model.seqpe_max_position \
                 ({}); raise it or lower probe.eval_factors",
                m.seqpe.max_position
            );
        }
        m.check()?;
        Ok(())
    }

    fn train(&self) -> &TrainSettings {
        &self.train
    }

    fn train_mut(&mut self) -> &mut TrainSettings {
        &mut self.train
    }
}

impl RunConfig for GridProbeConfig {
    type Preset = GridTask;

    fn from_preset(task: GridTask) -> Self {
        Self::for_task(task)
    }

    fn validate(&self) -> Result<()> {
        let (p, m) = (&self.probe, &self.model);
        if m.image_size != p.grid || m.patch != 1 || m.channels != p.channels || m.num_classes != 4
        {
            bail!(
                "a grid probe's ViT has model.image_size = probe.grid ({}), patch 1, \
                 model.channels = probe.channels ({}) and 4 classes",
                p.grid,
                p.channels
            );
        }
        let largest = p
            .eval_grids
            .iter()
            .copied()
            .max()
            .unwrap_or(p.grid)
            .max(p.grid);
        // the largest coordinate: a side (row, col), or the flat index of the last patch
        let coordinate = if m.dims == 1 {
            largest * largest
        } else {
            largest
        };
        if m.position_config()
            .trained_range()
            .is_some_and(|range| coordinate >= range)
        {
            bail!(
                "the largest test grid ({largest}) is beyond model.seqpe_max_position ({}) per \
                 axis; raise it or drop the grid",
                m.seqpe.max_position
            );
        }
        if !seqpe_vision::config::VISION_PES.contains(&m.pe) {
            bail!(
                "`{}` is a 1-D causal encoding; the grid probes take the vision encodings",
                m.pe
            );
        }
        m.check()?;
        Ok(())
    }

    fn train(&self) -> &TrainSettings {
        &self.train
    }

    fn train_mut(&mut self) -> &mut TrainSettings {
        &mut self.train
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_ratios_scale_to_the_probe_windows() {
        // the reference's own windows give back its own ranges
        assert_eq!(text_range(512), 20_000);
        assert_eq!(grid_range(14), 100);
        // the probes' 33-token window: 33 · 39.06 = 1289 → 1,300; 41: 1601.6 → 1,600; an 8 × 8
        // grid: 8 · 7.14 = 57.1 → 57
        assert_eq!(text_range(33), 1300);
        assert_eq!(text_range(41), 1600);
        assert_eq!(grid_range(8), 57);
        for &t in SequenceTask::ALL {
            SequenceProbeConfig::for_task(t).validate().unwrap();
            let quick = SequenceProbeConfig::quick(t);
            quick.validate().unwrap();
            // 17 · 39.06 = 664 → 700; the contrastive window is half the window, as the
            // reference's 256 is of 512
            assert_eq!(quick.model.seqpe.max_position, 700);
            assert_eq!(quick.train.regularizer.contrastive_window, Some(8));
            let full = SequenceProbeConfig::for_task(t);
            assert_eq!(full.train.regularizer.contrastive_window, Some(16));
        }
        for &t in GridTask::ALL {
            GridProbeConfig::for_task(t).validate().unwrap();
        }
    }
}
