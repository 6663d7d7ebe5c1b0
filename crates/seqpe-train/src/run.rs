//! [`RunDir`]: the folder of one training run and its files.
//!
//! ```text
//! run/config.json        the full configuration (presets + overrides)
//! run/checkpoint/        latest state: model.mpk, optim.mpk, state.json (atomic)
//! run/best/              best model by validation metric: model.mpk, metric.json (atomic)
//! run/metrics.jsonl      one JSON line per logged step / evaluation
//! ```
//! Starting a run in a folder that already holds a checkpoint is refused unless `--resume` is
//! given, so nothing saved is ever overwritten by accident.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use burn::module::AutodiffModule;
use burn::record::{
    FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Record, Recorder,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::{existing_dir, read_json, write_dir_atomically, write_file, write_json};
use crate::optim::GroupedAdamW;

pub type Recorder32 = NamedMpkFileRecorder<FullPrecisionSettings>;

/// The run folders this process holds for writing, with their open lock files
/// ([`RunDir::lock_for_writing`]).
static HELD: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// What [`RunDir::compare_steps`] found.
#[derive(Debug, Clone, Default)]
pub struct StepsComparison {
    /// Steps compared.
    pub steps: usize,
    /// The largest relative difference, and where (`step N key: a vs b`).
    pub largest: f64,
    pub at: String,
    /// Whether any step logged a distillation loss / was randomly shifted.
    pub distilled: bool,
    pub shifted: bool,
}

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    pub fn best(&self) -> PathBuf {
        self.root.join("best")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The latest checkpoint folder, if any.
    pub fn latest(&self) -> Option<PathBuf> {
        existing_dir(&self.checkpoint())
    }

    /// Checks the folder for a fresh run (`resume == false`) or a resumed one.
    pub fn prepare(&self, resume: bool) -> Result<()> {
        match (resume, self.latest()) {
            (false, Some(_)) => bail!(
                "{} already holds a checkpoint; pass --resume to continue it, or choose another --run folder",
                self.root.display()
            ),
            (true, None) => bail!(
                "--resume: {} has no checkpoint to resume from",
                self.root.display()
            ),
            _ => {}
        }
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create run folder {}", self.root.display()))?;
        self.lock_for_writing()?;
        self.remove_leftovers()
    }

    /// Removes what a writer killed mid-write leaves behind: the temporary siblings
    /// (`checkpoint.tmp-<pid>`, `summary.json.tmp-<pid>`, …) of the atomic writes. Called with
    /// the folder's write lock held, so no live writer owns them.
    fn remove_leftovers(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.root)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if !name.is_some_and(|n| n.contains(".tmp-")) {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("cannot remove the leftover {}", path.display()))?;
            eprintln!("removed {} (left by an interrupted write)", path.display());
        }
        Ok(())
    }

    /// Takes this run folder for writing: an exclusive OS lock on `<run>/.lock`, held until this
    /// process ends (however it ends: the OS releases it), so two commands can never interleave
    /// their writes to one run. Another process that holds it is named in the error (its pid and
    /// command line, which the holder writes into the lock file). Reading a run (evaluations,
    /// reports reusing it) takes no lock. Taking a folder this process already holds is a no-op.
    pub fn lock_for_writing(&self) -> Result<()> {
        use std::fs::TryLockError;
        let path = self.root.join(".lock");
        let key = self.lock_key();
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if held.iter().any(|(p, _)| *p == key) {
            return Ok(());
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the run lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                let command: Vec<String> = std::env::args().collect();
                file.set_len(0)?;
                writeln!(file, "pid {}: {}", std::process::id(), command.join(" "))?;
                held.push((key, file));
                Ok(())
            }
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                bail!(
                    "{} is being written by another process ({}); wait for it to finish, or \
                     choose another --run folder",
                    self.root.display(),
                    holder.trim()
                )
            }
            Err(TryLockError::Error(e)) => Err(anyhow!("cannot lock {}: {e}", path.display())),
        }
    }

    fn lock_key(&self) -> PathBuf {
        std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone())
    }

    /// Runs `start` (a train command's session) in this folder; if it fails and the folder did
    /// not exist before and holds no checkpoint, removes the folder (and its lock), so a failed
    /// start — a missing corpus, bad data — leaves no empty run folder behind. A folder that
    /// existed, or a run that saved a checkpoint, is kept as it is.
    pub fn or_remove_if_new<T>(&self, start: impl FnOnce() -> Result<T>) -> Result<T> {
        let existed = self.root.exists();
        let result = start();
        if result.is_err() && !existed && self.root.is_dir() && self.latest().is_none() {
            let key = self.lock_key();
            HELD.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(p, _)| *p != key);
            let _ = std::fs::remove_dir_all(&self.root);
        }
        result
    }

    /// Appends one JSON line to `metrics.jsonl`, in one write (`writeln!` on a file writes the
    /// value and the newline separately, so a kill between them left half a line).
    pub fn log(&self, value: &serde_json::Value) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.metrics())?;
        f.write_all(format!("{value}\n").as_bytes())?;
        Ok(())
    }

    /// The training-step lines of `metrics.jsonl` (those with a `loss`), in order.
    pub fn step_lines(&self) -> Result<Vec<serde_json::Value>> {
        let path = self.metrics();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .with_context(|| format!("{}: not a JSON line: {l}", path.display()))
            })
            .filter(|v| v.as_ref().map_or(true, |v| v.get("loss").is_some()))
            .collect()
    }

    /// Compares the logged `keys` of this run's training steps with `other`'s, step by step: both
    /// must have logged the same steps, the same random-shift decisions and each key in the same
    /// steps (else an error says where); returns the largest relative difference
    /// `|a − b| / max(|a|, 1)` and where it was. For checking that two ways of training the same
    /// run (one device, several data-parallel peers) trained alike.
    pub fn compare_steps(&self, other: &RunDir, keys: &[&str]) -> Result<StepsComparison> {
        let (a, b) = (self.step_lines()?, other.step_lines()?);
        if a.len() != b.len() {
            bail!(
                "{} logged {} steps, {} {}",
                self.root.display(),
                a.len(),
                other.root.display(),
                b.len()
            );
        }
        let mut out = StepsComparison::default();
        for (x, y) in a.iter().zip(&b) {
            let step = &x["step"];
            if (step, &x["shifted"]) != (&y["step"], &y["shifted"]) {
                bail!(
                    "step {step} (shifted {}) vs step {} (shifted {})",
                    x["shifted"],
                    y["step"],
                    y["shifted"]
                );
            }
            for &k in keys {
                match (x[k].as_f64(), y[k].as_f64()) {
                    (Some(p), Some(q)) => {
                        let d = (p - q).abs() / p.abs().max(1.0);
                        if d > out.largest || out.at.is_empty() {
                            out.largest = d;
                            out.at = format!("step {step} {k}: {p} vs {q}");
                        }
                    }
                    (None, None) => {}
                    (p, q) => bail!("step {step} {k}: {p:?} vs {q:?}"),
                }
            }
            out.steps += 1;
            out.distilled |= x["distill"].is_f64();
            out.shifted |= x["shifted"] == true;
        }
        Ok(out)
    }

    /// Drops the `metrics.jsonl` lines of steps after `step` (logged by a session that was killed
    /// after its last checkpoint) and any cut-off line, so a resumed run logs every step exactly
    /// once.
    pub fn truncate_metrics(&self, step: usize) -> Result<()> {
        let path = self.metrics();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let kept: Vec<&str> = text
            .lines()
            // a line that does not parse is the cut-off end of a killed session's last line
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                    v.get("step")
                        .and_then(|s| s.as_u64())
                        .is_none_or(|s| s as usize <= step)
                })
            })
            .collect();
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        let tmp = self.root.join("metrics.jsonl.tmp");
        std::fs::write(&tmp, out).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Loads the run's trained weights into `model`: `best/` if present, else the latest
    /// checkpoint.
    pub fn load_trained<B: Backend, M: burn::module::Module<B>>(
        &self,
        model: M,
        device: &B::Device,
    ) -> Result<M> {
        let dir = if self.best().join("model.mpk").is_file() {
            self.best()
        } else {
            self.latest().ok_or_else(|| {
                anyhow!("{} has no saved model; train it first", self.root.display())
            })?
        };
        load_model(model, &dir, device)
    }

    /// The saved configuration, or an error saying the folder is not a run.
    pub fn read_config<C: DeserializeOwned>(&self) -> Result<C> {
        read_json(&self.config())
    }
}

/// Every float parameter's path and shape, in visiting order.
pub fn param_shapes<B: Backend, M: burn::module::Module<B>>(
    model: &M,
) -> Vec<(String, Vec<usize>)> {
    struct Shapes {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl<B: Backend> burn::module::ModuleVisitor<B> for Shapes {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<B, D>>,
        ) {
            self.out
                .push((self.path.join("."), param.lazy_shape().dims::<D>().to_vec()));
        }
    }
    let mut v = Shapes {
        path: vec![],
        out: vec![],
    };
    model.visit(&mut v);
    v.out
}

fn recorder() -> Recorder32 {
    NamedMpkFileRecorder::new()
}

/// Writes `record` to `path` in the format of [`Recorder32`] (named MessagePack, full
/// precision: the same bytes), encoded in memory and written with [`write_file`], so a failed
/// write names the file and the operating system's reason (a full disk).
fn write_record<B: Backend, R: Record<B>>(record: R, path: &Path) -> Result<()> {
    let bytes = Recorder::<B>::record(
        &NamedMpkBytesRecorder::<FullPrecisionSettings>::default(),
        record,
        (),
    )
    .map_err(|e| anyhow!("cannot encode {}: {e}", path.display()))?;
    write_file(path, &bytes)
}

/// Saves model weights to `dir/model.mpk`.
pub fn save_model<B: Backend, M: burn::module::Module<B>>(model: &M, dir: &Path) -> Result<()> {
    write_record::<B, _>(model.clone().into_record(), &dir.join("model.mpk"))
}

/// Loads weights from `dir/model.mpk` into `model` (which must have the same configuration).
pub fn load_model<B: Backend, M: burn::module::Module<B>>(
    model: M,
    dir: &Path,
    device: &B::Device,
) -> Result<M> {
    let path = dir.join("model.mpk");
    if !path.is_file() {
        bail!(
            "{} not found: the run has no saved model yet",
            path.display()
        );
    }
    let expected = param_shapes(&model);
    // Burn panics on a record of another structure (APE weights in a SeqPE run); quietly, so
    // the error below is all the user sees
    let result =
        crate::panics::catch_quietly(|| model.load_file(dir.join("model"), &recorder(), device));
    match result {
        Ok(Ok(m)) => {
            let got = param_shapes(&m);
            if let Some(((name, want), (_, have))) = expected.iter().zip(&got).find(|(a, b)| a != b)
            {
                bail!(
                    "{} does not match config.json: parameter `{name}` has shape {have:?} in the \
                     file but the configured model needs {want:?}; the weights belong to another \
                     configuration",
                    path.display()
                );
            }
            if expected.len() != got.len() {
                bail!(
                    "{} does not match config.json (parameter count differs)",
                    path.display()
                );
            }
            Ok(m)
        }
        Ok(Err(e)) => Err(anyhow!(
            "{} is corrupt or was written by another configuration: {e}",
            path.display()
        )),
        Err(panic) => Err(anyhow!(
            "{} does not match the model of config.json ({panic}); it belongs to another run or \
             configuration",
            path.display()
        )),
    }
}

/// Writes the checkpoint folder atomically: model, both optimizer groups and `state`.
pub fn save_checkpoint<B, M, S>(
    run: &RunDir,
    model: &M,
    optim: &GroupedAdamW<B, M>,
    state: &S,
) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: Serialize,
{
    write_dir_atomically(&run.checkpoint(), |dir| {
        save_model(model, dir)?;
        write_record::<B, _>(optim.to_record(), &dir.join("optim.mpk"))?;
        write_json(&dir.join("state.json"), state)
    })
}

/// Restores model, optimizer and state from the latest checkpoint. `optim` builds the optimizer
/// for the *loaded* model: loading restores the saved parameter ids, which the optimizer's
/// groups and its saved state are keyed by.
pub fn load_checkpoint<B, M, S>(
    run: &RunDir,
    model: M,
    optim: impl FnOnce(&M) -> GroupedAdamW<B, M>,
    device: &B::Device,
) -> Result<(M, GroupedAdamW<B, M>, S)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: DeserializeOwned,
{
    let dir = run
        .latest()
        .ok_or_else(|| anyhow!("{} has no checkpoint", run.root.display()))?;
    let model = load_model(model, &dir, device)?;
    let record = recorder()
        .load(dir.join("optim"), device)
        .map_err(|e| anyhow!("{} is corrupt: {e}", dir.join("optim.mpk").display()))?;
    let optim = optim(&model).load_record(record);
    let state = read_json(&dir.join("state.json"))?;
    Ok((model, optim, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resumed run keeps the lines up to its checkpoint's step and drops later steps and the
    /// cut-off last line of a killed session (which would make every later read fail).
    #[test]
    fn truncating_the_metrics_drops_later_steps_and_a_cut_off_line() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let text = "{\"step\":1,\"loss\":2.0}\n{\"note\":\"resumed\"}\n{\"step\":2,\"loss\":1.5}\n\
                    {\"step\":3,\"loss\":1.2}\n{\"step\":4,\"lo";
        std::fs::write(run.metrics(), text).unwrap();
        run.truncate_metrics(2).unwrap();
        run.log(&serde_json::json!({"step": 3, "loss": 1.1}))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(run.metrics()).unwrap(),
            "{\"step\":1,\"loss\":2.0}\n{\"note\":\"resumed\"}\n{\"step\":2,\"loss\":1.5}\n\
             {\"loss\":1.1,\"step\":3}\n"
        );
        assert_eq!(run.step_lines().unwrap().len(), 3);
    }
}
