//! Training machinery shared by every seqpe model (text, vision, QA fine-tuning), so no modality
//! writes its own loop.
//!
//! Where to start: [`fit::fit`] is the one training loop and [`fit::Task`] what a model supplies
//! to it (its examples, its unshifted positions, its loss, its validation metric). Around it:
//!
//! * [`settings::TrainSettings`]: the `train` section of every run configuration;
//!   [`config`]: presets → `--config` → flags → `--set`, and what a resumed run keeps.
//! * [`optim::GroupedAdamW`]: AdamW with the SeqPE encoder, the decayed and the undecayed main
//!   parameters as groups, the encoder and the model clipped to their own global norms.
//! * [`schedule::LrSchedule`]: warm-up then linear or cosine decay, stateless.
//! * [`sampler::EpochSampler`]: shuffled epochs over the training examples, resumable.
//! * [`run::RunDir`] and [`checkpoint`]: run folders written atomically.
//! * [`parallel::DataParallel`]: data parallelism over devices and machines (burn-collective).
//! * [`progress::Progress`]: a progress bar on a terminal, periodic lines in logs.

pub mod checkpoint;
pub mod config;
pub mod fit;
pub mod optim;
pub mod parallel;
pub mod progress;
pub mod run;
pub mod sampler;
pub mod schedule;
pub mod settings;

pub use fit::{fit, FitOptions, FitSummary, Goal, Metric, PositionedModel, Task};
pub use parallel::DataParallel;
pub use run::{RunDir, Session};
pub use settings::TrainSettings;
