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

/// Interleaves `ours(pe)` and the PyTorch `script` (with `script_args(pe)`) `repeats` times per
/// encoding and prints the medians and ratios (and SeqPE/APE on both sides).
pub fn compare(
    args: &PytorchArgs,
    script: &str,
    key: &str,
    unit: &str,
    pes: &[PeKind],
    ours: impl Fn(PeKind) -> Result<f64>,
    script_args: impl Fn(PeKind) -> Vec<String>,
) -> Result<()> {
    let python = args.python();
    if !Path::new(script).is_file() {
        bail!("{script} not found: run the benchmark from the repository root");
    }
    let probe = Command::new(&python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output();
    let torch_version = match probe {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => bail!(
            "`{python}` cannot import torch: install it (`python3 -m venv .venv && .venv/bin/pip \
             install torch numpy`) and pass --python .venv/bin/python (or set SEQPE_PYTHON)"
        ),
    };
    let threads = threads();
    println!(
        "against PyTorch {torch_version} ({python}), {threads} thread(s) each, {} repetitions \
         interleaved, on {} — medians:",
        args.repeats,
        cpu_model()
    );
    let mut rows = Vec::new();
    for &pe in pes {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..args.repeats.max(1) {
            a.push(ours(pe)?);
            b.push(run_script(&python, script, &script_args(pe), threads, key)?);
        }
        let (ma, mb) = (median(a.clone()), median(b.clone()));
        eprintln!("{pe}: ours {a:?}, pytorch {b:?}");
        rows.push((pe, ma, mb));
    }
    println!("| PE | ours {unit} | PyTorch {unit} | ours / PyTorch |\n|---|---:|---:|---:|");
    for (pe, a, b) in &rows {
        println!("| {pe} | {a:.0} | {b:.0} | {:.2}× |", a / b);
    }
    let find = |k: PeKind| rows.iter().find(|r| r.0 == k);
    if let (Some(s), Some(l)) = (find(PeKind::SeqPe), find(PeKind::Learned)) {
        println!(
            "SeqPE / APE: ours {:.2}, PyTorch {:.2}",
            s.1 / l.1,
            s.2 / l.2
        );
    }
    Ok(())
}
