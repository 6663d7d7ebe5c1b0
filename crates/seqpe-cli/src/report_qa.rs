//! `report-qa`: every encoding's pre-trained text run (one per seed) fine-tuned on a built-in QA
//! task (`--task passkey`, the default, or `cloze`) and evaluated at 1×–16× the fine-tuning
//! length, through the one report runner ([`crate::report::run_plan`]); written as
//! `docs/results/qa.md` (passkey: EM per length and by depth) or `docs/results/qa-cloze.md`, with a
//! plot of EM against length.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use seqpe_core::PeKind;
use seqpe_qa::config::{BuiltInTask, QaConfig};
use seqpe_qa::eval::{evaluate_run, LengthScore, QaEvalReport};
use seqpe_qa::task::{train as train_qa, QaTrainOptions};
use seqpe_train::config::apply_overrides;
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_train::Session;

use crate::args::CorpusArgs;
use crate::plot::line_chart;
use crate::report::{
    machine, markdown_table, runs_table, seeds_of, seeds_sentence, seqpe_against, spread_rows,
    spread_series, today, Better, Experiment, Outcome, Plan, Seed,
};
use crate::text_cmd::command_line;

/// The built-in task a QA report fine-tunes on (`qa.task`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QaTask {
    /// Passkey retrieval: a 5-digit number stated once at a drawn depth, asked for at the end
    /// (`docs/results/qa.md`, the page's lead task).
    Passkey,
    /// The cloze task: a blanked word of a real sentence (`docs/results/qa-cloze.md`).
    Cloze,
}

impl QaTask {
    pub(crate) fn built_in(self) -> BuiltInTask {
        match self {
            QaTask::Passkey => BuiltInTask::Passkey,
            QaTask::Cloze => BuiltInTask::Cloze,
        }
    }

    /// The page and plot names: the passkey page is `qa.md`.
    fn page(self) -> (&'static str, &'static str) {
        match self {
            QaTask::Passkey => ("qa.md", "qa_em.png"),
            QaTask::Cloze => ("qa-cloze.md", "qa-cloze_em.png"),
        }
    }

    /// The page's title and the plot's.
    fn titles(self) -> (&'static str, &'static str) {
        match self {
            QaTask::Passkey => (
                "Passkey retrieval (long-context QA)",
                "Passkey retrieval: exact match vs prompt length",
            ),
            QaTask::Cloze => (
                "Long-context QA (cloze)",
                "QA exact match (lenient) vs prompt length",
            ),
        }
    }

    /// What a question and its answer are.
    fn description(self) -> &'static str {
        match self {
            QaTask::Passkey => {
                "The context is the test documents' own text; the sentence `The pass key is \
                 NNNNN. Remember it.` is inserted once at the drawn depth (no other 5-digit \
                 number occurs in the filler), and the question asks `What is the pass key?`; the \
                 answer is the number. Guessing a 5-digit number scores about 0.001 %."
            }
            QaTask::Cloze => {
                "A question is a real sentence of the gold passage with one content word or name \
                 blanked (`Fill in the blank: …`); the answer is that word. The gold passage sits \
                 at a random depth among passages of *other* documents of the same split \
                 (train / valid / test documents never overlap), filled up to the prompt length."
            }
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The QA preset every fine-tune uses.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// The built-in task to fine-tune and evaluate on.
    #[arg(long, value_enum, default_value = "passkey")]
    pub task: QaTask,
    #[command(flatten)]
    pub pes: crate::args::TextPes,
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

/// One fine-tuned encoding and seed of the QA page.
pub type QaResult = Outcome<PeKind, QaEvalReport>;

/// Long-context QA as an [`Experiment`]: each encoding's text run fine-tuned, EM and answer
/// perplexity at each length.
struct QaExperiment<'a> {
    args: &'a ReportArgs,
}

impl QaExperiment<'_> {
    /// The text run that seed `seed` of `pe` fine-tunes.
    fn text_run(&self, pe: PeKind, seed: Seed) -> PathBuf {
        let folder = format!("report-text-{}-{pe}", self.args.text_preset);
        self.args.common.runs.join(seed.folder(&folder))
    }
}

impl<B: AutodiffBackend> Experiment<B> for QaExperiment<'_> {
    type Method = PeKind;
    type Config = QaConfig;
    type Eval = QaEvalReport;

    fn config(&self, pe: &PeKind, seed: Seed) -> Result<QaConfig> {
        let from = self.text_run(*pe, seed);
        if !from.join("summary.json").is_file() {
            bail!(
                "{} is not a finished text run; run `cargo xtask report-text --preset {} \
                 --seeds {}` first",
                from.display(),
                self.args.text_preset,
                seed.0
            );
        }
        let mut cfg = QaConfig::preset(&self.args.preset)?;
        cfg.set_task(self.args.task.built_in());
        cfg.from = from.clone();
        apply_overrides(&mut cfg, &self.args.common.overrides)?;
        let (text_cfg, _) = seqpe_qa::task::text_run(&from)?;
        cfg.model = text_cfg.model;
        Ok(cfg)
    }

    fn folder(&self, pe: &PeKind) -> String {
        match self.args.task {
            // the cloze runs keep the folders they had before the passkey task existed
            QaTask::Cloze => format!("qa-{}-{pe}", self.args.preset),
            QaTask::Passkey => format!("qa-{}-passkey-{pe}", self.args.preset),
        }
    }

    fn ignored_keys(&self) -> Vec<String> {
        Vec::new()
    }

    fn train(&self, cfg: QaConfig, session: Session, device: &B::Device) -> Result<FitSummary> {
        let opts = QaTrainOptions {
            session,
            corpus: self.args.corpus.source(),
        };
        train_qa::<B>(cfg, &opts, device)
    }

    fn eval_file(&self, run: &RunDir) -> PathBuf {
        run.file("eval-qa.json")
    }

    fn eval_is_current(&self, e: &QaEvalReport) -> bool {
        let Ok(cfg) = QaConfig::preset(&self.args.preset) else {
            return false;
        };
        e.results.iter().map(|r| r.factor).collect::<Vec<_>>() == cfg.qa.eval_factors
            && e.cached_scalar == cfg.qa.cached_scalar
            && e.precision == seqpe_train::Precision::F32
    }

    fn evaluate(&self, run: &RunDir, device: &B::Device) -> Result<QaEvalReport> {
        let cfg: QaConfig = run.read_config()?;
        evaluate_run::<B::InnerBackend>(
            &run.root,
            &cfg.qa.eval_factors,
            &self.args.corpus.source(),
            None,
            self.args.limit,
            None,
            seqpe_train::Precision::F32,
            device,
        )
    }

    fn recorded_seconds(&self, e: &QaEvalReport) -> f64 {
        e.results.iter().map(|r| r.seconds).sum()
    }
}

/// Fine-tunes every encoding's pre-trained text run (per seed), evaluates it at every length and
/// writes the task's page (`qa.md` for passkey, `qa-cloze.md`) with a plot of EM against length.
pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let started = Instant::now();
    args.common.check()?;
    args.corpus.ensure_fetched()?;
    let plan = Plan {
        methods: args.pes.kinds(),
        seeds: Seed::first(args.common.seeds),
        runs: args.common.runs.clone(),
        retrain: args.common.retrain,
        finished_only: args.common.finished_only,
    };
    let results = crate::report::run_plan::<B, _>(&QaExperiment { args: &args }, &plan, device)?;
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

/// The factors of the page (the first outcome's) and their column labels.
fn factors(results: &[QaResult]) -> Vec<(usize, String)> {
    results.first().map_or(vec![], |r| {
        r.eval
            .results
            .iter()
            .map(|s| (s.factor, format!("{} ({}×)", s.target_tokens, s.factor)))
            .collect()
    })
}

fn at(e: &QaEvalReport, factor: usize) -> Option<&LengthScore> {
    e.results.iter().find(|s| s.factor == factor)
}

/// The page's first lines and its "SeqPE against each baseline" section, counted against the
/// spread over seeds. Passkey counts the task's own measure, lenient EM (higher is better), and
/// leads with it and with the encodings that learned the task (≥ 90 % at the fine-tuning
/// length); the cloze task, whose EM does not rise above guessing, counts answer perplexity and
/// has no lead. Both are empty without a SeqPE run, except the passkey's learned sentence.
fn against_baselines(results: &[QaResult], task: QaTask) -> (String, String) {
    let points = factors(results);
    let keys: Vec<usize> = points.iter().map(|p| p.0).collect();
    let columns: Vec<String> = points.into_iter().map(|p| p.1).collect();
    let (metric, figure, better, decimals): (&str, &str, _, _) = match task {
        QaTask::Passkey => ("test lenient EM %", "lenient EM", Better::Higher, 1),
        QaTask::Cloze => (
            "test answer perplexity",
            "answer perplexity",
            Better::Lower,
            2,
        ),
    };
    let value = |e: &QaEvalReport, k: usize| {
        at(e, k).map(|s| match task {
            QaTask::Passkey => s.lenient_em,
            QaTask::Cloze => s.answer_ppl,
        })
    };
    let against = seqpe_against(results, &keys, &columns, "length", value, better, decimals);
    let section = against.as_ref().map_or(String::new(), |a| {
        format!(
            "### SeqPE against each baseline ({metric})\n\n\
             SeqPE's {figure} minus the baseline's at each length ({}), from the table \
             above.\n\n{}\n",
            a.legend, a.section
        )
    });
    let lead = match task {
        QaTask::Cloze => String::new(),
        QaTask::Passkey => {
            let body = match &against {
                Some(a) => format!(" {} {}", a.lead, passkey_learned(results, &keys)),
                None => format!(" {}", passkey_learned(results, &keys)),
            };
            format!(
                "{}\n\n",
                crate::report::lead_paragraph(metric, seeds_of(results), &body)
            )
        }
    };
    (lead, section)
}

/// Which encodings learned the passkey task: mean lenient EM ≥ 90 % at the fine-tuning length
/// (the first of `keys`), with their figures; or that none did, so the longer lengths say nothing
/// about extrapolation.
fn passkey_learned(results: &[QaResult], keys: &[usize]) -> String {
    let Some(&first) = keys.first() else {
        return String::new();
    };
    let learned: Vec<String> =
        spread_rows(results, &[first], |e, k| at(e, k).map(|s| s.lenient_em))
            .into_iter()
            .filter_map(|(pe, cells)| {
                cells[0]
                    .filter(|c| c.mean >= 90.0)
                    .map(|c| format!("`{pe}` ({})", c.show(1)))
            })
            .collect();
    if learned.is_empty() {
        "No encoding reaches 90 % at the fine-tuning length: at this budget the task is not \
         learned, so the longer lengths say nothing about extrapolation."
            .to_string()
    } else {
        format!(
            "At the fine-tuning length the task is learned (≥ 90 %) by {}.",
            learned.join(", ")
        )
    }
}

/// Writes the task's page and plot: `<out>/qa.md` and `qa_em.png` for passkey, `qa-cloze.md` and
/// `qa-cloze_em.png` for the cloze task.
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
    let (page_name, plot_name) = args.task.page();
    let (title, plot_title) = args.task.titles();
    let keys: Vec<usize> = factors(results).into_iter().map(|p| p.0).collect();
    let series = spread_series(
        results,
        &keys,
        |k| (k * cfg.qa.length) as f64,
        |pe| pe.to_string(),
        |e, k| at(e, k).map(|s| s.lenient_em),
    );
    line_chart(
        &args.common.out.join(plot_name),
        plot_title,
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
    let table = |f: &dyn Fn(&LengthScore) -> f64, decimals: usize| {
        let rows: Vec<Vec<String>> = spread_rows(results, &keys, |e, k| at(e, k).map(f))
            .into_iter()
            .map(|(pe, cells)| {
                let mut row = vec![pe.to_string()];
                row.extend(
                    cells
                        .iter()
                        .map(|c| c.map_or("-".into(), |s| s.show(decimals))),
                );
                row
            })
            .collect();
        markdown_table(&header, &rows)
    };
    let lenient = table(&|s| s.lenient_em, 1);
    let strict = table(&|s| s.strict_em, 1);
    let ppl = table(&|s| s.answer_ppl, 2);
    let (lead, against) = against_baselines(results, args.task);
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
    for (pe, cells) in spread_rows(results, &keys, |e, k| at(e, k).map(|s| s.lenient_em)) {
        for (&k, cell) in keys.iter().zip(cells) {
            let guess = at(&first.eval, k).map_or(0.0, |s| {
                s.baseline_frequent_answer
                    .into_iter()
                    .chain(s.baseline_context_word)
                    .fold(0.0, f64::max)
            });
            if cell.is_some_and(|c| c.mean > guess) {
                above.push(format!("{pe} at {k}×"));
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
    let runs = runs_table(
        results,
        |pe| pe.to_string(),
        "fine-tune s",
        vec![(
            "best valid answer ppl",
            Box::new(|r: &QaResult| r.train.best_valid.map_or("-".into(), |v| format!("{v:.3}"))),
        )],
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
        "# {title}: exact match beyond the fine-tuning length\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`; this invocation: \
         {wall:.0} s, finished runs and evaluations reused).{seeds}\n\n\
         {lead}**Task.** {data}. {task_text} Prompt \
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
         ## Lenient EM (%, test)\n\n{lenient}\n{em_against}![EM vs length]({plot_name})\n\n{depths}\
         ## Strict EM (%, test)\n\n{strict}\n\
         ## Answer perplexity (test, teacher-forced answer + end-of-text)\n\n{ppl}\n{ppl_against}\
         {guessing}\
         ## Runs\n\n{runs}\n\
         Examples ({first_pe}):\n\n{samples}\n\
         ## Reproduce\n\n```sh\ncargo xtask report-text --preset {tp}   # the pre-trained runs\n{command}\n```\n",
        date = today(),
        machine = machine(),
        seeds = seeds_sentence(seeds_of(results)),
        task_text = args.task.description(),
        em_against = if args.task == QaTask::Passkey { against.as_str() } else { "" },
        ppl_against = if args.task == QaTask::Cloze { against.as_str() } else { "" },
        depths = match args.task {
            QaTask::Passkey => depth_table(results, &keys),
            QaTask::Cloze => String::new(),
        },
        guessing = match args.task {
            QaTask::Passkey => String::new(),
            QaTask::Cloze => format!(
                "## What guessing scores (lenient EM %, same test items)\n\n{baselines}\n{verdict}"
            ),
        },
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
        first_pe = first.method,
    );
    let path = args.common.out.join(page_name);
    std::fs::write(&path, md)?;
    Ok(path)
}

/// Passkey EM by the depth of the number (tenths of the context) at each length, mean over
/// seeds: where in a long context each encoding still finds it.
fn depth_table(results: &[QaResult], keys: &[usize]) -> String {
    let deciles = results
        .iter()
        .flat_map(|r| r.eval.results.iter().map(|s| s.by_depth.len()))
        .max()
        .unwrap_or(0);
    if deciles == 0 {
        return String::new();
    }
    let mut header = vec!["PE".to_string(), "length".to_string()];
    header.extend(
        (0..deciles).map(|d| format!("{}–{} %", d * 100 / deciles, (d + 1) * 100 / deciles)),
    );
    let mut rows = Vec::new();
    for pe in crate::report::methods_of(results) {
        for &k in keys {
            let runs: Vec<&LengthScore> = results
                .iter()
                .filter(|r| r.method == pe)
                .filter_map(|r| at(&r.eval, k))
                .filter(|s| s.by_depth.len() == deciles)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let mut row = vec![pe.to_string(), format!("{k}×")];
            row.extend((0..deciles).map(|d| {
                let mean = runs.iter().map(|s| s.by_depth[d]).sum::<f64>() / runs.len() as f64;
                format!("{mean:.0}")
            }));
            rows.push(row);
        }
    }
    format!(
        "### By depth of the number (lenient EM %, mean over seeds; 0 % = the start of the \
         context)\n\n{}\n",
        markdown_table(&header, &rows)
    )
}
