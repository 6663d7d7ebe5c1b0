//! One optimisation step (Burn's `TrainStep`), shared by the training loop
//! ([`crate::fit`](mod@crate::fit)) and the benchmarks: the position context of the step (for
//! SeqPE from the regularizer's merged encoder pass, which also gives the regularizer losses),
//! the task loss, a finiteness check before anything is updated, backward, for data-parallel peers
//! the all-reduce, and the grouped AdamW update ([`optimizer_for`]); at `train.precision = bf16`
//! the forward pass on a bf16 copy of the f32 parameters ([`crate::Precision`]).

use anyhow::{bail, Result};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, ElementConversion, Tensor};
use seqpe_core::training::RegularizedStep;
use seqpe_core::{training_context, PositionContext, SeqPeRegularizer, Shard};

use crate::optim::{param_ids, GradNorms, GroupedAdamW, ParamGroups};
use crate::parallel::Peer;
use crate::sampler::EpochSampler;
use crate::settings::{Precision, TrainSettings};
use crate::task::{PositionedModel, Task};

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem()
}

/// What one optimisation step reports.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// The task loss (without the regularizers).
    pub loss: f64,
    /// SeqPE only: the contrastive loss, the distillation loss (`None` on shifted steps) and the
    /// contrastive ranking accuracy.
    pub contrastive: Option<f64>,
    pub distill: Option<f64>,
    pub ranking_acc: Option<f64>,
    /// Whether the main positions were randomly shifted this step.
    pub shifted: bool,
    pub norms: GradNorms,
}

/// The optimizer of a model: its SeqPE encoder (if any) as one group, the main parameters that
/// take no weight decay (1-D ones and the encoding's tables) as another, the rest decayed.
pub fn optimizer_for<B: AutodiffBackend, M: AutodiffModule<B> + PositionedModel<B>>(
    model: &M,
    settings: &TrainSettings,
) -> GroupedAdamW<B, M> {
    let positions = model.positions();
    let encoder = positions
        .seqpe()
        .map(|s| param_ids(&s.encoder))
        .unwrap_or_default();
    let groups = ParamGroups::new(
        model,
        encoder.into_iter().map(|(id, _)| id),
        positions.no_decay_params(),
    );
    GroupedAdamW::new(settings.optim(), groups)
}

/// One optimisation step (Burn's `TrainStep`): the position context (for SeqPE from the
/// regularizer's merged encoder pass, which also gives `w_ct·L_ct + w_kd·L_kd`), the task loss,
/// a check that the loss is finite (an error, before anything is updated), backward, and the
/// grouped AdamW update at learning rate `lr`.
#[allow(clippy::too_many_arguments)]
pub fn train_step<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: T::Model,
    optim: &mut GroupedAdamW<B, T::Model>,
    regularizer: Option<&mut SeqPeRegularizer>,
    batch: T::Batch,
    batch_size: usize,
    lr: f64,
    precision: Precision,
    device: &B::Device,
) -> Result<(T::Model, StepStats)> {
    peer_step(
        task,
        model,
        optim,
        regularizer,
        batch,
        batch_size,
        lr,
        precision,
        device,
        None,
    )
}

/// `model` with every lazy parameter initialized (Burn initializes on first use; a cast copy of
/// an uninitialized model would initialize its own values, which no gradient reaches).
fn initialize<B: Backend, M: Module<B>>(model: M) -> M {
    struct Touch;
    impl<B: Backend> ModuleMapper<B> for Touch {}
    if initialized(&model) {
        model
    } else {
        model.map(&mut Touch)
    }
}

/// A loss of the step's compute dtype as f32 (unchanged, no cast in the graph, at f32).
fn to_f32<B: Backend>(loss: Tensor<B, 1>, precision: Precision) -> Tensor<B, 1> {
    match precision.compute_dtype() {
        Some(_) => loss.cast(DType::F32),
        None => loss,
    }
}

/// The position context of a step of `batch_size` examples (the encoding's training-time side,
/// [`training_context`]): for SeqPE, from the regularizer's merged encoder pass (the peer's shard
/// of its batch), which also gives the regularizer losses.
fn step_context<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: &T::Model,
    regularizer: Option<&mut SeqPeRegularizer>,
    batch_size: usize,
    device: &B::Device,
    peer: Option<&Peer>,
) -> Result<(PositionContext<B>, Option<RegularizedStep<B>>)> {
    let (shard, first_row) = peer.map_or((Shard::WHOLE, 0), |p| {
        (p.shard(), p.shard().index * batch_size)
    });
    Ok(training_context(
        model.positions(),
        task.grid(),
        batch_size,
        regularizer,
        shard,
        first_row,
        device,
    )?)
}

/// The training-time loss of `model`'s position encoding on `task` (SeqPE's regularizers; `None`
/// for the other encodings), seeded by the run's seed: the one place a training loop or a
/// benchmark gets it.
pub fn position_regularizer<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: &T::Model,
    settings: &TrainSettings,
) -> Option<SeqPeRegularizer> {
    SeqPeRegularizer::for_encoding(
        model.positions(),
        task.grid(),
        &settings.regularizer,
        settings.seed,
    )
}

/// The backend seed of training step `step` (0-based).
pub(crate) fn step_seed(seed: u64, step: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(step as u64)
}

/// Whether every parameter of `model` holds its value (Burn initializes parameters lazily, on
/// first use).
fn initialized<B: Backend, M: Module<B>>(model: &M) -> bool {
    struct All(bool);
    impl<B: Backend> ModuleVisitor<B> for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0 &= param.is_initialized();
        }
    }
    let mut all = All(true);
    model.visit(&mut all);
    all.0
}

/// Initializes `model`'s lazy parameters exactly as a one-device run does: in the first step's
/// forward pass (task loss and regularizer, whole batch, step 0's seed), whose result is
/// dropped. Data-parallel replicas are then copies of these weights, the one-device run's.
pub(crate) fn materialize<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model: &T::Model,
    settings: &TrainSettings,
    device: &B::Device,
) -> Result<()> {
    if initialized(model) {
        return Ok(());
    }
    let t = settings;
    B::seed(device, step_seed(t.seed, 0));
    let indices = EpochSampler::new(task.train_len(), t.seed)?.next_batch(t.batch_size);
    let batch = task.batch(&indices, 0, device)?;
    let mut regularizer = position_regularizer(task, model, t);
    let (context, _) = step_context(
        task,
        model,
        regularizer.as_mut(),
        t.batch_size,
        device,
        None,
    )?;
    let _ = task.loss(model, batch, &context);
    Ok(())
}

/// [`train_step`] of one data-parallel peer (`peer`; `None` is the one-device step): `batch` is
/// the peer's part (`batch_size` examples), the regularizer keeps the peer's shard of its batch,
/// and the gradients and the logged losses are averaged over the peers between backward and the
/// update (the finiteness check then reads the averaged losses, so every peer stops alike).
/// At a low `precision` (bf16) the forward pass runs on a cast copy of `model` with the context
/// cast alike, the losses come back as f32, and the update applies to the f32 `model`.
#[allow(clippy::too_many_arguments)]
pub fn peer_step<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    model_in: T::Model,
    optim: &mut GroupedAdamW<B, T::Model>,
    regularizer: Option<&mut SeqPeRegularizer>,
    batch: T::Batch,
    batch_size: usize,
    lr: f64,
    precision: Precision,
    device: &B::Device,
    peer: Option<&Peer>,
) -> Result<(T::Model, StepStats)> {
    // every caller (the loop, the benchmarks) refuses f16/tf32 here: they have no compute dtype
    // and would otherwise run f32 without a word
    precision.check()?;
    let (model, low);
    let compute = match precision.compute_dtype() {
        None => {
            model = model_in;
            &model
        }
        Some(_) => {
            model = initialize(model_in);
            // the cast copy the step computes with (the gradients reach `model` through it)
            low = precision.cast_model(model.clone());
            &low
        }
    };
    let (context, reg) = step_context(task, compute, regularizer, batch_size, device, peer)?;
    let context = match precision.compute_dtype() {
        Some(dtype) => context.cast(dtype),
        None => context,
    };
    let task_loss = to_f32(task.loss(compute, batch, &context), precision);
    let total = match &reg {
        Some(r) => task_loss.clone() + to_f32(r.loss.clone(), precision),
        None => task_loss.clone(),
    };
    let mut loss = scalar(task_loss);
    let (mut contrastive, mut distill, mut ranking_acc, shifted) = match &reg {
        Some(r) => (
            Some(scalar(to_f32(r.contrastive.clone(), precision))),
            r.distill.clone().map(|d| scalar(to_f32(d, precision))),
            Some(scalar(to_f32(r.ranking_accuracy.clone(), precision))),
            r.shifted,
        ),
        None => (None, None, None, false),
    };
    let finite = |loss: f64, contrastive: Option<f64>, distill: Option<f64>| {
        if !(loss + contrastive.unwrap_or(0.0) + distill.unwrap_or(0.0)).is_finite() {
            bail!(
                "the training loss is not finite (task {loss}, contrastive {contrastive:?}, \
                 distillation {distill:?})"
            );
        }
        Ok(())
    };
    let (model, norms) = match peer {
        None => {
            finite(loss, contrastive, distill)?;
            let grads = total.backward();
            optim.step(lr, model, grads)
        }
        Some(p) => {
            let grads = total.backward();
            let mut grads = GradientsParams::from_grads(grads, &model);
            let mut means = [
                loss,
                contrastive.unwrap_or(0.0),
                distill.unwrap_or(0.0),
                ranking_acc.unwrap_or(0.0),
            ];
            p.all_reduce::<B, _>(&model, &mut grads, &mut means, device)?;
            loss = means[0];
            contrastive = contrastive.map(|_| means[1]);
            distill = distill.map(|_| means[2]);
            ranking_acc = ranking_acc.map(|_| means[3]);
            finite(loss, contrastive, distill)?;
            optim.step_params(lr, model, grads)
        }
    };
    Ok((
        model,
        StepStats {
            loss,
            contrastive,
            distill,
            ranking_acc,
            shifted,
            norms,
        },
    ))
}
