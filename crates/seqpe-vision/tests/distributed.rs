//! Data parallelism (burn-collective) on the CPU: a tiny SeqPE ViT (2-D positions, random
//! shifts, crops and flips) trained by two peers on the one Flex device logs the same losses as
//! one device with the same global batch. In its own test binary: the backend RNG and the
//! collective server are process-global.

mod common;
use common::*;
use seqpe_train::run::RunDir;
use seqpe_train::DataParallel;

/// Every logged loss, accuracy and gradient norm of the step lines of two runs, step by step,
/// within `tol` (relative); steps with a distillation loss and randomly shifted steps among them.
fn assert_same_steps(one: &Path, two: &Path, tol: f64) {
    let keys = ["loss", "contrastive", "distill", "ranking_acc", "grad_norm"];
    let c = RunDir::new(one)
        .compare_steps(&RunDir::new(two), &keys)
        .unwrap();
    eprintln!("largest relative difference: {:e} ({})", c.largest, c.at);
    assert!(c.largest <= tol, "one device vs two peers: {}", c.at);
    assert!(
        c.distilled && c.shifted,
        "both kinds of step must be compared"
    );
}

#[test]
fn two_peers_give_the_losses_of_one_device() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let idx = write_idx(dir, 64, 16);
    let config = || {
        let mut cfg = tiny_config(PeKind::SeqPe, 8);
        // dropout masks cannot match between one device and two peers
        cfg.model.dropout = 0.0;
        cfg.model.attn_dropout = 0.0;
        cfg.model.seqpe.dropout = 0.0;
        cfg.train.checkpoint_every = 0;
        cfg
    };
    let (one, two) = (dir.join("one"), dir.join("two"));
    let a = train::<AD>(config(), &options(&one, &idx), &DEV).unwrap();
    let mut opts = options(&two, &idx);
    opts.session.parallel = DataParallel::local(2);
    let b = train::<AD>(config(), &opts, &DEV).unwrap();
    assert_eq!((a.steps, b.steps), (8, 8));
    assert_same_steps(&one, &two, 1e-4);
    let (va, vb) = (a.best_valid.unwrap(), b.best_valid.unwrap());
    assert!((va - vb).abs() <= 1e-6, "valid top-1 {va} vs {vb}");
}
