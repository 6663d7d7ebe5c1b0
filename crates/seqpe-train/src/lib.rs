//! Training machinery shared by every seqpe model (text, vision, QA), so no modality writes its
//! own loop plumbing:
//!
//! * [`optim::GroupedAdamW`]: AdamW with two parameter groups — the SeqPE encoder (no weight
//!   decay) and the rest of the model — each clipped to its own global gradient norm, as the
//!   reference does (`clip_grad_norm_` on the model and on SeqPE separately).
//! * [`schedule::LrSchedule`]: warm-up then linear or cosine decay, stateless (trivial to resume).
//! * [`checkpoint`]: run folders written atomically (a killed run never leaves a half checkpoint).
//! * [`progress::Progress`]: a progress bar on a terminal, periodic lines in logs.

pub mod checkpoint;
pub mod config;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod report;
pub mod run;
pub mod schedule;
