//! [`Session`]: one training session in a run folder, the run arguments every train command
//! shares, and the configuration it trains with ([`crate::config::for_run`]).

use std::path::PathBuf;

use anyhow::Result;

use crate::config::{for_run_with_flags, GivenFlag, RunConfig};
use crate::fit::FitOptions;
use crate::parallel::DataParallel;
use crate::run::RunDir;

/// One training session in a run folder: the run arguments every train command shares
/// (`--run`, `--resume`, `--stop-after`, `--set`).
#[derive(Debug, Clone)]
pub struct Session {
    pub run: RunDir,
    /// Continue from the run's latest checkpoint, with its saved configuration.
    pub resume: bool,
    /// Stop (with a checkpoint) once this step is reached; the run stays resumable.
    pub stop_after: Option<usize>,
    /// The `--set` overrides given: a resumed run accepts `train.steps=N` only.
    pub overrides: Vec<String>,
    /// The command's typed flags that were given (`--pe`, `--dims`, …): a resumed run refuses
    /// one that would change its settings.
    pub flags: Vec<GivenFlag>,
    /// The data-parallel peers (`--devices`, `--nodes`); one device by default.
    pub parallel: DataParallel,
}

impl Session {
    /// A fresh session in `run` with no overrides.
    pub fn fresh(run: impl Into<PathBuf>) -> Self {
        Self {
            run: RunDir::new(run),
            resume: false,
            stop_after: None,
            overrides: vec![],
            flags: vec![],
            parallel: DataParallel::single(),
        }
    }

    /// Prepares the folder (refusing to overwrite a checkpoint unless resuming) and returns the
    /// configuration this session trains with: `fresh` for a new run, the saved one (plus an
    /// allowed `train.steps`) when resuming.
    pub fn config<C: RunConfig>(&self, fresh: C) -> Result<C> {
        self.run.prepare(self.resume)?;
        for_run_with_flags(&self.run, self.resume, fresh, &self.overrides, &self.flags)
    }

    /// What [`fit`](fn@crate::fit) needs of this session; `label` names the progress lines.
    pub fn fit_options(&self, label: &str) -> FitOptions {
        FitOptions {
            run: self.run.clone(),
            resume: self.resume,
            stop_after: self.stop_after,
            label: label.into(),
            parallel: self.parallel.clone(),
        }
    }
}
