//! The commands behind the `seqpe` binary (and so behind `cargo xtask`).
//!
//! Where to start: `src/main.rs` lists the commands. Each modality's commands live in
//! [`text_cmd`] / [`vision_cmd`] / [`qa_cmd`] and share [`args::RunArgs`] (preset, config file, `--set`, run
//! folder, resume, stop-after) and the typed choices of [`args`]; the result pages are written by
//! [`report_text`] / [`report_vision`] / [`report_qa`], each an experiment of the one report
//! runner ([`report::run_plan`]) with the helpers of [`report`] and [`plot`];
//! [`backend`] starts the chosen Burn backend.

pub mod args;
pub mod backend;
pub mod demo;
pub mod plot;
#[cfg(feature = "vision")]
pub mod probe_cmd;
pub mod pytorch;
pub mod qa_cmd;
pub mod report;
#[cfg(feature = "vision")]
pub mod report_probes;
pub mod report_qa;
pub mod report_text;
#[cfg(feature = "vision")]
pub mod report_vision;
pub mod text_cmd;
#[cfg(feature = "vision")]
pub mod vision_cmd;
