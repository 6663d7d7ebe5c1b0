//! What every result page (`report-text`, `report-vision`, `report-qa`, `report-probes`)
//! shares.
//!
//! Where to start: [`runner`] is the one report runner (an [`Experiment`] per page, trained and
//! evaluated per method and seed by [`run_plan`], with the reuse rules in one place); [`spread`]
//! turns the outcomes of several seeds into mean ± sd and counts SeqPE's wins, losses and ties
//! against the spread. This module adds what the pages lay out: tables of outcomes, plot series
//! with bands, the machine description, the SeqPE recipe in words, and the training diagnostics
//! read back from a run's `metrics.jsonl`.

pub mod runner;
pub mod spread;

use std::path::Path;

use anyhow::Result;
use seqpe_train::FitSummary;

pub use runner::{
    cached_result, ensure_trained, run_plan, seqpe_only_keys, unread_keys, Compared, Experiment,
    Outcome, Plan, Seed,
};
pub use spread::{against_lead, against_legend, against_section, Better, Spread, Verdict};

use crate::plot::{line_chart, Series};

/// "N cores, CPU model, RAM" of this machine (from /proc on Linux).
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = crate::pytorch::cpu_model();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {:.0} GiB RAM", kb / 1024.0 / 1024.0)
        });
    format!("{cores} cores, {cpu}{mem_gib}")
}

/// A markdown table from a header and rows of cells.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}

/// The methods of a page's outcomes, in the order they first appear.
pub fn methods_of<M: Clone + PartialEq, E>(results: &[Outcome<M, E>]) -> Vec<M> {
    let mut methods: Vec<M> = Vec::new();
    for r in results {
        if !methods.contains(&r.method) {
            methods.push(r.method.clone());
        }
    }
    methods
}

/// Each method's figure at each of `points`, over its seeds: one row per method (in the order of
/// [`methods_of`]), one [`Spread`] per point (`None` where no seed has a value).
pub fn spread_rows<M: Clone + PartialEq, E, K: Copy>(
    results: &[Outcome<M, E>],
    points: &[K],
    value: impl Fn(&E, K) -> Option<f64>,
) -> Vec<(M, Vec<Option<Spread>>)> {
    methods_of(results)
        .into_iter()
        .map(|m| {
            let cells = points
                .iter()
                .map(|&k| {
                    let values: Vec<f64> = results
                        .iter()
                        .filter(|r| r.method == m)
                        .filter_map(|r| value(&r.eval, k))
                        .collect();
                    Spread::of(&values)
                })
                .collect();
            (m, cells)
        })
        .collect()
}

/// One plot line per method (named by `label`) through its means at `points` (placed at `x` of
/// the point), with a band of ± one standard deviation where it has several seeds.
pub fn spread_series<M: Clone + PartialEq, E, K: Copy>(
    results: &[Outcome<M, E>],
    points: &[K],
    x: impl Fn(K) -> f64,
    label: impl Fn(&M) -> String,
    value: impl Fn(&E, K) -> Option<f64>,
) -> Vec<Series> {
    spread_rows(results, points, value)
        .into_iter()
        .map(|(m, cells)| {
            let at: Vec<(f64, Spread)> = points
                .iter()
                .zip(cells)
                .filter_map(|(&k, c)| c.map(|s| (x(k), s)))
                .collect();
            Series {
                name: label(&m),
                points: at.iter().map(|(x, s)| (*x, s.mean)).collect(),
                band: if at.iter().any(|(_, s)| s.n > 1) {
                    at.iter()
                        .map(|(_, s)| (s.mean - s.sd, s.mean + s.sd))
                        .collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// A page's "SeqPE against each baseline", from [`seqpe_against`].
pub struct Against {
    /// What the differences and marks mean (a parenthesis for the sentence above the table).
    pub legend: String,
    /// The table of differences and one line per baseline ([`against_section`]).
    pub section: String,
    /// The same verdicts in one sentence for the page's first lines ([`against_lead`]).
    pub lead: String,
}

/// A page's "SeqPE against each baseline": the figure `value` of every method at each of
/// `points` (labelled by `columns`; `point` names one, "length" or "size") over its seeds, the
/// main SeqPE's row ([`Compared::is_main_seqpe`]) against every method that does not train
/// SeqPE, counted against the spread ([`against_section`]). `None` without a SeqPE run.
pub fn seqpe_against<M: Compared, E, K: Copy>(
    results: &[Outcome<M, E>],
    points: &[K],
    columns: &[String],
    point: &str,
    value: impl Fn(&E, K) -> Option<f64>,
    better: Better,
    decimals: usize,
) -> Option<Against> {
    let rows = spread_rows(results, points, value);
    let seqpe = rows.iter().find(|r| r.0.is_main_seqpe())?;
    let better_means = match better {
        Better::Lower => "negative: SeqPE is better",
        Better::Higher => "positive: SeqPE is better",
    };
    let others: Vec<(String, Vec<Option<Spread>>)> = rows
        .iter()
        .filter(|r| r.0.encoding() != seqpe_core::PeKind::SeqPe)
        .map(|r| (r.0.label(), r.1.clone()))
        .collect();
    let seeded = results.iter().any(|r| r.seed != Seed(1));
    Some(Against {
        legend: against_legend(seeded, better_means),
        section: against_section(columns, &seqpe.1, &others, better, decimals),
        lead: against_lead(columns, &seqpe.1, &others, better, decimals, point),
    })
}

/// A page's "What the numbers show" paragraph: the metric, how `seeds` seeds are summed up and
/// when a difference counts, then `body` (which brings its own separator: " " before a
/// sentence, a blank line before a list).
pub fn lead_paragraph(metric: &str, seeds: usize, body: &str) -> String {
    let legend = if seeds > 1 {
        format!(
            "mean ± sd over {seeds} seeds; a win or a loss only where the means differ by more \
             than the two standard deviations together, the rest a tie"
        )
    } else {
        "one seed, so every difference counts and none is yet a result".into()
    };
    format!("**What the numbers show** ({metric}, {legend}):{body}")
}

/// The seeds per method of a page, as a sentence for its first paragraph (empty for one seed).
pub fn seeds_sentence(seeds: usize) -> String {
    if seeds <= 1 {
        String::new()
    } else {
        format!(
            " {seeds} seeds per method (seed 1: the preset's `train.seed`; seed k ≥ 2: \
             `train.seed = k`); the tables show the mean ± sample standard deviation over the \
             seeds, the plots the mean with a band of ± one standard deviation."
        )
    }
}

/// The number of seeds of each method of a page, in the order of the methods.
pub fn seed_counts<M: Clone + PartialEq, E>(results: &[Outcome<M, E>]) -> Vec<usize> {
    methods_of(results)
        .iter()
        .map(|m| results.iter().filter(|r| &r.method == m).count())
        .collect()
}

/// The number of seeds of the first method of a page.
pub fn seeds_of<M: Clone + PartialEq, E>(results: &[Outcome<M, E>]) -> usize {
    methods_of(results)
        .first()
        .map_or(0, |m| results.iter().filter(|r| &r.method == m).count())
}

/// One column of a page's table of runs: its heading and its cell for one outcome.
pub type RunColumn<'a, M, E> = (&'a str, Box<dyn Fn(&Outcome<M, E>) -> String + 'a>);

/// The table of a page's runs (one row per method and seed): the method's label (with the seed
/// after the first), the run folder, the steps and the training seconds, then `columns`, then
/// whether the run was reused and the backend it last trained on.
pub fn runs_table<M, E>(
    results: &[Outcome<M, E>],
    label: impl Fn(&M) -> String,
    train_heading: &str,
    columns: Vec<RunColumn<'_, M, E>>,
) -> String {
    let mut header: Vec<String> = ["PE", "run folder", "steps", train_heading]
        .map(String::from)
        .to_vec();
    header.extend(columns.iter().map(|c| c.0.to_string()));
    header.extend(["".to_string(), "backend (last session)".to_string()]);
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let mut row = vec![
                r.seed.label(&label(&r.method)),
                format!("`{}`", r.run.display()),
                format!("{}", r.train.steps),
                format!("{:.0}", r.train.total_seconds),
            ];
            row.extend(columns.iter().map(|c| (c.1)(r)));
            row.push(if r.reused { "reused" } else { "trained now" }.to_string());
            row.push(r.train.backend.clone());
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// The two diagnostic columns every page's table of runs ends with: how distinct the run's
/// position vectors are at its last validation, and how long its evaluation took.
pub fn diagnostic_columns<'a, M: 'a, E: 'a>() -> Vec<RunColumn<'a, M, E>> {
    vec![
        (
            "positions: mean cos / eff. rank",
            Box::new(|r: &Outcome<M, E>| table_stats_cell(&r.run)),
        ),
        (
            "eval s",
            Box::new(|r: &Outcome<M, E>| format!("{:.0}", r.eval_seconds)),
        ),
    ]
}

/// The `positions: mean cos / eff. rank` cell of a run (`-` without a position table).
pub fn table_stats_cell(run: &Path) -> String {
    last_table_stats(run).map_or("-".into(), |s| format!("{:.3} / {:.1}", s.0, s.1))
}

/// The best validation figure of a run, formatted (`-` without one).
pub fn best_valid_cell(train: &FitSummary, show: impl Fn(f64) -> String) -> String {
    train.best_valid.map_or("-".into(), show)
}

/// How the SeqPE q/k projections start, in words.
pub fn seqpe_init_phrase(s: &seqpe_core::SeqPeSettings) -> String {
    let init = s
        .init_width
        .map_or("reference (std 0.02)".to_string(), |w| {
            format!("as the reference at width {w}")
        });
    if s.qk_bias == 0.0 {
        format!("{init}, q/k bias 0 as the reference")
    } else {
        format!(
            "{init}, q/k bias starting at {} (not the reference's 0: a CPU-scale choice, see \
             `ablations.md`)",
            s.qk_bias
        )
    }
}

/// The SeqPE regularizer and encoder-optimiser settings of a run, in words (the same sentence in
/// every report).
pub fn seqpe_training_phrase(t: &seqpe_train::TrainSettings) -> String {
    let r = &t.regularizer;
    format!(
        "contrastive {}×{} (weight {}), distillation {}×{} (weight {}), random shift rate {} ({} \
         windows per shifted step from a pool of {}), encoder lr ×{}",
        r.contrastive_batch,
        r.contrastive_candidates,
        r.contrastive_weight,
        r.distill_windows,
        r.distill_per_window,
        r.distill_weight,
        r.shift_rate,
        r.shift_windows,
        r.shift_pool,
        r.encoder_lr_scale
    )
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Every line of a run's `metrics.jsonl`.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `(step, value)` of a key over a run's log, averaged over windows of `every` steps.
pub fn logged(run: &Path, key: &str, every: usize) -> Vec<(f64, f64)> {
    let points: Vec<(f64, f64)> = metrics(run)
        .iter()
        .filter_map(|v| Some((v.get("step")?.as_f64()?, v.get(key)?.as_f64()?)))
        .collect();
    points
        .chunks(every.max(1))
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// The position-table distinctness at the run's last validation: (mean cosine, effective rank).
pub fn last_table_stats(run: &Path) -> Option<(f64, f64)> {
    metrics(run).iter().rev().find_map(|v| {
        Some((
            v.get("pe_mean_cos")?.as_f64()?,
            v.get("pe_effective_rank")?.as_f64()?,
        ))
    })
}

/// A chart of the SeqPE regularizers over training (contrastive loss, distillation loss ×100,
/// contrastive ranking accuracy) of the given runs; `false` when no run logged them.
pub fn regularizer_chart(path: &Path, runs: &[(String, &Path)]) -> Result<bool> {
    let mut series = Vec::new();
    for (label, run) in runs {
        for (key, name, scale) in [
            ("contrastive", "contrastive loss", 1.0),
            ("distill", "distillation loss ×100", 100.0),
            ("ranking_acc", "ranking accuracy", 1.0),
        ] {
            let points = logged(run, key, 50);
            if !points.is_empty() {
                series.push(Series::line(
                    format!("{label}: {name}"),
                    points.into_iter().map(|(x, y)| (x, y * scale)).collect(),
                ));
            }
        }
    }
    if series.is_empty() {
        return Ok(false);
    }
    line_chart(
        path,
        "SeqPE regularizers during training (means over 50 steps)",
        "step",
        "value",
        &series,
        false,
        false,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_date() {
        let t = markdown_table(&["a".into(), "b".into()], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
        assert!(machine().contains("cores"));
    }

    fn outcome(method: &str, seed: usize, value: f64) -> Outcome<String, f64> {
        Outcome {
            method: method.into(),
            seed: Seed(seed),
            run: std::path::PathBuf::from(format!("runs/{method}-{seed}")),
            train: FitSummary {
                steps: 1,
                final_loss: 0.0,
                metric: String::new(),
                best_valid: None,
                last_valid: None,
                seconds: 1.0,
                total_seconds: 1.0,
                unit: "tokens".into(),
                per_second: 1.0,
                train_examples: 1,
                epochs: 1.0,
                backend: String::new(),
            },
            eval: value,
            eval_seconds: 0.0,
            reused: true,
        }
    }

    #[test]
    fn outcomes_aggregate_per_method_over_seeds() {
        let results = vec![
            outcome("a", 1, 1.0),
            outcome("b", 1, 10.0),
            outcome("a", 2, 3.0),
            outcome("b", 2, 10.0),
        ];
        assert_eq!(methods_of(&results), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(seeds_of(&results), 2);
        let rows = spread_rows(&results, &[0usize], |e, _| Some(*e));
        let a = rows[0].1[0].unwrap();
        assert_eq!((a.mean, a.n), (2.0, 2));
        assert!((a.sd - 2f64.sqrt()).abs() < 1e-12);
        let series = spread_series(
            &results,
            &[7usize],
            |k| k as f64,
            |m| m.clone(),
            |e, _| Some(*e),
        );
        assert_eq!(series[0].points, vec![(7.0, 2.0)]);
        assert_eq!(series[0].band.len(), 1);
        let table = runs_table(&results, |m| m.clone(), "train s", vec![]);
        assert!(table.contains("| a (seed 2) | `runs/a-2` |"), "{table}");
        assert!(table.contains("| b | `runs/b-1` |"), "{table}");
    }
}
