//! `train-probe`, `eval-probe` and `probe-data`: one position probe run (see `seqpe-probes`),
//! its evaluation at lengths and grids beyond the training ones, and its examples written out
//! for the PyTorch twin.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, ValueEnum};
use seqpe_core::PeKind;
use seqpe_probes::config::{GridProbeConfig, Probe, SequenceProbeConfig};
use seqpe_train::config::{build, GivenFlag};
use seqpe_train::run::RunDir;

use crate::args::RunArgs;

/// The probes, on the command line.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeArg {
    /// Repeat a string after a separator (causal GPT).
    Copy,
    /// Repeat a string backwards (causal GPT).
    Reverse,
    /// Is mark A left of, right of, above or below mark B (ViT).
    Relative,
    /// Which quadrant holds the mark (ViT).
    Quadrant,
}

impl From<ProbeArg> for Probe {
    fn from(p: ProbeArg) -> Self {
        match p {
            ProbeArg::Copy => Probe::Copy,
            ProbeArg::Reverse => Probe::Reverse,
            ProbeArg::Relative => Probe::Relative,
            ProbeArg::Quadrant => Probe::Quadrant,
        }
    }
}

fn parse_pe(s: &str) -> Result<PeKind, String> {
    s.parse()
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Which probe (its preset: `--preset` is ignored).
    #[arg(long, value_enum)]
    pub probe: ProbeArg,
    /// Position encoding: seqpe, ape, sin, rope, alibi, nope (sequence probes); seqpe, ape, sin,
    /// rope, rope2d, rope-mixed, nope (grid probes). Default: the preset's, seqpe.
    #[arg(long, value_parser = parse_pe)]
    pub pe: Option<PeKind>,
    /// Grid probes: SeqPE over (row, col) digits (2, the default) or the flat patch index (1).
    #[arg(long)]
    pub dims: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The default run folder of a probe method: `probe-<probe>-<pe>[-dims1]`.
pub fn run_folder_name(probe: Probe, pe: PeKind, dims: usize) -> String {
    if dims == 1 && probe.grid().is_some() {
        format!("probe-{probe}-{pe}-dims1")
    } else {
        format!("probe-{probe}-{pe}")
    }
}

pub fn train<B: AutodiffBackend>(args: TrainArgs, device: &B::Device) -> Result<bool> {
    let probe: Probe = args.probe.into();
    let r = &args.run;
    let flags: Vec<GivenFlag> = args
        .pe
        .map(|pe| GivenFlag::new("--pe", "model.pe", &pe))
        .into_iter()
        .chain(
            args.dims
                .map(|d| GivenFlag::new("--dims", "model.dims", &d)),
        )
        .collect();
    let summary = if probe.sequence().is_some() {
        let cfg: SequenceProbeConfig = build(
            probe.name(),
            r.config.as_deref(),
            |c: &mut SequenceProbeConfig| {
                if let Some(pe) = args.pe {
                    c.model.pe = pe;
                }
            },
            &r.overrides,
        )?;
        let run = RunDir::new(r.run_dir(&run_folder_name(probe, cfg.model.pe, 1)));
        run.or_remove_if_new(|| {
            seqpe_probes::run::train_sequence::<B>(cfg, &r.session(&run, flags), device)
        })?
    } else {
        let cfg: GridProbeConfig = build(
            probe.name(),
            r.config.as_deref(),
            |c: &mut GridProbeConfig| {
                if let Some(pe) = args.pe {
                    c.model.pe = pe;
                }
                if let Some(dims) = args.dims {
                    c.model.dims = dims;
                }
            },
            &r.overrides,
        )?;
        let run = RunDir::new(r.run_dir(&run_folder_name(probe, cfg.model.pe, cfg.model.dims)));
        run.or_remove_if_new(|| {
            seqpe_probes::run::train_grid::<B>(cfg, &r.session(&run, flags), device)
        })?
    };
    println!(
        "trained {probe} for {} steps in {:.0}s; best valid accuracy {}",
        summary.steps,
        summary.seconds,
        summary
            .best_valid
            .map_or("-".into(), |a| format!("{:.1} %", 100.0 * a))
    );
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The probe run to evaluate.
    #[arg(long)]
    pub run: PathBuf,
    /// Write the report as JSON here (default: <run>/eval-probe.json; eval-probe-bf16.json at
    /// bf16).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub precision: crate::args::EvalPrecision,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let run = RunDir::new(&args.run);
    let report = seqpe_probes::run::evaluate::<B>(&run, args.precision.value(), device)?;
    print!("{}", report.table());
    let json = args
        .json
        .unwrap_or_else(|| run.file(&args.precision.file("eval-probe.json".into())));
    seqpe_train::checkpoint::write_json(&json, &report)?;
    println!("wrote {}", json.display());
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Which probe.
    #[arg(long, value_enum)]
    pub probe: ProbeArg,
    /// The run seed whose training examples are written (the preset's `train.seed` is 1).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Training examples to write (a run draws steps × batch of them, in this order).
    #[arg(long, default_value_t = 128_000)]
    pub train: usize,
    /// The JSON-lines file to write (`scripts/probe_twin.py --data` reads it).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes a probe's training examples and test set for the PyTorch twin.
pub fn data(args: DataArgs) -> Result<bool> {
    let probe: Probe = args.probe.into();
    seqpe_probes::run::dump(probe, args.seed, args.train, &args.out)?;
    println!(
        "wrote {} ({} training examples of seed {} and the test set of {probe})",
        args.out.display(),
        args.train,
        args.seed
    );
    Ok(true)
}
