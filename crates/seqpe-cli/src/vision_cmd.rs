//! `train-vit`, `eval-vit`, `report-vision` (to be filled by the vision work).

use anyhow::{bail, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {}

pub fn train<B: AutodiffBackend>(_args: TrainArgs, _device: &B::Device) -> Result<bool> {
    bail!("train-vit is not implemented yet")
}

pub fn eval<B: Backend>(_args: EvalArgs, _device: &B::Device) -> Result<bool> {
    bail!("eval-vit is not implemented yet")
}

pub fn report<B: AutodiffBackend>(
    _args: ReportArgs,
    _device: &B::Device,
    _backend: &str,
) -> Result<bool> {
    bail!("report-vision is not implemented yet")
}
