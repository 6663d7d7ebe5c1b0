//! `report-vision`: one run per position encoding (plus, optionally, the SeqPE `dims = 1`
//! ablation), evaluated at several resolutions, written as `docs/results/vision.md` with an
//! accuracy-vs-resolution plot and PE-similarity heatmaps.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use seqpe_train::plot::{heatmaps, line_chart, Heatmap, Series};
use seqpe_train::report::{machine, markdown_table, today};
use seqpe_train::run::RunDir;
use serde::{Deserialize, Serialize};

use crate::config::VisionConfig;
use crate::data::ImageSource;
use crate::eval::{evaluate_run, load_run, similarity_map, EvalReport};
use crate::train::{train, TrainOptions, TrainSummary};

/// The default run folder of a method: `runs/vision-<preset>-<pe>[-dims1]`.
pub fn default_run_name(preset: &str, pe: &str, dims: usize) -> String {
    format!("runs/{}", run_folder_name(preset, pe, dims))
}

fn run_folder_name(preset: &str, pe: &str, dims: usize) -> String {
    if dims == 1 {
        format!("vision-{preset}-{pe}-dims1")
    } else {
        format!("vision-{preset}-{pe}")
    }
}

/// One method of a report: a position encoding and the coordinates it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    pub pe: String,
    pub dims: usize,
}

impl Method {
    pub fn label(&self) -> String {
        if self.dims == 1 {
            format!("{} (dims 1)", self.pe)
        } else {
            self.pe.clone()
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
    pub train: TrainSummary,
    pub eval: EvalReport,
    pub eval_seconds: f64,
    pub reused: bool,
}

/// The config of one method of the plan.
pub fn method_config(plan: &ReportPlan, method: &Method) -> Result<VisionConfig> {
    let mut cfg = plan.base.clone();
    cfg.model.pe = method.pe.clone();
    cfg.model.dims = method.dims;
    cfg.validate()?;
    Ok(cfg)
}

/// Whether a saved run config is the planned one (fields filled from the data excepted).
fn same_settings(saved: &VisionConfig, planned: &VisionConfig) -> bool {
    let mut p = planned.clone();
    p.model.channels = saved.model.channels;
    p.model.num_classes = saved.model.num_classes;
    if p.data.mean.is_empty() {
        p.data.mean = saved.data.mean.clone();
        p.data.std = saved.data.std.clone();
    }
    p.data.eval_sizes = saved.data.eval_sizes.clone();
    p.data.eval_images = saved.data.eval_images;
    if p.model.pe != "seqpe" {
        // SeqPE settings do not change the other methods' runs
        let (sm, st) = (&saved.model, &saved.train);
        p.model.seqpe_inject = sm.seqpe_inject.clone();
        p.model.seqpe_per_layer = sm.seqpe_per_layer;
        p.model.seqpe_d_model = sm.seqpe_d_model;
        p.model.seqpe_heads = sm.seqpe_heads;
        p.model.seqpe_layers = sm.seqpe_layers;
        p.model.seqpe_max_per_axis = sm.seqpe_max_per_axis;
        p.model.seqpe_dropout = sm.seqpe_dropout;
        p.model.seqpe_qk_bias = sm.seqpe_qk_bias;
        p.train.contrastive_weight = st.contrastive_weight;
        p.train.distill_weight = st.distill_weight;
        p.train.shift_rate = st.shift_rate;
        p.train.shift_pool = st.shift_pool;
        p.train.contrastive_batch = st.contrastive_batch;
        p.train.contrastive_candidates = st.contrastive_candidates;
        p.train.distill_windows = st.distill_windows;
        p.train.distill_per_window = st.distill_per_window;
        p.train.shift_windows = st.shift_windows;
    }
    p == *saved
}

/// Trains (or reuses / resumes) and evaluates every method of the plan.
pub fn run_plan<B: AutodiffBackend>(
    plan: &ReportPlan,
    device: &B::Device,
) -> Result<Vec<MethodResult>> {
    let mut out = Vec::new();
    for method in &plan.methods {
        let cfg = method_config(plan, method)?;
        let run = RunDir::new(plan.runs.join(run_folder_name(
            &cfg.preset,
            &method.pe,
            method.dims,
        )));
        if plan.retrain && run.root.exists() {
            std::fs::remove_dir_all(&run.root)?;
        }
        if run.config().is_file() {
            let saved: VisionConfig = run.read_config()?;
            if !same_settings(&saved, &cfg) {
                bail!(
                    "{} holds a run with other settings than this report's; pass --retrain to \
                     replace it or --runs to use another folder",
                    run.root.display()
                );
            }
        }
        let summary_path = run.file("summary.json");
        let finished = summary_path.is_file()
            && seqpe_train::checkpoint::read_json::<TrainSummary>(&summary_path)?.steps
                == cfg.train.steps;
        let summary: TrainSummary = if finished {
            eprintln!("reusing {}", run.root.display());
            seqpe_train::checkpoint::read_json(&summary_path)?
        } else {
            eprintln!("training {} in {}", method.label(), run.root.display());
            let opts = TrainOptions {
                run: run.clone(),
                resume: run.latest().is_some(),
                source: plan.source.clone(),
                stop_after: None,
            };
            train::<B>(cfg.clone(), &opts, device)?
        };
        let eval_path = run.file("eval-test.json");
        let cached = if finished {
            cached_eval(&run, &eval_path, plan)?
        } else {
            None
        };
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
            reused: finished,
        });
    }
    Ok(out)
}

/// A saved evaluation of a finished run that answers the plan (same sizes and image count, and
/// newer than the model it evaluated), so regenerating a report does not evaluate again.
fn cached_eval(run: &RunDir, path: &Path, plan: &ReportPlan) -> Result<Option<EvalReport>> {
    if !path.is_file() {
        return Ok(None);
    }
    let Ok(e) = seqpe_train::checkpoint::read_json::<EvalReport>(path) else {
        return Ok(None);
    };
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let model = [
        run.best().join("model.mpk"),
        run.checkpoint().join("model.mpk"),
    ]
    .into_iter()
    .filter_map(|p| modified(&p))
    .max();
    let fresh = matches!((modified(path), model), (Some(a), Some(b)) if a >= b);
    let want = if plan.test_images == 0 {
        e.test_split_images
    } else {
        plan.test_images.min(e.test_split_images)
    };
    let sizes: Vec<usize> = e.results.iter().map(|r| r.size).collect();
    let same = sizes == plan.sizes && e.results.iter().all(|r| r.images == want);
    Ok((fresh && same).then_some(e))
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

/// Writes `<out>/vision.md`, `<out>/vision_accuracy.png` and `<out>/vision_similarity.png`.
pub fn write_report<B: burn::tensor::backend::Backend>(
    results: &[MethodResult],
    plan: &ReportPlan,
    out: &Path,
    command: &str,
    backend: &str,
    wall_seconds: f64,
    device: &B::Device,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    std::fs::create_dir_all(out)?;
    let mut pngs = Vec::new();
    let acc_png = out.join("vision_accuracy.png");
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
    pngs.push(acc_png);

    // PE similarity: SeqPE (2-D) and, for comparison, the bicubically resized APE table
    let large = plan.sizes.iter().max().copied().unwrap_or(0) / plan.base.model.patch;
    let mut panels = Vec::new();
    let mut raw = Vec::new();
    let mut heat_note = String::new();
    for (pe, label) in [("seqpe", "SeqPE"), ("ape", "APE")] {
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
        let sim_png = out.join("vision_similarity.png");
        heatmaps(&sim_png, &panels, -1.0, 1.0)?;
        heat_note = format!(
            "![PE similarity](vision_similarity.png)\n\n\
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
        pngs.push(sim_png);
    }

    let c = &plan.base;
    let m = &c.model;
    let t = &c.train;
    let mut timing = vec![];
    for r in results {
        timing.push(vec![
            r.method.label(),
            format!("`{}`", r.run.display()),
            format!("{}", r.train.steps),
            format!("{:.0}", r.train.total_seconds),
            format!("{:.1}", r.train.images_per_second),
            r.train
                .best_valid_acc
                .map_or("-".into(), |p| format!("{:.1}", 100.0 * p)),
            format!("{:.0}", r.eval_seconds),
            if r.reused { "reused" } else { "trained now" }.to_string(),
        ]);
    }
    let timing = markdown_table(
        &[
            "PE",
            "run folder",
            "steps",
            "train s",
            "train img/s",
            "best valid top-1 % (28 px)",
            "eval s",
            "",
        ]
        .map(String::from),
        &timing,
    );
    let sizes = plan
        .sizes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let repro: String = results
        .iter()
        .map(|r| {
            let dims = if r.method.dims == 1 { " --dims 1" } else { "" };
            format!(
                "cargo xtask train-vit --preset {p} --pe {pe}{dims} --run {run}\n\
                 cargo xtask eval-vit --run {run} --sizes {sizes} --test-images {n}\n",
                p = c.preset,
                pe = r.method.pe,
                run = r.run.display(),
                n = plan.test_images,
            )
        })
        .collect();
    let side = m.train_side();
    let train_n = results.first().map_or(0, |r| r.train.train_images);
    let train_total: f64 = results.iter().map(|r| r.train.total_seconds).sum();
    let eval_total: f64 = results.iter().map(|r| r.eval_seconds).sum();
    let test_n = results.first().map_or(0, |r| r.eval.test_split_images);
    let md = format!(
        "# Vision: ViT accuracy beyond the training resolution\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`; `nproc` = {nproc}). \
         This invocation took {wall:.0} s of wall time (finished runs and their \
         evaluations already on disk are reused); summed over the runs below, training took {train_total:.0} s and evaluation \
         {eval_total:.0} s ({both:.1} min), whether they ran in this invocation or were reused \
         from an earlier one.\n\n\
         **Setup.** Preset `{preset}`: {data}. ViT {layers} layers × width {d} ({heads} heads, MLP \
         ratio {mlp}), patch {patch}, trained at {size} px = {side}×{side} patches plus a CLS \
         token; batch {batch}, {steps} steps ({images} training images seen, about {epochs:.2} \
         epochs of {train_n} images), AdamW lr {lr} (warm-up {warm} steps from {ws}, cosine to \
         {fl}), weight decay {wd} (0 for the SeqPE encoder), clipping {clip} per group, \
         augmentation: random crop padding {pad}, horizontal flip {flip}. Best model by \
         validation top-1 on {valid} held-out training images.\n\n\
         **SeqPE** (the ViT recipe): (row, col) digits, {digits} digits per axis (max {max} per \
         axis), encoder width {sd} ({sh} head(s), {sl} layers), `{inject}` injection with \
         {perlayer} q/k projection(s), CLS with its own learned position vector; contrastive \
         {cb}×{cc} (weight {ct}), distillation {dw}×{dp} (weight {kd}), random shift rate \
         {shift} ({sw} windows per shifted step from a pool of {pool}). Baselines: `ape` learned \
         table (bicubic resize at other sizes), `sin` 1-D sinusoidal over the flat index (CLS at \
         0), `rope` 1-D RoPE over the flat index (base 10000), `rope2d` axial RoPE (base 100), \
         `rope-mixed` learned mixed frequencies (base 10), `nope` none.{dims1}\n\n\
         **Protocol.** {n_test} test images (evenly spaced over the {test_n} of the test split) \
         are resized bilinearly to each size; the patch stays {patch} px, so the grid grows \
         from {side}×{side} to {big}×{big}. Sizes must be multiples of the patch, so 1.5× is \
         40 px (10×10) rather than 42 px. The SeqPE table is built once per size. Note that \
         upsampling also changes what a patch sees (a 4-pixel patch of a 4× enlarged image covers \
         one original pixel), so every method loses accuracy from the content shift alone; the \
         comparison is between methods.\n\n\
         ## Top-1 accuracy (%) on the test split\n\n{table}\n\
         The last column is the accuracy at the largest size divided by the accuracy at the \
         training size (how much of its accuracy a method keeps).\n\n\
         ![accuracy vs resolution](vision_accuracy.png)\n\n{heat}\
         ## Runs\n\n{timing}\n\
         `train s` is the training wall time summed over the sessions of the run (validation \
         included); `eval s` the evaluation at all sizes. Numbers come from one seed per method \
         on a shared machine, so throughput varies with other load.\n\n\
         ## Reproduce\n\n```sh\ncargo xtask fetch-data vision\n{command}\n```\n\n\
         or one method at a time:\n\n```sh\n{repro}```\n",
        date = today(),
        machine = machine(),
        nproc = std::thread::available_parallelism().map_or(0, |n| n.get()),
        wall = wall_seconds,
        train_total = train_total,
        eval_total = eval_total,
        both = (train_total + eval_total) / 60.0,
        preset = c.preset,
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
        train_n = train_n,
        test_n = test_n,
        lr = t.lr,
        warm = t.warmup_steps,
        ws = t.warmup_start_lr,
        fl = t.final_lr,
        wd = t.weight_decay,
        clip = t.grad_clip,
        pad = c.data.crop_padding,
        flip = c.data.hflip,
        valid = c.data.valid_images,
        digits = seqpe_core::digits::max_digits_for(m.seqpe_max_per_axis),
        max = m.seqpe_max_per_axis,
        sd = m.seqpe_d_model,
        sh = m.seqpe_heads,
        sl = m.seqpe_layers,
        inject = m.seqpe_inject,
        perlayer = if m.seqpe_per_layer {
            "per-layer"
        } else {
            "one shared"
        },
        cb = t.contrastive_batch,
        cc = t.contrastive_candidates,
        ct = t.contrastive_weight,
        dw = t.distill_windows,
        dp = t.distill_per_window,
        kd = t.distill_weight,
        shift = t.shift_rate,
        sw = t.shift_windows,
        pool = t.shift_pool,
        n_test = if plan.test_images == 0 || plan.test_images >= test_n {
            "All".to_string()
        } else {
            plan.test_images.to_string()
        },
        big = large,
        table = accuracy_table(results),
        dims1 = if results.iter().any(|r| r.method.dims == 1) {
            format!(
                " Ablation `seqpe (dims 1)`: the same SeqPE given the row-major patch index as \
                 1-D digits ({} digits for the {}² = {} positions of the trained range), so a \
                 wider grid renumbers every row.",
                seqpe_core::digits::max_digits_for(m.seqpe_max_per_axis * m.seqpe_max_per_axis),
                m.seqpe_max_per_axis,
                m.seqpe_max_per_axis * m.seqpe_max_per_axis
            )
        } else {
            String::new()
        },
        heat = heat_note,
    );
    let path = out.join("vision.md");
    std::fs::write(&path, md)?;
    Ok((path, pngs))
}
