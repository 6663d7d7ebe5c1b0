//! `train-text`: language modelling as a task of the shared training loop
//! ([`seqpe_train::fit`]).
//!
//! [`LmTask`] supplies what is particular to text: training examples are the non-overlapping
//! blocks of the tokenized training split, the loss is next-token cross-entropy, validation is the
//! token perplexity of the first `valid_limit` validation blocks at positions `0..block`. The loop
//! does the rest (SeqPE's merged encoder pass and regularizers, optimizer, checkpoints, resume).

use std::path::PathBuf;

use anyhow::Result;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use seqpe_core::{AttentionOptions, PositionContext, PositionGrid};
use seqpe_train::config::RunConfig;
use seqpe_train::Session;
use seqpe_train::{fit, FitSummary, Goal, Metric, Task};

use crate::config::TextConfig;
use crate::data::{gather_blocks, save_tokenizer, tokenizer_for_run, TokenStream};
use crate::eval::{evaluate_stream, load_splits, CorpusSource};
use crate::model::Gpt;

/// Where a run reads its data and writes its files.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub session: Session,
    pub corpus: CorpusSource,
    /// A `tokenizer.json` to use instead of training one.
    pub tokenizer: Option<PathBuf>,
}

/// Next-token prediction on blocks of a token stream.
pub struct LmTask {
    pub train: TokenStream,
    pub valid: TokenStream,
    pub block: usize,
    /// Validation blocks (0 = the whole validation stream).
    pub valid_limit: usize,
    pub label_smoothing: f64,
    grid: PositionGrid,
}

impl LmTask {
    pub fn new(
        train: TokenStream,
        valid: TokenStream,
        block: usize,
        valid_limit: usize,
        label_smoothing: f64,
    ) -> Result<Self> {
        if train.len() < block + 1 {
            anyhow::bail!(
                "the training split has {} tokens, fewer than one block of {block}+1; use a \
                 larger corpus or a smaller block size",
                train.len()
            );
        }
        Ok(Self {
            train,
            valid,
            block,
            valid_limit,
            label_smoothing,
            grid: PositionGrid::sequence(block),
        })
    }

    /// Training blocks (non-overlapping, each with its next-token labels).
    pub fn blocks(&self) -> usize {
        (self.train.len() - 1) / self.block
    }
}

/// Token ids and next-token labels of a batch of blocks.
pub struct LmBatch<B: AutodiffBackend> {
    pub inputs: Tensor<B, 2, Int>,
    pub labels: Tensor<B, 1, Int>,
}

impl<B: AutodiffBackend> Task<B> for LmTask {
    type Model = Gpt<B>;
    type Batch = LmBatch<B>;

    fn train_len(&self) -> usize {
        self.blocks()
    }

    fn grid(&self) -> &PositionGrid {
        &self.grid
    }

    fn batch(&self, indices: &[usize], _step: usize, device: &B::Device) -> Result<LmBatch<B>> {
        let (b, n) = (indices.len(), self.block);
        let starts: Vec<usize> = indices.iter().map(|&i| i * n).collect();
        let (inputs, labels) = gather_blocks(&self.train, &starts, n);
        Ok(LmBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [b, n]), device),
            labels: Tensor::from_data(TensorData::new(labels, [b * n]), device),
        })
    }

    fn loss(
        &self,
        model: &Gpt<B>,
        batch: LmBatch<B>,
        positions: &PositionContext<B>,
    ) -> Tensor<B, 1> {
        let [b, n] = batch.inputs.dims();
        let logits = model.forward_with(batch.inputs, positions, AttentionOptions::default());
        let smoothing = (self.label_smoothing > 0.0).then_some(self.label_smoothing as f32);
        CrossEntropyLossConfig::new()
            .with_smoothing(smoothing)
            .init(&logits.device())
            .forward(logits.reshape([b * n, model.vocab_size()]), batch.labels)
    }

    fn validate(&self, model: &Gpt<B::InnerBackend>, device: &B::Device) -> Result<Metric> {
        let limit = (self.valid_limit > 0).then_some(self.valid_limit);
        let r = evaluate_stream(model, &self.valid, self.block, limit, None, device)?;
        Ok(Metric::new("valid_ppl", r.token_ppl(), Goal::Minimize))
    }

    fn unit(&self) -> (&'static str, usize) {
        ("tokens", self.block)
    }
}

/// Trains (or resumes) a run; returns its summary.
pub fn train<B: AutodiffBackend>(
    cfg: TextConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<FitSummary> {
    let (run, resume) = (&opts.session.run, opts.session.resume);
    let mut cfg = opts.session.config(cfg)?;
    cfg.validate()?;
    let splits = load_splits(&opts.corpus)?;
    let tok_path = run.file("tokenizer.json");
    let tokenizer = if resume {
        crate::data::load_tokenizer_for(&tok_path, cfg.model.vocab_size)?
    } else {
        let tok = tokenizer_for_run(
            opts.tokenizer.as_deref(),
            &splits.train,
            cfg.model.vocab_size,
        )?;
        save_tokenizer(&tok, &tok_path)?;
        // the model's vocabulary is the tokenizer's (a trained BPE may stop below the target; a
        // given tokenizer's ids may have gaps)
        cfg.model.vocab_size = crate::data::id_bound(&tok);
        seqpe_train::checkpoint::write_json(&run.config(), &cfg)?;
        tok
    };
    let task = LmTask::new(
        TokenStream::encode(&tokenizer, &splits.train)?,
        TokenStream::encode(&tokenizer, &splits.valid)?,
        cfg.model.block_size,
        cfg.train.valid_limit,
        cfg.train.label_smoothing,
    )?;
    B::seed(device, cfg.train.seed);
    let model: Gpt<B> = cfg.model.init(device)?;
    let options = opts.session.fit_options("train-text");
    fit(&task, model, &cfg.train, &options, device)
}
