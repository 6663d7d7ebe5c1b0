//! Training, evaluating and dumping a probe run: what `train-probe`, `eval-probe`,
//! `probe-data` and `report-probes` call.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use seqpe_core::diagnostics::{table_axis_shares, AxisShares};
use seqpe_core::{PeKind, PeTableCache};
use seqpe_text::model::Gpt;
use seqpe_train::run::RunDir;
use seqpe_train::{fit, FitSummary};
use seqpe_train::{Precision, Session};
use serde::{Deserialize, Serialize};

use crate::config::{GridProbeConfig, Probe, SequenceProbeConfig};
use crate::grid::{self, GridProbe, ProbeVit};
use crate::sequence::{self, SequenceProbe};

/// The seed of every probe's test set: fixed, so every encoding and every seed is scored on the
/// same test examples (and never on its own training stream).
pub const TEST_SEED: u64 = 0x5EED_7E57;

/// Trains (or resumes) a sequence probe run.
pub fn train_sequence<B: AutodiffBackend>(
    cfg: SequenceProbeConfig,
    session: &Session,
    device: &B::Device,
) -> Result<FitSummary> {
    let cfg = session.config(cfg)?;
    seqpe_train::config::RunConfig::validate(&cfg)?;
    if !session.resume {
        seqpe_train::checkpoint::write_json(&session.run.config(), &cfg)?;
    }
    let t = &cfg.train;
    let task = SequenceProbe::new(cfg.probe.clone(), t.seed, t.steps * t.batch_size)?;
    B::seed(device, t.seed);
    let model: Gpt<B> = cfg.model.init(device)?;
    fit(&task, model, t, &session.fit_options("train-probe"), device)
}

/// Trains (or resumes) a grid probe run.
pub fn train_grid<B: AutodiffBackend>(
    cfg: GridProbeConfig,
    session: &Session,
    device: &B::Device,
) -> Result<FitSummary> {
    let cfg = session.config(cfg)?;
    seqpe_train::config::RunConfig::validate(&cfg)?;
    if !session.resume {
        seqpe_train::checkpoint::write_json(&session.run.config(), &cfg)?;
    }
    let t = &cfg.train;
    let task = GridProbe::new(
        cfg.probe.clone(),
        t.seed,
        t.steps * t.batch_size,
        cfg.model.trained_extent(),
    )?;
    B::seed(device, t.seed);
    let model = ProbeVit::new(cfg.model.init::<B>(device)?, cfg.model.d_model, device);
    fit(&task, model, t, &session.fit_options("train-probe"), device)
}

/// One evaluation point of a probe: a length bin (sequence probes) or a grid size (grid
/// probes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePoint {
    /// `1–20`, `21–40`, … or `8×8`, `16×16`, ….
    pub label: String,
    /// The bin's longest string, or the grid's side.
    pub key: usize,
    /// Whether the point is inside the training distribution (the first bin, the training
    /// grid).
    pub trained: bool,
    /// Per-token accuracy of greedy answers (sequence probes) or top-1 (grid probes), in [0, 1].
    pub accuracy: f64,
    /// Share of whole answers generated correctly (sequence probes only).
    pub exact_match: Option<f64>,
    pub examples: usize,
    /// Top-1 of each class's images, in the order of [`grid::class_names`] (grid probes; empty
    /// for the sequence probes and for evaluations made before it was recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_class: Vec<f64>,
}

/// The evaluation of a probe run on its test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeEval {
    pub probe: Probe,
    pub pe: PeKind,
    /// Coordinates per position (2 for the grid probes' (row, col); 1 for the sequences and the
    /// flat patch index).
    pub dims: usize,
    pub points: Vec<ProbePoint>,
    pub seconds: f64,
    /// The arithmetic of the forward passes (evaluations before the setting existed: f32).
    #[serde(default)]
    pub precision: Precision,
    /// Grid probes: how the position vectors of the training grid differ by row and by column
    /// (encodings with vectors: SeqPE, learned, sinusoidal; `None` otherwise and before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axes: Option<AxisShares>,
}

impl ProbeEval {
    pub fn table(&self) -> String {
        let mut s = format!("{} ({}, dims {})\n", self.probe, self.pe, self.dims);
        if let Some(a) = &self.axes {
            s += &format!(
                "position vectors of the training grid: {:.1} % of their differences by row, \
                 {:.1} % by column, {:.1} % both\n",
                100.0 * a.row,
                100.0 * a.column,
                100.0 * a.interaction
            );
        }
        s +=
            "| point | examples | accuracy % | exact % | per class % |\n|---|---:|---:|---:|---|\n";
        for p in &self.points {
            let classes: Vec<String> = p
                .per_class
                .iter()
                .map(|c| format!("{:.1}", 100.0 * c))
                .collect();
            s += &format!(
                "| {}{} | {} | {:.1} | {} | {} |\n",
                p.label,
                if p.trained { " (trained)" } else { "" },
                p.examples,
                100.0 * p.accuracy,
                p.exact_match
                    .map_or("-".into(), |e| format!("{:.1}", 100.0 * e)),
                if classes.is_empty() {
                    "-".into()
                } else {
                    classes.join(" / ")
                }
            );
        }
        s
    }
}

/// Evaluates the best model of a probe run (either kind) on its test set, its weights cast to
/// `precision` (f32: as saved; bf16: the forward passes in bf16).
pub fn evaluate<B: Backend>(
    run: &RunDir,
    precision: Precision,
    device: &B::Device,
) -> Result<ProbeEval> {
    precision.check()?;
    let started = std::time::Instant::now();
    let value: serde_json::Value = run.read_config()?;
    let kind = value
        .pointer("/probe/task")
        .and_then(|t| t.as_str())
        .with_context(|| {
            format!(
                "{} is not a probe run (no probe.task)",
                run.config().display()
            )
        })?;
    let mut eval = match kind {
        "copy" | "reverse" => {
            let cfg: SequenceProbeConfig = seqpe_train::config::load(run)?;
            let model =
                precision.cast_model(run.load_trained(cfg.model.init::<B>(device)?, device)?);
            let points = sequence::test_set(&cfg.probe, TEST_SEED)
                .into_iter()
                .enumerate()
                .map(|(i, (bin, examples))| {
                    let score =
                        sequence::greedy_score(&model, &examples, cfg.probe.alphabet, device)?;
                    Ok(ProbePoint {
                        label: bin.label(),
                        key: bin.hi,
                        trained: i == 0,
                        accuracy: score.token_accuracy,
                        exact_match: Some(score.exact_match),
                        examples: score.examples,
                        per_class: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            ProbeEval {
                probe: if cfg.probe.task == crate::config::SequenceTask::Copy {
                    Probe::Copy
                } else {
                    Probe::Reverse
                },
                pe: cfg.model.pe,
                dims: 1,
                points,
                seconds: 0.0,
                precision,
                axes: None,
            }
        }
        _ => {
            let cfg: GridProbeConfig = seqpe_train::config::load(run)?;
            let fresh = ProbeVit::new(cfg.model.init::<B>(device)?, cfg.model.d_model, device);
            let model = precision.cast_model(run.load_trained(fresh, device)?.vit);
            let axes = grid_axes(&model, cfg.probe.grid, device)?;
            let cache = PeTableCache::new();
            let points = grid::test_set(&cfg.probe, TEST_SEED)
                .into_iter()
                .map(|(g, images)| {
                    let classes = grid::class_accuracy(&model, &images, &cache, device)?;
                    Ok(ProbePoint {
                        label: format!("{g}×{g}"),
                        key: g,
                        trained: g == cfg.probe.grid,
                        accuracy: classes.top1(),
                        exact_match: None,
                        examples: images.len(),
                        per_class: classes.shares(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            ProbeEval {
                probe: if cfg.probe.task == crate::config::GridTask::Relative {
                    Probe::Relative
                } else {
                    Probe::Quadrant
                },
                pe: cfg.model.pe,
                dims: cfg.model.dims,
                points,
                seconds: 0.0,
                precision,
                axes,
            }
        }
    };
    eval.seconds = started.elapsed().as_secs_f64();
    Ok(eval)
}

/// [`AxisShares`] of `model`'s position vectors on the `g × g` training grid (the flat index's
/// `g²` positions read row-major alike); `None` for the encodings without vectors.
fn grid_axes<B: Backend>(
    model: &seqpe_vision::model::Vit<B>,
    g: usize,
    device: &B::Device,
) -> Result<Option<AxisShares>> {
    let grid = model.grid_for(g, g)?;
    let Some(table) = model.positions.position_vectors(&grid, device)? else {
        return Ok(None);
    };
    let n = table.dims()[0];
    if n != g * g {
        anyhow::bail!("expected {} position vectors, got {n}", g * g);
    }
    Ok(Some(table_axis_shares(table, g, g)))
}

/// Writes `train` training examples of a probe (those a run seeded `seed` draws first) and its
/// test set as JSON lines, the format `scripts/probe_twin.py --data` reads, so the PyTorch twin
/// trains and is tested on exactly our examples.
pub fn dump(probe: Probe, seed: u64, train: usize, path: &Path) -> Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    match (probe.sequence(), probe.grid()) {
        (Some(task), _) => {
            let s = SequenceProbeConfig::for_task(task).probe;
            let mut line = |split: &str, e: &sequence::SequenceExample| {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"split": split, "input": e.input, "answer": e.answer})
                )
            };
            for i in 0..train {
                line("train", &sequence::train_example(&s, seed, i))?;
            }
            for (_, examples) in sequence::test_set(&s, TEST_SEED) {
                for e in &examples {
                    line("test", e)?;
                }
            }
        }
        (None, Some(task)) => {
            let s = GridProbeConfig::for_task(task).probe;
            let mut line = |split: &str, e: &grid::GridExample| {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"split": split, "grid": e.grid, "channels": e.channels,
                        "pixels": e.pixels, "label": e.label})
                )
            };
            for i in 0..train {
                line("train", &grid::train_example(&s, seed, i))?;
            }
            for (_, images) in grid::test_set(&s, TEST_SEED) {
                for e in &images {
                    line("test", e)?;
                }
            }
        }
        (None, None) => unreachable!("every probe is a sequence or a grid probe"),
    }
    out.flush()?;
    Ok(())
}
