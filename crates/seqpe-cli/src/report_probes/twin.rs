//! The PyTorch twin's results (`scripts/probe_twin_all.sh` writes them), read and set beside
//! ours.

use std::path::Path;

use anyhow::Result;
use seqpe_core::PeKind;
use seqpe_probes::config::Probe;

use super::results::{at, column, points, ProbeResult};
use crate::report::{markdown_table, Spread};

/// One run of the PyTorch twin (a line of `scripts/probe_twin_all.sh`'s output): its probe,
/// encoding, seed and accuracy at each point (the bin's longest string, or the grid side).
#[derive(Debug, Clone, PartialEq)]
pub struct TwinRun {
    pub probe: String,
    pub pe: String,
    pub seed: u64,
    pub accuracy: Vec<(usize, f64)>,
}

/// The twin's runs in `path` (none when the file does not exist); a line that is not a twin
/// result is an error naming the file and the line.
pub fn read_twin(path: &Path) -> Result<Vec<TwinRun>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut runs = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || {
            anyhow::anyhow!(
                "{} line {}: not a result line of scripts/probe_twin.py (re-run \
                 scripts/probe_twin_all.sh or remove the line)",
                path.display(),
                i + 1
            )
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad())?;
        let text_of = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        let (Some(probe), Some(pe), Some(seed), Some(results)) = (
            text_of("task"),
            text_of("pe"),
            v.get("seed").and_then(|s| s.as_u64()),
            v.get("results").and_then(|r| r.as_object()),
        ) else {
            return Err(bad());
        };
        let mut accuracy = Vec::new();
        for (key, r) in results {
            // 1-D bins are "lo-hi", 2-D grids "G"
            let point = key.rsplit('-').next().and_then(|k| k.parse().ok());
            let acc = r
                .get("token_acc")
                .or_else(|| r.get("acc"))
                .and_then(|a| a.as_f64());
            match (point, acc) {
                (Some(p), Some(a)) => accuracy.push((p, a)),
                _ => return Err(bad()),
            }
        }
        accuracy.sort_by_key(|p| p.0);
        runs.push(TwinRun {
            probe,
            pe,
            seed,
            accuracy,
        });
    }
    Ok(runs)
}

/// Ours against the PyTorch twin on one probe: APE and NoPE at the training point and the
/// farthest one, mean ± sd over each side's seeds.
pub(super) fn twin_section(probe: Probe, results: &[ProbeResult], twin: &[TwinRun]) -> String {
    let pts = points(results);
    let (Some(first), Some(last)) = (pts.iter().find(|p| p.trained), pts.last()) else {
        return String::new();
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (pe, name) in [(PeKind::Learned, "ape"), (PeKind::None, "nope")] {
        let runs: Vec<&TwinRun> = twin
            .iter()
            .filter(|t| t.probe == probe.name() && t.pe == name)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let theirs = |key: usize| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|t| t.accuracy.iter().find(|a| a.0 == key).map(|a| 100.0 * a.1))
                .collect();
            Spread::of(&v)
        };
        let ours = |key: usize| {
            let v: Vec<f64> = results
                .iter()
                .filter(|r| {
                    r.method.pe == pe && r.method.dims == if probe.grid().is_some() { 2 } else { 1 }
                })
                .filter_map(|r| at(&r.eval, key).map(|p| 100.0 * p.accuracy))
                .collect();
            Spread::of(&v)
        };
        let cell =
            |s: Option<Spread>| s.map_or("-".into(), |s| format!("{} (n {})", s.show(1), s.n));
        for p in [first, last] {
            let (a, b) = (ours(p.key), theirs(p.key));
            if p.trained {
                if let (Some(a), Some(b)) = (a, b) {
                    let d = a.mean - b.mean;
                    notes.push(format!(
                        "`{pe}` at the training size: ours {} − twin {} = {d:+.1} points, {}",
                        a.show(1),
                        b.show(1),
                        if d.abs() <= a.sd + b.sd + 1.0 {
                            "within the two spreads (+1 point)"
                        } else {
                            "**beyond the two spreads**"
                        }
                    ));
                }
            }
            rows.push(vec![format!("`{pe}`"), column(p, probe), cell(a), cell(b)]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "### The PyTorch twin\n\n`scripts/probe_twin.py` is an independent PyTorch model of the \
         same size trained with the same budget on exactly our examples (`cargo xtask \
         probe-data` writes them; `scripts/probe_twin_all.sh` runs it): accuracy %, mean ± sd \
         over the seeds (n).\n\n{}\n{}\n\n",
        markdown_table(
            &["PE", "point", "ours", "PyTorch twin"].map(String::from),
            &rows
        ),
        notes
            .iter()
            .map(|n| format!("* {n}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_lines_are_read_by_point_and_bad_ones_name_their_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("twin.jsonl");
        assert!(
            read_twin(&path).unwrap().is_empty(),
            "no file: no twin runs"
        );
        std::fs::write(
            &path,
            concat!(
                r#"{"task": "copy", "pe": "ape", "seed": 2, "results": {"0-16": {"token_acc": 1.0, "exact": 1.0, "n": 200}, "16-32": {"token_acc": 0.5, "exact": 0.0, "n": 200}}}"#,
                "\n\n",
                r#"{"task": "relative", "pe": "nope", "seed": 1, "results": {"8": {"acc": 0.25, "n": 400}, "32": {"acc": 0.2, "n": 400}}}"#,
                "\n"
            ),
        )
        .unwrap();
        let runs = read_twin(&path).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[0],
            TwinRun {
                probe: "copy".into(),
                pe: "ape".into(),
                seed: 2,
                accuracy: vec![(16, 1.0), (32, 0.5)],
            }
        );
        assert_eq!(runs[1].accuracy, vec![(8, 0.25), (32, 0.2)]);
        std::fs::write(&path, "{\"task\": \"copy\"}\nnot json\n").unwrap();
        let err = read_twin(&path).unwrap_err().to_string();
        assert!(err.contains("twin.jsonl line 1"), "{err}");
    }
}
