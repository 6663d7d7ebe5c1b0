//! `report-vision`: one run per position encoding and seed (plus, optionally, the SeqPE
//! `dims = 1` ablation), through the one report runner ([`crate::report::run_plan`]), evaluated
//! at several resolutions, written as `docs/results/vision.md` with an accuracy-vs-resolution
//! plot and PE-similarity heatmaps.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use seqpe_core::PeKind;
use seqpe_train::config::RunConfig;
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_train::Session;
use seqpe_vision::config::VisionConfig;
use seqpe_vision::data::ImageSource;
use seqpe_vision::eval::{evaluate_run, load_run, similarity_map, EvalReport, SizeResult};
use seqpe_vision::train::{train, TrainOptions};
use serde::{Deserialize, Serialize};

use crate::plot::{heatmaps, line_chart, Heatmap};
use crate::report::{
    best_valid_cell, diagnostic_columns, machine, markdown_table, regularizer_chart, runs_table,
    seeds_of, seeds_sentence, seqpe_against, spread_rows, spread_series, today, Against, Better,
    Compared, Experiment, Outcome, Plan, RunColumn, Seed,
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

impl crate::report::Compared for Method {
    fn encoding(&self) -> PeKind {
        self.pe
    }

    /// The (row, col) SeqPE; the `--dims 1` ablation is not the one set against the baselines.
    fn is_main_seqpe(&self) -> bool {
        self.pe == PeKind::SeqPe && self.dims != 1
    }

    fn label(&self) -> String {
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
    pub finished_only: bool,
    /// Seeds per method (see [`Seed`]).
    pub seeds: usize,
}

/// One method and seed of the page.
pub type MethodResult = Outcome<Method, EvalReport>;

/// The config of one method of the plan.
pub fn method_config(plan: &ReportPlan, method: &Method) -> Result<VisionConfig> {
    let mut cfg = plan.base.clone();
    cfg.model.pe = method.pe;
    cfg.model.dims = method.dims;
    cfg.validate()?;
    Ok(cfg)
}

/// Image classification as an [`Experiment`]: a ViT per method, test top-1 at each size.
struct VisionExperiment<'a> {
    plan: &'a ReportPlan,
}

impl<B: AutodiffBackend> Experiment<B> for VisionExperiment<'_> {
    type Method = Method;
    type Config = VisionConfig;
    type Eval = EvalReport;

    fn config(&self, method: &Method, _seed: Seed) -> Result<VisionConfig> {
        method_config(self.plan, method)
    }

    fn folder(&self, method: &Method) -> String {
        run_folder_name(&self.plan.base.preset, method.pe, method.dims)
    }

    fn ignored_keys(&self) -> Vec<String> {
        [
            "model.channels",
            "model.num_classes",
            "data.mean",
            "data.std",
            "data.eval_sizes",
            "data.eval_images",
        ]
        .map(String::from)
        .to_vec()
    }

    fn train(&self, cfg: VisionConfig, session: Session, device: &B::Device) -> Result<FitSummary> {
        let opts = TrainOptions {
            session,
            source: self.plan.source.clone(),
        };
        train::<B>(cfg, &opts, device)
    }

    fn eval_file(&self, run: &RunDir) -> PathBuf {
        run.file(&format!("eval-{}-test.json", self.plan.source.label()))
    }

    fn eval_is_current(&self, e: &EvalReport) -> bool {
        let want = if self.plan.test_images == 0 {
            e.test_split_images
        } else {
            self.plan.test_images.min(e.test_split_images)
        };
        let sizes: Vec<usize> = e.results.iter().map(|r| r.size).collect();
        sizes == self.plan.sizes && e.results.iter().all(|r| r.images == want)
    }

    fn evaluate(&self, run: &RunDir, device: &B::Device) -> Result<EvalReport> {
        evaluate_run::<B::InnerBackend>(
            &run.root,
            &self.plan.sizes,
            &self.plan.source,
            self.plan.test_images,
            device,
        )
    }

    fn recorded_seconds(&self, e: &EvalReport) -> f64 {
        e.results.iter().map(|r| r.seconds).sum()
    }
}

/// Trains (or reuses / resumes) and evaluates every method of the plan for every seed.
pub fn run_plan<B: AutodiffBackend>(
    plan: &ReportPlan,
    device: &B::Device,
) -> Result<Vec<MethodResult>> {
    let runner = Plan {
        methods: plan.methods.clone(),
        seeds: Seed::first(plan.seeds),
        runs: plan.runs.clone(),
        retrain: plan.retrain,
        finished_only: plan.finished_only,
    };
    crate::report::run_plan::<B, _>(&VisionExperiment { plan }, &runner, device)
}

fn at(e: &EvalReport, size: usize) -> Option<&SizeResult> {
    e.results.iter().find(|r| r.size == size)
}

/// The evaluated sizes of the page (the first outcome's).
fn sizes(results: &[MethodResult]) -> Vec<usize> {
    results
        .first()
        .map_or(vec![], |m| m.eval.results.iter().map(|r| r.size).collect())
}

/// The top-1 table (rows: methods; columns: sizes; mean ± sd over the seeds).
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
    let train_size = first.eval.train_size;
    let last = first.eval.results.last().map_or(0, |r| r.size);
    header.push(format!("{last} px / {train_size} px"));
    let sizes = sizes(results);
    let top1 = |e: &EvalReport, size: usize| at(e, size).map(|r| 100.0 * r.top1);
    let rows: Vec<Vec<String>> = spread_rows(results, &sizes, top1)
        .into_iter()
        .map(|(method, cells)| {
            let mut row = vec![method.label()];
            row.extend(cells.iter().map(|c| c.map_or("-".into(), |s| s.show(1))));
            let mean_at = |size: usize| {
                let i = sizes.iter().position(|&s| s == size)?;
                cells[i].map(|s| s.mean)
            };
            row.push(match (mean_at(train_size), mean_at(last)) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                _ => "-".into(),
            });
            row
        })
        .collect();
    markdown_table(&header, &rows)
}

/// The 2-D SeqPE run's test top-1 minus every baseline's at each size, with where it wins,
/// loses and ties: the lead sentence and the section (both empty without one; the `--dims 1`
/// ablation is not a baseline).
pub fn against_baselines(results: &[MethodResult]) -> (String, String) {
    let Some(first) = results.first() else {
        return (String::new(), String::new());
    };
    let columns: Vec<String> = first
        .eval
        .results
        .iter()
        .map(|r| format!("{} px ({}×{})", r.size, r.grid, r.grid))
        .collect();
    let Some(Against {
        legend,
        section,
        lead,
    }) = seqpe_against(
        results,
        &sizes(results),
        &columns,
        "size",
        |e, size| at(e, size).map(|r| 100.0 * r.top1),
        Better::Higher,
        1,
    )
    else {
        return (String::new(), String::new());
    };
    (
        lead,
        format!(
            "### SeqPE against each baseline (test top-1)\n\n\
             SeqPE's accuracy minus the baseline's at each size, in points ({legend}), from the \
             table above.\n\n{section}\n"
        ),
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

/// The protocol's short name: "upsampling" or "native detail".
fn protocol_name(c: &VisionConfig) -> &'static str {
    if is_native(c) {
        "native detail"
    } else {
        "upsampling"
    }
}

/// Whether a preset trains on downsampled images and tests closer to their native size.
fn is_native(c: &VisionConfig) -> bool {
    let largest = c
        .data
        .eval_sizes
        .iter()
        .max()
        .copied()
        .unwrap_or(c.model.image_size);
    c.preset == "small-native" || largest <= 28 && c.model.image_size < 28
}

/// What a preset's protocol is, for the section heading.
fn protocol(c: &VisionConfig) -> String {
    let m = &c.model;
    let side = m.train_side();
    if is_native(c) {
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

/// The markdown and plots of one section (files named with `tag`), and its line of the page's
/// "What the numbers show".
fn section_markdown<B: burn::tensor::backend::Backend>(
    sec: &Section,
    tag: &str,
    out: &Path,
    device: &B::Device,
) -> Result<(String, String, Vec<PathBuf>)> {
    let (plan, results) = (&sec.plan, &sec.results);
    let (lead, against) = against_baselines(results);
    let mut pngs = Vec::new();
    let acc_png = out.join(format!("vision_accuracy{tag}.png"));
    let series = spread_series(
        results,
        &sizes(results),
        |size| size as f64,
        Method::label,
        |e, size| at(e, size).map(|r| 100.0 * r.top1),
    );
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
            .find(|m| m.method.pe == pe && m.method.dims == 2 && m.seed == Seed(1))
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
        .filter(|m| m.method.pe == PeKind::SeqPe && m.seed == Seed(1))
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
    let best_heading = format!("best valid top-1 % ({} px)", m.image_size);
    let mut columns: Vec<RunColumn<'_, Method, EvalReport>> = vec![
        (
            "train img/s",
            Box::new(|r: &MethodResult| format!("{:.1}", r.train.per_second)),
        ),
        (
            &best_heading,
            Box::new(|r: &MethodResult| best_valid_cell(&r.train, |p| format!("{:.1}", 100.0 * p))),
        ),
    ];
    columns.extend(diagnostic_columns());
    let timing = runs_table(results, Method::label, "train s", columns);
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
        against = against,
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
    Ok((md, lead, pngs))
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
    let mut leads = Vec::new();
    let mut pngs = Vec::new();
    for (i, sec) in sections.iter().enumerate() {
        let tag = if i == 0 {
            String::new()
        } else {
            format!("_{}", sec.plan.base.preset)
        };
        let (md, lead, p) = section_markdown::<B>(sec, &tag, out, device)?;
        if !lead.is_empty() {
            leads.push(format!(
                "* preset `{}` ({}): {lead}",
                sec.plan.base.preset,
                protocol_name(&sec.plan.base)
            ));
        }
        body += &md;
        body.push('\n');
        pngs.extend(p);
    }
    let all: Vec<&MethodResult> = sections.iter().flat_map(|s| &s.results).collect();
    let train_total: f64 = all.iter().map(|r| r.train.total_seconds).sum();
    let eval_total: f64 = all.iter().map(|r| r.eval_seconds).sum();
    let seeds = sections.first().map_or(1, |s| seeds_of(&s.results));
    let md = format!(
        "# Vision: ViT accuracy beyond the training resolution\n\n\
         Generated by `{command}` on {date} ({machine}; backend `{backend}`). This invocation \
         took {wall:.0} s of wall time (finished runs and their evaluations already on disk are \
         reused); summed over the runs below, training took {train_total:.0} s and evaluation \
         {eval_total:.0} s ({both:.1} min), whether they ran in this invocation or were reused \
         from an earlier one. Model selection used validation accuracy at the training size \
         only; every number below is on the test split.{seeds}\n\n{lead}{body}\
         ## Reproduce\n\n```sh\ncargo xtask fetch-data vision\n{command}\n```\n\n\
         Finished runs and evaluations are reused; pass `--retrain` to train again.\n",
        date = today(),
        machine = machine(),
        wall = wall_seconds,
        both = (train_total + eval_total) / 60.0,
        seeds = match seeds {
            0 | 1 => " One seed per method.".to_string(),
            n => seeds_sentence(n),
        },
        lead = if leads.is_empty() {
            String::new()
        } else {
            format!(
                "{}\n\n",
                crate::report::lead_paragraph(
                    "test top-1 %",
                    seeds,
                    &format!("\n\n{}", leads.join("\n"))
                )
            )
        },
    );
    let path = out.join("vision.md");
    std::fs::write(&path, md)?;
    Ok((path, pngs))
}
