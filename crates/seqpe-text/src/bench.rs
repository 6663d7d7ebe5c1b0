//! `bench text`: training throughput per position encoding on random token batches (the same
//! protocol as `scripts/pytorch_bench_text.py`), and the inference cost of building the SeqPE table.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_core::{PeKind, PositionGrid};
use seqpe_train::fit::{optimizer_for, position_regularizer, train_step};
use seqpe_train::Task;
use serde::{Deserialize, Serialize};

use crate::config::TextConfig;
use crate::data::TokenStream;
use crate::model::Gpt;
use crate::train::LmTask;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputRow {
    pub pe: PeKind,
    pub tokens_per_second: f64,
    pub ms_per_step: f64,
    pub steps: usize,
}

/// Trains `steps` steps (after `warmup` untimed ones) on random tokens with the training loop's
/// own step ([`seqpe_train::fit::train_step`]); returns the throughput.
pub fn training_throughput<B: AutodiffBackend>(
    cfg: &TextConfig,
    pe: PeKind,
    warmup: usize,
    steps: usize,
    device: &B::Device,
) -> Result<ThroughputRow> {
    let mut cfg = cfg.clone();
    cfg.model.pe = pe;
    let (batch, n, vocab) = (
        cfg.train.batch_size,
        cfg.model.block_size,
        cfg.model.vocab_size,
    );
    let total = warmup + steps;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let random = |len: usize, rng: &mut ChaCha8Rng| TokenStream {
        ids: (0..len)
            .map(|_| rng.random_range(0..vocab as u32))
            .collect(),
    };
    let train = random(total * batch * n + 1, &mut rng);
    let valid = random(n + 1, &mut rng);
    let task = LmTask::new(train, valid, n, 1, 0.0)?;
    B::seed(device, cfg.train.seed);
    let mut model: Gpt<B> = cfg.model.init(device)?;
    let mut optim = optimizer_for::<B, Gpt<B>>(&model, &cfg.train);
    let mut reg = position_regularizer(&task, &model, &cfg.train);
    let mut start = Instant::now();
    for i in 0..total {
        if i == warmup {
            start = Instant::now();
        }
        let indices: Vec<usize> = (i * batch..(i + 1) * batch).collect();
        let b = <LmTask as Task<B>>::batch(&task, &indices, i, device)?;
        let (next, _) = train_step(
            &task,
            model,
            &mut optim,
            reg.as_mut(),
            b,
            batch,
            1e-4,
            cfg.train.precision,
            device,
        )?;
        model = next;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(ThroughputRow {
        pe,
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
    cfg.model.pe = PeKind::SeqPe;
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
