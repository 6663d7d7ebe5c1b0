//! `train-vit`, `eval-vit`, `report-vision` and `bench vision`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use seqpe_datasets::cache::DataDir;
use seqpe_train::run::RunDir;
use seqpe_vision::config::VisionConfig;
use seqpe_vision::data::ImageSource;
use seqpe_vision::eval::evaluate_run;
use seqpe_vision::report::{accuracy_table, run_plan, write_report, Method, ReportPlan};
use seqpe_vision::train::{train as train_run, TrainOptions};

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
    /// Position encoding: seqpe, ape, sin, rope, rope2d, rope-mixed, nope.
    #[arg(long, default_value = "seqpe")]
    pub pe: String,
    /// 2: positions are (row, col) (the ViT recipe); 1: the row-major patch index (ablation).
    #[arg(long, default_value_t = 2)]
    pub dims: usize,
    /// How SeqPE enters the model: attn_mul (default, the ViT recipe) or input_add.
    #[arg(long)]
    pub seqpe_inject: Option<String>,
    /// tiny (Fashion-MNIST 28×28, patch 4) or vit-s (ViT-S/16 at 224).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// JSON file with (partial) settings to merge into the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides, e.g. --set train.steps=200 --set model.d_model=96
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Run folder (default: runs/vision-<preset>-<pe>[-dims1]).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Continue the run in --run from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this step (the run stays resumable with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    #[command(flatten)]
    pub data: ImageArgs,
}

impl TrainArgs {
    pub fn config(&self) -> Result<VisionConfig> {
        let mut cfg = VisionConfig::preset(&self.preset)?;
        if let Some(path) = &self.config {
            cfg.apply_file(path)?;
        }
        cfg.model.pe = self.pe.clone();
        cfg.model.dims = self.dims;
        if let Some(inject) = &self.seqpe_inject {
            cfg.model.seqpe_inject = inject.clone();
        }
        cfg.apply_overrides(&self.overrides)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn run_dir(&self, cfg: &VisionConfig) -> PathBuf {
        self.run.clone().unwrap_or_else(|| {
            PathBuf::from(seqpe_vision::report::default_run_name(
                &cfg.preset,
                &cfg.model.pe,
                cfg.model.dims,
            ))
        })
    }
}

pub fn train<B: AutodiffBackend>(args: TrainArgs, device: &B::Device) -> Result<bool> {
    let cfg = args.config()?;
    let run = RunDir::new(args.run_dir(&cfg));
    let opts = TrainOptions {
        run: run.clone(),
        resume: args.resume,
        source: args.data.source(),
        stop_after: args.stop_after,
    };
    let summary = train_run::<B>(cfg, &opts, device)?;
    println!(
        "trained {} for {} steps in {:.0}s ({:.1} images/s); final loss {:.3}; best valid top-1 {}",
        run.root.display(),
        summary.steps,
        summary.seconds,
        summary.images_per_second,
        summary.final_loss,
        summary
            .best_valid_acc
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
    /// Write the report as JSON here (default: <run>/eval-test.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub data: ImageArgs,
}

pub fn eval<B: Backend>(args: EvalArgs, device: &B::Device) -> Result<bool> {
    let cfg: VisionConfig = RunDir::new(&args.run).read_config()?;
    let sizes = if args.sizes.is_empty() {
        cfg.data.eval_sizes.clone()
    } else {
        args.sizes.clone()
    };
    if sizes.is_empty() {
        bail!("no evaluation sizes: pass --sizes");
    }
    let limit = args.test_images.unwrap_or(cfg.data.eval_images);
    let report = evaluate_run::<B>(&args.run, &sizes, &args.data.source(), limit, device)?;
    print!("{}", report.table());
    println!("SeqPE tables built: {}", report.pe_tables_built);
    let json = args
        .json
        .clone()
        .unwrap_or_else(|| args.run.join("eval-test.json"));
    seqpe_train::checkpoint::write_json(&json, &report)?;
    println!("wrote {}", json.display());
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The preset every run uses.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Position encodings to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seqpe,ape,sin,rope,rope2d,rope-mixed,nope"
    )]
    pub pes: Vec<String>,
    /// Also train the SeqPE `--dims 1` ablation (flat patch index).
    #[arg(long)]
    pub with_dims1: bool,
    /// Evaluation sizes (default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Test images per size (default: the preset's data.eval_images; 0 = all).
    #[arg(long)]
    pub test_images: Option<usize>,
    /// Overrides applied to every run, e.g. --set train.steps=300
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Folder of the runs (one per method: <runs>/vision-<preset>-<pe>).
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Where vision.md and the plots go.
    #[arg(long, default_value = "docs/results")]
    pub out: PathBuf,
    /// Train again even when a finished run with the same config exists.
    #[arg(long)]
    pub retrain: bool,
    #[command(flatten)]
    pub data: ImageArgs,
}

pub fn report<B: AutodiffBackend>(
    args: ReportArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let started = Instant::now();
    let mut base = VisionConfig::preset(&args.preset)?;
    base.apply_overrides(&args.overrides)?;
    let mut methods: Vec<Method> = args
        .pes
        .iter()
        .map(|pe| Method {
            pe: pe.clone(),
            dims: 2,
        })
        .collect();
    if args.with_dims1 {
        methods.push(Method {
            pe: "seqpe".into(),
            dims: 1,
        });
    }
    let plan = ReportPlan {
        sizes: if args.sizes.is_empty() {
            base.data.eval_sizes.clone()
        } else {
            args.sizes.clone()
        },
        test_images: args.test_images.unwrap_or(base.data.eval_images),
        base,
        methods,
        runs: args.runs.clone(),
        source: args.data.source(),
        retrain: args.retrain,
    };
    for m in &plan.methods {
        seqpe_vision::report::method_config(&plan, m)?;
    }
    let results = run_plan::<B>(&plan, device)?;
    let command = std::iter::once("cargo xtask report-vision".to_string())
        .chain(std::env::args().skip(2))
        .collect::<Vec<_>>()
        .join(" ");
    let (path, pngs) = write_report::<B::InnerBackend>(
        &results,
        &plan,
        &args.out,
        &command,
        backend,
        started.elapsed().as_secs_f64(),
        device,
    )?;
    print!("{}", accuracy_table(&results));
    println!("wrote {}", path.display());
    for p in pngs {
        println!("wrote {}", p.display());
    }
    Ok(true)
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Position encodings to time.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seqpe,ape,sin,rope,rope2d,rope-mixed,nope"
    )]
    pub pes: Vec<String>,
    /// Configurations to time: tiny (28px, 7×7) and/or vit-s (224px, 14×14, 12 layers).
    #[arg(long, value_delimiter = ',', default_value = "tiny,vit-s")]
    pub presets: Vec<String>,
    /// Training steps timed per method (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Batch size per preset (default: tiny 64, vit-s 8).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Overrides applied to every configuration, e.g. --set model.seqpe_d_model=32
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `bench vision`: training and inference images/s per PE method on synthetic images.
pub fn bench<B: AutodiffBackend>(
    args: BenchArgs,
    device: &B::Device,
    backend: &str,
) -> Result<bool> {
    let rows = seqpe_vision::bench::run::<B>(
        &args.presets,
        &args.pes,
        args.steps,
        args.batch,
        &args.overrides,
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
