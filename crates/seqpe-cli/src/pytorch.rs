//! `bench … --against-pytorch`: our training step and the PyTorch reference script on the same
//! configuration, interleaved on the same machine with the same number of threads, several
//! repetitions; the medians and their ratio. Only a ratio measured in one such run means
//! anything (never divide by a figure from another machine or another day).

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use seqpe_core::{PeKind, RegularizerSettings, SeqPeSettings};

/// Options of the side-by-side comparison.
#[derive(Args, Debug, Clone)]
pub struct PytorchArgs {
    /// Also run the PyTorch script of the same configuration, interleaved, and print the ratio.
    #[arg(long)]
    pub against_pytorch: bool,
    /// The Python interpreter with torch installed (default: $SEQPE_PYTHON, else python3).
    #[arg(long)]
    pub python: Option<String>,
    /// Repetitions (ours, then PyTorch, per encoding); the medians are compared.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

impl PytorchArgs {
    fn python(&self) -> String {
        self.python
            .clone()
            .or_else(|| std::env::var("SEQPE_PYTHON").ok())
            .unwrap_or_else(|| "python3".into())
    }
}

/// The SeqPE encoder and regularizer flags both PyTorch scripts take, from our settings.
pub fn seqpe_script_args(s: &SeqPeSettings, r: &RegularizerSettings) -> Vec<String> {
    vec![
        format!("--seqpe-d-model={}", s.d_model),
        format!("--seqpe-heads={}", s.heads),
        format!("--seqpe-layers={}", s.layers),
        format!("--seqpe-dropout={}", s.dropout),
        format!("--ct-pivots={}", r.contrastive_batch),
        format!("--ct-candidates={}", r.contrastive_candidates),
        format!("--kd-windows={}", r.distill_windows),
        format!("--kd-per-window={}", r.distill_per_window),
        format!("--ct-weight={}", r.contrastive_weight),
        format!("--kd-weight={}", r.distill_weight),
    ]
}

/// Threads both sides use: `RAYON_NUM_THREADS` (ours) or every core.
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The CPU model (`lscpu`'s "Model name"), for the record.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Runs the script once; returns the value of `key` in its last (JSON) line.
fn run_script(
    python: &str,
    script: &str,
    args: &[String],
    threads: usize,
    key: &str,
) -> Result<f64> {
    let out = Command::new(python)
        .arg(script)
        .arg(format!("--threads={threads}"))
        .args(args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    if !out.status.success() {
        bail!(
            "{python} {script} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| anyhow!("{script} printed no JSON line"))?;
    let v: serde_json::Value = serde_json::from_str(last)?;
    v.get(key)
        .and_then(|x| x.as_f64())
        .ok_or_else(|| anyhow!("{script}'s JSON has no `{key}`"))
}

/// A PyTorch benchmark script: its path (relative to the repository root), the key of its
/// throughput in the JSON line it prints, and that throughput's unit.
pub struct Script {
    pub path: &'static str,
    pub key: &'static str,
    pub unit: &'static str,
}

/// The device the PyTorch side runs on for one of our backends: the GPU (`cuda`) when ours runs
/// on a GPU backend, else the CPU.
pub fn torch_device(backend: &str) -> &'static str {
    if matches!(backend, "cuda" | "wgpu") {
        "cuda"
    } else {
        "cpu"
    }
}

/// One encoding's comparison: every repetition of both sides and their medians.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComparisonRow {
    /// The configuration (preset) compared; the caller fills it in.
    pub config: String,
    pub pe: PeKind,
    pub backend: String,
    pub torch_device: String,
    pub unit: String,
    pub ours: Vec<f64>,
    pub pytorch: Vec<f64>,
    pub ours_median: f64,
    pub pytorch_median: f64,
    pub ratio: f64,
}

/// Interleaves `ours(pe)` and the PyTorch `script` (with `script_args(pe)`) `repeats` times per
/// encoding and prints the medians and ratios (and SeqPE/APE on both sides). On a GPU backend the
/// script runs on PyTorch's CUDA device.
pub fn compare(
    args: &PytorchArgs,
    script: &Script,
    backend: &str,
    pes: &[PeKind],
    ours: impl Fn(PeKind) -> Result<f64>,
    script_args: impl Fn(PeKind) -> Vec<String>,
) -> Result<Vec<ComparisonRow>> {
    let (path, key, unit) = (script.path, script.key, script.unit);
    let python = args.python();
    if !Path::new(path).is_file() {
        bail!("{path} not found: run the benchmark from the repository root");
    }
    let device = torch_device(backend);
    let probe_code = if device == "cuda" {
        "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.__version__)"
    } else {
        "import torch; print(torch.__version__)"
    };
    let probe = Command::new(&python).args(["-c", probe_code]).output();
    let torch_version = match probe {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ if device == "cuda" => bail!(
            "`{python}` cannot import torch with CUDA, which the comparison on the `{backend}` \
             backend runs against: pass --python with a CUDA build of torch"
        ),
        _ => bail!(
            "`{python}` cannot import torch: install it (`python3 -m venv .venv && .venv/bin/pip \
             install torch numpy`) and pass --python .venv/bin/python (or set SEQPE_PYTHON)"
        ),
    };
    let threads = threads();
    println!(
        "against PyTorch {torch_version} ({python}) on {device}, {threads} CPU thread(s) each, \
         {} repetitions interleaved, on {} — medians:",
        args.repeats,
        cpu_model()
    );
    let mut rows = Vec::new();
    for &pe in pes {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..args.repeats.max(1) {
            a.push(ours(pe)?);
            let mut sa = script_args(pe);
            sa.push(format!("--device={device}"));
            b.push(run_script(&python, path, &sa, threads, key)?);
        }
        let (ma, mb) = (median(a.clone()), median(b.clone()));
        eprintln!("{pe}: ours {a:?}, pytorch {b:?}");
        rows.push(ComparisonRow {
            config: String::new(),
            pe,
            backend: backend.into(),
            torch_device: device.into(),
            unit: unit.into(),
            ours: a,
            pytorch: b,
            ours_median: ma,
            pytorch_median: mb,
            ratio: ma / mb,
        });
    }
    println!("| PE | ours {unit} | PyTorch {unit} | ours / PyTorch |\n|---|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.2}× |",
            r.pe, r.ours_median, r.pytorch_median, r.ratio
        );
    }
    let find = |k: PeKind| rows.iter().find(|r| r.pe == k);
    if let (Some(s), Some(l)) = (find(PeKind::SeqPe), find(PeKind::Learned)) {
        println!(
            "SeqPE / APE: ours {:.2}, PyTorch {:.2}",
            s.ours_median / l.ours_median,
            s.pytorch_median / l.pytorch_median
        );
    }
    Ok(rows)
}
