//! `report-text` and `demo`: one run per position encoding, evaluated at multiples of the training
//! length, written as a markdown table and a perplexity-vs-length plot.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use seqpe_train::plot::{line_chart, Series};
use seqpe_train::report::{machine, markdown_table, today};
use seqpe_train::run::RunDir;

use crate::config::TextConfig;
use crate::eval::{evaluate_run, CorpusSource, EvalReport};
use crate::train::{train, TrainOptions, TrainSummary};

/// What to compare.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    pub base: TextConfig,
    pub pes: Vec<String>,
    /// Evaluation lengths as multiples of the training length.
    pub factors: Vec<usize>,
    /// Run folders are `<runs>/<prefix>-<pe>`.
    pub runs: PathBuf,
    pub prefix: String,
    pub corpus: CorpusSource,
    /// Train again even when a finished run exists.
    pub retrain: bool,
}

/// One method's outcome.
#[derive(Debug, Clone)]
pub struct MethodResult {
    pub pe: String,
    pub run: PathBuf,
    pub train: TrainSummary,
    pub eval: EvalReport,
    pub eval_seconds: f64,
    pub reused: bool,
}

/// Trains (or reuses / resumes) and evaluates every method of the plan.
pub fn run_plan<B: AutodiffBackend>(
    plan: &ReportPlan,
    device: &B::Device,
) -> Result<Vec<MethodResult>> {
    let lengths: Vec<usize> = plan
        .factors
        .iter()
        .map(|f| f * plan.base.model.block_size)
        .collect();
    let mut out = Vec::new();
    for pe in &plan.pes {
        let mut cfg = plan.base.clone();
        cfg.model.pe = pe.clone();
        let run = RunDir::new(plan.runs.join(format!("{}-{pe}", plan.prefix)));
        let summary_path = run.file("summary.json");
        let reuse = !plan.retrain && summary_path.is_file();
        if plan.retrain && run.root.exists() {
            std::fs::remove_dir_all(&run.root)?;
        }
        let summary: TrainSummary = if reuse {
            eprintln!("reusing {}", run.root.display());
            seqpe_train::checkpoint::read_json(&summary_path)?
        } else {
            eprintln!("training {pe} in {}", run.root.display());
            let opts = TrainOptions {
                run: run.clone(),
                resume: run.latest().is_some(),
                corpus: plan.corpus.clone(),
                tokenizer: None,
                stop_after: None,
                extend_to: None,
            };
            train::<B>(cfg, &opts, device)?
        };
        eprintln!("evaluating {pe} at {lengths:?}");
        let t = Instant::now();
        let eval =
            evaluate_run::<B::InnerBackend>(&run.root, &lengths, "test", &plan.corpus, device)?;
        out.push(MethodResult {
            pe: pe.clone(),
            run: run.root.clone(),
            train: summary,
            eval,
            eval_seconds: t.elapsed().as_secs_f64(),
            reused: reuse,
        });
    }
    Ok(out)
}

/// The token-perplexity table (rows: methods; columns: lengths).
pub fn ppl_table(results: &[MethodResult], word: bool) -> String {
    let Some(first) = results.first() else {
        return String::new();
    };
    let train_len = first.eval.train_length;
    let mut header = vec!["PE".to_string()];
    header.extend(
        first
            .eval
            .results
            .iter()
            .map(|r| format!("{} ({}×)", r.length, r.length / train_len)),
    );
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|m| {
            let mut row = vec![m.pe.clone()];
            row.extend(
                m.eval
                    .results
                    .iter()
                    .map(|r| format!("{:.2}", if word { r.word_ppl } else { r.token_ppl })),
            );
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// Writes `<out>/text.md` and `<out>/text_ppl.png`.
pub fn write_report(
    results: &[MethodResult],
    plan: &ReportPlan,
    out: &Path,
    command: &str,
    backend: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let png = out.join("text_ppl.png");
    let series: Vec<Series> = results
        .iter()
        .map(|m| Series {
            name: m.pe.clone(),
            points: m
                .eval
                .results
                .iter()
                .map(|r| (r.length as f64, r.token_ppl))
                .collect(),
        })
        .collect();
    line_chart(
        &png,
        "Test perplexity vs evaluation length",
        "evaluation length (tokens)",
        "token perplexity",
        &series,
        true,
        true,
    )?;
    let c = &plan.base;
    let mut timing = vec![];
    for m in results {
        timing.push(vec![
            m.pe.clone(),
            format!("{}", m.train.steps),
            format!("{:.0}", m.train.seconds),
            format!("{:.0}", m.train.tokens_per_second),
            m.train
                .best_valid_ppl
                .map_or("-".into(), |p| format!("{p:.2}")),
            format!("{:.0}", m.eval_seconds),
        ]);
    }
    let timing = markdown_table(
        &[
            "PE",
            "steps",
            "train s",
            "train tokens/s",
            "best valid ppl (train length)",
            "eval s",
        ]
        .map(String::from),
        &timing,
    );
    let md = format!(
        "# Text: perplexity beyond the training length\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`).\n\n\
         Preset `{preset}`: GPT {layers}×{d} ({heads} heads), vocabulary {vocab} (BPE trained on the \
         training split), trained on {block}-token blocks, batch {batch}, {steps} steps, lr {lr}. \
         SeqPE: encoder width {sd}, {sl} layers, max position {smax} ({digits} digits), \
         injection `{inject}`, contrastive and distillation weights {ct}/{kd}, random shift rate {shift}.\n\
         Corpus: train = Brown corpus + four Austen novels, test = *Persuasion* (one long novel, so long \
         evaluation windows are real context). Protocol: the test stream is cut into non-overlapping \
         chunks of each length (last partial chunk kept), every token scored.\n\n\
         ## Token perplexity (test)\n\n{tok}\n\
         ## Word perplexity (test; words = tokens starting with `Ġ`)\n\n{word}\n\
         ![perplexity vs length](text_ppl.png)\n\n## Runs\n\n{timing}\n\
         Run folders: {runs}. Reproduce with the command above (finished runs are reused; pass \
         `--retrain` to train again).\n",
        date = today(),
        machine = machine(),
        preset = c.preset,
        layers = c.model.n_layers,
        d = c.model.d_model,
        heads = c.model.n_heads,
        vocab = c.model.vocab_size,
        block = c.model.block_size,
        batch = c.train.batch_size,
        steps = c.train.steps,
        lr = c.train.lr,
        sd = c.model.seqpe_d_model,
        sl = c.model.seqpe_layers,
        smax = c.model.seqpe_max_position,
        digits = seqpe_core::digits::max_digits_for(c.model.seqpe_max_position),
        inject = c.model.seqpe_inject,
        ct = c.train.contrastive_weight,
        kd = c.train.distill_weight,
        shift = c.train.shift_rate,
        tok = ppl_table(results, false),
        word = ppl_table(results, true),
        runs = results.iter().map(|m| format!("`{}`", m.run.display())).collect::<Vec<_>>().join(", "),
    );
    let path = out.join("text.md");
    std::fs::write(&path, md)?;
    Ok(path)
}
