//! `train-vit`: the training loop of the ViT.
//!
//! Per step: the next shuffled images, augmented (random crop with padding, horizontal flip);
//! for SeqPE, the regularizer's merged encoder pass (main grid — possibly shifted 2-D windows —
//! pivots, candidates, students) gives the position table and `w_ct·L_ct + w_kd·L_kd`; the
//! classification cross-entropy is added; AdamW updates the encoder (no weight decay) and the
//! rest as two groups, each clipped to its own global norm; the learning rate warms up from
//! 1e-6 and decays with a cosine to 1e-5 (the ViT recipe). The backend RNG is reseeded from
//! (seed, step) every step, the augmentation RNG is a function of (seed, step), and every
//! sampler is saved with the checkpoint, so a resumed run continues exactly as an uninterrupted
//! one would.

use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor};
use seqpe_core::digits::max_digits_for;
use seqpe_core::training::{RegularizerConfig, SeqPeRegularizer};
use seqpe_core::{AttentionOptions, PeTableCache, PositionGrid};
use seqpe_train::optim::{GradNorms, GroupedAdamW, OptimSettings};
use seqpe_train::progress::Progress;
use seqpe_train::run::{load_checkpoint, save_checkpoint, save_model, RunDir};
use seqpe_train::schedule::{Decay, LrSchedule};
use serde::{Deserialize, Serialize};

use crate::config::VisionConfig;
use crate::data::{
    channel_stats, load_splits, step_rng, Augment, Batcher, ImageSampler, ImageSource,
};
use crate::eval::accuracy;
use crate::model::Vit;

/// Where a run reads its data and writes its files.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub run: RunDir,
    pub resume: bool,
    pub source: ImageSource,
    /// Stop (as if killed) once this step is reached; the run stays resumable.
    pub stop_after: Option<usize>,
}

/// State saved with each checkpoint besides weights and optimizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub best_valid_acc: Option<f64>,
    pub images: ImageSampler,
    pub regularizer: Option<SeqPeRegularizer>,
    pub images_seen: u64,
    /// Training wall time summed over all sessions of the run (up to this checkpoint).
    pub seconds: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub final_loss: f64,
    pub best_valid_acc: Option<f64>,
    pub last_valid_acc: Option<f64>,
    /// Wall time of this session.
    pub seconds: f64,
    /// Wall time over all sessions of the run.
    pub total_seconds: f64,
    pub images_per_second: f64,
    /// Images in the training split (after the validation hold-out and any subset).
    pub train_images: usize,
}

/// The SeqPE regularizer settings of a vision config: the 2-D reference recipe over the
/// training grid (`RegularizerConfig::reference`), sizes from the config.
pub fn regularizer_config(cfg: &VisionConfig) -> RegularizerConfig {
    let m = &cfg.model;
    let t = &cfg.train;
    let window = m.trained_extent();
    let n: usize = window.iter().product();
    let range = m.seqpe_range();
    let mut r = RegularizerConfig::reference(
        window,
        range,
        max_digits_for(range),
        (m.seqpe_d_model / 64).max(1),
    );
    r.contrastive.batch = t.contrastive_batch;
    r.contrastive.candidates = t.contrastive_candidates;
    r.transfer.batch = t.distill_windows;
    r.transfer.per_window = t.distill_per_window.min(n);
    r.main.shift_rate = t.shift_rate;
    r.main.shift_pool = t.shift_pool;
    r.main.windows_per_step = t.shift_windows;
    r.contrastive_weight = t.contrastive_weight;
    r.distill_weight = t.distill_weight;
    r
}

/// Warm-up from `warmup_start_lr`, then cosine to `final_lr` (timm, per iteration).
pub fn schedule(cfg: &VisionConfig) -> LrSchedule {
    LrSchedule {
        peak: cfg.train.lr,
        warmup_steps: cfg.train.warmup_steps,
        total_steps: cfg.train.steps,
        decay: Decay::Cosine,
        warmup_start: cfg.train.warmup_start_lr,
        final_lr: cfg.train.final_lr,
    }
}

/// What one optimisation step returns.
pub struct StepOutput<B: AutodiffBackend> {
    pub model: Vit<B>,
    /// The classification loss (without the SeqPE regularizers).
    pub loss: f64,
    pub norms: GradNorms,
}

/// One optimisation step on a batch: the position context (for SeqPE from the regularizer's
/// merged encoder pass, which also gives `w_ct·L_ct + w_kd·L_kd`), cross-entropy, backward,
/// grouped AdamW with separate clipping. `grid` is the unshifted grid of the batch's images.
#[allow(clippy::too_many_arguments)]
pub fn train_step<B: AutodiffBackend>(
    model: Vit<B>,
    optim: &mut GroupedAdamW<B, Vit<B>>,
    regularizer: Option<&mut SeqPeRegularizer>,
    images: Tensor<B, 4>,
    labels: Tensor<B, 1, Int>,
    loss_fn: &CrossEntropyLoss<B>,
    grid: &PositionGrid,
    lr: f64,
) -> Result<StepOutput<B>> {
    let device = images.device();
    let batch = images.dims()[0];
    let (ctx, reg) = match (regularizer, model.positions.seqpe()) {
        (Some(r), Some(s)) => {
            let out = r.step(&s.encoder, grid.prefix)?;
            let ctx = model
                .positions
                .context(&out.grid, batch, Some(out.table), &device)?;
            (ctx, Some(out.loss))
        }
        _ => (model.positions.context(grid, 1, None, &device)?, None),
    };
    let logits = model.forward_with(images, &ctx, AttentionOptions::default());
    let ce = loss_fn.forward(logits, labels);
    let total = match reg {
        Some(r) => ce.clone() + r,
        None => ce.clone(),
    };
    let loss: f64 = ce.into_scalar().elem();
    if !loss.is_finite() {
        return Ok(StepOutput {
            model,
            loss,
            norms: GradNorms::default(),
        });
    }
    let grads = total.backward();
    let (model, norms) = optim.step(lr, model, grads, |m: &Vit<B>| {
        m.positions.seqpe().map(|s| &s.encoder)
    });
    Ok(StepOutput { model, loss, norms })
}

/// Trains (or resumes) a run; returns its summary.
pub fn train<B: AutodiffBackend>(
    cfg: VisionConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary> {
    let run = &opts.run;
    run.prepare(opts.resume)?;
    let cfg = if opts.resume {
        let saved: VisionConfig = run.read_config()?;
        if saved.train.steps != cfg.train.steps {
            eprintln!(
                "resuming with steps = {} (was {})",
                cfg.train.steps, saved.train.steps
            );
        }
        VisionConfig {
            train: crate::config::TrainSettings {
                steps: cfg.train.steps,
                ..saved.train.clone()
            },
            ..saved
        }
    } else {
        cfg
    };
    cfg.validate()?;
    let m0 = &cfg.model;
    let splits = load_splits(
        &opts.source,
        m0.image_size,
        m0.channels,
        cfg.data.valid_images,
        cfg.data.train_subset,
    )?;
    // channels, classes and normalisation come from the data (and are saved for evaluation)
    let mut cfg = cfg;
    if opts.resume {
        if splits.train.channels != cfg.model.channels
            || splits.train.classes.len() != cfg.model.num_classes
        {
            return Err(anyhow!(
                "{} has {} channels and {} classes but the run in {} was trained on {} and {}",
                opts.source.describe(),
                splits.train.channels,
                splits.train.classes.len(),
                run.root.display(),
                cfg.model.channels,
                cfg.model.num_classes
            ));
        }
    } else {
        cfg.model.channels = splits.train.channels;
        cfg.model.num_classes = splits.train.classes.len();
        if cfg.data.mean.is_empty() || cfg.data.mean.len() != cfg.model.channels {
            let (mean, std) = channel_stats(&splits.train);
            cfg.data.mean = mean;
            cfg.data.std = std;
        }
        seqpe_train::checkpoint::write_json(&run.config(), &cfg)?;
    }

    let m = &cfg.model;
    let t = &cfg.train;
    B::seed(device, t.seed);
    let mut model: Vit<B> = m.init(device)?;
    let settings = OptimSettings::clipped(t.weight_decay, t.grad_clip);
    let mut optim = GroupedAdamW::<B, Vit<B>>::new(settings);
    let mut state = TrainState {
        step: 0,
        best_valid_acc: None,
        images: ImageSampler::new(splits.train.len, t.seed)?,
        regularizer: model
            .positions
            .seqpe()
            .map(|_| SeqPeRegularizer::new(regularizer_config(&cfg), t.seed)),
        images_seen: 0,
        seconds: 0.0,
    };
    if opts.resume {
        let (mdl, opt, st) = load_checkpoint(run, model, optim, device)?;
        model = mdl;
        optim = opt;
        state = st;
        eprintln!("resumed {} at step {}", run.root.display(), state.step);
    }
    let sched = schedule(&cfg);
    let mut loss_cfg = CrossEntropyLossConfig::new();
    if t.label_smoothing > 0.0 {
        loss_cfg = loss_cfg.with_smoothing(Some(t.label_smoothing as f32));
    }
    let loss_fn = loss_cfg.init(device);
    let batcher = Batcher::new(cfg.data.mean.clone(), cfg.data.std.clone());
    let aug = Augment {
        crop_padding: cfg.data.crop_padding,
        hflip: cfg.data.hflip,
    };
    let (batch, size) = (t.batch_size, m.image_size);
    let base_grid = model.grid_for(size, size)?;
    let mut progress = Progress::new("train-vit", t.steps as u64, state.step as u64);
    let started = Instant::now();
    let seconds_before = state.seconds;
    let start_step = state.step;
    let mut ema: Option<f64> = None;
    let mut last_loss = f64::NAN;
    let mut last_valid = None;
    while state.step < t.steps {
        let step = state.step;
        B::seed(
            device,
            t.seed.wrapping_mul(1_000_003).wrapping_add(step as u64),
        );
        let indices = state.images.next_batch(batch);
        let mut rng = step_rng(t.seed, step);
        let (images, labels) =
            batcher.batch::<B>(&splits.train, &indices, size, Some((aug, &mut rng)), device);
        let lr = sched.lr(step);
        let out = train_step(
            model,
            &mut optim,
            state.regularizer.as_mut(),
            images,
            labels,
            &loss_fn,
            &base_grid,
            lr,
        )?;
        model = out.model;
        let (ce_value, norms) = (out.loss, out.norms);
        if !ce_value.is_finite() {
            return Err(anyhow!(
                "the loss became {ce_value} at step {step}; lower the learning rate"
            ));
        }
        state.step += 1;
        state.images_seen += batch as u64;
        last_loss = ce_value;
        let e = ema.map_or(ce_value, |e| 0.95 * e + 0.05 * ce_value);
        ema = Some(e);
        let elapsed = started.elapsed().as_secs_f64();
        let ips = ((state.step - start_step) * batch) as f64 / elapsed.max(1e-9);
        progress.update(
            state.step as u64,
            &format!("loss {e:.3} {ips:.0} img/s lr {lr:.2e}"),
        );
        run.log(&serde_json::json!({
            "step": state.step, "loss": ce_value, "lr": lr, "images_per_s": ips,
            "grad_norm": norms.model, "encoder_grad_norm": norms.encoder,
        }))?;
        let last = state.step == t.steps;
        if state.step.is_multiple_of(t.eval_every) || last {
            let valid = model.valid();
            let acc = accuracy(
                &valid,
                &splits.valid,
                size,
                &batcher,
                &PeTableCache::new(),
                device,
            )?
            .top1();
            last_valid = Some(acc);
            progress.println(&format!(
                "step {}: valid top-1 {:.2}% ({} images)",
                state.step,
                100.0 * acc,
                splits.valid.len
            ));
            run.log(&serde_json::json!({"step": state.step, "valid_top1": acc}))?;
            if state.best_valid_acc.is_none_or(|b| acc > b) {
                state.best_valid_acc = Some(acc);
                seqpe_train::checkpoint::write_dir_atomically(&run.best(), |dir| {
                    save_model(&model, dir)?;
                    seqpe_train::checkpoint::write_json(
                        &dir.join("metric.json"),
                        &serde_json::json!({"step": state.step, "valid_top1": acc}),
                    )
                })
                .context("saving the best model")?;
            }
        }
        if state.step.is_multiple_of(t.checkpoint_every)
            || last
            || opts.stop_after == Some(state.step)
        {
            state.seconds = seconds_before + started.elapsed().as_secs_f64();
            save_checkpoint(run, &model, &optim, &state)?;
        }
        if opts.stop_after == Some(state.step) {
            break;
        }
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let images = ((state.step - start_step) * batch) as f64;
    let summary = TrainSummary {
        steps: state.step,
        final_loss: last_loss,
        best_valid_acc: state.best_valid_acc,
        last_valid_acc: last_valid,
        seconds,
        total_seconds: seconds_before + seconds,
        images_per_second: images / seconds.max(1e-9),
        train_images: splits.train.len,
    };
    seqpe_train::checkpoint::write_json(&run.file("summary.json"), &summary)?;
    Ok(summary)
}
