//! `bench text`: training throughput per position encoding on random token batches (the same
//! protocol as `scripts/pytorch_bench_text.py`), and the inference cost of building the SeqPE table.

use std::time::Instant;

use anyhow::Result;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_core::training::SeqPeRegularizer;
use seqpe_core::PositionGrid;
use seqpe_train::optim::{GroupedAdamW, OptimSettings};
use serde::{Deserialize, Serialize};

use crate::config::TextConfig;
use crate::model::Gpt;
use crate::train::{regularizer_config, train_step};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputRow {
    pub pe: String,
    pub tokens_per_second: f64,
    pub ms_per_step: f64,
    pub steps: usize,
}

/// Trains `steps` steps (after `warmup` untimed ones) on random tokens; returns the throughput.
pub fn training_throughput<B: AutodiffBackend>(
    cfg: &TextConfig,
    pe: &str,
    warmup: usize,
    steps: usize,
    device: &B::Device,
) -> Result<ThroughputRow> {
    let mut cfg = cfg.clone();
    cfg.model.pe = pe.into();
    let (batch, n, vocab) = (
        cfg.train.batch_size,
        cfg.model.block_size,
        cfg.model.vocab_size,
    );
    B::seed(device, cfg.train.seed);
    let mut model: Gpt<B> = cfg.model.init(device)?;
    let mut optim = GroupedAdamW::<B, Gpt<B>>::new(OptimSettings::default());
    let mut reg = model
        .positions
        .seqpe()
        .map(|_| SeqPeRegularizer::new(regularizer_config(&cfg), cfg.train.seed));
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let mut start = Instant::now();
    for i in 0..warmup + steps {
        if i == warmup {
            start = Instant::now();
        }
        let ids: Vec<i64> = (0..batch * (n + 1))
            .map(|_| rng.random_range(0..vocab as i64))
            .collect();
        let inputs: Vec<i64> = ids.chunks(n + 1).flat_map(|c| c[..n].to_vec()).collect();
        let labels: Vec<i64> = ids.chunks(n + 1).flat_map(|c| c[1..].to_vec()).collect();
        let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [batch, n]), device);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [batch * n]), device);
        let (next, _) = train_step(
            model,
            &mut optim,
            reg.as_mut(),
            inputs,
            labels,
            1e-4,
            &loss_fn,
        )?;
        model = next;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(ThroughputRow {
        pe: pe.into(),
        tokens_per_second: (steps * batch * n) as f64 / secs,
        ms_per_step: secs * 1000.0 / steps as f64,
        steps,
    })
}

/// Milliseconds to build the SeqPE table (inference, one encoder pass) for each length.
pub fn table_cost<B: Backend>(
    cfg: &TextConfig,
    lengths: &[usize],
    device: &B::Device,
) -> Result<Vec<(usize, f64)>> {
    let mut cfg = cfg.clone();
    cfg.model.pe = "seqpe".into();
    let model: Gpt<B> = cfg.model.init(device)?;
    let seqpe = model.positions.seqpe().expect("seqpe model");
    let _warm = seqpe.table(&PositionGrid::sequence(64))?;
    lengths
        .iter()
        .map(|&len| {
            let t = Instant::now();
            let table = seqpe.table(&PositionGrid::sequence(len))?;
            let _ = table.into_data(); // wait for the result
            Ok((len, t.elapsed().as_secs_f64() * 1000.0))
        })
        .collect()
}
