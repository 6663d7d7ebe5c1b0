//! `report-probes`: every probe × every encoding × every seed through the one report runner
//! ([`crate::report::run_plan`]), written as `docs/results/probes.md` with a table and a plot
//! per probe (mean ± sd over the seeds), SeqPE against each baseline counted against the
//! spread, and the page's own sanity checks (NoPE at chance on the relative probe; the probes
//! learnable at the training size).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use seqpe_core::PeKind;
use seqpe_probes::config::{GridProbeConfig, Probe, SequenceProbeConfig};
use seqpe_probes::run::{ProbeEval, ProbePoint};
use seqpe_train::config::{apply_overrides, RunConfig};
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_train::Session;

use crate::args::{TextPe, VisionPe};
use crate::plot::line_chart;
use crate::probe_cmd::{run_folder_name, ProbeArg};
use crate::report::{
    best_valid_cell, diagnostic_columns, machine, markdown_table, runs_table, seeds_of,
    seeds_sentence, seqpe_against, spread_rows, spread_series, today, Better, Compared, Experiment,
    Outcome, Plan, RunColumn, Seed, Spread, Verdict,
};
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

/// One method of a probe: an encoding and its coordinates (1 for the sequences; 2 or 1 for the
/// grids, where 1 is SeqPE over the flat patch index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeMethod {
    pub pe: PeKind,
    pub dims: usize,
    /// Whether the probe is a grid probe (where `dims` is a choice).
    pub grid: bool,
}

impl Compared for ProbeMethod {
    fn label(&self) -> String {
        if self.dims == 1 && self.grid {
            format!("{} (dims 1)", self.pe)
        } else {
            self.pe.to_string()
        }
    }

    fn encoding(&self) -> PeKind {
        self.pe
    }

    /// On the grids, SeqPE over (row, col); the flat index is an ablation.
    fn is_main_seqpe(&self) -> bool {
        self.pe == PeKind::SeqPe && (self.dims == 2 || !self.grid)
    }
}

/// One probe, method and seed of the page.
pub type ProbeResult = Outcome<ProbeMethod, ProbeEval>;

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
        e.probe == self.probe && points(&self.base) == Some(e.points.len())
    }

    fn evaluate(&self, run: &RunDir, device: &B::Device) -> Result<ProbeEval> {
        seqpe_probes::run::evaluate::<B::InnerBackend>(run, device)
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

/// The evaluation points of a probe's page (the first outcome's).
fn points(results: &[ProbeResult]) -> Vec<ProbePoint> {
    results.first().map_or(vec![], |r| r.eval.points.clone())
}

fn at(e: &ProbeEval, key: usize) -> Option<&ProbePoint> {
    e.points.iter().find(|p| p.key == key)
}

fn column(p: &ProbePoint, probe: Probe) -> String {
    match (probe.grid(), p.trained) {
        (Some(_), true) => format!("{} (train)", p.label),
        (Some(_), false) => p.label.clone(),
        (None, true) => format!("n {} (train)", p.label),
        (None, false) => format!("n {}", p.label),
    }
}

/// The accuracy table of a probe in %: per-token accuracy of greedy answers (sequences) or
/// top-1 (grids); `exact`: whole-answer exact match instead (sequences).
pub fn accuracy_table(probe: Probe, results: &[ProbeResult], exact: bool) -> String {
    let pts = points(results);
    let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
    let mut header = vec!["PE".to_string()];
    header.extend(pts.iter().map(|p| column(p, probe)));
    let value = |e: &ProbeEval, k: usize| {
        at(e, k).and_then(|p| {
            if exact {
                p.exact_match.map(|x| 100.0 * x)
            } else {
                Some(100.0 * p.accuracy)
            }
        })
    };
    let rows: Vec<Vec<String>> = spread_rows(results, &keys, value)
        .into_iter()
        .map(|(m, cells)| {
            let mut row = vec![m.label()];
            row.extend(cells.iter().map(|c| c.map_or("-".into(), |s| s.show(1))));
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// SeqPE (over (row, col) for the grids) against every other method at each point, counted
/// against the spread.
fn against_baselines(probe: Probe, results: &[ProbeResult]) -> String {
    let pts = points(results);
    let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
    let columns: Vec<String> = pts.iter().map(|p| column(p, probe)).collect();
    let Some((legend, section)) = seqpe_against(
        results,
        &keys,
        &columns,
        |e, k| at(e, k).map(|p| 100.0 * p.accuracy),
        Better::Higher,
        1,
    ) else {
        return String::new();
    };
    format!("SeqPE's accuracy minus the baseline's, in points ({legend}):\n\n{section}\n")
}

/// The page's checks of a probe, from its own table: whether some encoding learned the probe
/// at the training size (≥ 95 %), SeqPE's gap to the best there, and (relative probe) whether
/// NoPE sits at chance.
fn checks(probe: Probe, results: &[ProbeResult]) -> String {
    let pts = points(results);
    let Some(trained) = pts.iter().find(|p| p.trained) else {
        return String::new();
    };
    let rows = spread_rows(results, &[trained.key], |e, k| {
        at(e, k).map(|p| 100.0 * p.accuracy)
    });
    let mut lines = Vec::new();
    let best = rows
        .iter()
        .filter_map(|r| r.1[0].map(|s| (r.0.label(), s)))
        .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
    if let Some((label, s)) = &best {
        lines.push(format!(
            "* learnable: the best encoding at the training size is `{label}` with {} % ({})",
            s.show(1),
            if s.mean >= 95.0 {
                "≥ 95 %: the probe is learned at this budget"
            } else {
                "**below 95 %: no encoding learned the probe at this budget**"
            }
        ));
        if let Some(sq) = rows
            .iter()
            .find(|r| r.0.is_main_seqpe())
            .and_then(|r| r.1[0])
        {
            let gap = s.mean - sq.mean;
            lines.push(format!(
                "* SeqPE at the training size: {} %, {gap:.1} points below the best{}",
                sq.show(1),
                if gap <= 2.0 {
                    " (within 2 points)"
                } else {
                    " (**more than 2 points**: `docs/reference-notes.md`, notes 21–22, give \
                     what was measured about the cause)"
                }
            ));
            if let (Some(nope), true) = (
                rows.iter()
                    .find(|r| r.0.pe == PeKind::None)
                    .and_then(|r| r.1[0]),
                probe.sequence().is_some(),
            ) {
                lines.push(format!(
                    "* NoPE at the training size: {} % (a causal model can count positions); \
                     SeqPE {} it",
                    nope.show(1),
                    match sq.against(&nope, Better::Higher) {
                        Verdict::Better => "is above",
                        Verdict::Worse => "is below",
                        Verdict::Tie => "ties (within the two spreads)",
                    }
                ));
            }
        }
    }
    if probe == Probe::Relative {
        if let Some(nope) = rows
            .iter()
            .find(|r| r.0.pe == PeKind::None)
            .and_then(|r| r.1[0])
        {
            lines.push(format!(
                "* NoPE at the training size: {} % against 25 % chance ({})",
                nope.show(1),
                if (nope.mean - 25.0).abs() <= 10.0 {
                    "within 10 points: the task needs positions"
                } else {
                    "**more than 10 points from chance: the task leaks position through content**"
                }
            ));
        }
    }
    lines.join("\n") + "\n"
}

/// What each encoding sees at the larger sizes of a probe, in words.
fn positions_note(probe: Probe, train_len: usize, grid: usize) -> String {
    match probe.grid() {
        None => format!(
            "Positions at test: every encoding is run at positions 0…2n (up to {} for the \
             longest strings); `seqpe` encodes the new positions' digits (trained on windows \
             shifted over its whole trained range, see below); `ape` has {} rows and is linearly \
             interpolated to the longer inputs (as in the text runs); `sin`, `rope`, `alibi` \
             apply their formulas; `nope` has no positions (the causal mask alone).",
            2 * 8 * train_len,
            2 * train_len + 1
        ),
        Some(_) => format!(
            "Positions at test: a G×G image is G×G tokens after a CLS; `seqpe` encodes (row, col) \
             digits of the larger grid, `seqpe (dims 1)` the flat index row·G + col (so a wider \
             grid renumbers every row); `ape`'s {grid}×{grid} table is resized bicubically; `sin` \
             and `rope` use the flat index; `rope2d` and `rope-mixed` rotate by (row, col); `nope` \
             has no positions (the model is then blind to any rearrangement of the pixels)."
        ),
    }
}

/// One run of the PyTorch twin (a line of `scripts/probe_twin_all.sh`'s output): its probe,
/// encoding, seed and accuracy at each point (the bin's longest string, or the grid side).
#[derive(Debug, Clone, PartialEq)]
pub struct TwinRun {
    pub probe: String,
    pub pe: String,
    pub seed: u64,
    pub accuracy: Vec<(usize, f64)>,
}

/// The twin's runs in `path` (none when the file does not exist); a line that is not a twin
/// result is an error naming the file and the line.
pub fn read_twin(path: &Path) -> Result<Vec<TwinRun>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut runs = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || {
            anyhow::anyhow!(
                "{} line {}: not a result line of scripts/probe_twin.py (re-run \
                 scripts/probe_twin_all.sh or remove the line)",
                path.display(),
                i + 1
            )
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad())?;
        let text_of = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        let (Some(probe), Some(pe), Some(seed), Some(results)) = (
            text_of("task"),
            text_of("pe"),
            v.get("seed").and_then(|s| s.as_u64()),
            v.get("results").and_then(|r| r.as_object()),
        ) else {
            return Err(bad());
        };
        let mut accuracy = Vec::new();
        for (key, r) in results {
            // 1-D bins are "lo-hi", 2-D grids "G"
            let point = key.rsplit('-').next().and_then(|k| k.parse().ok());
            let acc = r
                .get("token_acc")
                .or_else(|| r.get("acc"))
                .and_then(|a| a.as_f64());
            match (point, acc) {
                (Some(p), Some(a)) => accuracy.push((p, a)),
                _ => return Err(bad()),
            }
        }
        accuracy.sort_by_key(|p| p.0);
        runs.push(TwinRun {
            probe,
            pe,
            seed,
            accuracy,
        });
    }
    Ok(runs)
}

/// Ours against the PyTorch twin on one probe: APE and NoPE at the training point and the
/// farthest one, mean ± sd over each side's seeds.
fn twin_section(probe: Probe, results: &[ProbeResult], twin: &[TwinRun]) -> String {
    let pts = points(results);
    let (Some(first), Some(last)) = (pts.iter().find(|p| p.trained), pts.last()) else {
        return String::new();
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (pe, name) in [(PeKind::Learned, "ape"), (PeKind::None, "nope")] {
        let runs: Vec<&TwinRun> = twin
            .iter()
            .filter(|t| t.probe == probe.name() && t.pe == name)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let theirs = |key: usize| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|t| t.accuracy.iter().find(|a| a.0 == key).map(|a| 100.0 * a.1))
                .collect();
            Spread::of(&v)
        };
        let ours = |key: usize| {
            let v: Vec<f64> = results
                .iter()
                .filter(|r| {
                    r.method.pe == pe && r.method.dims == if probe.grid().is_some() { 2 } else { 1 }
                })
                .filter_map(|r| at(&r.eval, key).map(|p| 100.0 * p.accuracy))
                .collect();
            Spread::of(&v)
        };
        let cell =
            |s: Option<Spread>| s.map_or("-".into(), |s| format!("{} (n {})", s.show(1), s.n));
        for p in [first, last] {
            let (a, b) = (ours(p.key), theirs(p.key));
            if p.trained {
                if let (Some(a), Some(b)) = (a, b) {
                    let d = a.mean - b.mean;
                    notes.push(format!(
                        "`{pe}` at the training size: ours {} − twin {} = {d:+.1} points, {}",
                        a.show(1),
                        b.show(1),
                        if d.abs() <= a.sd + b.sd + 1.0 {
                            "within the two spreads (+1 point)"
                        } else {
                            "**beyond the two spreads**"
                        }
                    ));
                }
            }
            rows.push(vec![format!("`{pe}`"), column(p, probe), cell(a), cell(b)]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "### The PyTorch twin\n\n`scripts/probe_twin.py` is an independent PyTorch model of the \
         same size trained with the same budget on exactly our examples (`cargo xtask \
         probe-data` writes them; `scripts/probe_twin_all.sh` runs it): accuracy %, mean ± sd \
         over the seeds (n).\n\n{}\n{}\n\n",
        markdown_table(
            &["PE", "point", "ours", "PyTorch twin"].map(String::from),
            &rows
        ),
        notes
            .iter()
            .map(|n| format!("* {n}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The page's first lines: per probe, SeqPE at the training size against the best encoding, and
/// beyond it, against each baseline, the points where it is better, tied (within the two
/// spreads) or worse.
fn summary(sections: &[(Probe, Vec<ProbeResult>)]) -> String {
    let mut lines = Vec::new();
    for (probe, results) in sections {
        let pts = points(results);
        let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
        let rows = spread_rows(results, &keys, |e, k| at(e, k).map(|p| 100.0 * p.accuracy));
        let Some(seqpe) = rows.iter().find(|r| r.0.is_main_seqpe()) else {
            continue;
        };
        let trained = pts.iter().position(|p| p.trained).unwrap_or(0);
        let best = rows
            .iter()
            .filter_map(|r| r.1[trained].map(|s| (r.0.label(), s)))
            .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
        let head = match (seqpe.1[trained], best) {
            (Some(sq), Some((label, b))) => format!(
                "at the training size SeqPE {} % (best: `{label}` {} %)",
                sq.show(1),
                b.show(1)
            ),
            _ => "no SeqPE result at the training size".into(),
        };
        let beyond: Vec<String> = rows
            .iter()
            .filter(|r| r.0 != seqpe.0)
            .map(|(m, cells)| {
                let (mut b, mut t, mut w) = (0, 0, 0);
                for (i, (a, o)) in seqpe.1.iter().zip(cells).enumerate() {
                    if i == trained {
                        continue;
                    }
                    if let (Some(a), Some(o)) = (a, o) {
                        match a.against(o, Better::Higher) {
                            Verdict::Better => b += 1,
                            Verdict::Tie => t += 1,
                            Verdict::Worse => w += 1,
                        }
                    }
                }
                format!("`{}` {b}/{t}/{w}", m.label())
            })
            .collect();
        lines.push(format!(
            "* `{probe}`: {head}; beyond it, SeqPE better / tied / worse than {}.",
            beyond.join(", ")
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "**What the numbers show** (test accuracy, mean ± sd over the seeds; a difference counts \
         only beyond the two standard deviations, so with one seed every difference counts):\n\n\
         {}\n\n",
        lines.join("\n")
    )
}

/// Writes `<out>/probes.md` and one `probes_<probe>.png` per probe.
pub fn write_report(
    sections: &[(Probe, Vec<ProbeResult>)],
    twin: &[TwinRun],
    out: &Path,
    command: &str,
    backend: &str,
    wall: f64,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let mut body = String::new();
    for (probe, results) in sections {
        let probe = *probe;
        let Some(first) = results.first() else {
            continue;
        };
        let pts = points(results);
        let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
        let png = format!("probes_{probe}.png");
        let series = spread_series(
            results,
            &keys,
            |k| k as f64,
            |m| m.label(),
            |e, k| at(e, k).map(|p| 100.0 * p.accuracy),
        );
        let (x_label, title) = match probe.grid() {
            Some(_) => (
                "grid side (pixels = tokens per axis)",
                "top-1 (%) vs grid size",
            ),
            None => (
                "longest string of the bin (symbols)",
                "answer token accuracy (%) vs string length",
            ),
        };
        line_chart(
            &out.join(&png),
            &format!("{probe}: {title}"),
            x_label,
            "accuracy (%)",
            &series,
            true,
            false,
        )?;
        let run0 = RunDir::new(&first.run);
        let setup = match probe.grid() {
            None => {
                let c: SequenceProbeConfig = run0.read_config()?;
                let (p, m, t) = (&c.probe, &c.model, &c.train);
                format!(
                    "**Setup.** Strings of 1–{l} symbols over an alphabet of {a} (uniform), a \
                     separator, then the answer; loss on the answer and end token only. GPT \
                     {layers}×{d} ({heads} heads, no dropout), batch {batch}, {steps} steps \
                     (every example new), AdamW lr {lr} (warm-up {warm}, {decay:?} decay), \
                     clipping {clip}; the best checkpoint by greedy token accuracy on {nv} \
                     validation strings of 1–{l} symbols. Test: greedy decoding of exactly n \
                     tokens, {ne} strings per bin (lengths evenly spread over the bin). SeqPE: \
                     encoder width {sd}, `{inject}`, trained range {range} = the reference's \
                     20,000 / 512 ≈ 39 positions per window token × the {win}-token window \
                     (rounded to hundreds), random-shift rate {rate} from a pool of {pool} \
                     windows, regularizer batches {cb}×{cc} / {dw}×{dp} and weights {wct} / \
                     {wkd}, contrastive window {cw} (the reference's 256 per 512-token window).\
                     \n\n{pos}\n\n",
                    cw = t
                        .regularizer
                        .contrastive_window
                        .map_or("256".to_string(), |w| w.to_string()),
                    cb = t.regularizer.contrastive_batch,
                    cc = t.regularizer.contrastive_candidates,
                    dw = t.regularizer.distill_windows,
                    dp = t.regularizer.distill_per_window,
                    l = p.train_len,
                    a = p.alphabet,
                    layers = m.n_layers,
                    d = m.d_model,
                    heads = m.n_heads,
                    batch = t.batch_size,
                    steps = t.steps,
                    lr = t.lr,
                    warm = t.warmup_steps,
                    decay = t.decay,
                    clip = t.grad_clip,
                    nv = p.valid_examples,
                    ne = p.eval_examples,
                    sd = m.seqpe.d_model,
                    inject = m.seqpe.inject,
                    range = m.seqpe.max_position,
                    win = m.block_size,
                    rate = t.regularizer.shift_rate,
                    pool = t.regularizer.shift_pool,
                    wct = t.regularizer.contrastive_weight,
                    wkd = t.regularizer.distill_weight,
                    pos = positions_note(probe, p.train_len, 0),
                )
            }
            Some(_) => {
                let c: GridProbeConfig = run0.read_config()?;
                let (p, m, t) = (&c.probe, &c.model, &c.train);
                format!(
                    "**Setup.** {g}×{g} images of noise (N(0, {noise}²) in each of {ch} \
                     channels per pixel), a mark adding {amp} to its own channel; one pixel = \
                     one token (patch 1). ViT {layers}×{d} ({heads} heads, no dropout), CLS \
                     head; during training every patch token also regresses its own normalised \
                     (row, col) through a linear head (weight {aux}; without it the ViT sits at \
                     chance on a symmetric saddle, `scripts/PROBES-FINDINGS.md`; the targets are \
                     the same for every image and are not used at test), batch {batch}, {steps} \
                     steps (every image new), AdamW lr {lr} \
                     (warm-up {warm}, {decay:?} decay), clipping {clip}; the best checkpoint by \
                     top-1 on {nv} validation images. Test: {ne} images per size. SeqPE: \
                     encoder width {sd}, `{inject}` with {proj} q/k projection(s), trained range \
                     {range} per axis = the reference's 100 per axis / 14 patches ≈ 7.1 × the \
                     {g}-pixel side (rounded), random-shift rate {rate} from a pool of {pool} \
                     windows, regularizer batches {cb}×{cc} / {dw}×{dp} and weights {wct} / \
                     {wkd}.\n\n{pos}\n\n",
                    cb = t.regularizer.contrastive_batch,
                    cc = t.regularizer.contrastive_candidates,
                    dw = t.regularizer.distill_windows,
                    dp = t.regularizer.distill_per_window,
                    g = p.grid,
                    noise = p.noise,
                    ch = p.channels,
                    amp = p.amp,
                    aux = p.aux_weight,
                    layers = m.n_layers,
                    d = m.d_model,
                    heads = m.n_heads,
                    batch = t.batch_size,
                    steps = t.steps,
                    lr = t.lr,
                    warm = t.warmup_steps,
                    decay = t.decay,
                    clip = t.grad_clip,
                    nv = p.valid_examples,
                    ne = p.eval_examples,
                    sd = m.seqpe.d_model,
                    inject = m.seqpe.inject,
                    proj = if m.seqpe.per_layer {
                        "per-layer"
                    } else {
                        "one shared"
                    },
                    range = m.seqpe.max_position,
                    rate = t.regularizer.shift_rate,
                    pool = t.regularizer.shift_pool,
                    wct = t.regularizer.contrastive_weight,
                    wkd = t.regularizer.distill_weight,
                    pos = positions_note(probe, 0, p.grid),
                )
            }
        };
        let what = match probe {
            Probe::Copy => "Repeat a random string after a separator.",
            Probe::Reverse => "Repeat a random string backwards after a separator.",
            Probe::Relative => {
                "Is mark A left of, right of, above or below mark B (on one row or column)? \
                 The answer means the same at every grid size; chance is 25 %."
            }
            Probe::Quadrant => {
                "Which quadrant of the image holds the one mark? A question about absolute \
                 position; chance is 25 %."
            }
        };
        let exact = if probe.sequence().is_some() {
            format!(
                "Whole answers exactly right (%):\n\n{}\n",
                accuracy_table(probe, results, true)
            )
        } else {
            String::new()
        };
        let mut columns: Vec<RunColumn<'_, ProbeMethod, ProbeEval>> = vec![
            (
                "train ex/s",
                Box::new(|r: &ProbeResult| format!("{:.0}", r.train.per_second)),
            ),
            (
                "best valid %",
                Box::new(|r: &ProbeResult| {
                    best_valid_cell(&r.train, |p| format!("{:.1}", 100.0 * p))
                }),
            ),
        ];
        columns.extend(diagnostic_columns());
        let runs = runs_table(results, |m: &ProbeMethod| m.label(), "train s", columns);
        body += &format!(
            "## `{probe}`\n\n{what}\n\n{setup}\
             {metric} (%), test:\n\n{table}\n{exact}\
             ![{probe}]({png})\n\n### Checks\n\n{checks}\n\
             ### SeqPE against each baseline\n\n{against}\n{twin}\
             <details><summary>Runs</summary>\n\n{runs}\n</details>\n\n",
            metric = if probe.grid().is_some() {
                "Top-1 accuracy"
            } else {
                "Per-token accuracy of the greedy answers"
            },
            table = accuracy_table(probe, results, false),
            checks = checks(probe, results),
            against = against_baselines(probe, results),
            twin = twin_section(probe, results, twin),
        );
    }
    let seeds = sections.first().map_or(1, |s| seeds_of(&s.1));
    let md = format!(
        "# Position probes: tasks that need positions, trained short and tested long\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`; this invocation: \
         {wall:.0} s, finished runs and evaluations reused).{seeds_line}\n\n{summary}\
         Each probe's answer depends on where its tokens are, so an encoding that carries no \
         usable position information cannot learn it, and testing beyond the training length \
         or grid shows whether what an encoding learned extrapolates (Ruoss et al. 2023). \
         Settings were fixed before the runs from the PyTorch twin's measurements \
         (`scripts/PROBES-FINDINGS.md`); model selection uses validation data of the training \
         size only, and every number below is on test examples no run trained on (the same \
         examples for every encoding and seed).\n\n{body}\
         ## Reproduce\n\n```sh\n{command}\n```\n\n\
         Finished runs and evaluations are reused; pass `--retrain` to train again. \
         `cargo xtask probe-data --probe P --out FILE` writes a probe's examples, and \
         `python3 scripts/probe_twin.py --task P --data FILE` trains the PyTorch twin on them.\n",
        date = today(),
        machine = machine(),
        summary = summary(sections),
        seeds_line = match seeds {
            0 | 1 => " One seed per method.".to_string(),
            n => seeds_sentence(n),
        },
    );
    let path = out.join("probes.md");
    std::fs::write(&path, md)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_lines_are_read_by_point_and_bad_ones_name_their_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("twin.jsonl");
        assert!(
            read_twin(&path).unwrap().is_empty(),
            "no file: no twin runs"
        );
        std::fs::write(
            &path,
            concat!(
                r#"{"task": "copy", "pe": "ape", "seed": 2, "results": {"0-16": {"token_acc": 1.0, "exact": 1.0, "n": 200}, "16-32": {"token_acc": 0.5, "exact": 0.0, "n": 200}}}"#,
                "\n\n",
                r#"{"task": "relative", "pe": "nope", "seed": 1, "results": {"8": {"acc": 0.25, "n": 400}, "32": {"acc": 0.2, "n": 400}}}"#,
                "\n"
            ),
        )
        .unwrap();
        let runs = read_twin(&path).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[0],
            TwinRun {
                probe: "copy".into(),
                pe: "ape".into(),
                seed: 2,
                accuracy: vec![(16, 1.0), (32, 0.5)],
            }
        );
        assert_eq!(runs[1].accuracy, vec![(8, 0.25), (32, 0.2)]);
        std::fs::write(&path, "{\"task\": \"copy\"}\nnot json\n").unwrap();
        let err = read_twin(&path).unwrap_err().to_string();
        assert!(err.contains("twin.jsonl line 1"), "{err}");
    }
}
