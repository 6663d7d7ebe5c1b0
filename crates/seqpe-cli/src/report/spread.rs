//! Figures over seeds: [`Spread`] (mean ± sample standard deviation) and the "SeqPE against each
//! baseline" section, which counts a win or a loss only where two means differ by more than the
//! two standard deviations together and calls the rest a tie.

use super::markdown_table;

/// Which way a page's metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Perplexity.
    Lower,
    /// Accuracy.
    Higher,
}

/// One figure over seeds: its mean, its sample standard deviation (0 for one seed) and the
/// number of seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
}

impl Spread {
    /// The spread of `values` (`None` when there are none).
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Self { mean, sd, n })
    }

    /// `12.34` for one seed, `12.34 ± 0.56` for several.
    pub fn show(&self, decimals: usize) -> String {
        if self.n > 1 {
            format!("{:.decimals$} ± {:.decimals$}", self.mean, self.sd)
        } else {
            format!("{:.decimals$}", self.mean)
        }
    }

    /// How `self` compares with `other`: better or worse only where the means differ by more
    /// than `self.sd + other.sd` (with one seed each: any difference).
    pub fn against(&self, other: &Spread, better: Better) -> Verdict {
        let d = self.mean - other.mean;
        let margin = self.sd + other.sd;
        let ahead = match better {
            Better::Lower => -d,
            Better::Higher => d,
        };
        if ahead > margin {
            Verdict::Better
        } else if -ahead > margin {
            Verdict::Worse
        } else {
            Verdict::Tie
        }
    }
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    /// The means differ by no more than the two spreads (or not at all).
    Tie,
}

/// SeqPE against every other method at each evaluation point, from the figures of a page's own
/// table: a table of SeqPE's mean minus the other's, then one line per method saying where SeqPE
/// wins, loses and ties. `columns` name the points; `seqpe` and every other row have one
/// [`Spread`] per column (`None`: not evaluated there).
///
/// With one seed everywhere, a difference is a win (✓) or not ("not better"), as before seeds
/// existed; with several, a difference within the two spreads is a tie (≈) and only the rest
/// are wins (✓) and losses (✗).
pub fn against_section(
    columns: &[String],
    seqpe: &[Option<Spread>],
    others: &[(String, Vec<Option<Spread>>)],
    better: Better,
    decimals: usize,
) -> String {
    let seeded = is_seeded(seqpe, others);
    let mut header = vec!["SeqPE − …".to_string()];
    header.extend(columns.iter().cloned());
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for c in compare(columns.len(), seqpe, others, better) {
        let mut row = vec![format!("`{}`", c.name)];
        for cell in &c.cells {
            row.push(match *cell {
                None => "-".into(),
                Some((d, verdict)) => {
                    let mark = match (verdict, seeded) {
                        (Verdict::Better, _) => " ✓",
                        (Verdict::Worse, true) => " ✗",
                        (Verdict::Tie, true) => " ≈",
                        (_, false) => "",
                    };
                    format!("{d:+.decimals$}{mark}")
                }
            });
        }
        rows.push(row);
        let (wins, losses, ties) = c.split(columns, seeded);
        let name = &c.name;
        lines.push(if seeded {
            let mut parts = Vec::new();
            if !wins.is_empty() {
                parts.push(format!("better at {}", wins.join(", ")));
            }
            if !losses.is_empty() {
                parts.push(format!("**worse at {}**", losses.join(", ")));
            }
            if !ties.is_empty() {
                parts.push(format!("tied (within the spread) at {}", ties.join(", ")));
            }
            format!("* against `{name}`: {}", parts.join("; "))
        } else {
            match (wins.is_empty(), losses.is_empty()) {
                (_, true) => format!("* better than `{name}` at every point"),
                (true, false) => format!("* **not better than `{name}` at any point**"),
                (false, false) => format!(
                    "* better than `{name}` at {}; **not better at {}**",
                    wins.join(", "),
                    losses.join(", ")
                ),
            }
        });
    }
    format!("{}\n{}\n", markdown_table(&header, &rows), lines.join("\n"))
}

/// The verdicts of [`against_section`] in one sentence, for a page's first lines: SeqPE's
/// figure at the first and last point, then the methods it beats, ties and trails at every
/// `point` (a noun: "length", "size"), and where it does which against the rest. With one seed
/// a tie is "not better", as in the section.
pub fn against_lead(
    columns: &[String],
    seqpe: &[Option<Spread>],
    others: &[(String, Vec<Option<Spread>>)],
    better: Better,
    decimals: usize,
    point: &str,
) -> String {
    let seeded = is_seeded(seqpe, others);
    let shown: Vec<String> = columns
        .iter()
        .zip(seqpe)
        .filter_map(|(c, s)| s.map(|s| format!("{} at {c}", s.show(decimals))))
        .collect();
    let mut parts = Vec::new();
    match shown.as_slice() {
        [] => return String::new(),
        [one] => parts.push(format!("SeqPE {one}")),
        [first, .., last] => parts.push(format!("SeqPE {first}, {last}")),
    }
    let (mut all_better, mut all_worse, mut all_tied) = (Vec::new(), Vec::new(), Vec::new());
    // the rest: the baselines that share a clause, and the clause
    let mut mixed: Vec<(Vec<String>, String)> = Vec::new();
    for c in compare(columns.len(), seqpe, others, better) {
        let (wins, losses, ties) = c.split(columns, seeded);
        let name = format!("`{}`", c.name);
        match (wins.is_empty(), losses.is_empty(), ties.is_empty()) {
            (true, true, true) => {}
            (false, true, true) => all_better.push(name),
            (true, false, true) => all_worse.push(name),
            (true, true, false) => all_tied.push(name),
            _ => {
                let mut said = Vec::new();
                let worse = if seeded { "worse" } else { "not better" };
                for (what, at) in [("better", wins), (worse, losses), ("tied", ties)] {
                    if !at.is_empty() {
                        said.push(format!("{what} at {}", at.join(", ")));
                    }
                }
                // baselines with the same verdicts at every point share one clause
                let said = said.join(", ");
                match mixed.iter_mut().find(|(_, s)| *s == said) {
                    Some((names, _)) => names.push(name),
                    None => mixed.push((vec![name], said)),
                }
            }
        }
    }
    let worse = if seeded {
        ("worse than", "every")
    } else {
        ("not better than", "any")
    };
    for ((what, every), names) in [
        (("better than", "every"), all_better),
        (("tied with", "every"), all_tied),
        (worse, all_worse),
    ] {
        if !names.is_empty() {
            parts.push(format!("{what} {} at {every} {point}", and_list(&names)));
        }
    }
    parts.extend(
        mixed
            .into_iter()
            .map(|(names, said)| format!("against {} {said}", and_list(&names))),
    );
    format!("{}.", parts.join("; "))
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Whether any figure of a comparison comes from several seeds.
fn is_seeded(seqpe: &[Option<Spread>], others: &[(String, Vec<Option<Spread>>)]) -> bool {
    seqpe
        .iter()
        .chain(others.iter().flat_map(|o| o.1.iter()))
        .flatten()
        .any(|s| s.n > 1)
}

/// SeqPE against one other method: the difference of the means and the verdict at each point
/// (`None` where either was not evaluated).
struct Comparison {
    name: String,
    cells: Vec<Option<(f64, Verdict)>>,
}

impl Comparison {
    /// The columns where SeqPE wins, loses and ties; with one seed a tie counts as a loss ("not
    /// better").
    fn split(&self, columns: &[String], seeded: bool) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut wins, mut losses, mut ties) = (Vec::new(), Vec::new(), Vec::new());
        for (col, cell) in columns.iter().zip(&self.cells) {
            match (cell.map(|c| c.1), seeded) {
                (None, _) => {}
                (Some(Verdict::Better), _) => wins.push(col.clone()),
                (Some(Verdict::Tie), true) => ties.push(col.clone()),
                _ => losses.push(col.clone()),
            }
        }
        (wins, losses, ties)
    }
}

fn compare(
    points: usize,
    seqpe: &[Option<Spread>],
    others: &[(String, Vec<Option<Spread>>)],
    better: Better,
) -> Vec<Comparison> {
    others
        .iter()
        .map(|(name, values)| Comparison {
            name: name.clone(),
            cells: (0..points)
                .map(|i| {
                    let a = seqpe.get(i).copied().flatten()?;
                    let b = values.get(i).copied().flatten()?;
                    Some((a.mean - b.mean, a.against(&b, better)))
                })
                .collect(),
        })
        .collect()
}

/// The sentence under an "against" table saying what its marks mean.
pub fn against_legend(seeded: bool, better_means: &str) -> String {
    if seeded {
        format!(
            "mean over the seeds ({better_means}); ✓ marks SeqPE better and ✗ worse by more \
             than the two standard deviations together, ≈ a tie within them"
        )
    } else {
        format!("{better_means}, marked ✓")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: f64) -> Option<Spread> {
        Spread::of(&[v])
    }

    #[test]
    fn mean_and_sample_sd_by_hand() {
        // 2, 4, 9: mean 5, deviations -3 -1 4, squares 9 1 16 = 26, /2 = 13
        let s = Spread::of(&[2.0, 4.0, 9.0]).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 5.0).abs() < 1e-12);
        assert!((s.sd - 13f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.show(2), "5.00 ± 3.61");
        assert_eq!(Spread::of(&[7.25]).unwrap().show(1), "7.2");
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn seqpe_against_the_others_reads_the_table_both_ways() {
        let cols = ["1×".to_string(), "2×".to_string()];
        let others = vec![
            ("ape".to_string(), vec![one(12.0), one(11.0)]),
            ("nope".to_string(), vec![one(9.0), None]),
        ];
        let seqpe = [one(10.0), one(12.5)];
        let ppl = against_section(&cols, &seqpe, &others, Better::Lower, 1);
        assert!(ppl.contains("| `ape` | -2.0 ✓ | +1.5 |"), "{ppl}");
        assert!(ppl.contains("| `nope` | +1.0 | - |"), "{ppl}");
        assert!(ppl.contains("* better than `ape` at 1×; **not better at 2×**"));
        assert!(ppl.contains("* **not better than `nope` at any point**"));
        // the same numbers as accuracies: the verdicts turn round
        let acc = against_section(&cols, &seqpe, &others, Better::Higher, 1);
        assert!(acc.contains("| `ape` | -2.0 | +1.5 ✓ |"), "{acc}");
        assert!(acc.contains("* better than `nope` at every point"));
        // a tie is not a win
        let tie = against_section(&cols[..1], &[one(9.0)], &others[1..], Better::Lower, 1);
        assert!(
            tie.contains("**not better than `nope` at any point**"),
            "{tie}"
        );
    }

    #[test]
    fn with_seeds_only_differences_beyond_both_spreads_count() {
        // a hand-computed table (perplexity, lower is better), three seeds each:
        // SeqPE  1×: 10, 11, 12 → 11 ± 1     2×: 20, 20, 20 → 20 ± 0
        // ape    1×: 14, 15, 16 → 15 ± 1     2×: 19, 21, 23 → 21 ± 2
        // nope   1×:  7,  8,  9 →  8 ± 1     2×: 25, 26, 27 → 26 ± 1
        let s = |v: [f64; 3]| Spread::of(&v);
        let seqpe = [s([10.0, 11.0, 12.0]), s([20.0, 20.0, 20.0])];
        let others = vec![
            (
                "ape".to_string(),
                vec![s([14.0, 15.0, 16.0]), s([19.0, 21.0, 23.0])],
            ),
            (
                "nope".to_string(),
                vec![s([7.0, 8.0, 9.0]), s([25.0, 26.0, 27.0])],
            ),
        ];
        let cols = ["1×".to_string(), "2×".to_string()];
        let page = against_section(&cols, &seqpe, &others, Better::Lower, 1);
        // ape: 1× −4 beyond 1 + 1 → win; 2× −1 within 0 + 2 → tie
        assert!(page.contains("| `ape` | -4.0 ✓ | -1.0 ≈ |"), "{page}");
        assert!(
            page.contains("* against `ape`: better at 1×; tied (within the spread) at 2×"),
            "{page}"
        );
        // nope: 1× +3 beyond 2 → loss; 2× −6 beyond 1 → win
        assert!(page.contains("| `nope` | +3.0 ✗ | -6.0 ✓ |"), "{page}");
        assert!(
            page.contains("* against `nope`: better at 2×; **worse at 1×**"),
            "{page}"
        );
        // the same verdicts in the page's lead sentence
        let lead = against_lead(&cols, &seqpe, &others, Better::Lower, 1, "length");
        assert_eq!(
            lead,
            "SeqPE 11.0 ± 1.0 at 1×, 20.0 ± 0.0 at 2×; against `ape` better at 1×, tied at 2×; \
             against `nope` better at 2×, worse at 1×."
        );
        // baselines with the same verdicts everywhere share one clause
        let twins = vec![others[0].clone(), ("sin".to_string(), others[0].1.clone())];
        assert_eq!(
            against_lead(&cols, &seqpe, &twins, Better::Lower, 1, "length"),
            "SeqPE 11.0 ± 1.0 at 1×, 20.0 ± 0.0 at 2×; against `ape` and `sin` better at 1×, \
             tied at 2×."
        );
        // a method tied at every point is named once; one seed makes a tie "not better"
        let tied = vec![(
            "sin".to_string(),
            vec![s([9.0, 11.0, 13.0]), s([18.0, 20.0, 22.0])],
        )];
        assert_eq!(
            against_lead(&cols, &seqpe, &tied, Better::Lower, 1, "length"),
            "SeqPE 11.0 ± 1.0 at 1×, 20.0 ± 0.0 at 2×; tied with `sin` at every length."
        );
        let single = vec![("sin".to_string(), vec![one(11.0), one(21.0)])];
        assert_eq!(
            against_lead(
                &cols,
                &[one(11.0), one(20.0)],
                &single,
                Better::Lower,
                1,
                "size"
            ),
            "SeqPE 11.0 at 1×, 20.0 at 2×; against `sin` better at 2×, not better at 1×."
        );
        // exactly at the margin is a tie, not a win
        let a = Spread::of(&[1.0, 3.0]).unwrap(); // 2 ± 1.414
        let b = Spread::of(&[4.0 + 2f64.sqrt() * 2.0]).unwrap();
        assert_eq!(a.against(&b, Better::Lower), Verdict::Better);
        let c = Spread::of(&[2.0 + 2f64.sqrt()]).unwrap();
        assert_eq!(a.against(&c, Better::Lower), Verdict::Tie);
    }
}
