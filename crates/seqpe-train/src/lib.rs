//! Training machinery shared by every seqpe model (text, vision, QA fine-tuning), so no modality
//! writes its own loop.
//!
//! Where to start: [`fit::fit`] is the one training loop and [`task::Task`] what a model supplies
//! to it (its examples, its unshifted positions, its loss, its validation metric); [`step`] is one
//! optimisation step of it (also what the benchmarks time). Around it:
//!
//! * [`settings::TrainSettings`]: the `train` section of every run configuration;
//!   [`config`]: presets → `--config` → flags → `--set`, and what a resumed run keeps.
//! * [`optim::GroupedAdamW`]: AdamW with the SeqPE encoder, the decayed and the undecayed main
//!   parameters as groups, the encoder and the model clipped to their own global norms.
//! * [`schedule::LrSchedule`]: warm-up then linear or cosine decay, stateless.
//! * [`sampler::EpochSampler`]: shuffled epochs over the training examples, resumable.
//! * [`session::Session`]: the run arguments every train command shares and the configuration a
//!   session trains with; [`run::RunDir`] and [`checkpoint`]: run folders written atomically.
//! * [`parallel::DataParallel`]: data parallelism over devices and machines (burn-collective).
//! * [`progress::Progress`]: a progress bar on a terminal, periodic lines in logs.
//!
//! # Why not burn-train's `Learner`
//!
//! Burn 0.21 has a training loop of its own (crate `burn-train`: `Learner`, run by
//! `SupervisedTraining`); this crate uses Burn's modules, optimizers and collectives but not that
//! loop, because the loop here needs what it does not give:
//!
//! * **State beside the model in every step.** burn-train's `TrainStep::step(&self, item)` sees
//!   the model and a batch. A SeqPE step draws from the regularizer's own samplers (random shift,
//!   contrastive pivots and candidates, distillation students), gets the step's position table
//!   and both regularizer losses from one merged encoder pass, and on a data-parallel peer keeps
//!   its shard of that draw: mutable state that lives outside the model and must be checkpointed.
//! * **Optimizer groups.** A `Learner` holds one optimizer (`Optimizer<M, B>`); burn-optim 0.21
//!   has no parameter groups, its AdamW one weight decay for every parameter, and its
//!   `GradientClipping::Norm` clips each parameter tensor by its own norm. Here the SeqPE encoder
//!   is its own group (no weight decay, as in the reference, and its own learning-rate scale),
//!   and the encoder's and the model's gradients are clipped to their own global norms, as the
//!   reference's two `clip_grad_norm_` calls do ([`optim::GroupedAdamW`]).
//! * **Exact resume at any step.** burn-train checkpoints the model, optimizer and
//!   learning-rate-scheduler records once per epoch and resumes at the next epoch, validating once
//!   per epoch. Runs here validate every `eval_every` steps, checkpoint every `checkpoint_every`
//!   steps and at `--stop-after`, and the checkpoint also holds the epoch sampler's position, the
//!   regularizer's samplers and the examples and wall time so far; each step seeds the backend
//!   from the run's seed and the step number, so a resumed run logs the steps an uninterrupted one
//!   would (`tests/fit.rs`), also after `kill -9` at random moments (`tests/reliability.rs`).
//! * **Data-parallel peers that share global batches.** burn-train's DDP strategy (feature `ddp`)
//!   also validates and checkpoints on one main device, but gives each device a contiguous slice
//!   of the training data (`split_dataloader`). Here every peer takes its part of each global
//!   batch of the one epoch sampler, and gradients and logged losses are averaged over the peers
//!   with burn-collective, so two peers log the one-device run's losses (`tests/fit.rs`, and
//!   `tests/distributed.rs` of seqpe-text and seqpe-vision).

pub mod checkpoint;
pub mod config;
pub mod fit;
pub mod optim;
pub mod panics;
pub mod parallel;
pub mod progress;
pub mod run;
pub mod sampler;
pub mod schedule;
pub mod session;
pub mod settings;
pub mod step;
pub mod task;

pub use fit::{fit, FitOptions, FitSummary};
pub use parallel::DataParallel;
pub use run::RunDir;
pub use session::Session;
pub use settings::{Precision, TrainSettings};
pub use task::{Goal, Metric, PositionedModel, Task};
