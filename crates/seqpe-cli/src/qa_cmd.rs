//! `train-qa`, `eval-qa` and `generate` (the QA report is [`crate::report_qa`]).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, ValueEnum};
use seqpe_core::{CachedScalar, PeTableCache};
use seqpe_qa::config::QaConfig;
use seqpe_qa::eval::evaluate_run;
use seqpe_qa::task::{default_run, train as train_qa, QaTrainOptions};
use seqpe_text::generate::{generate_text, GenerateOptions};
use seqpe_train::config::GivenFlag;
use seqpe_train::run::RunDir;

use crate::args::{CorpusArgs, RunArgs};

/// The `attn_scalar` term against cached keys during generation.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarArg {
    /// Against every cached key, as a full recomputation (default).
    Correct,
    /// As the reference's generation: no term after the prompt.
    Reference,
}

impl From<ScalarArg> for CachedScalar {
    fn from(s: ScalarArg) -> Self {
        match s {
            ScalarArg::Correct => CachedScalar::Correct,
            ScalarArg::Reference => CachedScalar::Reference,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The `train-text` run to fine-tune (default: the preset's, runs/report-text-small-seqpe).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// QA data instead of the built-in cloze task: a reference JSON-lines file, a SQuAD
    /// v1.1/v2.0 JSON file, or a folder of them.
    #[arg(long)]
    pub qa_data: Option<PathBuf>,
    /// The built-in task (without `--qa-data`): `cloze` (the preset's) or `passkey`, with the
    /// training budget the task needs at the preset (`QaConfig::set_task`).
    #[arg(long, value_enum)]
    pub task: Option<crate::report_qa::QaTask>,
    /// Presets: tiny, small.
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

pub fn train<B: AutodiffBackend>(args: TrainArgs, device: &B::Device) -> Result<bool> {
    let cfg: QaConfig = args.run.config(|c: &mut QaConfig| {
        if let Some(from) = &args.from {
            c.from = from.clone();
        }
        if let Some(d) = &args.qa_data {
            c.qa.data = Some(d.clone());
        }
        if let Some(task) = args.task {
            c.set_task(task.built_in());
        }
    })?;
    let run = RunDir::new(
        args.run
            .run
            .clone()
            .unwrap_or_else(|| default_run(&cfg.preset, &cfg.from)),
    );
    if cfg.qa.data.is_none() {
        args.corpus.ensure_fetched()?;
    }
    let opts = QaTrainOptions {
        session: args.run.session(
            &run,
            args.from
                .iter()
                .map(|f| GivenFlag::new("--from", "from", f))
                .chain(
                    args.qa_data
                        .iter()
                        .map(|d| GivenFlag::new("--qa-data", "qa.data", d)),
                )
                .chain(
                    args.task
                        .map(|t| GivenFlag::new("--task", "qa.task", &t.built_in())),
                )
                .collect(),
        ),
        corpus: args.corpus.source(),
    };
    let s = run.or_remove_if_new(|| train_qa::<B>(cfg, &opts, device))?;
    println!(
        "fine-tuned {} for {} steps in {:.0}s; best valid answer ppl {}",
        run.root.display(),
        s.steps,
        s.seconds,
        s.best_valid.map_or("-".into(), |p| format!("{p:.3}"))
    );
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The QA run to evaluate.
    #[arg(long)]
    pub run: PathBuf,
    /// Prompt lengths as multiples of the fine-tuning length (default: the run's, 1,2,4,8,16).
    #[arg(long, value_delimiter = ',')]
    pub factors: Vec<usize>,
    /// Test questions per length (0 = all of the run's test questions).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Score these QA files instead (JSON lines as given; SQuAD built at each length).
    #[arg(long)]
    pub qa_data: Option<PathBuf>,
    /// The attn_scalar term against cached keys (default: the run's setting, `correct`).
    #[arg(long, value_enum)]
    pub cached_scalar: Option<ScalarArg>,
    /// Write the report as JSON here (default: <run>/eval-qa[-<data>][-reference][-bf16].json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub precision: crate::args::EvalPrecision,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let cfg: QaConfig = seqpe_train::config::load(&RunDir::new(&args.run))?;
    let factors = if args.factors.is_empty() {
        cfg.qa.eval_factors.clone()
    } else {
        args.factors.clone()
    };
    if cfg.qa.data.is_none() && args.qa_data.is_none() {
        args.corpus.ensure_fetched()?;
    }
    let precision = args.precision.value();
    let report = evaluate_run::<B>(
        &args.run,
        &factors,
        &args.corpus.source(),
        args.qa_data.as_deref(),
        args.limit,
        args.cached_scalar.map(Into::into),
        precision,
        device,
    )?;
    print!("{}", report.table());
    let json = args.json.clone().unwrap_or_else(|| {
        let mut name = "eval-qa".to_string();
        if let Some(d) = &args.qa_data {
            name += &format!(
                "-{}",
                d.file_stem().map_or("data".into(), |s| s.to_string_lossy())
            );
        }
        if report.cached_scalar == CachedScalar::Reference {
            name += "-reference";
        }
        args.run.join(args.precision.file(format!("{name}.json")))
    });
    seqpe_train::checkpoint::write_json(&json, &report)?;
    println!("wrote {}", json.display());
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// A text run (or QA run) whose best model continues the prompt.
    #[arg(long)]
    pub run: PathBuf,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// At most this many new tokens.
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// The attn_scalar term against cached keys.
    #[arg(long, value_enum, default_value = "correct")]
    pub cached_scalar: ScalarArg,
}

/// Greedy continuation of a prompt by any text (or QA) run, with the key/value cache; stops at
/// the end-of-text token or a newline.
pub fn generate<B: Backend>(args: GenerateArgs, device: &B::Device) -> Result<bool> {
    let run = RunDir::new(&args.run);
    let value: serde_json::Value = run.read_config()?;
    let model_settings: seqpe_text::config::ModelSettings =
        serde_json::from_value(value.get("model").cloned().unwrap_or_default()).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a text or QA run ({e}); `generate` continues prompts with a GPT",
                run.config().display()
            )
        })?;
    let tokenizer = seqpe_text::data::load_tokenizer_for(
        &run.file("tokenizer.json"),
        model_settings.vocab_size,
    )?;
    let model = run.load_trained(model_settings.init::<B>(device)?, device)?;
    let mut opts = GenerateOptions::qa(&tokenizer, args.cached_scalar.into());
    opts.max_new_tokens = args.max_new_tokens;
    let text = generate_text(
        &model,
        &tokenizer,
        &args.prompt,
        &opts,
        &PeTableCache::new(),
        device,
    )?;
    println!("{}{text}", args.prompt);
    Ok(true)
}
