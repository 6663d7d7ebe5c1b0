//! `train-qa`, `eval-qa`, `report-qa` and `generate`.

use seqpe_train::Session;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, ValueEnum};
use seqpe_core::{CachedScalar, PeKind, PeTableCache};
use seqpe_qa::config::QaConfig;
use seqpe_qa::eval::{evaluate_run, QaEvalReport};
use seqpe_qa::task::{default_run, train as train_qa, QaTrainOptions};
use seqpe_text::generate::{generate_text, GenerateOptions};
use seqpe_train::config::apply_overrides;
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;

use crate::args::{CorpusArgs, RunArgs, TextPe};
use crate::plot::{line_chart, Series};
use crate::report::{
    cached_result, ensure_trained, machine, markdown_table, today, SEQPE_ONLY_KEYS,
};
use crate::text_cmd::command_line;

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
        session: args.run.session(&run),
        corpus: args.corpus.source(),
    };
    let s = train_qa::<B>(cfg, &opts, device)?;
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
    /// Write the report as JSON here (default: <run>/eval-qa[-<data>][-reference].json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let cfg: QaConfig = RunDir::new(&args.run).read_config()?;
    let factors = if args.factors.is_empty() {
        cfg.qa.eval_factors.clone()
    } else {
        args.factors.clone()
    };
    if cfg.qa.data.is_none() && args.qa_data.is_none() {
        args.corpus.ensure_fetched()?;
    }
    let report = evaluate_run::<B>(
        &args.run,
        &factors,
        &args.corpus.source(),
        args.qa_data.as_deref(),
        args.limit,
        args.cached_scalar.map(Into::into),
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
        args.run.join(format!("{name}.json"))
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
    let tokenizer = seqpe_text::data::load_tokenizer(&run.file("tokenizer.json"))?;
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

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The QA preset every fine-tune uses.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Encodings to compare; each fine-tunes `<text-runs>/report-text-<text-preset>-<pe>`.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "seqpe,ape,sin,rope,alibi,nope"
    )]
    pub pes: Vec<TextPe>,
    /// The preset of the pre-trained text runs (from `report-text`).
    #[arg(long, default_value = "small")]
    pub text_preset: String,
    /// Test questions per length (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    #[command(flatten)]
    pub common: crate::args::ReportRuns,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

/// One fine-tuned encoding of the QA report.
pub struct QaResult {
    pub pe: PeKind,
    pub run: PathBuf,
    pub train: FitSummary,
    pub eval: QaEvalReport,
    pub reused: bool,
}

/// Fine-tunes every encoding's pre-trained text run, evaluates it at every length and writes
/// `docs/results/qa.md` with a plot of EM against length.
pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let started = Instant::now();
    args.corpus.ensure_fetched()?;
    let mut results = Vec::new();
    for &pe in &args.pes {
        let pe: PeKind = pe.into();
        let from = args
            .common
            .runs
            .join(format!("report-text-{}-{pe}", args.text_preset));
        if !from.join("summary.json").is_file() {
            bail!(
                "{} is not a finished text run; run `cargo xtask report-text --preset {}` first",
                from.display(),
                args.text_preset
            );
        }
        let mut cfg = QaConfig::preset(&args.preset)?;
        cfg.from = from.clone();
        apply_overrides(&mut cfg, &args.common.overrides)?;
        let (text_cfg, _) = seqpe_qa::task::text_run(&from)?;
        cfg.model = text_cfg.model;
        let run = RunDir::new(args.common.runs.join(format!("qa-{}-{pe}", args.preset)));
        let mut ignore = vec![];
        if pe != PeKind::SeqPe {
            ignore.extend(SEQPE_ONLY_KEYS);
        }
        let (train, reused) = ensure_trained(
            &run,
            &cfg,
            cfg.train.steps,
            &ignore,
            args.common.retrain,
            |resume| {
                train_qa::<B>(
                    cfg.clone(),
                    &QaTrainOptions {
                        session: Session {
                            resume,
                            ..Session::fresh(&run.root)
                        },
                        corpus: args.corpus.source(),
                    },
                    device,
                )
            },
        )?;
        let eval_path = run.file("eval-qa.json");
        let eval = match cached_result(&run, &eval_path, |e: &QaEvalReport| {
            e.results.iter().map(|r| r.factor).collect::<Vec<_>>() == cfg.qa.eval_factors
                && e.cached_scalar == cfg.qa.cached_scalar
        }) {
            Some(e) => {
                eprintln!("reusing {}", eval_path.display());
                e
            }
            None => {
                eprintln!(
                    "evaluating {} at {:?}× {}",
                    pe, cfg.qa.eval_factors, cfg.qa.length
                );
                let e = evaluate_run::<B::InnerBackend>(
                    &run.root,
                    &cfg.qa.eval_factors,
                    &args.corpus.source(),
                    None,
                    args.limit,
                    None,
                    device,
                )?;
                seqpe_train::checkpoint::write_json(&eval_path, &e)?;
                e
            }
        };
        results.push(QaResult {
            pe,
            run: run.root.clone(),
            train,
            eval,
            reused,
        });
    }
    let path = write_report(
        &results,
        &args,
        &command_line("report-qa"),
        backend,
        started.elapsed().as_secs_f64(),
    )?;
    println!("wrote {}", path.display());
    Ok(true)
}

/// SeqPE's test answer perplexity minus every baseline's at each length, with where it wins and
/// loses (empty without a SeqPE run).
fn against_baselines(results: &[QaResult]) -> String {
    let Some(seqpe) = results.iter().find(|r| r.pe == PeKind::SeqPe) else {
        return String::new();
    };
    let factors: Vec<(usize, String)> = seqpe
        .eval
        .results
        .iter()
        .map(|s| (s.factor, format!("{} ({}×)", s.target_tokens, s.factor)))
        .collect();
    let others = results
        .iter()
        .filter(|r| r.pe != PeKind::SeqPe)
        .map(|r| (r.pe.to_string(), r));
    let ppl = |r: &QaResult, k: usize| {
        let s = r.eval.results.iter().find(|s| s.factor == k);
        s.map(|s| s.answer_ppl)
    };
    format!(
        "### SeqPE against each baseline (test answer perplexity)\n\n\
         SeqPE's answer perplexity minus the baseline's at each length (negative: SeqPE is \
         better, marked ✓), from the table above.\n\n{}\n",
        crate::report::seqpe_against(
            seqpe,
            others,
            &factors,
            ppl,
            crate::report::Better::Lower,
            2
        )
    )
}

/// Writes `<out>/qa.md` and `<out>/qa_em.png`.
pub fn write_report(
    results: &[QaResult],
    args: &ReportArgs,
    command: &str,
    backend: &str,
    wall: f64,
) -> Result<PathBuf> {
    std::fs::create_dir_all(&args.common.out)?;
    let Some(first) = results.first() else {
        bail!("no results to report");
    };
    let cfg: QaConfig = RunDir::new(&first.run).read_config()?;
    let series: Vec<Series> = results
        .iter()
        .map(|r| Series {
            name: r.pe.to_string(),
            points: r
                .eval
                .results
                .iter()
                .map(|s| (s.target_tokens as f64, s.lenient_em))
                .collect(),
        })
        .collect();
    line_chart(
        &args.common.out.join("qa_em.png"),
        "QA exact match (lenient) vs prompt length",
        "prompt length (tokens)",
        "lenient EM (%)",
        &series,
        true,
        false,
    )?;
    let mut header = vec!["PE".to_string()];
    header.extend(
        first
            .eval
            .results
            .iter()
            .map(|s| format!("{} ({}×)", s.target_tokens, s.factor)),
    );
    let table = |f: &dyn Fn(&seqpe_qa::eval::LengthScore) -> String| {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                let mut row = vec![r.pe.to_string()];
                row.extend(r.eval.results.iter().map(f));
                row
            })
            .collect();
        markdown_table(&header, &rows)
    };
    let lenient = table(&|s| format!("{:.1}", s.lenient_em));
    let strict = table(&|s| format!("{:.1}", s.strict_em));
    let ppl = table(&|s| format!("{:.2}", s.answer_ppl));
    let against = against_baselines(results);
    let baselines = {
        let rows = vec![
            {
                let mut row = vec!["most frequent training answer".to_string()];
                row.extend(first.eval.results.iter().map(|s| {
                    s.baseline_frequent_answer
                        .map_or("-".into(), |v| format!("{v:.1}"))
                }));
                row
            },
            {
                let mut row = vec!["most frequent context word".to_string()];
                row.extend(first.eval.results.iter().map(|s| {
                    s.baseline_context_word
                        .map_or("-".into(), |v| format!("{v:.1}"))
                }));
                row
            },
        ];
        let mut h = header.clone();
        h[0] = "guess".into();
        markdown_table(&h, &rows)
    };
    // Does any encoding answer more than guessing does, at any length?
    let mut above = Vec::new();
    for r in results {
        for s in &r.eval.results {
            let guess = s
                .baseline_frequent_answer
                .into_iter()
                .chain(s.baseline_context_word)
                .fold(0.0, f64::max);
            if s.lenient_em > guess {
                above.push(format!("{} at {}×", r.pe, s.factor));
            }
        }
    }
    let verdict = if results.iter().all(|r| {
        r.eval
            .results
            .iter()
            .all(|s| s.baseline_context_word.is_none())
    }) {
        String::new()
    } else if above.is_empty() {
        "**Reading.** No encoding answers more questions than the best guess at any length: at this \
         budget the fine-tuned models have not learned to find the answer in the context, so the \
         EM columns do not separate the encodings; only the answer perplexities do.\n\n"
            .to_string()
    } else {
        format!(
            "**Reading.** Lenient EM above the best guess: {}.\n\n",
            above.join(", ")
        )
    };
    let runs: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.pe.to_string(),
                format!("`{}`", r.run.display()),
                r.train.steps.to_string(),
                format!("{:.0}", r.train.total_seconds),
                r.train.best_valid.map_or("-".into(), |v| format!("{v:.3}")),
                if r.reused { "reused" } else { "trained now" }.into(),
                r.train.backend.clone(),
            ]
        })
        .collect();
    let runs = markdown_table(
        &[
            "PE",
            "run folder",
            "steps",
            "fine-tune s",
            "best valid answer ppl",
            "",
            "backend (last session)",
        ]
        .map(String::from),
        &runs,
    );
    let samples: String = first
        .eval
        .samples
        .iter()
        .take(6)
        .map(|s| {
            format!(
                "- {}× `{}`: gold {:?}, output {:?}\n",
                s.factor, s.id, s.answers, s.output
            )
        })
        .collect();
    let q = &cfg.qa;
    let t = &cfg.train;
    let md = format!(
        "# Long-context QA: exact match beyond the fine-tuning length\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`; this invocation: \
         {wall:.0} s, finished runs and evaluations reused).\n\n\
         **Task.** {data}. A question is a real sentence of the gold passage with one content \
         word or name blanked (`Fill in the blank: …`); the answer is that word. The gold passage \
         sits at a random depth among passages of *other* documents of the same split \
         (train / valid / test documents never overlap), filled up to the prompt length. Prompt \
         format (question last): `<context>\\n\\nQuestion: <question>\\nAnswer:`, target \
         `\" <answer>\"` + end-of-text.\n\n\
         **Fine-tuning.** Each encoding's `report-text --preset {tp}` run (pre-trained on \
         {pre}-token blocks) is fine-tuned on {ntrain} questions in {len}-token sequences: the \
         prompt filled at the front with distractor text to {budget} tokens, then the answer, \
         end-of-text and unscored filler, so every sequence has exactly {len} tokens, positions \
         run 0…{lm1} as in the reference and the answer starts where it starts in the 1× \
         evaluation (loss on the answer and end-of-text only), \
         batch {batch}, {steps} steps, AdamW lr {lr} (warm-up {warm}, linear decay), SeqPE \
         regularizers on (random-shift pool {pool}); the best checkpoint by validation answer \
         perplexity ({nvalid} validation questions).\n\n\
         **Evaluation.** The same {ntest} test questions at prompt lengths {factors}× {len} \
         tokens (less {reserve} for the answer). Each prompt is filled at the front with \
         distractor text of the test documents to exactly that length, as the fine-tuning \
         prompts are, so a prompt and its longest answer fill exactly k × {len} positions. Greedy \
         decoding with the key/value cache (≤ {maxnew} tokens, stop at \
         end-of-text or newline; SeqPE `attn_scalar` term against cached keys: `{scalar:?}`). \
         Lenient EM (the reference's): a gold answer, lower-cased and trimmed, is a substring of \
         the output; strict EM: the output's first line equals it.\n\n\
         ## Lenient EM (%, test)\n\n{lenient}\n![EM vs length](qa_em.png)\n\n\
         ## Strict EM (%, test)\n\n{strict}\n\
         ## Answer perplexity (test, teacher-forced answer + end-of-text)\n\n{ppl}\n{against}\
         ## What guessing scores (lenient EM %, same test items)\n\n{baselines}\n{verdict}\
         ## Runs\n\n{runs}\n\
         Examples ({first_pe}):\n\n{samples}\n\
         ## Reproduce\n\n```sh\ncargo xtask report-text --preset {tp}   # the pre-trained runs\n{command}\n```\n",
        date = today(),
        machine = machine(),
        data = seqpe_qa::task::describe_data(&cfg),
        tp = args.text_preset,
        pre = cfg.model.block_size,
        ntrain = q.train_questions,
        len = q.length,
        lm1 = q.length - 1,
        batch = t.batch_size,
        steps = t.steps,
        lr = t.lr,
        warm = t.warmup_steps,
        pool = t.regularizer.shift_pool,
        nvalid = q.valid_questions,
        ntest = first.eval.results.first().map_or(0, |r| r.items),
        factors = q
            .eval_factors
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        maxnew = q.max_new_tokens,
        reserve = q.length - seqpe_qa::task::prompt_budget(q.length),
        budget = seqpe_qa::task::prompt_budget(q.length),
        scalar = first.eval.cached_scalar,
        first_pe = first.pe,
    );
    let path = args.common.out.join("qa.md");
    std::fs::write(&path, md)?;
    Ok(path)
}
