//! `eval-text`: perplexity at many lengths with the reference protocol.
//!
//! The test stream is cut into non-overlapping chunks of each length (no sliding window, last
//! partial chunk kept, see [`crate::data::eval_chunks`]). Token perplexity is
//! `exp(Σ NLL / #scored tokens)`; word perplexity is `exp(Σ NLL / #word-starting tokens)`. The
//! SeqPE table is built once per length (a partial chunk uses the first rows of it).

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, ElementConversion, Int, Tensor, TensorData};
use seqpe_core::{AttentionOptions, PeKind, PeTableCache, PositionGrid};
use seqpe_datasets::cache::DataDir;
use seqpe_datasets::text::TextSplits;
use seqpe_datasets::EvalSplit;
use seqpe_train::run::RunDir;
use seqpe_train::Precision;
use serde::{Deserialize, Serialize};

use crate::config::TextConfig;
use crate::data::{eval_chunks, load_tokenizer_for, word_start_table, Chunk, TokenStream};
use crate::model::Gpt;

/// Where the text comes from.
#[derive(Debug, Clone)]
pub enum CorpusSource {
    /// The fetched default corpora (Brown + Jane Austen) in this data folder.
    Default(DataDir),
    /// A user folder: WikiText layout or `.txt` files.
    Dir(PathBuf),
}

impl CorpusSource {
    /// A short name for file names and reports: `default`, or `corpus-<folder name>`.
    pub fn label(&self) -> String {
        match self {
            CorpusSource::Default(_) => "default".into(),
            CorpusSource::Dir(dir) => {
                let name: String = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "corpus".into())
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("corpus-{name}")
            }
        }
    }

    /// What the corpus is, for reports (`Brown + Austen (data/…)`, a folder path).
    pub fn describe(&self) -> String {
        match self {
            CorpusSource::Default(dir) => format!(
                "the fetched Brown corpus and Jane Austen novels ({})",
                dir.root().display()
            ),
            CorpusSource::Dir(dir) => format!("the corpus folder {}", dir.display()),
        }
    }
}

pub fn load_splits(source: &CorpusSource) -> Result<TextSplits> {
    Ok(match source {
        CorpusSource::Default(dir) => seqpe_datasets::text::default_splits(dir)?,
        CorpusSource::Dir(dir) => seqpe_datasets::text::load_corpus_dir(dir)?,
    })
}

/// Summed negative log-likelihood over some scored tokens.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct NllSum {
    pub nll: f64,
    pub tokens: usize,
    pub words: usize,
}

impl NllSum {
    pub fn token_ppl(&self) -> f64 {
        (self.nll / self.tokens.max(1) as f64).exp()
    }
    pub fn word_ppl(&self) -> f64 {
        (self.nll / self.words.max(1) as f64).exp()
    }
}

/// Scores `chunks` of `stream` (all of length ≤ `length`), batching equal-length chunks.
pub fn score_chunks<B: Backend>(
    model: &Gpt<B>,
    stream: &TokenStream,
    chunks: &[Chunk],
    length: usize,
    word_table: Option<&[bool]>,
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<NllSum> {
    let mut sum = NllSum::default();
    // ~16k tokens per forward pass bounds memory at any length
    let per_batch = (16_384 / length.max(1)).clamp(1, 64);
    let full_table = match model.positions.seqpe() {
        Some(s) => Some(cache.get_or_build(&s.encoder, &PositionGrid::sequence(length))?),
        None => None,
    };
    let options = AttentionOptions { query_chunk: 512 };
    let dtype = model.token_embed.weight.val().dtype();
    let mut i = 0;
    while i < chunks.len() {
        let len = chunks[i].len;
        let mut group = vec![chunks[i]];
        while group.len() < per_batch
            && i + group.len() < chunks.len()
            && chunks[i + group.len()].len == len
        {
            group.push(chunks[i + group.len()]);
        }
        i += group.len();
        let b = group.len();
        let mut inputs = Vec::with_capacity(b * len);
        let mut labels = Vec::with_capacity(b * len);
        for c in &group {
            inputs.extend(stream.ids[c.start..c.start + len].iter().map(|&t| t as i64));
            labels.extend(
                stream.ids[c.start + 1..c.start + len + 1]
                    .iter()
                    .map(|&t| t as i64),
            );
            if let Some(table) = word_table {
                sum.words += stream.word_starts(c.start + 1..c.start + len + 1, table);
            }
        }
        let grid = PositionGrid::sequence(len);
        let table = full_table.as_ref().map(|t| t.clone().narrow(0, 0, len));
        // in the weights' dtype (bf16 for `--precision bf16`; a no-op at f32)
        let ctx = model
            .positions
            .context(&grid, b, table, device)?
            .cast(dtype);
        let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [b, len]), device);
        let labels = Tensor::<B, 2, Int>::from_data(TensorData::new(labels, [b, len]), device);
        // the log-softmax in f32, as autocast does
        let logits = model.forward_with(inputs, &ctx, options).cast(DType::F32);
        let logp = log_softmax(logits, 2);
        let picked = logp.gather(2, labels.unsqueeze_dim::<3>(2));
        let nll: f64 = picked.sum().neg().into_scalar().elem();
        sum.nll += nll;
        sum.tokens += b * len;
    }
    Ok(sum)
}

/// Validation during training: the first `max_blocks` chunks (or all) at the training length.
pub fn evaluate_stream<B: Backend>(
    model: &Gpt<B>,
    stream: &TokenStream,
    length: usize,
    max_blocks: Option<usize>,
    word_table: Option<&[bool]>,
    device: &B::Device,
) -> Result<NllSum> {
    let mut chunks = eval_chunks(stream.len(), length);
    if let Some(k) = max_blocks {
        chunks.retain(|c| c.len == length);
        chunks.truncate(k);
    }
    score_chunks(
        model,
        stream,
        &chunks,
        length,
        word_table,
        &PeTableCache::new(),
        device,
    )
}

/// One row of the evaluation table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LengthResult {
    pub length: usize,
    pub chunks: usize,
    pub tokens: usize,
    pub words: usize,
    pub token_ppl: f64,
    pub word_ppl: f64,
}

/// The evaluation of a run on a split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub run: PathBuf,
    pub pe: PeKind,
    /// Which corpus was scored ([`CorpusSource::label`]) and its description.
    pub corpus: String,
    pub corpus_description: String,
    pub split: String,
    pub train_length: usize,
    pub results: Vec<LengthResult>,
    pub pe_tables_built: usize,
    /// The arithmetic of the forward passes (reports before the setting existed: f32).
    #[serde(default)]
    pub precision: Precision,
}

impl EvalReport {
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} ({}; trained at {} tokens; {} split of {})\n| length | × train | chunks | tokens | token ppl | word ppl |\n|---:|---:|---:|---:|---:|---:|\n",
            self.run.display(), self.pe, self.train_length, self.split, self.corpus
        );
        for r in &self.results {
            s += &format!(
                "| {} | {:.0} | {} | {} | {:.2} | {:.2} |\n",
                r.length,
                r.length as f64 / self.train_length as f64,
                r.chunks,
                r.tokens,
                r.token_ppl,
                r.word_ppl
            );
        }
        s
    }
}

/// Loads the model of a run folder (`best/` if present, else the latest checkpoint).
pub fn load_run<B: Backend>(run: &RunDir, device: &B::Device) -> Result<(TextConfig, Gpt<B>)> {
    let cfg: TextConfig = seqpe_train::config::load(run)?;
    let model = run.load_trained(cfg.model.init::<B>(device)?, device)?;
    Ok((cfg, model))
}

/// The default evaluation lengths of a run trained on `block`-token blocks: 1×, 2×, …, 32×.
pub fn default_lengths(block: usize) -> Vec<usize> {
    (0..6).map(|k| block << k).collect()
}

/// The file an evaluation is saved in, inside its run folder: `eval-<corpus>-<split>.json` at
/// the [`default_lengths`], `eval-<corpus>-<split>-<n1>-<n2>….json` at any others, so an
/// evaluation at other lengths never replaces the default one.
pub fn eval_file_name(corpus: &str, split: EvalSplit, lengths: &[usize], block: usize) -> String {
    let base = format!("eval-{corpus}-{}", split.name());
    if lengths == default_lengths(block).as_slice() {
        format!("{base}.json")
    } else {
        let l: Vec<String> = lengths.iter().map(|n| n.to_string()).collect();
        format!("{base}-{}.json", l.join("-"))
    }
}

/// Scores the run's best model on `split` at each of `lengths`, its weights cast to
/// `precision` (f32: as saved; bf16: the forward pass in bf16, the log-softmax in f32).
pub fn evaluate_run<B: Backend>(
    run_path: &Path,
    lengths: &[usize],
    split: EvalSplit,
    corpus: &CorpusSource,
    precision: Precision,
    device: &B::Device,
) -> Result<EvalReport> {
    precision.check()?;
    if lengths.is_empty() || lengths.contains(&0) {
        anyhow::bail!(
            "evaluation lengths must be positive token counts (got {lengths:?}); e.g. --lengths \
             128,256"
        );
    }
    let run = RunDir::new(run_path);
    let (cfg, model) = load_run::<B>(&run, device)?;
    let model = precision.cast_model(model);
    let tokenizer = load_tokenizer_for(&run.file("tokenizer.json"), cfg.model.vocab_size)?;
    let splits = load_splits(corpus)?;
    let docs = match split {
        EvalSplit::Test => &splits.test,
        EvalSplit::Valid => &splits.valid,
    };
    let stream = TokenStream::encode(&tokenizer, docs)?;
    let words = word_start_table(&tokenizer);
    let cache = PeTableCache::new();
    let mut results = Vec::new();
    for &length in lengths {
        let chunks = eval_chunks(stream.len(), length);
        let sum = score_chunks(
            &model,
            &stream,
            &chunks,
            length,
            Some(&words),
            &cache,
            device,
        )?;
        eprintln!("  length {length}: token ppl {:.2}", sum.token_ppl());
        results.push(LengthResult {
            length,
            chunks: chunks.len(),
            tokens: sum.tokens,
            words: sum.words,
            token_ppl: sum.token_ppl(),
            word_ppl: sum.word_ppl(),
        });
    }
    Ok(EvalReport {
        run: run_path.to_path_buf(),
        pe: cfg.model.pe,
        corpus: corpus.label(),
        corpus_description: corpus.describe(),
        split: split.name().into(),
        train_length: cfg.model.block_size,
        results,
        pe_tables_built: cache.builds(),
        precision,
    })
}
