//! Parity with the reference implementation (`ghrua/seqpe` @ 4c4b908) on its fixtures.
//!
//! The reference-produced fixtures live in the repository (`tests/fixtures/reference/`, with the
//! README that says how they were made), so a fresh clone runs these tests. `SEQPE_PARITY_DIR`
//! points the tests at another copy; `SEQPE_SKIP_PARITY=1` skips them on purpose.

use std::path::PathBuf;

use burn::backend::flex::FlexDevice;
use burn::backend::Flex;
use seqpe_core::reference::{check_fixture, Tolerance};

fn parity_dir() -> Option<PathBuf> {
    if std::env::var("SEQPE_SKIP_PARITY").is_ok_and(|v| v == "1") {
        eprintln!("SEQPE_SKIP_PARITY=1: parity tests skipped on purpose");
        return None;
    }
    let dir = std::env::var("SEQPE_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference")
        });
    assert!(
        dir.join("seqpe_1d.safetensors").is_file() && dir.join("seqpe_2d.safetensors").is_file(),
        "parity fixtures not found: expected seqpe_1d.safetensors and seqpe_2d.safetensors in {} \
         (crates/seqpe-core/tests/fixtures/reference in the repository; set SEQPE_PARITY_DIR to \
         another folder, or SEQPE_SKIP_PARITY=1 to skip these tests on purpose)",
        dir.display()
    );
    Some(dir)
}

fn check(name: &str) {
    let Some(dir) = parity_dir() else { return };
    let report = check_fixture::<Flex>(dir.join(name), &FlexDevice).expect("fixture loads");
    println!("{}", report.line(Tolerance::CPU));
    assert!(report.digits_match, "digit ids differ from the reference");
    assert!(
        report.labels_match,
        "contrastive labels differ from the reference"
    );
    assert!(
        report.max_abs_embedding_error <= 1e-4,
        "embeddings differ by {}",
        report.max_abs_embedding_error
    );
    assert!(
        report.contrastive_rel_error <= 1e-4,
        "contrastive loss rel error {}",
        report.contrastive_rel_error
    );
    assert!(
        report.distill_rel_error <= 1e-4,
        "distill loss rel error {}",
        report.distill_rel_error
    );
}

#[test]
fn parity_1d_text_fixture() {
    check("seqpe_1d.safetensors");
}

#[test]
fn parity_2d_image_fixture() {
    check("seqpe_2d.safetensors");
}

/// Fixtures of configurations the reference fixtures do not cover (3-D positions, bidirectional
/// attention, no final LayerNorm, 3 layers, odd chunk counts), written by the independent numpy
/// implementation `scripts/make_parity_fixture.py` (itself checked against the shared reference
/// fixtures with `--verify`). They live in the repository, so these tests always run.
#[test]
fn parity_with_independent_fixtures_of_other_configs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["seqpe_3d_bi.safetensors", "seqpe_1d_deep.safetensors"] {
        let report = check_fixture::<Flex>(dir.join(name), &FlexDevice).expect("fixture loads");
        println!("{}", report.line(Tolerance::CPU));
        assert!(
            report.passes(Tolerance::CPU),
            "{name}: {}",
            report.line(Tolerance::CPU)
        );
    }
}

/// Where the team's shared copy of the fixtures is beside the checkout, the repository's copy must
/// be byte-identical to it (skipped, visibly, in a clone without it).
#[test]
fn repository_fixtures_equal_the_shared_originals() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/parity");
    if !shared.is_dir() {
        eprintln!("SKIPPED: no shared/parity folder beside the checkout to compare with");
        return;
    }
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference");
    for name in ["seqpe_1d.safetensors", "seqpe_2d.safetensors"] {
        let a = std::fs::read(shared.join(name)).unwrap();
        let b = std::fs::read(ours.join(name)).unwrap();
        assert!(a == b, "{name} differs from the shared original");
    }
}
