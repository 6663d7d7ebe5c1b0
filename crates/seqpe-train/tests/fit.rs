//! The training loop on a toy task (a one-layer causal model with SeqPE on a synthetic stream):
//! stop and resume, zero intervals, non-finite losses, wall time, what a resumed run keeps; the
//! same loop with two data-parallel peers (burn-collective) against one.

use std::path::Path;

use anyhow::Result;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use seqpe_core::transformer::{Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, PeKind, PositionContext, PositionEncoding, PositionEncodingConfig,
    PositionGrid, RegularizerSettings, SeqPeInjection, SeqPeSettings,
};
use seqpe_train::config::{for_run, for_run_with_flags, GivenFlag, RunConfig};
use seqpe_train::run::RunDir;
use seqpe_train::schedule::Decay;
use seqpe_train::{
    fit, DataParallel, FitOptions, FitSummary, Goal, Metric, PositionedModel, Task, TrainSettings,
};
use serde::{Deserialize, Serialize};

type B = Autodiff<Flex>;

/// The backend RNG is process-global: tests that train take turns.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
const DEV: burn::backend::flex::FlexDevice = burn::backend::flex::FlexDevice;
const VOCAB: usize = 11;
const N: usize = 8;

#[derive(Module, Debug)]
struct Toy<B: Backend> {
    embed: Embedding<B>,
    positions: PositionEncoding<B>,
    stack: Transformer<B>,
    head: Linear<B>,
}

impl<B: Backend> PositionedModel<B> for Toy<B> {
    fn positions(&self) -> &PositionEncoding<B> {
        &self.positions
    }
}

impl<B: Backend> Toy<B> {
    /// `dropout`: the SeqPE encoder's (the main model has none).
    fn new(device: &B::Device, dropout: f64) -> Self {
        let seqpe = SeqPeSettings {
            dropout,
            ..SeqPeSettings::reference(16, 20_000, SeqPeInjection::AttnScalar)
        };
        Toy {
            embed: EmbeddingConfig::new(VOCAB, 16).init(device),
            positions: PositionEncodingConfig::new(PeKind::SeqPe, 16, 2, 1, vec![N])
                .with_seqpe(Some(seqpe.config(1, 20_000, 16)))
                .init(device),
            stack: TransformerConfig::new(16, 2, 1).init(device),
            head: LinearConfig::new(16, VOCAB).init(device),
        }
    }

    fn forward(&self, tokens: Tensor<B, 2, Int>, ctx: &PositionContext<B>) -> Tensor<B, 3> {
        let x = ctx.add_to_input(self.embed.forward(tokens));
        let h = self.stack.forward(
            x,
            AttnMask::Causal,
            |i| ctx.layer(i),
            AttentionOptions::default(),
        );
        self.head.forward(h)
    }
}

fn token(i: usize) -> i64 {
    ((i * 7 + i / 5) % VOCAB) as i64
}

/// Next-token prediction on a fixed synthetic stream, cut into 32 blocks of 8.
struct ToyTask {
    grid: PositionGrid,
    /// Multiply the loss of this (0-based) step by NaN.
    poison_at: Option<usize>,
}

struct ToyBatch<B: Backend> {
    inputs: Tensor<B, 2, Int>,
    labels: Tensor<B, 1, Int>,
    step: usize,
}

fn block_batch<B: Backend>(
    indices: &[usize],
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 1, Int>) {
    let b = indices.len();
    let inputs: Vec<i64> = indices
        .iter()
        .flat_map(|&k| (0..N).map(move |i| token(k * N + i)))
        .collect();
    let labels: Vec<i64> = indices
        .iter()
        .flat_map(|&k| (0..N).map(move |i| token(k * N + i + 1)))
        .collect();
    (
        Tensor::from_data(TensorData::new(inputs, [b, N]), device),
        Tensor::from_data(TensorData::new(labels, [b * N]), device),
    )
}

impl Task<B> for ToyTask {
    type Model = Toy<B>;
    type Batch = ToyBatch<B>;

    fn train_len(&self) -> usize {
        32
    }
    fn grid(&self) -> &PositionGrid {
        &self.grid
    }
    fn batch(
        &self,
        indices: &[usize],
        step: usize,
        device: &burn::backend::flex::FlexDevice,
    ) -> Result<ToyBatch<B>> {
        let (inputs, labels) = block_batch(indices, device);
        Ok(ToyBatch {
            inputs,
            labels,
            step,
        })
    }
    fn loss(&self, model: &Toy<B>, batch: ToyBatch<B>, ctx: &PositionContext<B>) -> Tensor<B, 1> {
        let [b, n] = batch.inputs.dims();
        let logits = model.forward(batch.inputs, ctx).reshape([b * n, VOCAB]);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, batch.labels);
        if self.poison_at == Some(batch.step) {
            loss * f32::NAN
        } else {
            loss
        }
    }
    fn validate(
        &self,
        model: &Toy<<B as AutodiffBackend>::InnerBackend>,
        device: &burn::backend::flex::FlexDevice,
    ) -> Result<Metric> {
        let (inputs, labels) = block_batch(&[0, 1, 2, 3], device);
        let ctx = model.positions.context(&self.grid, 4, None, device)?;
        let logits = model.forward(inputs, &ctx).reshape([4 * N, VOCAB]);
        let loss = CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, labels);
        Ok(Metric::new(
            "valid_loss",
            loss.into_scalar().elem(),
            Goal::Minimize,
        ))
    }
    fn unit(&self) -> (&'static str, usize) {
        ("tokens", N)
    }
}

fn settings(steps: usize, eval_every: usize, checkpoint_every: usize) -> TrainSettings {
    TrainSettings {
        batch_size: 4,
        steps,
        lr: 3e-3,
        warmup_steps: 2,
        warmup_start_lr: 0.0,
        final_lr: 0.0,
        decay: Decay::Linear,
        weight_decay: 0.01,
        grad_clip: 5.0,
        label_smoothing: 0.0,
        seed: 7,
        eval_every,
        valid_limit: 0,
        checkpoint_every,
        regularizer: RegularizerSettings {
            contrastive_batch: 4,
            contrastive_candidates: 8,
            distill_windows: 2,
            distill_per_window: 4,
            shift_windows: 2,
            // shift often, so both shifted and unshifted steps occur in a few steps
            shift_rate: 0.3,
            ..RegularizerSettings::reference(1)
        },
    }
}

fn train(
    dir: &Path,
    s: &TrainSettings,
    resume: bool,
    stop_after: Option<usize>,
    poison_at: Option<usize>,
) -> Result<FitSummary> {
    train_on(
        dir,
        s,
        resume,
        stop_after,
        poison_at,
        DataParallel::single(),
        0.1,
    )
}

/// `dropout`: the SeqPE encoder's (reference 0.1). Data-parallel peers draw other dropout masks
/// than one device, so the comparisons of the two train without.
fn train_on(
    dir: &Path,
    s: &TrainSettings,
    resume: bool,
    stop_after: Option<usize>,
    poison_at: Option<usize>,
    parallel: DataParallel,
    dropout: f64,
) -> Result<FitSummary> {
    let run = RunDir::new(dir);
    run.prepare(resume)?;
    let task = ToyTask {
        grid: PositionGrid::sequence(N),
        poison_at,
    };
    <B as Backend>::seed(&DEV, s.seed);
    let model = Toy::<B>::new(&DEV, dropout);
    fit(
        &task,
        model,
        s,
        &FitOptions {
            run,
            resume,
            stop_after,
            label: "toy".into(),
            parallel,
        },
        &DEV,
    )
}

fn metric_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn step_losses(dir: &Path) -> Vec<(u64, f64)> {
    metric_lines(dir)
        .iter()
        .filter(|v| v.get("loss").is_some())
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

fn saved_step(dir: &Path) -> u64 {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("checkpoint/state.json")).unwrap())
            .unwrap();
    state["step"].as_u64().unwrap()
}

#[test]
fn stop_after_checkpoints_and_the_resumed_run_equals_an_uninterrupted_one() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let s = settings(6, 2, 4);
    train(&a, &s, false, None, None).unwrap();
    // step 3 is not a checkpoint step: --stop-after must still checkpoint there
    let first = train(&b, &s, false, Some(3), None).unwrap();
    assert_eq!(first.steps, 3);
    assert_eq!(saved_step(&b), 3);
    let second = train(&b, &s, true, None, None).unwrap();
    assert_eq!(second.steps, 6);
    let (la, lb) = (step_losses(&a), step_losses(&b));
    let steps: Vec<u64> = lb.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "every step logged once");
    assert_eq!(la.len(), lb.len());
    for ((_, x), (_, y)) in la.iter().zip(&lb) {
        assert!(
            (x - y).abs() < 1e-5,
            "resumed losses differ: {la:?} vs {lb:?}"
        );
    }
    // the SeqPE diagnostics are logged
    let lines = metric_lines(&b);
    assert!(lines.iter().any(|v| v["contrastive"].is_f64()));
    assert!(lines.iter().any(|v| v["ranking_acc"].is_f64()));
    assert!(lines.iter().any(|v| v["pe_effective_rank"].is_f64()));
    // wall time is summed over both sessions (the first up to its checkpoint at step 3)
    assert!(
        second.total_seconds >= second.seconds + 0.5 * first.seconds,
        "{} vs {} + {}",
        second.total_seconds,
        first.seconds,
        second.seconds
    );
}

#[test]
fn a_killed_session_logs_no_step_twice_after_resume() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let s = settings(6, 0, 2);
    train(&dir, &s, false, Some(4), None).unwrap();
    // a session killed after step 5 (past the step-4 checkpoint) leaves a stray line
    let mut text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    text += "{\"step\":5,\"loss\":1.0}\n";
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    train(&dir, &s, true, None, None).unwrap();
    let steps: Vec<u64> = step_losses(&dir).iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>());
}

#[test]
fn zero_intervals_validate_and_checkpoint_only_at_the_end() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let summary = train(&dir, &settings(5, 0, 0), false, None, None).unwrap();
    assert_eq!(summary.steps, 5);
    assert_eq!(saved_step(&dir), 5);
    let valid: Vec<u64> = metric_lines(&dir)
        .iter()
        .filter(|v| v.get("valid_loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(valid, vec![5]);
    assert!(dir.join("best/model.mpk").is_file());
}

#[test]
fn a_non_finite_loss_stops_before_any_update() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = format!(
        "{:#}",
        train(&dir, &settings(6, 0, 1), false, None, Some(3)).unwrap_err()
    );
    assert!(
        err.contains("step 4") && err.contains("not finite"),
        "{err}"
    );
    // the checkpoint of step 3 is the last one; the run resumes from it
    assert_eq!(saved_step(&dir), 3);
    let summary = train(&dir, &settings(6, 0, 1), true, None, None).unwrap();
    assert_eq!(summary.steps, 6);
    assert!(summary.final_loss.is_finite());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ToyConfig {
    preset: String,
    width: usize,
    train: TrainSettings,
}

#[derive(Debug, Clone, Copy)]
enum ToyPreset {
    Small,
    Long,
}

impl seqpe_train::config::Preset for ToyPreset {
    const WHAT: &'static str = "toy";
    const ALL: &'static [Self] = &[Self::Small, Self::Long];
    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Long => "long",
        }
    }
}

impl RunConfig for ToyConfig {
    type Preset = ToyPreset;
    fn from_preset(p: ToyPreset) -> Self {
        use seqpe_train::config::Preset;
        let steps = match p {
            ToyPreset::Small => 6,
            ToyPreset::Long => 60,
        };
        ToyConfig {
            preset: p.name().into(),
            width: 16,
            train: settings(steps, 2, 2),
        }
    }
    fn validate(&self) -> Result<()> {
        if self.width == 0 {
            anyhow::bail!("width must be positive");
        }
        Ok(())
    }
    fn train(&self) -> &TrainSettings {
        &self.train
    }
    fn train_mut(&mut self) -> &mut TrainSettings {
        &mut self.train
    }
}

#[test]
fn a_resumed_run_keeps_its_saved_config_and_only_steps_can_change() {
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path());
    let saved = ToyConfig::preset("small").unwrap();
    seqpe_train::checkpoint::write_json(&run.config(), &saved).unwrap();
    // a fresh preset with other steps (and width) does not change a resumed run
    let fresh = ToyConfig::preset("long").unwrap();
    let cfg = for_run(&run, true, fresh.clone(), &[]).unwrap();
    assert_eq!(cfg, saved);
    // --set train.steps=N extends it
    let mut extended = fresh.clone();
    extended.train.steps = 9;
    let cfg = for_run(&run, true, extended, &["train.steps=9".into()]).unwrap();
    assert_eq!(cfg.train.steps, 9);
    assert_eq!(cfg.width, saved.width);
    // any other --set is refused rather than silently ignored
    let err = for_run(&run, true, fresh.clone(), &["width=32".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("width=32"), "{err}");
    // one that repeats the saved value changes nothing and is accepted
    let same = format!("width={}", saved.width);
    assert_eq!(for_run(&run, true, fresh.clone(), &[same]).unwrap(), saved);
    // a fresh run uses the fresh config
    assert_eq!(for_run(&run, false, fresh.clone(), &[]).unwrap(), fresh);
}

#[test]
fn a_resumed_run_refuses_a_typed_flag_that_would_change_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path());
    let saved = ToyConfig::preset("small").unwrap();
    seqpe_train::checkpoint::write_json(&run.config(), &saved).unwrap();
    let fresh = ToyConfig::preset("long").unwrap();
    // `--width 32` on a run saved with another width (as `--pe ape` on a SeqPE run) is an
    // error naming the flag as typed, not silently ignored
    let other = GivenFlag::new("--width", "width", &(saved.width + 1));
    assert_eq!(other.shown, format!("--width {}", saved.width + 1));
    let err = for_run_with_flags(&run, true, fresh.clone(), &[], &[other])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("`--width {}`", saved.width + 1)),
        "{err}"
    );
    // a string-valued flag is written as the config file holds it
    let preset = GivenFlag::new("--preset", "preset", &"long");
    assert_eq!(preset.setting, "preset=\"long\"");
    assert!(for_run_with_flags(&run, true, fresh.clone(), &[], &[preset]).is_err());
    // the saved value is accepted, and a fresh run ignores the check
    let same = GivenFlag::new("--width", "width", &saved.width);
    assert_eq!(
        for_run_with_flags(&run, true, fresh.clone(), &[], std::slice::from_ref(&same)).unwrap(),
        saved
    );
    let other = GivenFlag::new("--width", "width", &(saved.width + 1));
    assert_eq!(
        for_run_with_flags(&run, false, fresh.clone(), &[], &[other]).unwrap(),
        fresh
    );
}

/// The logged values of two runs (losses, ranking accuracy, gradient norms), compared step by
/// step within `tol` (relative); at least one step with a distillation loss.
fn assert_same_steps(one: &Path, two: &Path, tol: f64) {
    let keys = [
        "loss",
        "contrastive",
        "distill",
        "ranking_acc",
        "grad_norm",
        "encoder_grad_norm",
    ];
    let c = RunDir::new(one)
        .compare_steps(&RunDir::new(two), &keys)
        .unwrap();
    eprintln!("largest relative difference: {:e} ({})", c.largest, c.at);
    assert!(c.largest <= tol, "one device vs two peers: {}", c.at);
    assert!(c.distilled, "no step had a distillation loss to compare");
}

#[test]
fn two_data_parallel_peers_train_as_one_device() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let s = settings(6, 3, 3);
    let a = train_on(&one, &s, false, None, None, DataParallel::single(), 0.0).unwrap();
    let b = train_on(&two, &s, false, None, None, DataParallel::local(2), 0.0).unwrap();
    assert_same_steps(&one, &two, 1e-5);
    assert!((a.final_loss - b.final_loss).abs() < 1e-5);
    // one writer: one line per step and per validation, and the same validations
    let valid = |dir: &Path| -> Vec<f64> {
        metric_lines(dir)
            .iter()
            .filter_map(|v| v["valid_loss"].as_f64())
            .collect()
    };
    let (va, vb) = (valid(&one), valid(&two));
    assert_eq!(va.len(), 2);
    assert_eq!(vb.len(), 2);
    for (x, y) in va.iter().zip(&vb) {
        assert!((x - y).abs() < 1e-5, "{va:?} vs {vb:?}");
    }
    assert!(two.join("best/model.mpk").exists() && two.join("summary.json").exists());
}

#[test]
fn a_data_parallel_run_stops_and_resumes_like_one_device() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let s = settings(6, 0, 0);
    train_on(&one, &s, false, None, None, DataParallel::single(), 0.0).unwrap();
    let first = train_on(&two, &s, false, Some(3), None, DataParallel::local(2), 0.0).unwrap();
    assert_eq!(first.steps, 3);
    assert_eq!(saved_step(&two), 3);
    let second = train_on(&two, &s, true, None, None, DataParallel::local(2), 0.0).unwrap();
    assert_eq!(second.steps, 6);
    let steps: Vec<u64> = step_losses(&two).iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "every step logged once");
    assert_same_steps(&one, &two, 1e-5);
}

#[test]
fn a_non_finite_loss_stops_every_peer() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = train_on(
        &dir,
        &settings(6, 0, 1),
        false,
        None,
        Some(3),
        DataParallel::local(2),
        0.0,
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("step 4") && err.contains("not finite"),
        "{err}"
    );
    assert_eq!(saved_step(&dir), 3);
    // the collective is usable again: the run resumes with two peers
    let summary = train_on(
        &dir,
        &settings(6, 0, 1),
        true,
        None,
        None,
        DataParallel::local(2),
        0.0,
    )
    .unwrap();
    assert_eq!(summary.steps, 6);
}

#[test]
fn a_batch_that_does_not_split_evenly_is_refused() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let err = train_on(
        &tmp.path().join("run"),
        &settings(2, 0, 0),
        false,
        None,
        None,
        DataParallel::local(3),
        0.0,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("multiple of the number of data-parallel peers"),
        "{err:#}"
    );
}

#[test]
fn resuming_a_finished_run_keeps_its_summary_and_a_run_cannot_be_shortened() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let s = settings(6, 3, 3);
    let done = train(&dir, &s, false, None, None).unwrap();
    let saved = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    // --resume with nothing left to train: the summary is returned and left as it was
    let again = train(&dir, &s, true, None, None).unwrap();
    assert_eq!(again.final_loss, done.final_loss);
    assert!(!again.metric.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.json")).unwrap(),
        saved
    );
    // fewer steps than the run has: a clear error, and nothing saved is touched
    let err = train(&dir, &settings(4, 3, 3), true, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at step 6") && err.contains("cannot be shortened"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.json")).unwrap(),
        saved
    );
}

#[test]
fn settings_that_would_panic_or_train_nothing_are_refused() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    for (name, s, stop_after, want) in [
        (
            "zero-batch",
            TrainSettings {
                batch_size: 0,
                ..settings(4, 2, 2)
            },
            None,
            "batch_size",
        ),
        ("zero-steps", settings(0, 2, 2), None, "train.steps"),
        ("stop-0", settings(4, 2, 2), Some(0), "--stop-after"),
    ] {
        let err = train(&tmp.path().join(name), &s, false, stop_after, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// Holds a run folder's write lock for a few seconds (the child process of
/// [`a_second_writer_of_a_run_folder_is_refused_naming_the_first`]; alone it does nothing).
#[test]
#[ignore = "the child process of a_second_writer_of_a_run_folder_is_refused_naming_the_first"]
fn hold_run_lock() {
    let Ok(dir) = std::env::var("SEQPE_TEST_LOCK_DIR") else {
        return;
    };
    RunDir::new(&dir).prepare(false).unwrap();
    std::fs::write(Path::new(&dir).join("locked"), "").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(20));
}

#[test]
fn a_second_writer_of_a_run_folder_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["hold_run_lock", "--exact", "--ignored", "--nocapture"])
        .env("SEQPE_TEST_LOCK_DIR", &dir)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !dir.join("locked").exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the child never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let err = RunDir::new(&dir).prepare(false).unwrap_err().to_string();
    let pid = child.id().to_string();
    assert!(
        err.contains("being written by another process") && err.contains(&pid),
        "{err}"
    );
    // a reader is not affected, and the lock goes with the process
    assert!(dir.join(".lock").is_file());
    child.kill().unwrap();
    child.wait().unwrap();
    RunDir::new(&dir).prepare(false).unwrap();
}

#[test]
fn a_writer_clears_what_an_interrupted_write_left() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(dir.join("checkpoint.tmp-4242")).unwrap();
    std::fs::write(dir.join("checkpoint.tmp-4242/model.mpk"), b"half").unwrap();
    std::fs::write(dir.join("summary.json.tmp-4242"), b"{").unwrap();
    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    RunDir::new(&dir).prepare(false).unwrap();
    assert!(!dir.join("checkpoint.tmp-4242").exists());
    assert!(!dir.join("summary.json.tmp-4242").exists());
    assert!(dir.join("config.json").exists(), "only the leftovers go");
}

#[test]
fn a_saved_config_is_checked_when_loaded() {
    use seqpe_train::config::load;
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path());
    let good = serde_json::to_value(ToyConfig::preset("small").unwrap()).unwrap();
    std::fs::write(run.config(), good.to_string()).unwrap();
    let cfg: ToyConfig = load(&run).unwrap();
    assert_eq!(cfg.width, 16);
    // a key the settings do not have (a typo, or another version's)
    let mut typo = good.clone();
    typo["train"]["stpes"] = 3.into();
    std::fs::write(run.config(), typo.to_string()).unwrap();
    let err = load::<ToyConfig>(&run).unwrap_err().to_string();
    assert!(
        err.contains("unknown setting `train.stpes`") && err.contains("config.json"),
        "{err}"
    );
    // another kind of run's settings
    std::fs::write(run.config(), r#"{"preset": "tiny", "model": {}}"#).unwrap();
    let err = load::<ToyConfig>(&run).unwrap_err().to_string();
    assert!(
        err.contains("does not hold the settings of a toy run"),
        "{err}"
    );
    // settings a run cannot use
    let mut bad = good;
    bad["width"] = 0.into();
    std::fs::write(run.config(), bad.to_string()).unwrap();
    let err = format!("{:#}", load::<ToyConfig>(&run).unwrap_err());
    assert!(err.contains("cannot use") && err.contains("width"), "{err}");
}

/// A full disk during a checkpoint write: `model.mpk` of the new checkpoint is a link to
/// `/dev/full`, whose writes fail with ENOSPC as a full disk's do. The error names the file and
/// the reason and says what to do, and the previous checkpoint stays whole and loadable.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_during_a_checkpoint_says_so_and_keeps_the_previous_one() {
    use seqpe_train::checkpoint::write_dir_atomically;
    use seqpe_train::run::{load_model, save_model};
    // initialising a model draws from the process-global RNG the training tests share
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("checkpoint");
    let first: Linear<Flex> = LinearConfig::new(4, 3).init(&DEV);
    // parameters are initialised lazily: draw them before a clone is saved
    let first_weight = first.weight.val().into_data();
    write_dir_atomically(&target, |d| save_model(&first, d)).unwrap();
    let second: Linear<Flex> = LinearConfig::new(4, 3).init(&DEV);
    let err = write_dir_atomically(&target, |d| {
        std::os::unix::fs::symlink("/dev/full", d.join("model.mpk"))?;
        save_model(&second, d)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("model.mpk"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let fresh: Linear<Flex> = LinearConfig::new(4, 3).init(&DEV);
    let loaded = load_model(fresh, &target, &DEV).unwrap();
    assert_eq!(loaded.weight.val().into_data(), first_weight);
    // nothing of the failed write is left beside it
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["checkpoint"]);
}

/// Trains the toy run in `SEQPE_TEST_TRAIN_DIR` (resuming when it has a checkpoint), the child
/// process of [`a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result`].
#[test]
#[ignore = "the child process of a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result"]
fn train_until_killed() {
    let Ok(dir) = std::env::var("SEQPE_TEST_TRAIN_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let resume = dir.join("checkpoint").exists() || dir.join("checkpoint.old").exists();
    train(dir, &kill_settings(), resume, None, None).unwrap();
}

/// Many short steps, a checkpoint after each, so a kill often lands inside a checkpoint write.
fn kill_settings() -> TrainSettings {
    settings(120, 0, 1)
}

/// `kill -9` at random moments (at least five times, at least once while a checkpoint is being
/// written: its temporary folder is left behind), each time resumed, until the run finishes;
/// its logged steps equal those of a run never interrupted.
#[cfg(unix)]
#[test]
fn a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    {
        let _turn = lock();
        train(&whole, &kill_settings(), false, None, None).unwrap();
    }
    let in_write = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("checkpoint.tmp-")
            })
        })
    };
    // a fixed sequence of waits (a linear congruential generator), so a failure repeats
    let mut state: u64 = 12345;
    let mut wait_ms = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        30 + (state >> 33) % 300
    };
    let (mut kills, mut kills_in_write) = (0, 0);
    for attempt in 0..200 {
        assert!(attempt < 199, "the run never finished");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["train_until_killed", "--exact", "--ignored", "--nocapture"])
            .env("SEQPE_TEST_TRAIN_DIR", &killed)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let enough = kills >= 5 && kills_in_write >= 1;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(wait_ms());
        // after five kills without one inside a write, wait for a write to start instead
        let aim_at_write = kills >= 5 && kills_in_write == 0;
        let mut exited = None;
        while exited.is_none() {
            exited = child.try_wait().unwrap();
            let due = if aim_at_write {
                in_write(&killed)
            } else {
                std::time::Instant::now() >= deadline
            };
            if due && !enough {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        match exited {
            Some(status) => {
                assert!(status.success(), "the child failed: {status}");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                kills_in_write += usize::from(in_write(&killed));
            }
        }
    }
    assert!(kills >= 5, "only {kills} kills before the run finished");
    assert!(
        kills_in_write >= 1,
        "no kill landed inside a checkpoint write"
    );
    eprintln!("{kills} kills, {kills_in_write} inside a checkpoint write");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["steps"], 120, "{summary}");
    let steps: Vec<u64> = step_losses(&killed).iter().map(|(s, _)| *s).collect();
    assert_eq!(
        steps,
        (1..=120).collect::<Vec<_>>(),
        "every step logged once"
    );
    assert_same_steps(&whole, &killed, 1e-5);
}

#[test]
fn a_failed_start_leaves_no_new_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    // a new folder whose session fails before a checkpoint (bad data) is removed, lock and all,
    // and can be started again by the same process
    let run = RunDir::new(tmp.path().join("new"));
    let failed: Result<()> = run.or_remove_if_new(|| {
        run.prepare(false)?;
        std::fs::write(run.config(), "{}")?;
        anyhow::bail!("corpus not found")
    });
    assert!(failed.unwrap_err().to_string().contains("corpus"));
    assert!(!run.root.exists());
    run.or_remove_if_new(|| run.prepare(false)).unwrap();
    assert!(
        run.root.join(".lock").is_file(),
        "a successful start keeps it"
    );
    // a folder that existed is kept whatever happens
    let old = RunDir::new(tmp.path().join("old"));
    std::fs::create_dir_all(&old.root).unwrap();
    std::fs::write(old.root.join("notes.txt"), "mine").unwrap();
    let _ = old.or_remove_if_new(|| -> Result<()> { anyhow::bail!("fails") });
    assert!(old.root.join("notes.txt").is_file());
    // a run that failed after saving a checkpoint is kept (it can be resumed)
    let later = RunDir::new(tmp.path().join("later"));
    let _ = later.or_remove_if_new(|| -> Result<()> {
        later.prepare(false)?;
        std::fs::create_dir_all(later.checkpoint())?;
        std::fs::write(later.checkpoint().join("state.json"), "{}")?;
        anyhow::bail!("failed at step 900")
    });
    assert!(later.checkpoint().is_dir());
}
