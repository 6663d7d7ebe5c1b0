//! Helpers shared by the generated result pages (`report-text`, `report-vision`, `report-qa`):
//! the machine description, markdown tables, reusing finished runs and their evaluations, and the
//! training diagnostics read back from a run's `metrics.jsonl`.

use std::path::Path;

use anyhow::{bail, Result};
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::plot::{line_chart, Series};

/// "N cores, CPU model, RAM" of this machine (from /proc on Linux).
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
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

/// Which way a report's metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Perplexity.
    Lower,
    /// Accuracy.
    Higher,
}

/// SeqPE against every other method at each evaluation point, from the numbers of a report's
/// own table: a table of SeqPE's value minus the other's (✓ where SeqPE is better), then one line
/// per method saying where SeqPE wins and loses. `columns` name the points; `seqpe` and every
/// other row have one value per column (`None`: not evaluated there).
pub fn against_section(
    columns: &[String],
    seqpe: &[Option<f64>],
    others: &[(String, Vec<Option<f64>>)],
    better: Better,
    decimals: usize,
) -> String {
    let mut header = vec!["SeqPE − …".to_string()];
    header.extend(columns.iter().cloned());
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (name, values) in others {
        let mut row = vec![format!("`{name}`")];
        let (mut wins, mut losses) = (Vec::new(), Vec::new());
        for (i, col) in columns.iter().enumerate() {
            let (Some(a), Some(b)) = (
                seqpe.get(i).copied().flatten(),
                values.get(i).copied().flatten(),
            ) else {
                row.push("-".into());
                continue;
            };
            let d = a - b;
            let seqpe_better = match better {
                Better::Lower => d < 0.0,
                Better::Higher => d > 0.0,
            };
            row.push(format!(
                "{d:+.decimals$}{}",
                if seqpe_better { " ✓" } else { "" }
            ));
            if seqpe_better {
                wins.push(col.clone());
            } else {
                losses.push(col.clone());
            }
        }
        rows.push(row);
        lines.push(match (wins.is_empty(), losses.is_empty()) {
            (_, true) => format!("* better than `{name}` at every point"),
            (true, false) => format!("* **not better than `{name}` at any point**"),
            (false, false) => format!(
                "* better than `{name}` at {}; **not better at {}**",
                wins.join(", "),
                losses.join(", ")
            ),
        });
    }
    format!("{}\n{}\n", markdown_table(&header, &rows), lines.join("\n"))
}

/// [`against_section`] for a report's methods: `points` are the evaluation points (a key such as a
/// length or a size, and its column label), `value` reads a method's figure at a key.
pub fn seqpe_against<'a, M: 'a, K: Copy>(
    seqpe: &M,
    others: impl IntoIterator<Item = (String, &'a M)>,
    points: &[(K, String)],
    value: impl Fn(&M, K) -> Option<f64>,
    better: Better,
    decimals: usize,
) -> String {
    let values = |m: &M| -> Vec<Option<f64>> { points.iter().map(|p| value(m, p.0)).collect() };
    let columns: Vec<String> = points.iter().map(|p| p.1.clone()).collect();
    let others: Vec<(String, Vec<Option<f64>>)> = others
        .into_iter()
        .map(|(name, m)| (name, values(m)))
        .collect();
    against_section(&columns, &values(seqpe), &others, better, decimals)
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

/// Config fields that only SeqPE runs use (its encoder and regularizers): a baseline's run is
/// reused when only these differ.
pub const SEQPE_ONLY_KEYS: [&str; 20] = [
    "model.seqpe_d_model",
    "model.seqpe_heads",
    "model.seqpe_layers",
    "model.seqpe_max_position",
    "model.seqpe_dropout",
    "model.seqpe_inject",
    "model.seqpe_per_layer",
    "model.seqpe_qk_bias",
    "model.seqpe_scalar_scale",
    "model.seqpe_init_width",
    "train.contrastive_weight",
    "train.distill_weight",
    "train.shift_rate",
    "train.shift_pool",
    "train.contrastive_batch",
    "train.contrastive_candidates",
    "train.distill_windows",
    "train.distill_per_window",
    "train.shift_windows",
    "train.encoder_lr_scale",
];

/// The `section.field`s whose values differ between two configurations (saved → planned).
fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn collect(path: &str, x: Option<&Value>, y: Option<&Value>, out: &mut Vec<String>) {
        match (x.and_then(Value::as_object), y.and_then(Value::as_object)) {
            (Some(fx), Some(fy)) => {
                for key in fx.keys().chain(fy.keys().filter(|k| !fx.contains_key(*k))) {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    collect(&path, fx.get(key), fy.get(key), out);
                }
            }
            _ if matches!((x, y), (Some(p), Some(q)) if same_settings(p, q)) => {}
            _ => {
                let show = |v: Option<&Value>| v.map_or("absent".into(), |v| v.to_string());
                out.push(format!("{path}: {} → {}", show(x), show(y)));
            }
        }
    }
    let mut keys = Vec::new();
    collect("", Some(a), Some(b), &mut keys);
    keys
}

/// Equal configurations, numbers compared to float32 precision (a setting that went through an
/// `f32` reads back as 0.05000000074505806 where the preset says 0.05).
fn same_settings(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-30),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_settings(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_settings(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod settings_tests {
    use serde_json::json;

    #[test]
    fn settings_compare_to_float32_precision_and_name_what_differs() {
        let a = json!({"train": {"weight_decay": 0.05, "steps": 10}});
        let b = json!({"train": {"weight_decay": 0.05000000074505806, "steps": 10}});
        assert!(super::same_settings(&a, &b));
        let c = json!({"train": {"weight_decay": 0.1, "steps": 10}});
        assert!(!super::same_settings(&a, &c));
        assert_eq!(
            super::differing_keys(&a, &c),
            vec!["train.weight_decay: 0.05 → 0.1".to_string()]
        );
    }
}

/// The JSON of a config with the given top-level-section keys removed (`"model.vocab_size"`), to
/// compare a planned config with a saved one where some fields are filled from the data.
fn without(value: &serde_json::Value, ignore: &[&str]) -> serde_json::Value {
    let mut v = value.clone();
    for key in ignore {
        if let Some((section, field)) = key.split_once('.') {
            if let Some(obj) = v.get_mut(section).and_then(|s| s.as_object_mut()) {
                obj.remove(field);
            }
        }
    }
    v
}

/// Trains the run of a report (or reuses it). A finished run (its `summary.json` at the planned
/// step count) is reused; an unfinished one is resumed; a folder holding another configuration is
/// an error unless `retrain` (which starts it again). `ignore` lists the `section.field`s that
/// may differ (filled from the data, or irrelevant to this method). Returns the summary and
/// whether the run was reused.
pub fn ensure_trained<C: Serialize + DeserializeOwned>(
    run: &RunDir,
    planned: &C,
    steps: usize,
    ignore: &[&str],
    retrain: bool,
    train: impl FnOnce(bool) -> Result<FitSummary>,
) -> Result<(FitSummary, bool)> {
    if retrain && run.root.exists() {
        std::fs::remove_dir_all(&run.root)?;
    }
    if run.config().is_file() {
        let saved: serde_json::Value = run.read_config()?;
        let planned = serde_json::to_value(planned)?;
        let (saved, planned) = (without(&saved, ignore), without(&planned, ignore));
        if !same_settings(&saved, &planned) {
            bail!(
                "{} holds a run with other settings than this report's ({}); pass --retrain \
                 to replace it or --runs to use another folder",
                run.root.display(),
                differing_keys(&saved, &planned).join(", ")
            );
        }
    }
    let summary_path = run.file("summary.json");
    if summary_path.is_file() {
        let s: FitSummary = seqpe_train::checkpoint::read_json(&summary_path)?;
        if s.steps == steps {
            eprintln!("reusing {}", run.root.display());
            return Ok((s, true));
        }
    }
    eprintln!("training {}", run.root.display());
    Ok((train(run.latest().is_some())?, false))
}

/// A saved result (an evaluation) of a run, if it is newer than the run's weights and `accept`s
/// the request, so regenerating a report does not evaluate again.
pub fn cached_result<T: DeserializeOwned>(
    run: &RunDir,
    path: &Path,
    accept: impl Fn(&T) -> bool,
) -> Option<T> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let weights = [
        run.best().join("model.mpk"),
        run.checkpoint().join("model.mpk"),
    ]
    .into_iter()
    .filter_map(|p| modified(&p))
    .max()?;
    if modified(path)? < weights {
        return None;
    }
    let value: T = seqpe_train::checkpoint::read_json(path).ok()?;
    accept(&value).then_some(value)
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
                series.push(Series {
                    name: format!("{label}: {name}"),
                    points: points.into_iter().map(|(x, y)| (x, y * scale)).collect(),
                });
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
    fn comparing_configs_ignores_only_the_listed_fields() {
        let a = serde_json::json!({"model": {"pe": "ape", "vocab_size": 300}, "train": {"lr": 1}});
        let b = serde_json::json!({"model": {"pe": "ape", "vocab_size": 290}, "train": {"lr": 1}});
        let c = serde_json::json!({"model": {"pe": "ape", "vocab_size": 290}, "train": {"lr": 2}});
        assert_eq!(
            without(&a, &["model.vocab_size"]),
            without(&b, &["model.vocab_size"])
        );
        assert_ne!(
            without(&a, &["model.vocab_size"]),
            without(&c, &["model.vocab_size"])
        );
    }

    #[test]
    fn seqpe_against_the_others_reads_the_table_both_ways() {
        let cols = ["1×".to_string(), "2×".to_string()];
        let others = vec![
            ("ape".to_string(), vec![Some(12.0), Some(11.0)]),
            ("nope".to_string(), vec![Some(9.0), None]),
        ];
        let ppl = against_section(&cols, &[Some(10.0), Some(12.5)], &others, Better::Lower, 1);
        assert!(ppl.contains("| `ape` | -2.0 ✓ | +1.5 |"), "{ppl}");
        assert!(ppl.contains("| `nope` | +1.0 | - |"), "{ppl}");
        assert!(ppl.contains("* better than `ape` at 1×; **not better at 2×**"));
        assert!(ppl.contains("* **not better than `nope` at any point**"));
        // the same numbers as accuracies: the verdicts turn round
        let acc = against_section(&cols, &[Some(10.0), Some(12.5)], &others, Better::Higher, 1);
        assert!(acc.contains("| `ape` | -2.0 | +1.5 ✓ |"), "{acc}");
        assert!(acc.contains("* better than `nope` at every point"));
        // a tie is not a win
        let tie = against_section(&cols[..1], &[Some(9.0)], &others[1..], Better::Lower, 1);
        assert!(
            tie.contains("**not better than `nope` at any point**"),
            "{tie}"
        );
    }

    #[test]
    fn table_and_date() {
        let t = markdown_table(&["a".into(), "b".into()], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
        assert!(machine().contains("cores"));
    }
}
