//! `train-text`, `eval-text`, `report-text`, the text part of `demo` and `bench text`.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use seqpe_core::PeKind;
use seqpe_text::config::TextConfig;
use seqpe_text::eval::{default_lengths, eval_file_name, evaluate_run};
use seqpe_text::train::{train as train_run, TrainOptions};
use seqpe_train::config::{apply_overrides, GivenFlag};
use seqpe_train::run::RunDir;

use crate::args::{CorpusArgs, Injection, RunArgs, SplitArg, TextPe};
use crate::report_text::{ppl_table, run_plan, write_report, ReportPlan};

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Position encoding (default: the preset's, `seqpe`).
    #[arg(long, value_enum)]
    pub pe: Option<TextPe>,
    /// How SeqPE enters the model (default: the preset's, `attn_scalar`, the GPT recipe).
    #[arg(long, value_enum)]
    pub seqpe_inject: Option<Injection>,
    /// Presets: tiny (demo, tests), small (the reports), bench, gpt2-small.
    #[command(flatten)]
    pub run: RunArgs,
    /// Use this tokenizer.json instead of training a BPE on the training split.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

impl TrainArgs {
    pub fn config(&self) -> Result<TextConfig> {
        self.run.config(|c: &mut TextConfig| {
            if let Some(pe) = self.pe {
                c.model.pe = pe.into();
            }
            if let Some(inject) = self.seqpe_inject {
                c.model.seqpe.inject = inject.into();
            }
        })
    }

    /// The typed flags given, for a resumed run to check.
    pub fn flags(&self) -> Vec<GivenFlag> {
        let pe = self
            .pe
            .map(|pe| GivenFlag::new("--pe", "model.pe", &PeKind::from(pe)));
        let inject = self.seqpe_inject.map(|i| {
            GivenFlag::new(
                "--seqpe-inject",
                "model.seqpe_inject",
                &seqpe_core::SeqPeInjection::from(i),
            )
        });
        pe.into_iter().chain(inject).collect()
    }
}

pub fn train<B: AutodiffBackend>(args: TrainArgs, device: &B::Device) -> Result<bool> {
    let cfg = args.config()?;
    let run = RunDir::new(
        args.run
            .run_dir(&format!("text-{}-{}", cfg.preset, cfg.model.pe)),
    );
    args.corpus.ensure_fetched()?;
    let opts = TrainOptions {
        session: args.run.session(&run, args.flags()),
        corpus: args.corpus.source(),
        tokenizer: args.tokenizer.clone(),
    };
    let summary = run.or_remove_if_new(|| train_run::<B>(cfg, &opts, device))?;
    println!(
        "trained {} for {} steps in {:.0}s ({:.0} tokens/s); final loss {:.3}; best valid ppl {}",
        run.root.display(),
        summary.steps,
        summary.seconds,
        summary.per_second,
        summary.final_loss,
        summary.best_valid.map_or("-".into(), |p| format!("{p:.2}"))
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
    /// Which split to score.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Write the report as JSON here (default: <run>/eval-<corpus>-<split>.json at the default
    /// lengths, eval-<corpus>-<split>-<lengths>.json at others: named by what it scored, so no
    /// evaluation overwrites another).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub precision: crate::args::EvalPrecision,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let cfg: TextConfig = seqpe_train::config::load(&RunDir::new(&args.run))?;
    let lengths = if args.lengths.is_empty() {
        default_lengths(cfg.model.block_size)
    } else {
        args.lengths.clone()
    };
    let source = args.corpus.source();
    let precision = args.precision.value();
    let report = evaluate_run::<B>(
        &args.run,
        &lengths,
        args.split.into(),
        &source,
        precision,
        device,
    )?;
    print!("{}", report.table());
    let json = args.json.clone().unwrap_or_else(|| {
        let name = eval_file_name(
            &source.label(),
            args.split.into(),
            &lengths,
            cfg.model.block_size,
        );
        args.run.join(args.precision.file(name))
    });
    seqpe_train::checkpoint::write_json(&json, &report)?;
    println!("wrote {}", json.display());
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The preset every run uses (the reports: small).
    #[arg(long, default_value = "small")]
    pub preset: String,
    #[command(flatten)]
    pub pes: crate::args::TextPes,
    /// Evaluation lengths as multiples of the training length.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    pub factors: Vec<usize>,
    #[command(flatten)]
    pub common: crate::args::ReportRuns,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

fn plan(args: &ReportArgs, prefix: String) -> Result<ReportPlan> {
    args.common.check()?;
    if args.factors.is_empty() || args.factors.contains(&0) {
        anyhow::bail!(
            "--factors must be positive multiples of the training length (got {:?})",
            args.factors
        );
    }
    let mut base = TextConfig::preset(&args.preset)?;
    apply_overrides(&mut base, &args.common.overrides)?;
    Ok(ReportPlan {
        base,
        pes: args.pes.kinds(),
        factors: args.factors.clone(),
        runs: args.common.runs.clone(),
        prefix,
        corpus: args.corpus.source(),
        retrain: args.common.retrain,
        finished_only: args.common.finished_only,
        seeds: args.common.seeds,
    })
}

/// The command line as the user would type it, for the reports.
/// The `cargo xtask` command that reproduces this invocation of `name`: its own arguments,
/// then the global ones given before it (`--backend tch`).
pub fn command_line(name: &str) -> String {
    command_line_of(name, std::env::args().skip(1))
}

fn command_line_of(name: &str, args: impl Iterator<Item = String>) -> String {
    let args: Vec<String> = args.collect();
    let (global, own) = match args.iter().position(|a| a == name) {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..0], &args[..]),
    };
    std::iter::once(format!("cargo xtask {name}"))
        .chain(own.iter().cloned())
        .chain(global.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reproducing_command_keeps_global_flags() {
        let args = [
            "--backend",
            "tch",
            "report-vision",
            "--presets",
            "small-native",
        ];
        assert_eq!(
            super::command_line_of("report-vision", args.iter().map(|s| s.to_string())),
            "cargo xtask report-vision --presets small-native --backend tch"
        );
        let args = ["report-text", "--preset", "small"];
        assert_eq!(
            super::command_line_of("report-text", args.iter().map(|s| s.to_string())),
            "cargo xtask report-text --preset small"
        );
    }
}

pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    args.corpus.ensure_fetched()?;
    let plan = plan(&args, format!("report-text-{}", args.preset))?;
    let results = run_plan::<B>(&plan, device)?;
    let path = write_report(
        &results,
        &plan,
        &args.common.out,
        &command_line("report-text"),
        backend,
    )?;
    print!("{}", ppl_table(&results, false));
    println!("wrote {}", path.display());
    Ok(true)
}

/// The demo's text part (`demo --text`): tiny SeqPE and APE GPTs trained on the Brown corpus and
/// evaluated on a held-out novel at 1×–8× the training length, in the run folders of
/// `report-text --preset tiny` (either command reuses the other's runs). `step` numbers the
/// progress lines after the demo's earlier parts.
pub fn tiny_text_pair<B: AutodiffBackend>(
    corpus: &CorpusArgs,
    step: &dyn Fn(&str) -> String,
    device: &B::Device,
) -> Result<()> {
    eprintln!(
        "{} data: the Brown corpus and Jane Austen's novels (fetched once, cached)",
        step("text")
    );
    corpus.ensure_fetched()?;
    let report = ReportArgs {
        preset: "tiny".into(),
        pes: crate::args::TextPes {
            list: vec![TextPe::Seqpe, TextPe::Ape],
        },
        factors: vec![1, 2, 4, 8],
        common: crate::args::ReportRuns {
            overrides: Vec::new(),
            runs: PathBuf::from("runs"),
            out: PathBuf::from("runs/demo"),
            retrain: false,
            finished_only: false,
            seeds: 1,
        },
        corpus: corpus.clone(),
    };
    let plan = plan(&report, "report-text-tiny".into())?;
    eprintln!(
        "{} two tiny GPTs, SeqPE and a learned absolute table (APE): for each, a byte-level BPE \
         tokenizer is trained, then the model ({} steps, progress below), then it is evaluated \
         on the held-out novel at 1×, 2×, 4× and 8× the training length",
        step("text"),
        plan.base.train.steps
    );
    let results = run_plan::<B>(&plan, device)?;
    println!(
        "\nTest token perplexity of tiny GPTs trained on {}-token blocks (one seed; runs \
         runs/report-text-tiny-seqpe and runs/report-text-tiny-ape):\n",
        plan.base.model.block_size
    );
    print!("{}", ppl_table(&results, false));
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long, default_value = "bench")]
    pub preset: String,
    #[command(flatten)]
    pub pes: crate::args::TextPes,
    #[arg(long, value_parser = crate::args::at_least_one, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// The arithmetic of the timed steps (`train.precision`); against PyTorch, its script runs at
    /// the same precision (bf16: `torch.autocast`).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: crate::args::PrecisionArg,
    /// Write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub pytorch: crate::pytorch::PytorchArgs,
}

pub fn bench<B: AutodiffBackend>(
    args: BenchArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let mut cfg = TextConfig::preset(&args.preset)?;
    cfg.train.precision = args.precision.into();
    apply_overrides(&mut cfg, &args.overrides)?;
    let m = &cfg.model;
    println!(
        "bench text: preset {} (vocab {}, d {}, {} layers, {} heads, seq {}, batch {}, dropout \
         {}/{}), backend {backend}, precision {}, {} timed steps after {} warm-up",
        cfg.preset,
        m.vocab_size,
        m.d_model,
        m.n_layers,
        m.n_heads,
        m.block_size,
        cfg.train.batch_size,
        m.dropout,
        m.attn_dropout,
        cfg.train.precision,
        args.steps,
        args.warmup
    );
    let pes: Vec<PeKind> = args.pes.kinds();
    let ours = |pe: PeKind| -> Result<f64> {
        let row =
            seqpe_text::bench::training_throughput::<B>(&cfg, pe, args.warmup, args.steps, device)?;
        Ok(row.tokens_per_second)
    };
    if args.pytorch.against_pytorch {
        let r = &cfg.train.regularizer;
        let script_args = |pe: PeKind| -> Vec<String> {
            let mut a: Vec<String> = vec![
                format!("--pe={}", pe.name()),
                format!("--vocab={}", m.vocab_size),
                format!("--d-model={}", m.d_model),
                format!("--layers={}", m.n_layers),
                format!("--heads={}", m.n_heads),
                format!("--seq={}", m.block_size),
                format!("--batch={}", cfg.train.batch_size),
                format!("--dropout={}", m.dropout),
                format!("--attn-dropout={}", m.attn_dropout),
                format!("--clip={}", cfg.train.grad_clip),
                format!("--steps={}", args.steps),
                format!("--warmup={}", args.warmup),
                format!("--precision={}", cfg.train.precision),
            ];
            if pe == PeKind::SeqPe {
                a.extend(crate::pytorch::seqpe_script_args(&m.seqpe, r));
                a.push(format!("--seqpe-max-position={}", m.seqpe.max_position));
            }
            a
        };
        let script = crate::pytorch::Script {
            path: "scripts/pytorch_bench_text.py",
            key: "tokens_per_s",
            unit: "tokens/s",
        };
        let mut rows =
            crate::pytorch::compare(&args.pytorch, &script, backend, &pes, ours, script_args)?;
        rows.iter_mut()
            .for_each(|r| r.config = format!("{} {}", cfg.preset, cfg.train.precision));
        if let Some(json) = &args.json {
            seqpe_train::checkpoint::write_json(json, &rows)?;
        }
        return Ok(true);
    }
    println!("| PE | train tokens/s | ms/step |\n|---|---:|---:|");
    let mut rows = Vec::new();
    for &pe in &pes {
        let row =
            seqpe_text::bench::training_throughput::<B>(&cfg, pe, args.warmup, args.steps, device)?;
        println!(
            "| {} | {:.0} | {:.1} |",
            row.pe, row.tokens_per_second, row.ms_per_step
        );
        rows.push(row);
    }
    if let (Some(s), Some(a)) = (
        rows.iter().find(|r| r.pe == PeKind::SeqPe),
        rows.iter().find(|r| r.pe == PeKind::Learned),
    ) {
        println!(
            "SeqPE / APE throughput: {:.3}",
            s.tokens_per_second / a.tokens_per_second
        );
    }
    if let Some(json) = &args.json {
        seqpe_train::checkpoint::write_json(json, &rows)?;
    }
    let n = cfg.model.block_size;
    let lengths: Vec<usize> = [1, 8, 32].iter().map(|k| k * n).collect();
    println!(
        "\nSeqPE table (inference, one encoder pass), encoder width {}:",
        cfg.model.seqpe.d_model
    );
    println!("| positions | ms |\n|---:|---:|");
    for (len, ms) in seqpe_text::bench::table_cost::<B::InnerBackend>(&cfg, &lengths, device)? {
        println!("| {len} | {ms:.1} |");
    }
    Ok(true)
}
