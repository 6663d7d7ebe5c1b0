//! [`fit`]: the one training loop of seqpe. Text, vision and QA fine-tuning are [`Task`]s of it.
//!
//! The split follows Burn's `TrainStep`/`ValidStep`: a task knows its data and its loss; the loop
//! owns everything else, the same for every model:
//!
//! * the epoch order of the training examples ([`EpochSampler`]) and the per-step RNG seed;
//! * the position context of each step: for SeqPE, one merged encoder pass of the
//!   [`SeqPeRegularizer`] (main positions — possibly randomly shifted — pivots, candidates,
//!   students) gives both the table and `w_ct·L_ct + w_kd·L_kd`;
//! * the learning-rate schedule and [`GroupedAdamW`] (encoder group, decayed and undecayed main
//!   groups, separate clipping);
//! * a non-finite loss stops the run *before* any update, naming the step;
//! * progress (loss, regularizer losses, ranking accuracy, throughput), one `metrics.jsonl` line
//!   per step (plus gradient norms) and per validation (plus how distinct the position table
//!   is, [`table_stats`]);
//! * validation every `eval_every` steps and after the last, keeping the best model;
//! * atomic checkpoints every `checkpoint_every` steps, after the last and at `--stop-after`;
//!   exact resume (weights, optimizer, samplers, RNG seeds, wall time; `metrics.jsonl` cut back
//!   to the checkpoint so no step is logged twice).
//!
//! With [`FitOptions::parallel`] naming several devices or machines, the same loop runs once per
//! data-parallel peer ([`crate::parallel`]): each takes its part of every global batch, gradients
//! are averaged with burn-collective before the one optimizer step, and only the writer (peer 0)
//! logs, validates and checkpoints. With one device it is the plain loop, with no collective.

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use seqpe_core::diagnostics::{table_stats, TableStats};
use seqpe_core::{PositionEncoding, PositionGrid, SeqPeRegularizer};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{write_dir_atomically, write_json};
use crate::optim::GroupedAdamW;
use crate::parallel::{DataParallel, Peer};
use crate::progress::Progress;
use crate::run::{load_checkpoint, save_checkpoint, save_model, RunDir};
use crate::sampler::EpochSampler;
use crate::settings::TrainSettings;
use crate::step::{materialize, step_seed};
pub use crate::step::{optimizer_for, peer_step, position_regularizer, train_step, StepStats};
pub use crate::task::{Goal, Metric, PositionedModel, Task};

/// Where a run writes and how it starts and stops.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub run: RunDir,
    /// Continue from the run's latest checkpoint.
    pub resume: bool,
    /// Stop (with a checkpoint) once this step is reached; the run stays resumable.
    pub stop_after: Option<usize>,
    /// The progress label (`train-text`, `train-vit`, `train-qa`).
    pub label: String,
    /// The data-parallel peers (devices, machines); one device by default.
    pub parallel: DataParallel,
}

/// Loop state saved with each checkpoint besides weights and optimizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitState {
    pub step: usize,
    pub best: Option<f64>,
    pub sampler: EpochSampler,
    pub regularizer: Option<SeqPeRegularizer>,
    /// Training examples consumed.
    pub seen: u64,
    /// Training wall time summed over every session of the run, up to this checkpoint.
    pub seconds: f64,
}

/// What a run reports (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitSummary {
    pub steps: usize,
    pub final_loss: f64,
    /// The validation metric's name and its best and last values.
    pub metric: String,
    pub best_valid: Option<f64>,
    pub last_valid: Option<f64>,
    /// Wall time of this session.
    pub seconds: f64,
    /// Wall time over every session of the run.
    pub total_seconds: f64,
    /// `tokens` or `images`, and how many per second in this session.
    pub unit: String,
    pub per_second: f64,
    pub train_examples: usize,
    pub epochs: f64,
    /// The backend this session trained on (e.g. `Autodiff<Flex>`, `Autodiff<LibTorch>`).
    #[serde(default)]
    pub backend: String,
}

/// `a::b::C<d::E>` → `C<E>`.
fn short_type_name(full: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            out += word.rsplit("::").next().unwrap_or("");
            word.clear();
            out.push(c);
        }
    }
    out += word.rsplit("::").next().unwrap_or("");
    out
}

/// Exponential moving averages for the progress line.
#[derive(Default)]
struct Ema(Option<f64>);

impl Ema {
    fn push(&mut self, x: f64) -> f64 {
        let v = self.0.map_or(x, |e| 0.95 * e + 0.05 * x);
        self.0 = Some(v);
        v
    }
}

/// How distinct the position vectors of the trained grid are, for encodings that have them.
fn position_stats<B: Backend>(
    positions: &PositionEncoding<B>,
    grid: &PositionGrid,
    device: &B::Device,
) -> Result<Option<TableStats>> {
    let origin = PositionGrid::new(0, grid.extent.clone());
    Ok(positions
        .position_vectors(&origin, device)?
        .filter(|t| t.dims()[0] >= 2)
        .map(table_stats))
}

/// Trains `model` on `task` (or resumes it) with `settings`; the model's position encoding adds
/// its own training loss ([`position_regularizer`]: SeqPE's regularizers). The run folder must exist and hold the run's
/// `config.json`. With several data-parallel peers ([`FitOptions::parallel`]) the loop runs on a
/// thread per local peer, each with a copy of `model` on its device; the writer's summary (on
/// other nodes: the first local peer's) is returned.
pub fn fit<B: AutodiffBackend, T: Task<B> + Sync>(
    task: &T,
    model: T::Model,
    settings: &TrainSettings,
    opts: &FitOptions,
    device: &B::Device,
) -> Result<FitSummary> {
    if opts.parallel.is_single() {
        return fit_peer(task, model, settings, opts, device, None);
    }
    opts.parallel.check(settings.batch_size)?;
    if !opts.resume {
        materialize(task, &model, settings, device)?;
    }
    let peers = opts.parallel.peers_here(device)?;
    eprintln!(
        "data parallel: {} ({} peers in all)",
        opts.parallel,
        opts.parallel.peers()
    );
    let results: Vec<Result<FitSummary>> = std::thread::scope(|scope| {
        let handles: Vec<_> = peers
            .into_iter()
            .map(|(peer, dev)| {
                let model = model.clone().fork(&dev);
                scope.spawn(move || {
                    let result = peer
                        .register::<B>(&dev)
                        .and_then(|()| fit_peer(task, model, settings, opts, &dev, Some(&peer)))
                        .and_then(|summary| peer.finish::<B>().map(|()| summary));
                    if result.is_err() {
                        peer.abort::<B>();
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a data-parallel peer panicked")))
            })
            .collect()
    });
    let mut first = None;
    for r in results {
        match r {
            Ok(summary) => {
                first.get_or_insert(summary);
            }
            Err(e) => return Err(e),
        }
    }
    first.ok_or_else(|| anyhow!("no data-parallel peer ran"))
}

/// The training loop of one peer (`None`: the only one), top to bottom: start (or resume), then
/// per step the update and, on the writer only, the step's log line, validation (keeping the best
/// model) and checkpoints; at the end the summary.
fn fit_peer<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: T::Model,
    settings: &TrainSettings,
    opts: &FitOptions,
    device: &B::Device,
    peer: Option<&Peer>,
) -> Result<FitSummary> {
    let writer = peer.is_none_or(|p| p.is_writer());
    let (run, t) = (&opts.run, settings);
    t.validate()?;
    if opts.stop_after == Some(0) {
        bail!("--stop-after must be a step of the run (1 or more)");
    }
    if t.batch_size > task.train_len() {
        // one batch would repeat examples, and its tensors can exceed the memory (a text
        // batch of 100,000 blocks was killed for memory without a word)
        bail!(
            "train.batch_size {} is larger than the {} training examples (text blocks, \
             images, questions); lower train.batch_size",
            t.batch_size,
            task.train_len()
        );
    }
    let (mut model, mut optim, mut state) = start(task, model, t, opts, device, writer)?;
    if state.step > t.steps {
        bail!(
            "{} is at step {}, beyond train.steps = {}: a run cannot be shortened; resume it \
             with --set train.steps={} or more, or start a new --run folder",
            run.root.display(),
            state.step,
            t.steps,
            state.step
        );
    }
    if state.step == t.steps {
        // a finished run resumed without more steps: nothing to train, and its summary stays
        if let Ok(saved) = crate::checkpoint::read_json::<FitSummary>(&run.file("summary.json")) {
            eprintln!(
                "{} has finished its {} steps; nothing to train (extend it with --set \
                 train.steps=N)",
                run.root.display(),
                t.steps
            );
            return Ok(saved);
        }
    }
    let schedule = t.schedule();
    let unit = task.unit();
    let mut log = writer.then(|| StepLog::new(&opts.label, t.steps, state.step, unit));
    let local_batch = peer.map_or(t.batch_size, |p| t.batch_size / p.shard().count);
    let clock = Clock::start(&state);
    let mut outcome = Outcome::default();
    while state.step < t.steps && opts.stop_after.is_none_or(|s| state.step < s) {
        let lr = schedule.lr(state.step);
        let (next, stats) = run_step(
            task,
            model,
            &mut optim,
            &mut state,
            t,
            lr,
            local_batch,
            run,
            device,
            peer,
        )?;
        model = next;
        state.step += 1;
        state.seen += t.batch_size as u64;
        outcome.loss = stats.loss;
        let Some(log) = log.as_mut() else {
            // not the writer: nothing to log, validate or save
            continue;
        };
        let rate = clock.rate(state.step, t.batch_size * unit.1);
        log.step(run, state.step, &stats, lr, rate)?;
        let last = state.step == t.steps;
        if last || (t.eval_every > 0 && state.step.is_multiple_of(t.eval_every)) {
            let metric = validate(task, &model, &mut state, run, &log.progress, device)?;
            outcome.valid = Some(metric.value);
            outcome.metric = metric.name;
        }
        let stop = opts.stop_after == Some(state.step);
        if last || stop || (t.checkpoint_every > 0 && state.step.is_multiple_of(t.checkpoint_every))
        {
            state.seconds = clock.total_seconds();
            save_checkpoint(run, &model, &optim, &state)?;
        }
    }
    if let Some(log) = log {
        log.progress.finish();
    }
    let summary = summarize::<B, T>(task, t, &state, &clock, outcome, unit);
    if writer {
        write_json(&run.file("summary.json"), &summary)
            .map_err(|e| anyhow!("cannot write the run summary: {e}"))?;
    }
    Ok(summary)
}

/// What a session starts from: the model, its optimizer and the loop state.
type Start<B, M> = (M, GroupedAdamW<B, M>, FitState);

/// The model, its optimizer and the loop state a session starts from: fresh (step 0, a new epoch
/// sampler, the encoding's regularizer seeded by the run's seed) or, when resuming, all three
/// from the latest checkpoint; the writer then cuts `metrics.jsonl` back to that step.
fn start<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: T::Model,
    settings: &TrainSettings,
    opts: &FitOptions,
    device: &B::Device,
    writer: bool,
) -> Result<Start<B, T::Model>> {
    let (run, t) = (&opts.run, settings);
    let optim = optimizer_for::<B, T::Model>(&model, t);
    let regularizer = position_regularizer(task, &model, t);
    let state = FitState {
        step: 0,
        best: None,
        sampler: EpochSampler::new(task.train_len(), t.seed)?,
        regularizer,
        seen: 0,
        seconds: 0.0,
    };
    if !opts.resume {
        return Ok((model, optim, state));
    }
    let (model, optim, state): (_, _, FitState) =
        load_checkpoint(run, model, |m| optimizer_for::<B, T::Model>(m, t), device)?;
    if writer {
        run.truncate_metrics(state.step)?;
        eprintln!("resumed {} at step {}", run.root.display(), state.step);
    }
    Ok((model, optim, state))
}

/// Training step `state.step` at learning rate `lr`: seeds the backend for the step, draws the
/// global batch from the epoch sampler (a peer builds its part of it) and runs [`peer_step`].
/// An error says that nothing was updated.
#[allow(clippy::too_many_arguments)]
fn run_step<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: T::Model,
    optim: &mut GroupedAdamW<B, T::Model>,
    state: &mut FitState,
    settings: &TrainSettings,
    lr: f64,
    local_batch: usize,
    run: &RunDir,
    device: &B::Device,
    peer: Option<&Peer>,
) -> Result<(T::Model, StepStats)> {
    let step = state.step;
    B::seed(device, step_seed(settings.seed, step));
    let indices = state.sampler.next_batch(settings.batch_size);
    let batch = match peer {
        None => task.batch(&indices, step, device)?,
        Some(p) => {
            let part = p.shard().range(indices.len(), "the batch size")?;
            task.batch_part(&indices, part, step, device)?
        }
    };
    peer_step(
        task,
        model,
        optim,
        state.regularizer.as_mut(),
        batch,
        local_batch,
        lr,
        settings.precision,
        device,
        peer,
    )
    .with_context(|| {
        format!(
            "step {}: nothing was updated and the last checkpoint in {} is intact; lower \
             train.lr or lengthen train.warmup_steps, then --resume",
            step + 1,
            run.root.display()
        )
    })
}

/// The wall time of a session, and of the run before it (a resumed run's checkpoint holds it).
struct Clock {
    started: Instant,
    seconds_before: f64,
    start_step: usize,
}

impl Clock {
    fn start(state: &FitState) -> Self {
        Self {
            started: Instant::now(),
            seconds_before: state.seconds,
            start_step: state.step,
        }
    }

    /// Seconds of this session.
    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Seconds of the run up to now, every session included.
    fn total_seconds(&self) -> f64 {
        self.seconds_before + self.seconds()
    }

    /// Throughput of this session up to `step`, with `per_step` units (tokens, images) a step.
    fn rate(&self, step: usize, per_step: usize) -> f64 {
        ((step - self.start_step) * per_step) as f64 / self.seconds().max(1e-9)
    }
}

/// What the writer shows and logs of each step: the progress line (moving averages of the losses
/// and the ranking accuracy, throughput, learning rate) and one `metrics.jsonl` line.
struct StepLog {
    progress: Progress,
    loss: Ema,
    contrastive: Ema,
    distill: Ema,
    ranking_acc: Ema,
    unit: &'static str,
}

impl StepLog {
    fn new(label: &str, steps: usize, step: usize, unit: (&'static str, usize)) -> Self {
        Self {
            progress: Progress::new(label, steps as u64, step as u64),
            loss: Ema::default(),
            contrastive: Ema::default(),
            distill: Ema::default(),
            ranking_acc: Ema::default(),
            unit: unit.0,
        }
    }

    /// Shows and logs step `step` (1-based: the steps done) at learning rate `lr` and `rate`
    /// units per second.
    fn step(
        &mut self,
        run: &RunDir,
        step: usize,
        stats: &StepStats,
        lr: f64,
        rate: f64,
    ) -> Result<()> {
        let (loss, ct, kd, acc, norms) = (
            stats.loss,
            stats.contrastive,
            stats.distill,
            stats.ranking_acc,
            stats.norms,
        );
        let e = self.loss.push(loss);
        let mut msg = format!("loss {e:.3}");
        if let Some(ct) = ct {
            msg += &format!(" ct {:.3}", self.contrastive.push(ct));
        }
        if let Some(kd) = kd {
            msg += &format!(" kd {:.4}", self.distill.push(kd));
        }
        if let Some(acc) = acc {
            msg += &format!(" rank-acc {:.2}", self.ranking_acc.push(acc));
        }
        let unit = self.unit;
        msg += &format!(" {rate:.0} {unit}/s lr {lr:.2e}");
        self.progress.update(step as u64, &msg);
        run.log(&serde_json::json!({
            "step": step, "loss": loss, "lr": lr, "per_s": rate,
            "grad_norm": norms.model, "encoder_grad_norm": norms.encoder,
            "contrastive": ct, "distill": kd, "ranking_acc": acc, "shifted": stats.shifted,
        }))
    }
}

/// Validates the current weights after step `state.step`: logs and shows the metric with how
/// distinct the position table is, and saves the model to `best/` when the metric beats the best
/// so far (`state.best`).
fn validate<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: &T::Model,
    state: &mut FitState,
    run: &RunDir,
    progress: &Progress,
    device: &B::Device,
) -> Result<Metric> {
    let valid = model.valid();
    let metric = task.validate(&valid, device)?;
    let table = position_stats(valid.positions(), task.grid(), device)?;
    log_validation(run, progress, state.step, &metric, table)?;
    if metric.better_than(state.best) {
        state.best = Some(metric.value);
        write_dir_atomically(&run.best(), |dir| {
            save_model(model, dir)?;
            write_json(
                &dir.join("metric.json"),
                &serde_json::json!({"step": state.step, metric.name.as_str(): metric.value}),
            )
        })
        .context("saving the best model")?;
    }
    Ok(metric)
}

/// The validation's `metrics.jsonl` line and progress line.
fn log_validation(
    run: &RunDir,
    progress: &Progress,
    step: usize,
    metric: &Metric,
    table: Option<TableStats>,
) -> Result<()> {
    let mut line = serde_json::json!({"step": step});
    line[metric.name.as_str()] = metric.value.into();
    if let Some(s) = &table {
        line["pe_mean_cos"] = s.mean_cosine.into();
        line["pe_min_cos"] = s.min_cosine.into();
        line["pe_effective_rank"] = s.participation_ratio.into();
        line["pe_rms_norm"] = s.rms_norm.into();
        line["pe_centred_rms_norm"] = s.centred_rms_norm.into();
    }
    run.log(&line)?;
    progress.println(&format!(
        "step {}: {} {:.4}{}",
        step,
        metric.name,
        metric.value,
        table.map_or(String::new(), |s| format!(
            " (positions: mean cos {:.3}, eff. rank {:.1})",
            s.mean_cosine, s.participation_ratio
        ))
    ));
    Ok(())
}

/// The last training loss and validation result of a session, for its summary.
struct Outcome {
    loss: f64,
    valid: Option<f64>,
    /// The validation metric's name (empty when the session did not validate).
    metric: String,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            loss: f64::NAN,
            valid: None,
            metric: String::new(),
        }
    }
}

/// The session's [`FitSummary`].
fn summarize<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    settings: &TrainSettings,
    state: &FitState,
    clock: &Clock,
    outcome: Outcome,
    (unit, per_example): (&str, usize),
) -> FitSummary {
    let seconds = clock.seconds();
    let examples = (state.step - clock.start_step) * settings.batch_size;
    FitSummary {
        steps: state.step,
        final_loss: outcome.loss,
        metric: outcome.metric,
        best_valid: state.best,
        last_valid: outcome.valid,
        seconds,
        total_seconds: clock.seconds_before + seconds,
        unit: unit.into(),
        per_second: (examples * per_example) as f64 / seconds.max(1e-9),
        train_examples: task.train_len(),
        epochs: state.sampler.epochs(),
        backend: short_type_name(std::any::type_name::<B>()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backend_names_are_short() {
        assert_eq!(
            super::short_type_name("burn_autodiff::backend::Autodiff<burn_flex::backend::Flex>"),
            "Autodiff<Flex>"
        );
    }
}
