//! `train-text` and `eval-text`.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use seqpe_datasets::cache::DataDir;
use seqpe_text::config::TextConfig;
use seqpe_text::eval::{evaluate_run, CorpusSource};
use seqpe_text::train::{train as train_run, TrainOptions};
use seqpe_train::run::RunDir;

/// Options shared by commands that read a corpus.
#[derive(Args, Debug, Clone)]
pub struct CorpusArgs {
    /// A corpus folder (WikiText `wiki.{train,valid,test}.tokens`/`.raw`, or `.txt` files)
    /// instead of the fetched Brown + Jane Austen corpora.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Data cache folder (default: $SEQPE_DATA or ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl CorpusArgs {
    pub fn source(&self) -> CorpusSource {
        match &self.corpus {
            Some(dir) => CorpusSource::Dir(dir.clone()),
            None => CorpusSource::Default(
                self.data_dir
                    .clone()
                    .map(DataDir::new)
                    .unwrap_or_else(DataDir::from_env),
            ),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Position encoding: seqpe, ape, sin, rope, alibi, nope.
    #[arg(long, default_value = "seqpe")]
    pub pe: String,
    /// How SeqPE enters the model: attn_scalar (default, the GPT recipe) or input_add.
    #[arg(long)]
    pub seqpe_inject: Option<String>,
    /// tiny, bench or gpt2-small.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// JSON file with (partial) settings to merge into the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides, e.g. --set train.steps=200 --set model.d_model=256
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Run folder (default: runs/text-<preset>-<pe>).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Continue the run in --run from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Use this tokenizer.json instead of training a BPE on the training split.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Stop after this step (the run stays resumable with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

impl TrainArgs {
    pub fn config(&self) -> Result<TextConfig> {
        let mut cfg = TextConfig::preset(&self.preset)?;
        if let Some(path) = &self.config {
            cfg.apply_file(path)?;
        }
        cfg.model.pe = self.pe.clone();
        if let Some(inject) = &self.seqpe_inject {
            cfg.model.seqpe_inject = inject.clone();
        }
        cfg.apply_overrides(&self.overrides)?;
        seqpe_text::model::text_pe_kind(&cfg.model.pe)?;
        Ok(cfg)
    }

    pub fn run_dir(&self, cfg: &TextConfig) -> PathBuf {
        self.run
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("runs/text-{}-{}", cfg.preset, cfg.model.pe)))
    }
}

pub fn train<B: AutodiffBackend>(args: TrainArgs, device: &B::Device) -> Result<bool> {
    let cfg = args.config()?;
    let run = RunDir::new(args.run_dir(&cfg));
    let opts = TrainOptions {
        run: run.clone(),
        resume: args.resume,
        corpus: args.corpus.source(),
        tokenizer: args.tokenizer.clone(),
        stop_after: args.stop_after,
    };
    let summary = train_run::<B>(cfg, &opts, device)?;
    println!(
        "trained {} for {} steps in {:.0}s ({:.0} tokens/s); final loss {:.3}; best valid ppl {}",
        run.root.display(),
        summary.steps,
        summary.seconds,
        summary.tokens_per_second,
        summary.final_loss,
        summary
            .best_valid_ppl
            .map_or("-".into(), |p| format!("{p:.2}"))
    );
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The run folder to evaluate.
    #[arg(long)]
    pub run: PathBuf,
    /// Evaluation lengths (default: 1×, 2×, 4×, 8×, 16×, 32× the training length).
    #[arg(long, value_delimiter = ',')]
    pub lengths: Vec<usize>,
    /// test or valid.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Write the report as JSON here (default: <run>/eval-<split>.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let lengths = if args.lengths.is_empty() {
        let cfg: TextConfig = RunDir::new(&args.run).read_config()?;
        (0..6).map(|k| cfg.model.block_size << k).collect()
    } else {
        args.lengths.clone()
    };
    let report = evaluate_run::<B>(
        &args.run,
        &lengths,
        &args.split,
        &args.corpus.source(),
        device,
    )?;
    print!("{}", report.table());
    let json = args
        .json
        .clone()
        .unwrap_or_else(|| args.run.join(format!("eval-{}.json", args.split)));
    seqpe_train::checkpoint::write_json(&json, &report)?;
    println!("wrote {}", json.display());
    Ok(true)
}
