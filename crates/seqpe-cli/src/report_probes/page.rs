//! `probes.md`: a table, a plot, checks and SeqPE against each baseline per probe, led by what
//! the numbers show.

use std::path::{Path, PathBuf};

use anyhow::Result;
use seqpe_core::PeKind;
use seqpe_probes::config::{GridProbeConfig, Probe, SequenceProbeConfig};
use seqpe_probes::run::ProbeEval;
use seqpe_train::run::RunDir;

use super::results::{at, column, points, ProbeMethod, ProbeResult};
use super::twin::{twin_section, TwinRun};
use crate::plot::line_chart;
use crate::report::{
    best_valid_cell, diagnostic_columns, machine, markdown_table, runs_table, seed_counts,
    seeds_sentence, seqpe_against, spread_rows, spread_series, today, Against, Better, Compared,
    RunColumn, Verdict,
};

/// The accuracy table of a probe in %: per-token accuracy of greedy answers (sequences) or
/// top-1 (grids); `exact`: whole-answer exact match instead (sequences).
pub fn accuracy_table(probe: Probe, results: &[ProbeResult], exact: bool) -> String {
    let pts = points(results);
    let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
    let mut header = vec!["PE".to_string()];
    header.extend(pts.iter().map(|p| column(p, probe)));
    let value = |e: &ProbeEval, k: usize| {
        at(e, k).and_then(|p| {
            if exact {
                p.exact_match.map(|x| 100.0 * x)
            } else {
                Some(100.0 * p.accuracy)
            }
        })
    };
    let rows: Vec<Vec<String>> = spread_rows(results, &keys, value)
        .into_iter()
        .map(|(m, cells)| {
            let mut row = vec![m.label()];
            row.extend(cells.iter().map(|c| c.map_or("-".into(), |s| s.show(1))));
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// SeqPE (over (row, col) for the grids) against every other method at each point, counted
/// against the spread.
fn against_baselines(probe: Probe, results: &[ProbeResult]) -> String {
    let pts = points(results);
    let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
    let columns: Vec<String> = pts.iter().map(|p| column(p, probe)).collect();
    let Some(Against {
        legend, section, ..
    }) = seqpe_against(
        results,
        &keys,
        &columns,
        "point",
        |e, k| at(e, k).map(|p| 100.0 * p.accuracy),
        Better::Higher,
        1,
    )
    else {
        return String::new();
    };
    format!("SeqPE's accuracy minus the baseline's, in points ({legend}):\n\n{section}\n")
}

/// The page's checks of a probe, from its own table: whether some encoding learned the probe
/// at the training size (≥ 95 %), SeqPE's gap to the best there, and (relative probe) whether
/// NoPE sits at chance.
fn checks(probe: Probe, results: &[ProbeResult]) -> String {
    let pts = points(results);
    let Some(trained) = pts.iter().find(|p| p.trained) else {
        return String::new();
    };
    let rows = spread_rows(results, &[trained.key], |e, k| {
        at(e, k).map(|p| 100.0 * p.accuracy)
    });
    let mut lines = Vec::new();
    let best = rows
        .iter()
        .filter_map(|r| r.1[0].map(|s| (r.0.label(), s)))
        .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
    if let Some((label, s)) = &best {
        lines.push(format!(
            "* learnable: the best encoding at the training size is `{label}` with {} % ({})",
            s.show(1),
            if s.mean >= 95.0 {
                "≥ 95 %: the probe is learned at this budget"
            } else {
                "**below 95 %: no encoding learned the probe at this budget**"
            }
        ));
        if let Some(sq) = rows
            .iter()
            .find(|r| r.0.is_main_seqpe())
            .and_then(|r| r.1[0])
        {
            let gap = s.mean - sq.mean;
            lines.push(format!(
                "* SeqPE at the training size: {} %, {gap:.1} points below the best{}",
                sq.show(1),
                match (gap <= 2.0, probe.sequence().is_some()) {
                    (true, _) => " (within 2 points)".to_string(),
                    (false, sequence) =>
                        format!(
                        " (**more than 2 points**: `docs/reference-notes.md`, {}, give what was \
                         measured about the cause)",
                        if sequence { "notes 22–23" } else { "notes 21, 24 and 25" }
                    ),
                }
            ));
            if let (Some(nope), true) = (
                rows.iter()
                    .find(|r| r.0.pe == PeKind::None)
                    .and_then(|r| r.1[0]),
                probe.sequence().is_some(),
            ) {
                lines.push(format!(
                    "* NoPE at the training size: {} % (a causal model can count positions); \
                     SeqPE {}",
                    nope.show(1),
                    match sq.against(&nope, Better::Higher) {
                        Verdict::Better => "is above it",
                        Verdict::Worse => "is below it",
                        Verdict::Tie => "ties with it (within the two spreads)",
                    }
                ));
            }
        }
    }
    if probe == Probe::Relative {
        if let Some(nope) = rows
            .iter()
            .find(|r| r.0.pe == PeKind::None)
            .and_then(|r| r.1[0])
        {
            lines.push(format!(
                "* NoPE at the training size: {} % against 25 % chance ({})",
                nope.show(1),
                if (nope.mean - 25.0).abs() <= 10.0 {
                    "within 10 points: the task needs positions"
                } else {
                    "**more than 10 points from chance: the task leaks position through content**"
                }
            ));
        }
    }
    lines.join("\n") + "\n"
}

/// What each encoding sees at the larger sizes of a probe, in words.
fn positions_note(probe: Probe, train_len: usize, grid: usize) -> String {
    match probe.grid() {
        None => format!(
            "Positions at test: every encoding is run at positions 0…2n (up to {} for the \
             longest strings); `seqpe` encodes the new positions' digits (trained on windows \
             shifted over its whole trained range, see below); `ape` has {} rows and is linearly \
             interpolated to the longer inputs (as in the text runs); `sin`, `rope`, `alibi` \
             apply their formulas; `nope` has no positions (the causal mask alone).",
            2 * 8 * train_len,
            2 * train_len + 1
        ),
        Some(_) => format!(
            "Positions at test: a G×G image is G×G tokens after a CLS; `seqpe` encodes (row, col) \
             digits of the larger grid, `seqpe (dims 1)` the flat index row·G + col (so a wider \
             grid renumbers every row); `ape`'s {grid}×{grid} table is resized bicubically; `sin` \
             and `rope` use the flat index; `rope2d` and `rope-mixed` rotate by (row, col); `nope` \
             has no positions (the model is then blind to any rearrangement of the pixels)."
        ),
    }
}

/// The page's first lines: per probe, SeqPE at the training size against the best encoding, and
/// beyond it, against each baseline, the points where it is better, tied (within the two
/// spreads) or worse.
fn summary(sections: &[(Probe, Vec<ProbeResult>)]) -> String {
    let mut lines = Vec::new();
    for (probe, results) in sections {
        let pts = points(results);
        let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
        let rows = spread_rows(results, &keys, |e, k| at(e, k).map(|p| 100.0 * p.accuracy));
        let Some(seqpe) = rows.iter().find(|r| r.0.is_main_seqpe()) else {
            continue;
        };
        let trained = pts.iter().position(|p| p.trained).unwrap_or(0);
        let best = rows
            .iter()
            .filter_map(|r| r.1[trained].map(|s| (r.0.label(), s)))
            .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
        let head = match (seqpe.1[trained], best) {
            (Some(sq), Some((label, b))) => format!(
                "at the training size SeqPE {} % (best: `{label}` {} %)",
                sq.show(1),
                b.show(1)
            ),
            _ => "no SeqPE result at the training size".into(),
        };
        let beyond: Vec<String> = rows
            .iter()
            .filter(|r| r.0 != seqpe.0)
            .map(|(m, cells)| {
                let (mut b, mut t, mut w) = (0, 0, 0);
                for (i, (a, o)) in seqpe.1.iter().zip(cells).enumerate() {
                    if i == trained {
                        continue;
                    }
                    if let (Some(a), Some(o)) = (a, o) {
                        match a.against(o, Better::Higher) {
                            Verdict::Better => b += 1,
                            Verdict::Tie => t += 1,
                            Verdict::Worse => w += 1,
                        }
                    }
                }
                format!("`{}` {b}/{t}/{w}", m.label())
            })
            .collect();
        lines.push(format!(
            "* `{probe}`: {head}; beyond it, SeqPE better / tied / worse than {}.",
            beyond.join(", ")
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    let seeds = sections
        .iter()
        .map(|(_, results)| crate::report::seeds_of(results))
        .max()
        .unwrap_or(0);
    format!(
        "{}\n\n",
        crate::report::lead_paragraph("test accuracy", seeds, &format!("\n\n{}", lines.join("\n")))
    )
}

/// Writes `<out>/probes.md` and one `probes_<probe>.png` per probe.
pub fn write_report(
    sections: &[(Probe, Vec<ProbeResult>)],
    twin: &[TwinRun],
    out: &Path,
    command: &str,
    backend: &str,
    wall: f64,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let mut body = String::new();
    for (probe, results) in sections {
        let probe = *probe;
        let Some(first) = results.first() else {
            continue;
        };
        let pts = points(results);
        let keys: Vec<usize> = pts.iter().map(|p| p.key).collect();
        let png = format!("probes_{probe}.png");
        let series = spread_series(
            results,
            &keys,
            |k| k as f64,
            |m| m.label(),
            |e, k| at(e, k).map(|p| 100.0 * p.accuracy),
        );
        let (x_label, title) = match probe.grid() {
            Some(_) => (
                "grid side (pixels = tokens per axis)",
                "top-1 (%) vs grid size",
            ),
            None => (
                "longest string of the bin (symbols)",
                "answer token accuracy (%) vs string length",
            ),
        };
        line_chart(
            &out.join(&png),
            &format!("{probe}: {title}"),
            x_label,
            "accuracy (%)",
            &series,
            true,
            false,
        )?;
        let run0 = RunDir::new(&first.run);
        let setup = match probe.grid() {
            None => {
                let c: SequenceProbeConfig = run0.read_config()?;
                let (p, m, t) = (&c.probe, &c.model, &c.train);
                format!(
                    "**Setup.** Strings of 1–{l} symbols over an alphabet of {a} (uniform), a \
                     separator, then the answer; loss on the answer and end token only. GPT \
                     {layers}×{d} ({heads} heads, no dropout), batch {batch}, {steps} steps \
                     (every example new), AdamW lr {lr} (warm-up {warm}, {decay:?} decay), \
                     clipping {clip}; the best checkpoint by greedy token accuracy on {nv} \
                     validation strings of 1–{l} symbols. Test: greedy decoding of exactly n \
                     tokens, {ne} strings per bin (lengths evenly spread over the bin). SeqPE: \
                     encoder width {sd}, `{inject}`, trained range {range} = the reference's \
                     20,000 / 512 ≈ 39 positions per window token × the {win}-token window \
                     (rounded to hundreds), random-shift rate {rate} from a pool of {pool} \
                     windows, regularizer batches {cb}×{cc} / {dw}×{dp} and weights {wct} / \
                     {wkd}, contrastive window {cw} (the reference's 256 per 512-token window).\
                     \n\n{pos}\n\n",
                    cw = t
                        .regularizer
                        .contrastive_window
                        .map_or("256".to_string(), |w| w.to_string()),
                    cb = t.regularizer.contrastive_batch,
                    cc = t.regularizer.contrastive_candidates,
                    dw = t.regularizer.distill_windows,
                    dp = t.regularizer.distill_per_window,
                    l = p.train_len,
                    a = p.alphabet,
                    layers = m.n_layers,
                    d = m.d_model,
                    heads = m.n_heads,
                    batch = t.batch_size,
                    steps = t.steps,
                    lr = t.lr,
                    warm = t.warmup_steps,
                    decay = t.decay,
                    clip = t.grad_clip,
                    nv = p.valid_examples,
                    ne = p.eval_examples,
                    sd = m.seqpe.d_model,
                    inject = m.seqpe.inject,
                    range = m.seqpe.max_position,
                    win = m.block_size,
                    rate = t.regularizer.shift_rate,
                    pool = t.regularizer.shift_pool,
                    wct = t.regularizer.contrastive_weight,
                    wkd = t.regularizer.distill_weight,
                    pos = positions_note(probe, p.train_len, 0),
                )
            }
            Some(_) => {
                let c: GridProbeConfig = run0.read_config()?;
                let (p, m, t) = (&c.probe, &c.model, &c.train);
                format!(
                    "**Setup.** {g}×{g} images of noise (N(0, {noise}²) in each of {ch} \
                     channels per pixel), a mark adding {amp} to its own channel; one pixel = \
                     one token (patch 1). ViT {layers}×{d} ({heads} heads, no dropout), CLS \
                     head; during training every patch token also regresses its own normalised \
                     (row, col) through a linear head (weight {aux}; without it the ViT sits at \
                     chance on a symmetric saddle, `scripts/PROBES-FINDINGS.md`; the targets are \
                     the same for every image and are not used at test; SeqPE's random-shift \
                     steps, whose positions are not the image's, skip the term, \
                     `docs/reference-notes.md` note 25), batch {batch}, {steps} \
                     steps (every image new), AdamW lr {lr} \
                     (warm-up {warm}, {decay:?} decay), clipping {clip}; the best checkpoint by \
                     top-1 on {nv} validation images. Test: {ne} images per size. SeqPE: \
                     encoder width {sd}, `{inject}` with {proj} q/k projection(s), trained range \
                     {range} per axis = the reference's 100 per axis / 14 patches ≈ 7.1 × the \
                     {g}-pixel side (rounded), random-shift rate {rate} from a pool of {pool} \
                     windows, regularizer batches {cb}×{cc} / {dw}×{dp} and weights {wct} / \
                     {wkd}.\n\n{pos}\n\n",
                    cb = t.regularizer.contrastive_batch,
                    cc = t.regularizer.contrastive_candidates,
                    dw = t.regularizer.distill_windows,
                    dp = t.regularizer.distill_per_window,
                    g = p.grid,
                    noise = p.noise,
                    ch = p.channels,
                    amp = p.amp,
                    aux = p.aux_weight,
                    layers = m.n_layers,
                    d = m.d_model,
                    heads = m.n_heads,
                    batch = t.batch_size,
                    steps = t.steps,
                    lr = t.lr,
                    warm = t.warmup_steps,
                    decay = t.decay,
                    clip = t.grad_clip,
                    nv = p.valid_examples,
                    ne = p.eval_examples,
                    sd = m.seqpe.d_model,
                    inject = m.seqpe.inject,
                    proj = if m.seqpe.per_layer {
                        "per-layer"
                    } else {
                        "one shared"
                    },
                    range = m.seqpe.max_position,
                    rate = t.regularizer.shift_rate,
                    pool = t.regularizer.shift_pool,
                    wct = t.regularizer.contrastive_weight,
                    wkd = t.regularizer.distill_weight,
                    pos = positions_note(probe, 0, p.grid),
                )
            }
        };
        let what = match probe {
            Probe::Copy => "Repeat a random string after a separator.",
            Probe::Reverse => "Repeat a random string backwards after a separator.",
            Probe::Relative => {
                "Is mark A left of, right of, above or below mark B (on one row or column)? \
                 The answer means the same at every grid size; chance is 25 %."
            }
            Probe::Quadrant => {
                "Which quadrant of the image holds the one mark? A question about absolute \
                 position; chance is 25 %."
            }
        };
        let exact = if probe.sequence().is_some() {
            format!(
                "Whole answers exactly right (%):\n\n{}\n",
                accuracy_table(probe, results, true)
            )
        } else {
            String::new()
        };
        let mut columns: Vec<RunColumn<'_, ProbeMethod, ProbeEval>> = vec![
            (
                "train ex/s",
                Box::new(|r: &ProbeResult| format!("{:.0}", r.train.per_second)),
            ),
            (
                "best valid %",
                Box::new(|r: &ProbeResult| {
                    best_valid_cell(&r.train, |p| format!("{:.1}", 100.0 * p))
                }),
            ),
        ];
        columns.extend(diagnostic_columns());
        let runs = runs_table(results, |m: &ProbeMethod| m.label(), "train s", columns);
        body += &format!(
            "## `{probe}`\n\n{what}\n\n{setup}\
             {metric} (%), test:\n\n{table}\n{exact}\
             ![{probe}]({png})\n\n### Checks\n\n{checks}\n\
             ### SeqPE against each baseline\n\n{against}\n{twin}\
             <details><summary>Runs</summary>\n\n{runs}\n</details>\n\n",
            metric = if probe.grid().is_some() {
                "Top-1 accuracy"
            } else {
                "Per-token accuracy of the greedy answers"
            },
            table = accuracy_table(probe, results, false),
            checks = checks(probe, results),
            against = against_baselines(probe, results),
            twin = twin_section(probe, results, twin),
        );
    }
    // seeds per method over the whole page (a report still in progress has some methods at
    // fewer seeds than others)
    let counts: Vec<usize> = sections
        .iter()
        .flat_map(|(_, results)| seed_counts(results))
        .collect();
    let (fewest, most) = (
        counts.iter().copied().min().unwrap_or(1),
        counts.iter().copied().max().unwrap_or(1),
    );
    let md = format!(
        "# Position probes: tasks that need positions, trained short and tested long\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`; this invocation: \
         {wall:.0} s, finished runs and evaluations reused).{seeds_line}\n\n{summary}\
         Each probe's answer depends on where its tokens are, so an encoding that carries no \
         usable position information cannot learn it, and testing beyond the training length \
         or grid shows whether what an encoding learned extrapolates (Ruoss et al. 2023). \
         Settings were fixed before the runs from the PyTorch twin's measurements \
         (`scripts/PROBES-FINDINGS.md`); model selection uses validation data of the training \
         size only, and every number below is on test examples no run trained on (the same \
         examples for every encoding and seed).\n\n{body}\
         ## Reproduce\n\n```sh\n{command}\n```\n\n\
         Finished runs and evaluations are reused; pass `--retrain` to train again. \
         `cargo xtask probe-data --probe P --out FILE` writes a probe's examples, and \
         `python3 scripts/probe_twin.py --task P --data FILE` trains the PyTorch twin on them.\n",
        date = today(),
        machine = machine(),
        summary = summary(sections),
        seeds_line = match (fewest, most) {
            (_, 0 | 1) => " One seed per method.".to_string(),
            (a, b) if a == b => seeds_sentence(b),
            (a, b) => format!(
                " **In progress: {a} to {b} seeds per method** (seed 1: the preset's \
                 `train.seed`; seed k ≥ 2: `train.seed = k`; the runs tables list them); the \
                 tables show the mean ± sample standard deviation over the seeds a method has, \
                 the plots the mean with a band of ± one standard deviation; a method at one \
                 seed has no spread, so its differences count as they are."
            ),
        },
    );
    let path = out.join("probes.md");
    std::fs::write(&path, md)?;
    Ok(path)
}
