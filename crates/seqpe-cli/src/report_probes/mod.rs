//! `report-probes`: every probe × every encoding × every seed through the one report runner
//! ([`crate::report::run_plan`]), written as `docs/results/probes.md` with a table and a plot
//! per probe (mean ± sd over the seeds), SeqPE against each baseline counted against the
//! spread, and the page's own sanity checks (NoPE at chance on the relative probe; the probes
//! learnable at the training size).

//!
//! Files: this one runs the suite (the methods, the experiment, the demo's probe); [`page`]
//! writes `probes.md`; [`twin`] reads the PyTorch twin's results; [`results`] holds what both
//! read of an outcome.

mod page;
mod results;
mod twin;

pub use page::{accuracy_table, write_report};
pub use results::{ProbeMethod, ProbeResult};
pub use twin::{read_twin, TwinRun};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use seqpe_core::PeKind;
use seqpe_probes::config::{GridProbeConfig, Probe, SequenceProbeConfig};
use seqpe_probes::run::ProbeEval;
use seqpe_train::config::{apply_overrides, RunConfig};
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_train::Session;

use crate::args::{TextPe, VisionPe};
use crate::probe_cmd::{run_folder_name, ProbeArg};
use crate::report::{Experiment, Plan, Seed};
use crate::text_cmd::command_line;

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Probes to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "copy,reverse,relative,quadrant"
    )]
    pub probes: Vec<ProbeArg>,
    /// Encodings of the sequence probes.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = TextPe::value_variants().to_vec()
    )]
    pub text_pes: Vec<TextPe>,
    /// Encodings of the grid probes (SeqPE over (row, col); see --with-dims1).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = VisionPe::value_variants().to_vec()
    )]
    pub vision_pes: Vec<VisionPe>,
    /// Also run the grid probes with SeqPE over the flat patch index (`--dims 1`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub with_dims1: bool,
    /// The PyTorch twin's results (`scripts/probe_twin_all.sh` writes them), shown beside ours
    /// when the file exists.
    #[arg(long, default_value = "docs/results/probes_twin.jsonl")]
    pub twin: PathBuf,
    #[command(flatten)]
    pub common: crate::args::ReportRuns,
}

/// A probe as an [`Experiment`]; `C` is its kind of run configuration.
struct ProbeExperiment<C> {
    probe: Probe,
    /// The configuration every method starts from (the probe's preset, or the demo's quick one).
    base: C,
    overrides: Vec<String>,
    /// Run folders are `<prefix>-<probe>-<pe>[-dims1]`.
    prefix: &'static str,
}

/// What differs between the two kinds of probe run.
trait ProbeRun: RunConfig {
    fn set_method(&mut self, method: &ProbeMethod);
    fn train_run<B: AutodiffBackend>(
        self,
        session: &Session,
        device: &B::Device,
    ) -> Result<FitSummary>;
}

impl ProbeRun for SequenceProbeConfig {
    fn set_method(&mut self, method: &ProbeMethod) {
        self.model.pe = method.pe;
    }
    fn train_run<B: AutodiffBackend>(
        self,
        session: &Session,
        device: &B::Device,
    ) -> Result<FitSummary> {
        seqpe_probes::run::train_sequence::<B>(self, session, device)
    }
}

impl ProbeRun for GridProbeConfig {
    fn set_method(&mut self, method: &ProbeMethod) {
        self.model.pe = method.pe;
        self.model.dims = method.dims;
    }
    fn train_run<B: AutodiffBackend>(
        self,
        session: &Session,
        device: &B::Device,
    ) -> Result<FitSummary> {
        seqpe_probes::run::train_grid::<B>(self, session, device)
    }
}

impl<B: AutodiffBackend, C: ProbeRun> Experiment<B> for ProbeExperiment<C> {
    type Method = ProbeMethod;
    type Config = C;
    type Eval = ProbeEval;

    fn config(&self, m: &ProbeMethod, _seed: Seed) -> Result<C> {
        let mut cfg = self.base.clone();
        apply_overrides(&mut cfg, &self.overrides)?;
        cfg.set_method(m);
        Ok(cfg)
    }

    fn folder(&self, m: &ProbeMethod) -> String {
        let name = run_folder_name(self.probe, m.pe, m.dims);
        match name.strip_prefix("probe") {
            Some(rest) => format!("{}{rest}", self.prefix),
            None => name,
        }
    }

    fn ignored_keys(&self) -> Vec<String> {
        Vec::new()
    }

    fn train(&self, cfg: C, session: Session, device: &B::Device) -> Result<FitSummary> {
        cfg.train_run::<B>(&session, device)
    }

    fn eval_file(&self, run: &RunDir) -> PathBuf {
        run.file("eval-probe.json")
    }

    fn eval_is_current(&self, e: &ProbeEval) -> bool {
        let points = |c: &C| -> Option<usize> {
            let v = serde_json::to_value(c).ok()?;
            let p = v.get("probe")?;
            Some(
                p.get("eval_factors")
                    .or_else(|| p.get("eval_grids"))?
                    .as_array()?
                    .len(),
            )
        };
        e.probe == self.probe
            && points(&self.base) == Some(e.points.len())
            && e.precision == seqpe_train::Precision::F32
    }

    fn evaluate(&self, run: &RunDir, device: &B::Device) -> Result<ProbeEval> {
        seqpe_probes::run::evaluate::<B::InnerBackend>(run, seqpe_train::Precision::F32, device)
    }

    fn recorded_seconds(&self, e: &ProbeEval) -> f64 {
        e.seconds
    }
}

/// Trains and evaluates one probe for every method and seed.
fn run_probe<B: AutodiffBackend>(
    probe: Probe,
    methods: Vec<ProbeMethod>,
    seed: Seed,
    args: &ReportArgs,
    device: &B::Device,
) -> Result<Vec<ProbeResult>> {
    let plan = Plan {
        methods,
        seeds: vec![seed],
        runs: args.common.runs.clone(),
        retrain: args.common.retrain,
        finished_only: args.common.finished_only,
    };
    let overrides = args.common.overrides.clone();
    match (probe.sequence(), probe.grid()) {
        (Some(task), _) => {
            let x = ProbeExperiment {
                probe,
                base: SequenceProbeConfig::for_task(task),
                overrides,
                prefix: "probe",
            };
            crate::report::run_plan::<B, _>(&x, &plan, device)
        }
        (_, Some(task)) => {
            let x = ProbeExperiment {
                probe,
                base: GridProbeConfig::for_task(task),
                overrides,
                prefix: "probe",
            };
            crate::report::run_plan::<B, _>(&x, &plan, device)
        }
        (None, None) => unreachable!("every probe is a sequence or a grid probe"),
    }
}

/// The demo's probe: the quick copy preset ([`SequenceProbeConfig::quick`]) with SeqPE, APE,
/// RoPE and NoPE, one seed, in run folders `demo-copy-<pe>` under `runs`.
pub fn demo_probe<B: AutodiffBackend>(
    runs: &Path,
    overrides: &[String],
    device: &B::Device,
) -> Result<(Probe, Vec<ProbeResult>)> {
    let probe = Probe::Copy;
    let x = ProbeExperiment {
        probe,
        base: SequenceProbeConfig::quick(seqpe_probes::config::SequenceTask::Copy),
        overrides: overrides.to_vec(),
        prefix: "demo",
    };
    let plan = Plan {
        methods: [PeKind::SeqPe, PeKind::Learned, PeKind::Rope, PeKind::None]
            .into_iter()
            .map(|pe| ProbeMethod {
                pe,
                dims: 1,
                grid: false,
            })
            .collect(),
        seeds: Seed::first(1),
        runs: runs.to_path_buf(),
        retrain: false,
        finished_only: false,
    };
    Ok((probe, crate::report::run_plan::<B, _>(&x, &plan, device)?))
}

/// The methods of a probe from the arguments.
fn methods(probe: Probe, args: &ReportArgs) -> Vec<ProbeMethod> {
    if probe.sequence().is_some() {
        args.text_pes
            .iter()
            .map(|&p| ProbeMethod {
                pe: p.into(),
                dims: 1,
                grid: false,
            })
            .collect()
    } else {
        let mut m: Vec<ProbeMethod> = args
            .vision_pes
            .iter()
            .map(|&p| ProbeMethod {
                pe: p.into(),
                dims: 2,
                grid: true,
            })
            .collect();
        if args.with_dims1 && m.iter().any(|m| m.pe == PeKind::SeqPe) {
            m.push(ProbeMethod {
                pe: PeKind::SeqPe,
                dims: 1,
                grid: true,
            });
        }
        m
    }
}

/// Runs every probe and writes `docs/results/probes.md`.
pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let started = Instant::now();
    args.common.check()?;
    // every probe's first seed before any probe's second, so an interrupted report has the
    // whole suite at one seed first
    let probes: Vec<Probe> = args.probes.iter().map(|&p| p.into()).collect();
    let mut sections: Vec<(Probe, Vec<ProbeResult>)> =
        probes.iter().map(|&p| (p, Vec::new())).collect();
    for seed in Seed::first(args.common.seeds) {
        for (probe, results) in sections.iter_mut() {
            let probe = *probe;
            results.extend(run_probe::<B>(
                probe,
                methods(probe, &args),
                seed,
                &args,
                device,
            )?);
        }
    }
    for (probe, results) in &sections {
        print!("{}", accuracy_table(*probe, results, false));
    }
    let twin = read_twin(&args.twin)?;
    let path = write_report(
        &sections,
        &twin,
        &args.common.out,
        &command_line("report-probes"),
        backend,
        started.elapsed().as_secs_f64(),
    )?;
    println!("wrote {}", path.display());
    Ok(true)
}
