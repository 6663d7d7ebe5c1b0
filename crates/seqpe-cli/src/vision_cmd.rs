//! `train-vit`, `eval-vit`, `report-vision` and `bench vision`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use seqpe_core::PeKind;
use seqpe_datasets::cache::DataDir;
use seqpe_train::config::{apply_overrides, GivenFlag};
use seqpe_train::run::RunDir;
use seqpe_vision::config::VisionConfig;
use seqpe_vision::data::ImageSource;
use seqpe_vision::eval::evaluate_run_on;
use seqpe_vision::train::{train as train_run, TrainOptions};

use crate::args::{Injection, RunArgs, SplitArg, VisionPe};

use crate::report_vision::{
    accuracy_table, method_config, run_folder_name, run_plan, write_report, Method, ReportPlan,
    Section,
};
use crate::text_cmd::command_line;

/// Where the images come from (default: the fetched Fashion-MNIST).
#[derive(Args, Debug, Clone)]
pub struct ImageArgs {
    /// An image folder: DIR/train/<class>/*.png|jpg with DIR/val (or DIR/test), or just
    /// DIR/<class>/… (every 10th image of a class is then a test image).
    #[arg(long, conflicts_with = "idx")]
    pub images: Option<PathBuf>,
    /// A folder of IDX files with MNIST names (train-images-idx3-ubyte[.gz], train-labels-…,
    /// t10k-images-…, t10k-labels-…).
    #[arg(long)]
    pub idx: Option<PathBuf>,
    /// Data cache folder (default: $SEQPE_DATA or ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl ImageArgs {
    /// Fetches Fashion-MNIST if it is the source and not cached yet.
    pub fn ensure_fetched(&self) -> Result<()> {
        if let ImageSource::FashionMnist(dir) = self.source() {
            if !DataDir::is_complete(&dir.fashion_mnist_dir()) {
                eprintln!(
                    "fetching Fashion-MNIST (Debian package, via apt-get) into {} …",
                    dir.root().display()
                );
            }
            seqpe_datasets::fetch::vision(&dir)?;
        }
        Ok(())
    }

    pub fn source(&self) -> ImageSource {
        match (&self.images, &self.idx) {
            (Some(dir), _) => ImageSource::Folder(dir.clone()),
            (None, Some(dir)) => ImageSource::Idx(dir.clone()),
            (None, None) => ImageSource::FashionMnist(
                self.data_dir
                    .clone()
                    .map(DataDir::new)
                    .unwrap_or_else(DataDir::from_env),
            ),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Position encoding (default: the preset's, `seqpe`).
    #[arg(long, value_enum)]
    pub pe: Option<VisionPe>,
    /// 2: positions are (row, col) (the ViT recipe); 1: the row-major patch index (ablation).
    /// Default: the preset's (2).
    #[arg(long)]
    pub dims: Option<usize>,
    /// How SeqPE enters the model (default: the preset's, `attn_mul`, the ViT recipe).
    #[arg(long, value_enum)]
    pub seqpe_inject: Option<Injection>,
    /// Presets: tiny (Fashion-MNIST 28 px, patch 4; demo and tests), small (the reports,
    /// upsampling protocol), small-native (14 px, patch 2; native-detail protocol), vit-s.
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub data: ImageArgs,
}

impl TrainArgs {
    pub fn config(&self) -> Result<VisionConfig> {
        self.run.config(|c: &mut VisionConfig| {
            if let Some(pe) = self.pe {
                c.model.pe = pe.into();
            }
            if let Some(dims) = self.dims {
                c.model.dims = dims;
            }
            if let Some(inject) = self.seqpe_inject {
                c.model.seqpe.inject = inject.into();
            }
        })
    }

    /// The typed flags given, for a resumed run to check.
    pub fn flags(&self) -> Vec<GivenFlag> {
        let pe = self
            .pe
            .map(|pe| GivenFlag::new("--pe", "model.pe", &PeKind::from(pe)));
        let dims = self
            .dims
            .map(|d| GivenFlag::new("--dims", "model.dims", &d));
        let inject = self.seqpe_inject.map(|i| {
            GivenFlag::new(
                "--seqpe-inject",
                "model.seqpe_inject",
                &seqpe_core::SeqPeInjection::from(i),
            )
        });
        pe.into_iter().chain(dims).chain(inject).collect()
    }
}

pub fn train<B: AutodiffBackend>(args: TrainArgs, device: &B::Device) -> Result<bool> {
    let cfg = args.config()?;
    let run = RunDir::new(args.run.run_dir(&run_folder_name(
        &cfg.preset,
        cfg.model.pe,
        cfg.model.dims,
    )));
    args.data.ensure_fetched()?;
    let opts = TrainOptions {
        session: args.run.session(&run, args.flags()),
        source: args.data.source(),
    };
    let summary = run.or_remove_if_new(|| train_run::<B>(cfg, &opts, device))?;
    println!(
        "trained {} for {} steps in {:.0}s ({:.1} images/s); final loss {:.3}; best valid top-1 {}",
        run.root.display(),
        summary.steps,
        summary.seconds,
        summary.per_second,
        summary.final_loss,
        summary
            .best_valid
            .map_or("-".into(), |p| format!("{:.2}%", 100.0 * p))
    );
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The run folder to evaluate.
    #[arg(long)]
    pub run: PathBuf,
    /// Image sizes in pixels (multiples of the patch; default: the preset's, e.g.
    /// 28,42,56,84,112 for tiny).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Test images per size (default: the config's data.eval_images; 0 = all).
    #[arg(long)]
    pub test_images: Option<usize>,
    /// test, or valid (the images held out of the training split, for choosing settings).
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Write the report as JSON here (default: <run>/eval-<data>-<split>.json, named by the
    /// images it scored, so evaluations on other data never overwrite each other).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub precision: crate::args::EvalPrecision,
    #[command(flatten)]
    pub data: ImageArgs,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let cfg: VisionConfig = seqpe_train::config::load(&RunDir::new(&args.run))?;
    let sizes = if args.sizes.is_empty() {
        cfg.data.eval_sizes.clone()
    } else {
        args.sizes.clone()
    };
    if sizes.is_empty() {
        bail!("no evaluation sizes: pass --sizes");
    }
    let limit = args.test_images.unwrap_or(cfg.data.eval_images);
    let split = args.split.into();
    let precision = args.precision.value();
    let report = evaluate_run_on::<B>(
        &args.run,
        &sizes,
        &args.data.source(),
        split,
        limit,
        precision,
        device,
    )?;
    print!("{}", report.table());
    println!("SeqPE tables built: {}", report.pe_tables_built);
    let json = args.json.clone().unwrap_or_else(|| {
        let name = format!(
            "eval-{}-{}.json",
            args.data.source().label(),
            args.split.name()
        );
        args.run.join(args.precision.file(name))
    });
    seqpe_train::checkpoint::write_json(&json, &report)?;
    println!("wrote {}", json.display());
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// One section per preset: `small` (upsampling protocol) and `small-native` (trained at
    /// 14 px, tested up to the native 28 px).
    #[arg(long, value_delimiter = ',', default_value = "small,small-native")]
    pub presets: Vec<String>,
    #[command(flatten)]
    pub pes: crate::args::VisionPes,
    /// Also train the SeqPE `--dims 1` ablation (flat patch index).
    #[arg(long)]
    pub with_dims1: bool,
    /// Evaluation sizes (default: each preset's).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Test images per size (default: the preset's data.eval_images; 0 = all).
    #[arg(long)]
    pub test_images: Option<usize>,
    #[command(flatten)]
    pub common: crate::args::ReportRuns,
    #[command(flatten)]
    pub data: ImageArgs,
}

pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let started = Instant::now();
    args.common.check()?;
    args.data.ensure_fetched()?;
    let mut methods: Vec<Method> = args
        .pes
        .kinds()
        .into_iter()
        .map(|pe| Method { pe, dims: 2 })
        .collect();
    if args.with_dims1 {
        methods.push(Method {
            pe: PeKind::SeqPe,
            dims: 1,
        });
    }
    let mut plans = Vec::new();
    for preset in &args.presets {
        let mut base = VisionConfig::preset(preset)?;
        apply_overrides(&mut base, &args.common.overrides)?;
        let plan = ReportPlan {
            sizes: if args.sizes.is_empty() {
                base.data.eval_sizes.clone()
            } else {
                args.sizes.clone()
            },
            test_images: args.test_images.unwrap_or(base.data.eval_images),
            base,
            methods: methods.clone(),
            runs: args.common.runs.clone(),
            source: args.data.source(),
            retrain: args.common.retrain,
            finished_only: args.common.finished_only,
            seeds: args.common.seeds,
        };
        for m in &plan.methods {
            method_config(&plan, m)?;
        }
        plans.push(plan);
    }
    let mut sections = Vec::new();
    for plan in plans {
        let results = run_plan::<B>(&plan, device)?;
        print!("{}", accuracy_table(&results));
        sections.push(Section { plan, results });
    }
    let (path, pngs) = write_report::<B::InnerBackend>(
        &sections,
        &args.common.out,
        &command_line("report-vision"),
        backend,
        started.elapsed().as_secs_f64(),
        device,
    )?;
    println!("wrote {}", path.display());
    for p in pngs {
        println!("wrote {}", p.display());
    }
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub pes: crate::args::VisionPes,
    /// Configurations to time: tiny (28px, 7×7) and/or vit-s (224px, 14×14, 12 layers).
    #[arg(long, value_delimiter = ',', default_value = "tiny,vit-s")]
    pub presets: Vec<String>,
    /// Training steps timed per method (after one warm-up step).
    #[arg(long, value_parser = crate::args::at_least_one, default_value_t = 3)]
    pub steps: usize,
    /// Batch size per preset (default: tiny 64, vit-s 8).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Overrides applied to every configuration, e.g. --set model.seqpe_d_model=32
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// The arithmetic of the timed steps (`train.precision`); against PyTorch, its script runs at
    /// the same precision (bf16: `torch.autocast`).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: crate::args::PrecisionArg,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub pytorch: crate::pytorch::PytorchArgs,
}

/// `bench vision`: training and inference images/s per PE method on synthetic images.
pub fn bench<B: AutodiffBackend>(
    args: BenchArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let pes: Vec<PeKind> = args.pes.kinds();
    // `--precision` is the first override, so a `--set train.precision=…` after it wins
    let precision = seqpe_train::Precision::from(args.precision);
    let mut overrides = vec![format!("train.precision=\"{precision}\"")];
    overrides.extend(args.overrides.iter().cloned());
    if args.pytorch.against_pytorch {
        let mut all = Vec::new();
        for preset in &args.presets {
            // the configuration both sides time: the preset with the same overrides
            let mut cfg = VisionConfig::preset(preset)?;
            apply_overrides(&mut cfg, &overrides)?;
            let (m, r) = (&cfg.model, &cfg.train.regularizer);
            let batch = args.batch.unwrap_or(if preset == "vit-s" { 8 } else { 64 });
            println!(
                "bench vision, preset {preset}, batch {batch}, {} timed steps:",
                args.steps
            );
            let ours = |pe: PeKind| -> Result<f64> {
                let rows = seqpe_vision::bench::run::<B>(
                    std::slice::from_ref(preset),
                    &[pe],
                    args.steps,
                    Some(batch),
                    &overrides,
                    device,
                    backend,
                )?;
                Ok(rows[0].train_images_per_s)
            };
            let script_args = |pe: PeKind| -> Vec<String> {
                let mut a = vec![
                    format!("--pe={}", pe.name()),
                    format!("--image-size={}", m.image_size),
                    format!("--patch={}", m.patch),
                    format!("--channels={}", m.channels),
                    format!("--d-model={}", m.d_model),
                    format!("--layers={}", m.n_layers),
                    format!("--heads={}", m.n_heads),
                    format!("--mlp-ratio={}", m.mlp_ratio),
                    format!("--batch={batch}"),
                    format!("--steps={}", args.steps),
                    "--warmup=1".into(),
                    format!("--precision={}", cfg.train.precision),
                ];
                a.extend(crate::pytorch::seqpe_script_args(&m.seqpe, r));
                a
            };
            let script = crate::pytorch::Script {
                path: "scripts/pytorch_bench_vision.py",
                key: "images_per_s",
                unit: "images/s",
            };
            let mut rows =
                crate::pytorch::compare(&args.pytorch, &script, backend, &pes, ours, script_args)?;
            rows.iter_mut()
                .for_each(|r| r.config = format!("{preset} {}", cfg.train.precision));
            all.extend(rows);
        }
        if let Some(json) = &args.json {
            seqpe_train::checkpoint::write_json(json, &all)?;
        }
        return Ok(true);
    }
    let rows = seqpe_vision::bench::run::<B>(
        &args.presets,
        &pes,
        args.steps,
        args.batch,
        &overrides,
        device,
        backend,
    )?;
    print!("{}", seqpe_vision::bench::table(&rows));
    if let Some(json) = &args.json {
        seqpe_train::checkpoint::write_json(json, &rows)?;
        println!("wrote {}", json.display());
    }
    Ok(true)
}
