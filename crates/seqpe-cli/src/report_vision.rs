//! `report-vision`: one run per position encoding (plus, optionally, the SeqPE `dims = 1`
//! ablation), evaluated at several resolutions, written as `docs/results/vision.md` with an
//! accuracy-vs-resolution plot and PE-similarity heatmaps.

use seqpe_train::Session;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use seqpe_core::PeKind;
use seqpe_train::config::RunConfig;
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_vision::config::VisionConfig;
use seqpe_vision::data::ImageSource;
use seqpe_vision::eval::{evaluate_run, load_run, similarity_map, EvalReport};
use seqpe_vision::train::{train, TrainOptions};
use serde::{Deserialize, Serialize};

use crate::plot::{heatmaps, line_chart, Heatmap, Series};
use crate::report::{
    cached_result, ensure_trained, last_table_stats, machine, markdown_table, regularizer_chart,
    today, SEQPE_ONLY_KEYS,
};

/// The run folder name of a method: `vision-<preset>-<pe>[-dims1]`.
pub fn run_folder_name(preset: &str, pe: PeKind, dims: usize) -> String {
    if dims == 1 {
        format!("vision-{preset}-{pe}-dims1")
    } else {
        format!("vision-{preset}-{pe}")
    }
}

/// One method of a report: a position encoding and the coordinates it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    pub pe: PeKind,
    pub dims: usize,
}

impl Method {
    pub fn label(&self) -> String {
        if self.dims == 1 {
            format!("{} (dims 1)", self.pe)
        } else {
            self.pe.to_string()
        }
    }
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    /// The preset with the user's overrides (pe and dims are set per method).
    pub base: VisionConfig,
    pub methods: Vec<Method>,
    /// Evaluation sizes in pixels.
    pub sizes: Vec<usize>,
    /// Test images per size (0 = all).
    pub test_images: usize,
    /// Run folders are `<runs>/vision-<preset>-<pe>[-dims1]`.
    pub runs: PathBuf,
    pub source: ImageSource,
    /// Train again even when a finished run exists.
    pub retrain: bool,
}

/// One method's outcome.
#[derive(Debug, Clone)]
pub struct MethodResult {
    pub method: Method,
    pub run: PathBuf,
    pub train: FitSummary,
    pub eval: EvalReport,
    pub eval_seconds: f64,
    pub reused: bool,
}

/// The config of one method of the plan.
pub fn method_config(plan: &ReportPlan, method: &Method) -> Result<VisionConfig> {
    let mut cfg = plan.base.clone();
    cfg.model.pe = method.pe;
    cfg.model.dims = method.dims;
    cfg.validate()?;
    Ok(cfg)
}

/// The fields of a vision config that do not matter for a method or are filled from the data.
fn ignored_keys(pe: PeKind) -> Vec<&'static str> {
    let mut keys = vec![
        "model.channels",
        "model.num_classes",
        "data.mean",
        "data.std",
        "data.eval_sizes",
        "data.eval_images",
    ];
    if pe != PeKind::SeqPe {
        keys.extend(SEQPE_ONLY_KEYS);
    }
    if !matches!(pe, PeKind::Rope | PeKind::Rope2d | PeKind::RopeMixed) {
        keys.push("model.rope_base");
    }
    keys
}

/// Trains (or reuses / resumes) and evaluates every method of the plan.
pub fn run_plan<B: AutodiffBackend>(
    plan: &ReportPlan,
    device: &B::Device,
) -> Result<Vec<MethodResult>> {
    let mut out = Vec::new();
    for method in &plan.methods {
        let cfg = method_config(plan, method)?;
        let run = RunDir::new(
            plan.runs
                .join(run_folder_name(&cfg.preset, method.pe, method.dims)),
        );
        let (summary, reused) = ensure_trained(
            &run,
            &cfg,
            cfg.train.steps,
            &ignored_keys(method.pe),
            plan.retrain,
            |resume| {
                let opts = TrainOptions {
                    session: Session {
                        resume,
                        ..Session::fresh(&run.root)
                    },
                    source: plan.source.clone(),
                };
                train::<B>(cfg.clone(), &opts, device)
            },
        )?;
        let eval_path = run.file(&format!("eval-{}-test.json", plan.source.label()));
        let cached = cached_result(&run, &eval_path, |e: &EvalReport| {
            let want = if plan.test_images == 0 {
                e.test_split_images
            } else {
                plan.test_images.min(e.test_split_images)
            };
            let sizes: Vec<usize> = e.results.iter().map(|r| r.size).collect();
            sizes == plan.sizes && e.results.iter().all(|r| r.images == want)
        });
        let (eval, eval_seconds) = match cached {
            Some(e) => {
                eprintln!("reusing {}", eval_path.display());
                let secs = e.results.iter().map(|r| r.seconds).sum();
                (e, secs)
            }
            None => {
                eprintln!("evaluating {} at {:?}", method.label(), plan.sizes);
                let t = Instant::now();
                let eval = evaluate_run::<B::InnerBackend>(
                    &run.root,
                    &plan.sizes,
                    &plan.source,
                    plan.test_images,
                    device,
                )?;
                seqpe_train::checkpoint::write_json(&eval_path, &eval)?;
                (eval, t.elapsed().as_secs_f64())
            }
        };
        out.push(MethodResult {
            method: method.clone(),
            run: run.root.clone(),
            train: summary,
            eval,
            eval_seconds,
            reused,
        });
    }
    Ok(out)
}

/// The top-1 table (rows: methods; columns: sizes).
pub fn accuracy_table(results: &[MethodResult]) -> String {
    let Some(first) = results.first() else {
        return String::new();
    };
    let mut header = vec!["PE".to_string()];
    header.extend(first.eval.results.iter().map(|r| {
        format!(
            "{} px ({}×{}{})",
            r.size,
            r.grid,
            r.grid,
            if r.size == first.eval.train_size {
                ", train"
            } else {
                ""
            }
        )
    }));
    let last = first.eval.results.last().map_or(0, |r| r.size);
    header.push(format!("{last} px / {} px", first.eval.train_size));
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|m| {
            let mut row = vec![m.method.label()];
            row.extend(
                m.eval
                    .results
                    .iter()
                    .map(|r| format!("{:.1}", 100.0 * r.top1)),
            );
            let at = |size: usize| {
                m.eval
                    .results
                    .iter()
                    .find(|r| r.size == size)
                    .map(|r| r.top1)
            };
            row.push(match (at(m.eval.train_size), at(last)) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                _ => "-".into(),
            });
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// The 2-D SeqPE run's test top-1 minus every baseline's at each size, with where it wins and
/// loses (empty without one; the `--dims 1` ablation is not a baseline).
pub fn against_baselines(results: &[MethodResult]) -> String {
    let is_seqpe = |m: &MethodResult| m.method.pe == PeKind::SeqPe;
    let Some(seqpe) = results.iter().find(|m| is_seqpe(m) && m.method.dims != 1) else {
        return String::new();
    };
    let sizes: Vec<(usize, String)> = seqpe
        .eval
        .results
        .iter()
        .map(|r| (r.size, format!("{} px ({}×{})", r.size, r.grid, r.grid)))
        .collect();
    let others = results
        .iter()
        .filter(|m| !is_seqpe(m))
        .map(|m| (m.method.label(), m));
    let top1 = |m: &MethodResult, size: usize| {
        let r = m.eval.results.iter().find(|r| r.size == size);
        r.map(|r| 100.0 * r.top1)
    };
    format!(
        "### SeqPE against each baseline (test top-1)\n\n\
         SeqPE's accuracy minus the baseline's at each size, in points (positive: SeqPE is \
         better, marked ✓), from the table above.\n\n{}\n",
        crate::report::seqpe_against(
            seqpe,
            others,
            &sizes,
            top1,
            crate::report::Better::Higher,
            1
        )
    )
}

/// Similarity panels (centre patch vs every patch, mean-centred cosine) of one run at the
/// trained grid and at `large` patches per axis, plus the smallest *raw* cosine over both grids;
/// `None` when its encoding has no per-position vectors.
pub fn similarity_panels<B: burn::tensor::backend::Backend>(
    run: &Path,
    label: &str,
    large: usize,
    device: &B::Device,
) -> Result<Option<(Vec<Heatmap>, f32)>> {
    let (cfg, model) = load_run::<B>(&RunDir::new(run), device)?;
    let train_side = cfg.model.train_side();
    let mut panels = Vec::new();
    let mut raw_min = f32::MAX;
    for (side, note) in [(train_side, "trained"), (large, "extrapolated")] {
        let c = side / 2;
        let Some(values) = similarity_map(&model, side, c, c, true)? else {
            return Ok(None);
        };
        if let Some(raw) = similarity_map(&model, side, c, c, false)? {
            raw_min = raw.into_iter().fold(raw_min, f32::min);
        }
        panels.push(Heatmap {
            title: format!("{label} {side}x{side} ({note}), patch ({c},{c})"),
            rows: side,
            cols: side,
            values,
        });
    }
    Ok(Some((panels, raw_min)))
}

/// One protocol of the report: a plan and its results.
pub struct Section {
    pub plan: ReportPlan,
    pub results: Vec<MethodResult>,
}

/// What a preset's protocol is, for the section heading.
fn protocol(c: &VisionConfig) -> String {
    let m = &c.model;
    let side = m.train_side();
    let largest = c
        .data
        .eval_sizes
        .iter()
        .max()
        .copied()
        .unwrap_or(m.image_size);
    if c.preset == "small-native" || largest <= 28 && m.image_size < 28 {
        format!(
            "native detail: trained on images downsampled to {} px (patch {}, {side}×{side}); \
             larger test sizes come closer to the native 28 px, so they carry real detail",
            m.image_size, m.patch
        )
    } else {
        format!(
            "upsampling: trained at {} px (patch {}, {side}×{side}); larger test sizes are \
             bilinear enlargements of the 28 px images (no new detail, and a patch covers less \
             of the object)",
            m.image_size, m.patch
        )
    }
}

/// The markdown and plots of one section; files are named with `tag`.
fn section_markdown<B: burn::tensor::backend::Backend>(
    sec: &Section,
    tag: &str,
    out: &Path,
    device: &B::Device,
) -> Result<(String, Vec<PathBuf>)> {
    let (plan, results) = (&sec.plan, &sec.results);
    let mut pngs = Vec::new();
    let acc_png = out.join(format!("vision_accuracy{tag}.png"));
    let series: Vec<Series> = results
        .iter()
        .map(|m| Series {
            name: m.method.label(),
            points: m
                .eval
                .results
                .iter()
                .map(|r| (r.size as f64, 100.0 * r.top1))
                .collect(),
        })
        .collect();
    line_chart(
        &acc_png,
        &format!(
            "Top-1 vs test resolution (trained at {} px)",
            plan.base.model.image_size
        ),
        &format!("test image size (px, patch {})", plan.base.model.patch),
        "top-1 accuracy (%)",
        &series,
        false,
        false,
    )?;
    pngs.push(acc_png.clone());

    // PE similarity: SeqPE (2-D) and, for comparison, the bicubically resized APE table
    let large = plan.sizes.iter().max().copied().unwrap_or(0) / plan.base.model.patch;
    let mut panels = Vec::new();
    let mut raw = Vec::new();
    let mut heat_note = String::new();
    for (pe, label) in [(PeKind::SeqPe, "SeqPE"), (PeKind::Learned, "APE")] {
        if let Some(m) = results
            .iter()
            .find(|m| m.method.pe == pe && m.method.dims == 2)
        {
            if let Some((p, raw_min)) = similarity_panels::<B>(&m.run, label, large, device)? {
                panels.extend(p);
                raw.push(format!("{label} {raw_min:.3}"));
            }
        }
    }
    if !panels.is_empty() {
        let name = format!("vision_similarity{tag}.png");
        heatmaps(&out.join(&name), &panels, -1.0, 1.0)?;
        heat_note = format!(
            "![PE similarity]({name})\n\n\
             Cosine similarity between the position vector of the centre patch and every other \
             patch (blue = −1, red = +1) after subtracting the grid's mean vector, left to \
             right: {}. For SeqPE the vectors are the encoder outputs for the (row, col) digits \
             of each patch (the table the per-layer q/k projections read); for APE they are the \
             learned table, resized bicubically to the larger grid. Without the centring, the \
             smallest cosine to the centre patch over both grids is: {} (a value near 1 means \
             the vectors share a dominant common component and differ little between \
             positions).\n\n",
            panels
                .iter()
                .map(|p| p.title.clone())
                .collect::<Vec<_>>()
                .join("; "),
            raw.join(", ")
        );
        pngs.push(out.join(name));
    }
    let seqpe_runs: Vec<(String, &Path)> = results
        .iter()
        .filter(|m| m.method.pe == PeKind::SeqPe)
        .map(|m| (m.method.label(), m.run.as_path()))
        .collect();
    let reg_name = format!("vision_regularizers{tag}.png");
    let reg_note = if regularizer_chart(&out.join(&reg_name), &seqpe_runs)? {
        pngs.push(out.join(&reg_name));
        format!(
            "![SeqPE regularizers]({reg_name})\n\nThe SeqPE runs' regularizers over training: \
             contrastive loss, distillation loss (×100), ranking accuracy.\n\n"
        )
    } else {
        String::new()
    };

    let c = &plan.base;
    let m = &c.model;
    let t = &c.train;
    let mut timing = vec![];
    for res in results {
        let stats = last_table_stats(&res.run);
        timing.push(vec![
            res.method.label(),
            format!("`{}`", res.run.display()),
            format!("{}", res.train.steps),
            format!("{:.0}", res.train.total_seconds),
            format!("{:.1}", res.train.per_second),
            res.train
                .best_valid
                .map_or("-".into(), |p| format!("{:.1}", 100.0 * p)),
            stats.map_or("-".into(), |s| format!("{:.3} / {:.1}", s.0, s.1)),
            format!("{:.0}", res.eval_seconds),
            if res.reused { "reused" } else { "trained now" }.to_string(),
            res.train.backend.clone(),
        ]);
    }
    let timing = markdown_table(
        &[
            "PE",
            "run folder",
            "steps",
            "train s",
            "train img/s",
            &format!("best valid top-1 % ({} px)", m.image_size),
            "positions: mean cos / eff. rank",
            "eval s",
            "",
            "backend (last session)",
        ]
        .map(String::from),
        &timing,
    );
    let side = m.train_side();
    let train_n = results.first().map_or(0, |r| r.train.train_examples);
    let test_n = results.first().map_or(0, |r| r.eval.test_split_images);
    let md = format!(
        "## Preset `{preset}` — protocol: {protocol}\n\n\
         **Setup.** {data}. ViT {layers} layers × width {d} ({heads} heads, MLP \
         ratio {mlp}), patch {patch}, trained at {size} px = {side}×{side} patches plus a CLS \
         token; batch {batch}, {steps} steps ({images} training images seen, about {epochs:.2} \
         epochs of {train_n} images), AdamW lr {lr} (warm-up {warm} steps from {ws}, cosine to \
         {fl}), weight decay {wd} (none on biases, norms, the CLS token, position tables and the \
         SeqPE encoder), clipping {clip} per group, augmentation: random crop padding {pad}, \
         horizontal flip {flip}. Best model by validation top-1 on {valid} held-out training \
         images.\n\n\
         **SeqPE** (the ViT recipe): (row, col) digits, {digits} digits per axis (max {max} per \
         axis), encoder width {sd} ({sh} head(s), {sl} layers), `{inject}` injection with \
         {perlayer} q/k projection(s) (init {init}), CLS with its own \
         learned position vector; {training}. Baselines: `ape` learned table (bicubic resize at other \
         sizes), `sin` 1-D sinusoidal over the flat index (CLS at 0), `rope` 1-D RoPE over the \
         flat index (base 10000), `rope2d` axial RoPE (base 100), `rope-mixed` learned mixed \
         frequencies (base 10), `nope` none.{dims1}\n\n\
         **Protocol.** {n_test} test images (evenly spaced over the {test_n} of the test split) \
         are resized bilinearly to each size; the patch stays {patch} px, so the grid grows \
         from {side}×{side} to {big}×{big}. The SeqPE table is built once per size.\n\n\
         ### Top-1 accuracy (%) on the test split\n\n{table}\n\
         The last column is the accuracy at the largest size divided by the accuracy at the \
         training size (how much of its accuracy a method keeps).\n\n{against}\
         ![accuracy vs resolution]({acc})\n\n{heat}{reg}\
         ### Runs\n\n{timing}\n",
        preset = c.preset,
        protocol = protocol(c),
        data = plan.source.describe(),
        layers = m.n_layers,
        d = m.d_model,
        heads = m.n_heads,
        mlp = m.mlp_ratio,
        patch = m.patch,
        size = m.image_size,
        batch = t.batch_size,
        steps = t.steps,
        images = t.steps * t.batch_size,
        epochs = (t.steps * t.batch_size) as f64 / train_n.max(1) as f64,
        lr = t.lr,
        warm = t.warmup_steps,
        ws = t.warmup_start_lr,
        fl = t.final_lr,
        wd = t.weight_decay,
        clip = t.grad_clip,
        pad = c.data.crop_padding,
        flip = c.data.hflip,
        valid = c.data.valid_images,
        digits = seqpe_core::digits::max_digits_for(m.seqpe.max_position),
        max = m.seqpe.max_position,
        sd = m.seqpe.d_model,
        sh = m.seqpe.heads,
        sl = m.seqpe.layers,
        inject = m.seqpe.inject,
        perlayer = if m.seqpe.per_layer {
            "per-layer"
        } else {
            "one shared"
        },
        init = crate::report::seqpe_init_phrase(&m.seqpe),
        training = crate::report::seqpe_training_phrase(t),
        n_test = if plan.test_images == 0 || plan.test_images >= test_n {
            "All".to_string()
        } else {
            plan.test_images.to_string()
        },
        big = large,
        table = accuracy_table(results),
        against = against_baselines(results),
        acc = acc_png.file_name().unwrap().to_string_lossy(),
        heat = heat_note,
        reg = reg_note,
        dims1 = if results.iter().any(|r| r.method.dims == 1) {
            format!(
                " Ablation `seqpe (dims 1)`: the same SeqPE given the row-major patch index as \
                 1-D digits ({} digits for the {}² = {} positions of the trained range), so a \
                 wider grid renumbers every row.",
                seqpe_core::digits::max_digits_for(m.seqpe.max_position * m.seqpe.max_position),
                m.seqpe.max_position,
                m.seqpe.max_position * m.seqpe.max_position
            )
        } else {
            String::new()
        },
    );
    Ok((md, pngs))
}

/// Writes `<out>/vision.md` (one section per protocol) and its plots.
pub fn write_report<B: burn::tensor::backend::Backend>(
    sections: &[Section],
    out: &Path,
    command: &str,
    backend: &str,
    wall_seconds: f64,
    device: &B::Device,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    std::fs::create_dir_all(out)?;
    let mut body = String::new();
    let mut pngs = Vec::new();
    for (i, sec) in sections.iter().enumerate() {
        let tag = if i == 0 {
            String::new()
        } else {
            format!("_{}", sec.plan.base.preset)
        };
        let (md, p) = section_markdown::<B>(sec, &tag, out, device)?;
        body += &md;
        body.push('\n');
        pngs.extend(p);
    }
    let all: Vec<&MethodResult> = sections.iter().flat_map(|s| &s.results).collect();
    let train_total: f64 = all.iter().map(|r| r.train.total_seconds).sum();
    let eval_total: f64 = all.iter().map(|r| r.eval_seconds).sum();
    let md = format!(
        "# Vision: ViT accuracy beyond the training resolution\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`). This invocation \
         took {wall:.0} s of wall time (finished runs and their evaluations already on disk are \
         reused); summed over the runs below, training took {train_total:.0} s and evaluation \
         {eval_total:.0} s ({both:.1} min), whether they ran in this invocation or were reused \
         from an earlier one. Model selection used validation accuracy at the training size \
         only; every number below is on the test split. One seed per method.\n\n{body}\
         ## Reproduce\n\n```sh\ncargo xtask fetch-data vision\n{command}\n```\n\n\
         Finished runs and evaluations are reused; pass `--retrain` to train again.\n",
        date = today(),
        machine = machine(),
        wall = wall_seconds,
        both = (train_total + eval_total) / 60.0,
    );
    let path = out.join("vision.md");
    std::fs::write(&path, md)?;
    Ok((path, pngs))
}
