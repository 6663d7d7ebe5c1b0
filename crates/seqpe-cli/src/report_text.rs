//! `report-text` and `demo`: one run per position encoding, evaluated at multiples of the training
//! length, written as a markdown table and a perplexity-vs-length plot.

use seqpe_train::Session;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use seqpe_core::PeKind;
use seqpe_text::config::TextConfig;
use seqpe_text::eval::{evaluate_run, CorpusSource, EvalReport};
use seqpe_text::train::{train, TrainOptions};
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;

use crate::plot::{line_chart, Series};
use crate::report::{
    cached_result, ensure_trained, last_table_stats, machine, markdown_table, regularizer_chart,
    seqpe_against, today, Better, SEQPE_ONLY_KEYS,
};

/// What to compare.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    pub base: TextConfig,
    pub pes: Vec<PeKind>,
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
    pub pe: PeKind,
    pub run: PathBuf,
    pub train: FitSummary,
    pub eval: EvalReport,
    pub eval_seconds: f64,
    pub reused: bool,
}

/// The fields of a text config that do not matter for a method (so its run is reused when only
/// they differ).
fn ignored_keys(pe: PeKind) -> Vec<&'static str> {
    let mut keys = vec!["model.vocab_size"];
    if pe != PeKind::SeqPe {
        keys.extend(SEQPE_ONLY_KEYS);
    }
    if pe != PeKind::Alibi {
        keys.push("model.alibi_form");
    }
    if pe != PeKind::Rope {
        keys.push("model.rope_base");
    }
    keys
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
    for &pe in &plan.pes {
        let mut cfg = plan.base.clone();
        cfg.model.pe = pe;
        let run = RunDir::new(plan.runs.join(format!("{}-{pe}", plan.prefix)));
        let (summary, reused) = ensure_trained(
            &run,
            &cfg,
            cfg.train.steps,
            &ignored_keys(pe),
            plan.retrain,
            |resume| {
                let opts = TrainOptions {
                    session: Session {
                        resume,
                        ..Session::fresh(&run.root)
                    },
                    corpus: plan.corpus.clone(),
                    tokenizer: None,
                };
                train::<B>(cfg.clone(), &opts, device)
            },
        )?;
        let eval_path = run.file(&format!("eval-{}-test.json", plan.corpus.label()));
        let cached = cached_result(&run, &eval_path, |e: &EvalReport| {
            e.results.iter().map(|r| r.length).collect::<Vec<_>>() == lengths
        });
        let (eval, eval_seconds) = match cached {
            Some(e) => {
                eprintln!("reusing {}", eval_path.display());
                (e, 0.0)
            }
            None => {
                eprintln!("evaluating {pe} at {lengths:?}");
                let t = Instant::now();
                let e = evaluate_run::<B::InnerBackend>(
                    &run.root,
                    &lengths,
                    "test",
                    &plan.corpus,
                    device,
                )?;
                seqpe_train::checkpoint::write_json(&eval_path, &e)?;
                (e, t.elapsed().as_secs_f64())
            }
        };
        out.push(MethodResult {
            pe,
            run: run.root.clone(),
            train: summary,
            eval,
            eval_seconds,
            reused,
        });
    }
    Ok(out)
}

/// The perplexity table (rows: methods; columns: lengths).
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
    header.push("last / 1×".into());
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|m| {
            let v =
                |r: &seqpe_text::eval::LengthResult| if word { r.word_ppl } else { r.token_ppl };
            let mut row = vec![m.pe.to_string()];
            row.extend(m.eval.results.iter().map(|r| format!("{:.2}", v(r))));
            row.push(match (m.eval.results.first(), m.eval.results.last()) {
                (Some(a), Some(b)) => format!("{:+.1}%", 100.0 * (v(b) / v(a) - 1.0)),
                _ => "-".into(),
            });
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// SeqPE's test token perplexity minus every baseline's at each length, with where it wins and
/// loses (empty without a SeqPE run).
pub fn against_baselines(results: &[MethodResult]) -> String {
    let Some(seqpe) = results.iter().find(|m| m.pe == PeKind::SeqPe) else {
        return String::new();
    };
    let train_len = seqpe.eval.train_length;
    let lengths: Vec<(usize, String)> = seqpe
        .eval
        .results
        .iter()
        .map(|r| {
            (
                r.length,
                format!("{} ({}×)", r.length, r.length / train_len),
            )
        })
        .collect();
    let others = results
        .iter()
        .filter(|m| m.pe != PeKind::SeqPe)
        .map(|m| (m.pe.to_string(), m));
    let ppl = |m: &MethodResult, n: usize| {
        let r = m.eval.results.iter().find(|r| r.length == n);
        r.map(|r| r.token_ppl)
    };
    format!(
        "## SeqPE against each baseline (test token perplexity)\n\n\
         SeqPE's perplexity minus the baseline's at each length (negative: SeqPE is better, \
         marked ✓), from the table above.\n\n{}\n",
        seqpe_against(seqpe, others, &lengths, ppl, Better::Lower, 2)
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
    let series: Vec<Series> = results
        .iter()
        .map(|m| Series {
            name: m.pe.to_string(),
            points: m
                .eval
                .results
                .iter()
                .map(|r| (r.length as f64, r.token_ppl))
                .collect(),
        })
        .collect();
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
        .filter(|m| m.pe == PeKind::SeqPe)
        .map(|m| ("seqpe".to_string(), m.run.as_path()))
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
    let mut timing = vec![];
    for r in results {
        let stats = last_table_stats(&r.run);
        timing.push(vec![
            r.pe.to_string(),
            format!("`{}`", r.run.display()),
            format!("{}", r.train.steps),
            format!("{:.0}", r.train.total_seconds),
            format!("{:.0}", r.train.per_second),
            r.train.best_valid.map_or("-".into(), |p| format!("{p:.2}")),
            stats.map_or("-".into(), |s| format!("{:.3} / {:.1}", s.0, s.1)),
            format!("{:.0}", r.eval_seconds),
            if r.reused { "reused" } else { "trained now" }.to_string(),
            r.train.backend.clone(),
        ]);
    }
    let timing = markdown_table(
        &[
            "PE",
            "run folder",
            "steps",
            "train s",
            "train tokens/s",
            "best valid ppl (1×)",
            "positions: mean cos / eff. rank",
            "eval s",
            "",
            "backend (last session)",
        ]
        .map(String::from),
        &timing,
    );
    let md = format!(
        "# Text: perplexity beyond the training length\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`).\n\n\
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
        against = against_baselines(results),
        word = ppl_table(results, true),
    );
    let path = out.join("text.md");
    std::fs::write(&path, md)?;
    Ok(path)
}
