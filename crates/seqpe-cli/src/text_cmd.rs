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
        // on --resume the saved config is used; an explicit --set train.steps=N extends the run
        extend_to: args
            .overrides
            .iter()
            .any(|o| o.starts_with("train.steps="))
            .then_some(cfg.train.steps),
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

/// Every position encoding offered for text.
const TEXT_PES: &str = "seqpe,ape,sin,rope,alibi,nope";

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Methods to compare.
    #[arg(long, value_delimiter = ',', default_value = TEXT_PES)]
    pub pes: Vec<String>,
    /// Evaluation lengths as multiples of the training length.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    pub factors: Vec<usize>,
    /// Overrides applied to every run, e.g. --set train.steps=300
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Folder of the run folders.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Where to write text.md and text_ppl.png.
    #[arg(long, default_value = "docs/results")]
    pub out: PathBuf,
    /// Train again even when finished runs exist.
    #[arg(long)]
    pub retrain: bool,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

fn ensure_text_data(corpus: &CorpusArgs) -> Result<()> {
    if corpus.corpus.is_none() {
        let dir = corpus
            .data_dir
            .clone()
            .map(DataDir::new)
            .unwrap_or_else(DataDir::from_env);
        seqpe_datasets::fetch::text(&dir)?;
    }
    Ok(())
}

fn plan(args: &ReportArgs, prefix: String) -> Result<seqpe_text::report::ReportPlan> {
    let mut base = TextConfig::preset(&args.preset)?;
    base.apply_overrides(&args.overrides)?;
    for pe in &args.pes {
        seqpe_text::model::text_pe_kind(pe)?;
    }
    Ok(seqpe_text::report::ReportPlan {
        base,
        pes: args.pes.clone(),
        factors: args.factors.clone(),
        runs: args.runs.clone(),
        prefix,
        corpus: args.corpus.source(),
        retrain: args.retrain,
    })
}

pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    ensure_text_data(&args.corpus)?;
    let plan = plan(&args, format!("report-text-{}", args.preset))?;
    let results = seqpe_text::report::run_plan::<B>(&plan, device)?;
    let command = std::iter::once("cargo xtask report-text".to_string())
        .chain(std::env::args().skip(2))
        .collect::<Vec<_>>()
        .join(" ");
    let path = seqpe_text::report::write_report(&results, &plan, &args.out, &command, backend)?;
    print!("{}", seqpe_text::report::ppl_table(&results, false));
    println!("wrote {}", path.display());
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Overrides for the tiny preset, e.g. --set train.steps=200
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

/// The newcomer's tour: tiny SeqPE vs APE GPTs, evaluated at 1×–8× the training length.
pub fn demo<B: AutodiffBackend>(args: DemoArgs, device: &B::Device) -> Result<bool> {
    let started = std::time::Instant::now();
    ensure_text_data(&args.corpus)?;
    let report = ReportArgs {
        preset: "tiny".into(),
        pes: vec!["seqpe".into(), "ape".into()],
        factors: vec![1, 2, 4, 8],
        overrides: args.overrides.clone(),
        runs: PathBuf::from("runs"),
        out: PathBuf::from("runs/demo"),
        retrain: false,
        corpus: args.corpus.clone(),
    };
    // the same run folders as `report-text --preset tiny`, so either command reuses the other's runs
    let plan = plan(&report, "report-text-tiny".into())?;
    let results = seqpe_text::report::run_plan::<B>(&plan, device)?;
    println!(
        "\nTest token perplexity of tiny GPTs trained on {}-token blocks:\n",
        plan.base.model.block_size
    );
    print!("{}", seqpe_text::report::ppl_table(&results, false));
    let last = plan.factors.last().copied().unwrap_or(1);
    println!("\nPerplexity change from 1× to {last}× the training length:");
    for m in &results {
        if let (Some(a), Some(b)) = (m.eval.results.first(), m.eval.results.last()) {
            println!(
                "  {:6} {:+.1}%",
                m.pe,
                100.0 * (b.token_ppl / a.token_ppl - 1.0)
            );
        }
    }
    println!(
        "Finished in {:.0} s. Runs: runs/report-text-tiny-seqpe, runs/report-text-tiny-ape \
         (`cargo xtask eval-text --run <folder>` evaluates them at other lengths).",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long, default_value = "bench")]
    pub preset: String,
    #[arg(long, value_delimiter = ',', default_value = TEXT_PES)]
    pub pes: Vec<String>,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long = "set")]
    pub overrides: Vec<String>,
}

pub fn bench<B: AutodiffBackend>(
    args: BenchArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let mut cfg = TextConfig::preset(&args.preset)?;
    cfg.apply_overrides(&args.overrides)?;
    println!(
        "bench text: preset {} (vocab {}, d {}, {} layers, {} heads, seq {}, batch {}), backend {backend}, {} timed steps after {} warm-up",
        cfg.preset, cfg.model.vocab_size, cfg.model.d_model, cfg.model.n_layers, cfg.model.n_heads,
        cfg.model.block_size, cfg.train.batch_size, args.steps, args.warmup
    );
    println!("| PE | train tokens/s | ms/step |\n|---|---:|---:|");
    let mut rows = Vec::new();
    for pe in &args.pes {
        let row =
            seqpe_text::bench::training_throughput::<B>(&cfg, pe, args.warmup, args.steps, device)?;
        println!(
            "| {} | {:.0} | {:.1} |",
            row.pe, row.tokens_per_second, row.ms_per_step
        );
        rows.push(row);
    }
    if let (Some(s), Some(a)) = (
        rows.iter().find(|r| r.pe == "seqpe"),
        rows.iter().find(|r| r.pe == "ape"),
    ) {
        println!(
            "SeqPE / APE throughput: {:.3}",
            s.tokens_per_second / a.tokens_per_second
        );
    }
    let n = cfg.model.block_size;
    let lengths: Vec<usize> = [1, 8, 32].iter().map(|k| k * n).collect();
    println!(
        "\nSeqPE table (inference, one encoder pass), encoder width {}:",
        cfg.model.seqpe_d_model
    );
    println!("| positions | ms |\n|---:|---:|");
    for (len, ms) in seqpe_text::bench::table_cost::<B::InnerBackend>(&cfg, &lengths, device)? {
        println!("| {len} | {ms:.1} |");
    }
    Ok(true)
}
