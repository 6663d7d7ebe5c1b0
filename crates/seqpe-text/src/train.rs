//! `train-text`: the training loop of the GPT.
//!
//! Per step: the next shuffled blocks; for SeqPE, the regularizer's merged encoder pass (main
//! positions — possibly shifted windows — pivots, candidates, students) gives the position table
//! and `w_ct·L_ct + w_kd·L_kd`; the GPT's cross-entropy is added; AdamW updates the encoder and
//! the rest as two groups, each clipped to its own global norm. The backend RNG is reseeded from
//! (seed, step) every step, and every sampler is saved with the checkpoint, so a resumed run
//! continues exactly as an uninterrupted one would.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use seqpe_core::digits::max_digits_for;
use seqpe_core::training::{RegularizerConfig, SeqPeRegularizer};
use seqpe_core::{AttentionOptions, PositionGrid};
use seqpe_train::optim::{GradNorms, GroupedAdamW, OptimSettings};
use seqpe_train::progress::Progress;
use seqpe_train::run::{load_checkpoint, save_checkpoint, save_model, RunDir};
use seqpe_train::schedule::{Decay, LrSchedule};
use serde::{Deserialize, Serialize};

use crate::config::TextConfig;
use crate::data::{gather_blocks, save_tokenizer, tokenizer_for_run, BlockSampler, TokenStream};
use crate::eval::{evaluate_stream, load_splits, CorpusSource};
use crate::model::Gpt;

/// Where a run reads its data and writes its files.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub run: RunDir,
    pub resume: bool,
    pub corpus: CorpusSource,
    /// A `tokenizer.json` to use instead of training one.
    pub tokenizer: Option<PathBuf>,
    /// Stop (as if killed) once this step is reached; the run stays resumable. For tests and for
    /// splitting long runs into sessions.
    pub stop_after: Option<usize>,
    /// With `resume`: train until this many steps instead of the saved count.
    pub extend_to: Option<usize>,
}

/// State saved with each checkpoint besides weights and optimizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub best_valid_ppl: Option<f64>,
    pub blocks: BlockSampler,
    pub regularizer: Option<SeqPeRegularizer>,
    pub tokens_seen: u64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub final_loss: f64,
    pub best_valid_ppl: Option<f64>,
    pub seconds: f64,
    pub tokens_per_second: f64,
}

/// The SeqPE regularizer settings of a text config.
pub fn regularizer_config(cfg: &TextConfig) -> RegularizerConfig {
    let m = &cfg.model;
    let t = &cfg.train;
    let mut r = RegularizerConfig::reference(
        vec![m.block_size],
        m.seqpe_max_position,
        max_digits_for(m.seqpe_max_position),
        (m.seqpe_d_model / 64).max(1),
    );
    r.contrastive.batch = t.contrastive_batch;
    r.contrastive.candidates = t.contrastive_candidates;
    r.transfer.batch = t.distill_windows;
    r.transfer.per_window = t.distill_per_window.min(m.block_size);
    r.main.shift_rate = t.shift_rate;
    r.main.shift_pool = t.shift_pool;
    r.main.windows_per_step = t.shift_windows;
    r.contrastive_weight = t.contrastive_weight;
    r.distill_weight = t.distill_weight;
    r
}

pub fn schedule(cfg: &TextConfig) -> LrSchedule {
    LrSchedule {
        peak: cfg.train.lr,
        warmup_steps: cfg.train.warmup_steps,
        total_steps: cfg.train.steps,
        decay: Decay::Linear,
        warmup_start: 0.0,
        final_lr: 0.0,
    }
}

/// The outcome of one optimisation step.
#[derive(Debug, Clone, Copy)]
pub struct StepOutput {
    /// The language-modelling cross-entropy (without the regularizers).
    pub ce: f64,
    pub norms: GradNorms,
}

/// One optimisation step on `inputs [batch, n]` / `labels [batch * n]`: for SeqPE the
/// regularizer's merged encoder pass supplies the position table and its loss; the
/// cross-entropy is added; both parameter groups are clipped and updated.
pub fn train_step<B: AutodiffBackend>(
    model: Gpt<B>,
    optim: &mut GroupedAdamW<B, Gpt<B>>,
    regularizer: Option<&mut SeqPeRegularizer>,
    inputs: Tensor<B, 2, Int>,
    labels: Tensor<B, 1, Int>,
    lr: f64,
    loss_fn: &CrossEntropyLoss<B>,
) -> Result<(Gpt<B>, StepOutput)> {
    let [batch, n] = inputs.dims();
    let device = inputs.device();
    let (ctx, reg) = match (regularizer, model.positions.seqpe()) {
        (Some(r), Some(s)) => {
            let out = r.step(&s.encoder, 0)?;
            let ctx = model
                .positions
                .context(&out.grid, batch, Some(out.table), &device)?;
            (ctx, Some(out.loss))
        }
        _ => (
            model
                .positions
                .context(&PositionGrid::sequence(n), batch, None, &device)?,
            None,
        ),
    };
    let logits = model.forward_with(inputs, &ctx, AttentionOptions::default());
    let ce = loss_fn.forward(logits.reshape([batch * n, model.vocab_size()]), labels);
    let total = match reg {
        Some(r) => ce.clone() + r,
        None => ce.clone(),
    };
    let ce: f64 = ce.into_scalar().elem();
    if !ce.is_finite() {
        return Err(anyhow!("the loss became {ce}; lower the learning rate"));
    }
    let grads = total.backward();
    let (model, norms) = optim.step(lr, model, grads, |m: &Gpt<B>| {
        m.positions.seqpe().map(|s| &s.encoder)
    });
    Ok((model, StepOutput { ce, norms }))
}

/// Trains (or resumes) a run; returns its summary.
pub fn train<B: AutodiffBackend>(
    cfg: TextConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary> {
    let run = &opts.run;
    run.prepare(opts.resume)?;
    // A resumed run continues with its saved configuration; only the step count may be raised.
    let cfg = if opts.resume {
        let mut saved: TextConfig = run.read_config()?;
        if let Some(steps) = opts.extend_to {
            eprintln!("resuming with steps = {steps} (was {})", saved.train.steps);
            saved.train.steps = steps;
        }
        saved
    } else {
        cfg
    };
    let splits = load_splits(&opts.corpus)?;
    let tok_path = run.file("tokenizer.json");
    let tokenizer = if opts.resume {
        crate::data::load_tokenizer(&tok_path)?
    } else {
        let tok = tokenizer_for_run(
            opts.tokenizer.as_deref(),
            &splits.train,
            cfg.model.vocab_size,
        )?;
        save_tokenizer(&tok, &tok_path)?;
        tok
    };
    // the model's vocabulary is the tokenizer's (a trained BPE may stop below the target size)
    let mut cfg = cfg;
    cfg.model.vocab_size = tokenizer.get_vocab_size(true);
    if !opts.resume {
        seqpe_train::checkpoint::write_json(&run.config(), &cfg)?;
    }
    let train_stream = TokenStream::encode(&tokenizer, &splits.train)?;
    let valid_stream = TokenStream::encode(&tokenizer, &splits.valid)?;

    let m = &cfg.model;
    let t = &cfg.train;
    B::seed(device, t.seed);
    let mut model: Gpt<B> = m.init(device)?;
    let settings = OptimSettings::clipped(t.weight_decay, t.grad_clip);
    let mut optim = GroupedAdamW::<B, Gpt<B>>::new(settings);
    let mut state = TrainState {
        step: 0,
        best_valid_ppl: None,
        blocks: BlockSampler::new(train_stream.len(), m.block_size, t.seed)?,
        regularizer: model
            .positions
            .seqpe()
            .map(|_| SeqPeRegularizer::new(regularizer_config(&cfg), t.seed)),
        tokens_seen: 0,
    };
    if opts.resume {
        let (mdl, opt, st) = load_checkpoint(run, model, optim, device)?;
        model = mdl;
        optim = opt;
        state = st;
        eprintln!("resumed {} at step {}", run.root.display(), state.step);
    }
    let sched = schedule(&cfg);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (batch, n) = (t.batch_size, m.block_size);
    let mut progress = Progress::new("train-text", t.steps as u64, state.step as u64);
    let started = Instant::now();
    let start_step = state.step;
    let mut ema: Option<f64> = None;
    let mut last_loss = f64::NAN;
    while state.step < t.steps {
        let step = state.step;
        B::seed(
            device,
            t.seed.wrapping_mul(1_000_003).wrapping_add(step as u64),
        );
        let starts = state.blocks.next_batch(batch);
        let (inputs, labels) = gather_blocks(&train_stream, &starts, n);
        let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [batch, n]), device);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [batch * n]), device);
        let lr = sched.lr(step);
        let (next, out) = train_step(
            model,
            &mut optim,
            state.regularizer.as_mut(),
            inputs,
            labels,
            lr,
            &loss_fn,
        )?;
        model = next;
        let (ce_value, norms) = (out.ce, out.norms);
        state.step += 1;
        state.tokens_seen += (batch * n) as u64;
        last_loss = ce_value;
        let e = ema.map_or(ce_value, |e| 0.95 * e + 0.05 * ce_value);
        ema = Some(e);
        let elapsed = started.elapsed().as_secs_f64();
        let tps = ((state.step - start_step) * batch * n) as f64 / elapsed.max(1e-9);
        progress.update(
            state.step as u64,
            &format!("loss {e:.3} ppl {:.1} {tps:.0} tok/s lr {lr:.2e}", e.exp()),
        );
        {
            run.log(&serde_json::json!({
                "step": state.step, "loss": ce_value, "lr": lr, "tokens_per_s": tps,
                "grad_norm": norms.model, "encoder_grad_norm": norms.encoder,
            }))?;
        }
        let last = state.step == t.steps;
        if state.step % t.eval_every == 0 || last {
            let valid = model.valid();
            let blocks = (t.eval_blocks > 0).then_some(t.eval_blocks);
            let r = evaluate_stream(&valid, &valid_stream, n, blocks, None, device)?;
            let ppl = r.token_ppl();
            progress.println(&format!(
                "step {}: valid ppl {ppl:.2} ({} tokens)",
                state.step, r.tokens
            ));
            run.log(&serde_json::json!({"step": state.step, "valid_ppl": ppl}))?;
            if state.best_valid_ppl.is_none_or(|b| ppl < b) {
                state.best_valid_ppl = Some(ppl);
                seqpe_train::checkpoint::write_dir_atomically(&run.best(), |dir| {
                    save_model(&model, dir)?;
                    seqpe_train::checkpoint::write_json(
                        &dir.join("metric.json"),
                        &serde_json::json!({"step": state.step, "valid_ppl": ppl}),
                    )
                })
                .context("saving the best model")?;
            }
        }
        if state.step % t.checkpoint_every == 0 || last {
            save_checkpoint(run, &model, &optim, &state)?;
        }
        if opts.stop_after == Some(state.step) {
            break;
        }
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let tokens = ((state.step - start_step) * batch * n) as f64;
    let summary = TrainSummary {
        steps: state.step,
        final_loss: last_loss,
        best_valid_ppl: state.best_valid_ppl,
        seconds,
        tokens_per_second: tokens / seconds.max(1e-9),
    };
    seqpe_train::checkpoint::write_json(&run.file("summary.json"), &summary)?;
    Ok(summary)
}
