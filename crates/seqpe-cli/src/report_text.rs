//! `report-text` and `demo`: one run per position encoding and seed (through the one report
//! runner, [`crate::report::run_plan`]), evaluated at multiples of the training length, written as
//! markdown tables (mean ± sd over the seeds) and a perplexity-vs-length plot.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use seqpe_core::PeKind;
use seqpe_text::config::TextConfig;
use seqpe_text::eval::{eval_file_name, evaluate_run, CorpusSource, EvalReport, LengthResult};
use seqpe_text::train::{train, TrainOptions};
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_train::Session;

use crate::plot::line_chart;
use crate::report::{
    best_valid_cell, diagnostic_columns, machine, markdown_table, regularizer_chart, runs_table,
    seeds_of, seeds_sentence, seqpe_against, spread_rows, spread_series, today, Against, Better,
    Compared, Experiment, Outcome, Plan, RunColumn, Seed,
};

/// What to compare.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    pub base: TextConfig,
    pub pes: Vec<PeKind>,
    /// Evaluation lengths as multiples of the training length.
    pub factors: Vec<usize>,
    /// Run folders are `<runs>/<prefix>-<pe>[-seed<k>]`.
    pub runs: PathBuf,
    pub prefix: String,
    pub corpus: CorpusSource,
    /// Train again even when a finished run exists.
    pub retrain: bool,
    pub finished_only: bool,
    /// Seeds per encoding (see [`Seed`]).
    pub seeds: usize,
}

impl ReportPlan {
    /// The evaluation lengths in tokens.
    pub fn lengths(&self) -> Vec<usize> {
        self.factors
            .iter()
            .map(|f| f * self.base.model.block_size)
            .collect()
    }
}

/// One encoding and seed of the page.
pub type MethodResult = Outcome<PeKind, EvalReport>;

/// Language modelling as an [`Experiment`]: a GPT per encoding, test perplexity at each length.
struct TextExperiment<'a> {
    plan: &'a ReportPlan,
    lengths: Vec<usize>,
}

impl<B: AutodiffBackend> Experiment<B> for TextExperiment<'_> {
    type Method = PeKind;
    type Config = TextConfig;
    type Eval = EvalReport;

    fn config(&self, pe: &PeKind, _seed: Seed) -> Result<TextConfig> {
        let mut cfg = self.plan.base.clone();
        cfg.model.pe = *pe;
        Ok(cfg)
    }

    fn folder(&self, pe: &PeKind) -> String {
        format!("{}-{pe}", self.plan.prefix)
    }

    fn ignored_keys(&self) -> Vec<String> {
        vec!["model.vocab_size".into()]
    }

    fn train(&self, cfg: TextConfig, session: Session, device: &B::Device) -> Result<FitSummary> {
        let opts = TrainOptions {
            session,
            corpus: self.plan.corpus.clone(),
            tokenizer: None,
        };
        train::<B>(cfg, &opts, device)
    }

    fn eval_file(&self, run: &RunDir) -> PathBuf {
        run.file(&eval_file_name(
            &self.plan.corpus.label(),
            seqpe_datasets::EvalSplit::Test,
            &self.lengths,
            self.plan.base.model.block_size,
        ))
    }

    fn eval_is_current(&self, e: &EvalReport) -> bool {
        e.results.iter().map(|r| r.length).collect::<Vec<_>>() == self.lengths
    }

    fn evaluate(&self, run: &RunDir, device: &B::Device) -> Result<EvalReport> {
        evaluate_run::<B::InnerBackend>(
            &run.root,
            &self.lengths,
            seqpe_datasets::EvalSplit::Test,
            &self.plan.corpus,
            seqpe_train::Precision::F32,
            device,
        )
    }
}

/// Trains (or reuses / resumes) and evaluates every encoding of the plan for every seed.
pub fn run_plan<B: AutodiffBackend>(
    plan: &ReportPlan,
    device: &B::Device,
) -> Result<Vec<MethodResult>> {
    let experiment = TextExperiment {
        plan,
        lengths: plan.lengths(),
    };
    let runner = Plan {
        methods: plan.pes.clone(),
        seeds: Seed::first(plan.seeds),
        runs: plan.runs.clone(),
        retrain: plan.retrain,
        finished_only: plan.finished_only,
    };
    crate::report::run_plan::<B, _>(&experiment, &runner, device)
}

/// The evaluated lengths (and the training length) of the page: the first outcome's.
fn lengths(results: &[MethodResult]) -> (Vec<usize>, usize) {
    results.first().map_or((vec![], 1), |m| {
        (
            m.eval.results.iter().map(|r| r.length).collect(),
            m.eval.train_length,
        )
    })
}

fn at(e: &EvalReport, n: usize) -> Option<&LengthResult> {
    e.results.iter().find(|r| r.length == n)
}

/// The perplexity table (rows: encodings; columns: lengths; mean ± sd over the seeds).
pub fn ppl_table(results: &[MethodResult], word: bool) -> String {
    let (lengths, train_len) = lengths(results);
    if results.is_empty() {
        return String::new();
    }
    let mut header = vec!["PE".to_string()];
    header.extend(lengths.iter().map(|n| format!("{n} ({}×)", n / train_len)));
    header.push("last / 1×".into());
    let value =
        |e: &EvalReport, n: usize| at(e, n).map(|r| if word { r.word_ppl } else { r.token_ppl });
    let rows: Vec<Vec<String>> = spread_rows(results, &lengths, value)
        .into_iter()
        .map(|(pe, cells)| {
            let mut row = vec![pe.to_string()];
            row.extend(cells.iter().map(|c| c.map_or("-".into(), |s| s.show(2))));
            row.push(
                match (
                    cells.first().copied().flatten(),
                    cells.last().copied().flatten(),
                ) {
                    (Some(a), Some(b)) => format!("{:+.1}%", 100.0 * (b.mean / a.mean - 1.0)),
                    _ => "-".into(),
                },
            );
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// SeqPE's test token perplexity minus every baseline's at each length, with where it wins,
/// loses and ties: the page's lead sentence and its section (both empty without a SeqPE run).
pub fn against_baselines(results: &[MethodResult]) -> (String, String) {
    let (lengths, train_len) = lengths(results);
    let columns: Vec<String> = lengths
        .iter()
        .map(|n| format!("{n} ({}×)", n / train_len))
        .collect();
    let Some(Against {
        legend,
        section,
        lead,
    }) = seqpe_against(
        results,
        &lengths,
        &columns,
        "length",
        |e, n| at(e, n).map(|r| r.token_ppl),
        Better::Lower,
        2,
    )
    else {
        return (String::new(), String::new());
    };
    (
        format!(
            "\n\n{}",
            crate::report::lead_paragraph(
                "test token perplexity",
                seeds_of(results),
                &format!(" {lead}")
            )
        ),
        format!(
            "## SeqPE against each baseline (test token perplexity)\n\n\
             SeqPE's perplexity minus the baseline's at each length ({legend}), from the table \
             above.\n\n{section}\n"
        ),
    )
}

/// Writes `<out>/text.md`, `<out>/text_ppl.png` and (with SeqPE) `<out>/text_regularizers.png`.
pub fn write_report(
    results: &[MethodResult],
    plan: &ReportPlan,
    out: &Path,
    command: &str,
    backend: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let (lengths_, _) = lengths(results);
    let series = spread_series(
        results,
        &lengths_,
        |n| n as f64,
        |pe| pe.to_string(),
        |e, n| at(e, n).map(|r| r.token_ppl),
    );
    line_chart(
        &out.join("text_ppl.png"),
        "Test perplexity vs evaluation length",
        "evaluation length (tokens)",
        "token perplexity",
        &series,
        true,
        true,
    )?;
    let seqpe_runs: Vec<(String, &Path)> = results
        .iter()
        .filter(|m| m.method.is_main_seqpe())
        .map(|m| (m.seed.label("seqpe"), m.run.as_path()))
        .collect();
    let reg_note = if regularizer_chart(&out.join("text_regularizers.png"), &seqpe_runs)? {
        "![SeqPE regularizers](text_regularizers.png)\n\nThe SeqPE run's regularizers over \
         training: the contrastive loss, the distillation loss (×100) and the share of contrastive \
         pivots whose nearest candidate scores highest (ranking accuracy).\n\n"
    } else {
        ""
    };
    let c = &plan.base;
    let (m, t) = (&c.model, &c.train);
    let mut columns: Vec<RunColumn<'_, PeKind, EvalReport>> = vec![
        (
            "train tokens/s",
            Box::new(|r: &MethodResult| format!("{:.0}", r.train.per_second)),
        ),
        (
            "best valid ppl (1×)",
            Box::new(|r: &MethodResult| best_valid_cell(&r.train, |p| format!("{p:.2}"))),
        ),
    ];
    columns.extend(diagnostic_columns());
    let timing = runs_table(results, |pe| pe.to_string(), "train s", columns);
    let (lead, against) = against_baselines(results);
    let md = format!(
        "# Text: perplexity beyond the training length\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`).{seeds}{lead}\n\n\
         **Setup.** Preset `{preset}`: GPT {layers}×{d} ({heads} heads), vocabulary {vocab} (BPE \
         trained on the training split), dropout {drop} (attention {adrop}), trained on {block}-token \
         blocks, batch {batch}, {steps} steps, AdamW lr {lr} (warm-up {warm}, linear decay), \
         weight decay {wd}. Corpus: {corpus}; train = Brown corpus + four Austen novels, \
         validation = *Northanger Abbey* (model selection), test = *Persuasion* (one long novel, \
         so long evaluation windows are real context).\n\n\
         **Methods.** `seqpe`: encoder width {sd} ({sh} head(s), {sl} layers, dropout {sdrop}), max \
         position {smax} ({digits} digits), `{inject}` injection (scale {sscale}, q/k init {init}), \
         {training}. \
         `ape`: learned table, linearly interpolated to longer inputs. `sin`: sinusoidal, added to the \
         token embeddings unscaled as in the reference (at initialisation a position vector has \
         norm √(d/2) = {sin_norm:.1} against about {tok_norm:.2} for a token embedding of std \
         0.02). `rope`: RoPE, base {rope}. `alibi`: {alibi}. `nope`: none.\n\n\
         **Protocol.** The test stream is cut into non-overlapping chunks of each length (last \
         partial chunk kept), every token scored. Model selection (best checkpoint) used the \
         validation perplexity at the training length only.\n\n\
         ## Token perplexity (test)\n\n{tok}\n\
         {against}\
         ## Word perplexity (test; words = tokens starting with `Ġ`)\n\n{word}\n\
         ![perplexity vs length](text_ppl.png)\n\n{reg_note}## Runs\n\n{timing}\n\
         `positions`: the mean cosine between the (mean-centred) position vectors of the \
         trained window and their effective rank (participation ratio), at the last validation — \
         how much position information the table carries (SeqPE: the encoder output; `ape`: the \
         learned table; `sin`: the fixed table).\n\n\
         ## Reproduce\n\n```sh\ncargo xtask fetch-data text\n{command}\n```\n\n\
         Finished runs and evaluations are reused; pass `--retrain` to train again.\n",
        date = today(),
        machine = machine(),
        seeds = seeds_sentence(seeds_of(results)),
        preset = c.preset,
        layers = m.n_layers,
        d = m.d_model,
        heads = m.n_heads,
        vocab = m.vocab_size,
        drop = m.dropout,
        adrop = m.attn_dropout,
        block = m.block_size,
        batch = t.batch_size,
        steps = t.steps,
        lr = t.lr,
        warm = t.warmup_steps,
        wd = t.weight_decay,
        corpus = plan.corpus.describe(),
        sd = m.seqpe.d_model,
        sh = m.seqpe.heads,
        sl = m.seqpe.layers,
        sdrop = m.seqpe.dropout,
        smax = m.seqpe.max_position,
        digits = seqpe_core::digits::max_digits_for(m.seqpe.max_position),
        inject = m.seqpe.inject,
        sscale = m.seqpe.scalar_scale,
        init = crate::report::seqpe_init_phrase(&m.seqpe),
        training = crate::report::seqpe_training_phrase(t),
        rope = m.rope_base,
        sin_norm = (m.d_model as f64 / 2.0).sqrt(),
        tok_norm = 0.02 * (m.d_model as f64).sqrt(),
        alibi = match m.alibi_form {
            seqpe_core::position::AlibiForm::Standard =>
                "standard slopes added after the 1/√d_h scaling (Press et al.)",
            seqpe_core::position::AlibiForm::Reference =>
                "the SeqPE reference's form (added before the 1/√d_h scaling)",
        },
        tok = ppl_table(results, false),
        word = ppl_table(results, true),
    );
    let path = out.join("text.md");
    std::fs::write(&path, md)?;
    Ok(path)
}
