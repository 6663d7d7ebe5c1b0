//! The training loop on a toy task (a one-layer causal model with SeqPE on a synthetic stream):
//! stop and resume, zero intervals, non-finite losses, wall time, what a resumed run keeps; the
//! same loop with two data-parallel peers (burn-collective) against one.

mod common;

use common::*;
use std::path::Path;

use seqpe_train::config::{for_run, for_run_with_flags, GivenFlag, RunConfig};
use seqpe_train::run::RunDir;
use seqpe_train::{DataParallel, TrainSettings};

#[test]
fn stop_after_checkpoints_and_the_resumed_run_equals_an_uninterrupted_one() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let s = settings(6, 2, 4);
    train(&a, &s, false, None, None).unwrap();
    // step 3 is not a checkpoint step: --stop-after must still checkpoint there
    let first = train(&b, &s, false, Some(3), None).unwrap();
    assert_eq!(first.steps, 3);
    assert_eq!(saved_step(&b), 3);
    let second = train(&b, &s, true, None, None).unwrap();
    assert_eq!(second.steps, 6);
    let (la, lb) = (step_losses(&a), step_losses(&b));
    let steps: Vec<u64> = lb.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "every step logged once");
    assert_eq!(la.len(), lb.len());
    for ((_, x), (_, y)) in la.iter().zip(&lb) {
        assert!(
            (x - y).abs() < 1e-5,
            "resumed losses differ: {la:?} vs {lb:?}"
        );
    }
    // the SeqPE diagnostics are logged
    let lines = metric_lines(&b);
    assert!(lines.iter().any(|v| v["contrastive"].is_f64()));
    assert!(lines.iter().any(|v| v["ranking_acc"].is_f64()));
    assert!(lines.iter().any(|v| v["pe_effective_rank"].is_f64()));
    // wall time is summed over both sessions (the first up to its checkpoint at step 3)
    assert!(
        second.total_seconds >= second.seconds + 0.5 * first.seconds,
        "{} vs {} + {}",
        second.total_seconds,
        first.seconds,
        second.seconds
    );
}

#[test]
fn a_killed_session_logs_no_step_twice_after_resume() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let s = settings(6, 0, 2);
    train(&dir, &s, false, Some(4), None).unwrap();
    // a session killed after step 5 (past the step-4 checkpoint) leaves a stray line
    let mut text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    text += "{\"step\":5,\"loss\":1.0}\n";
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    train(&dir, &s, true, None, None).unwrap();
    let steps: Vec<u64> = step_losses(&dir).iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>());
}

#[test]
fn zero_intervals_validate_and_checkpoint_only_at_the_end() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let summary = train(&dir, &settings(5, 0, 0), false, None, None).unwrap();
    assert_eq!(summary.steps, 5);
    assert_eq!(saved_step(&dir), 5);
    let valid: Vec<u64> = metric_lines(&dir)
        .iter()
        .filter(|v| v.get("valid_loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(valid, vec![5]);
    assert!(dir.join("best/model.mpk").is_file());
}

#[test]
fn a_non_finite_loss_stops_before_any_update() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = format!(
        "{:#}",
        train(&dir, &settings(6, 0, 1), false, None, Some(3)).unwrap_err()
    );
    assert!(
        err.contains("step 4") && err.contains("not finite"),
        "{err}"
    );
    // the checkpoint of step 3 is the last one; the run resumes from it
    assert_eq!(saved_step(&dir), 3);
    let summary = train(&dir, &settings(6, 0, 1), true, None, None).unwrap();
    assert_eq!(summary.steps, 6);
    assert!(summary.final_loss.is_finite());
}

#[test]
fn a_resumed_run_keeps_its_saved_config_and_only_steps_can_change() {
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path());
    let saved = ToyConfig::preset("small").unwrap();
    seqpe_train::checkpoint::write_json(&run.config(), &saved).unwrap();
    // a fresh preset with other steps (and width) does not change a resumed run
    let fresh = ToyConfig::preset("long").unwrap();
    let cfg = for_run(&run, true, fresh.clone(), &[]).unwrap();
    assert_eq!(cfg, saved);
    // --set train.steps=N extends it
    let mut extended = fresh.clone();
    extended.train.steps = 9;
    let cfg = for_run(&run, true, extended, &["train.steps=9".into()]).unwrap();
    assert_eq!(cfg.train.steps, 9);
    assert_eq!(cfg.width, saved.width);
    // any other --set is refused rather than silently ignored
    let err = for_run(&run, true, fresh.clone(), &["width=32".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("width=32"), "{err}");
    // one that repeats the saved value changes nothing and is accepted
    let same = format!("width={}", saved.width);
    assert_eq!(for_run(&run, true, fresh.clone(), &[same]).unwrap(), saved);
    // a fresh run uses the fresh config
    assert_eq!(for_run(&run, false, fresh.clone(), &[]).unwrap(), fresh);
}

#[test]
fn a_resumed_run_refuses_a_typed_flag_that_would_change_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path());
    let saved = ToyConfig::preset("small").unwrap();
    seqpe_train::checkpoint::write_json(&run.config(), &saved).unwrap();
    let fresh = ToyConfig::preset("long").unwrap();
    // `--width 32` on a run saved with another width (as `--pe ape` on a SeqPE run) is an
    // error naming the flag as typed, not silently ignored
    let other = GivenFlag::new("--width", "width", &(saved.width + 1));
    assert_eq!(other.shown, format!("--width {}", saved.width + 1));
    let err = for_run_with_flags(&run, true, fresh.clone(), &[], &[other])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("`--width {}`", saved.width + 1)),
        "{err}"
    );
    // a string-valued flag is written as the config file holds it
    let preset = GivenFlag::new("--preset", "preset", &"long");
    assert_eq!(preset.setting, "preset=\"long\"");
    assert!(for_run_with_flags(&run, true, fresh.clone(), &[], &[preset]).is_err());
    // the saved value is accepted, and a fresh run ignores the check
    let same = GivenFlag::new("--width", "width", &saved.width);
    assert_eq!(
        for_run_with_flags(&run, true, fresh.clone(), &[], std::slice::from_ref(&same)).unwrap(),
        saved
    );
    let other = GivenFlag::new("--width", "width", &(saved.width + 1));
    assert_eq!(
        for_run_with_flags(&run, false, fresh.clone(), &[], &[other]).unwrap(),
        fresh
    );
}
#[test]
fn two_data_parallel_peers_train_as_one_device() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let s = settings(6, 3, 3);
    let a = train_on(&one, &s, false, None, None, DataParallel::single(), 0.0).unwrap();
    let b = train_on(&two, &s, false, None, None, DataParallel::local(2), 0.0).unwrap();
    assert_same_steps(&one, &two, 1e-5);
    assert!((a.final_loss - b.final_loss).abs() < 1e-5);
    // one writer: one line per step and per validation, and the same validations
    let valid = |dir: &Path| -> Vec<f64> {
        metric_lines(dir)
            .iter()
            .filter_map(|v| v["valid_loss"].as_f64())
            .collect()
    };
    let (va, vb) = (valid(&one), valid(&two));
    assert_eq!(va.len(), 2);
    assert_eq!(vb.len(), 2);
    for (x, y) in va.iter().zip(&vb) {
        assert!((x - y).abs() < 1e-5, "{va:?} vs {vb:?}");
    }
    assert!(two.join("best/model.mpk").exists() && two.join("summary.json").exists());
}

#[test]
fn a_data_parallel_run_stops_and_resumes_like_one_device() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let s = settings(6, 0, 0);
    train_on(&one, &s, false, None, None, DataParallel::single(), 0.0).unwrap();
    let first = train_on(&two, &s, false, Some(3), None, DataParallel::local(2), 0.0).unwrap();
    assert_eq!(first.steps, 3);
    assert_eq!(saved_step(&two), 3);
    let second = train_on(&two, &s, true, None, None, DataParallel::local(2), 0.0).unwrap();
    assert_eq!(second.steps, 6);
    let steps: Vec<u64> = step_losses(&two).iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "every step logged once");
    assert_same_steps(&one, &two, 1e-5);
}

#[test]
fn a_non_finite_loss_stops_every_peer() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = train_on(
        &dir,
        &settings(6, 0, 1),
        false,
        None,
        Some(3),
        DataParallel::local(2),
        0.0,
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("step 4") && err.contains("not finite"),
        "{err}"
    );
    assert_eq!(saved_step(&dir), 3);
    // the collective is usable again: the run resumes with two peers
    let summary = train_on(
        &dir,
        &settings(6, 0, 1),
        true,
        None,
        None,
        DataParallel::local(2),
        0.0,
    )
    .unwrap();
    assert_eq!(summary.steps, 6);
}

#[test]
fn a_batch_that_does_not_split_evenly_is_refused() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let err = train_on(
        &tmp.path().join("run"),
        &settings(2, 0, 0),
        false,
        None,
        None,
        DataParallel::local(3),
        0.0,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("multiple of the number of data-parallel peers"),
        "{err:#}"
    );
}

#[test]
fn resuming_a_finished_run_keeps_its_summary_and_a_run_cannot_be_shortened() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let s = settings(6, 3, 3);
    let done = train(&dir, &s, false, None, None).unwrap();
    let saved = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    // --resume with nothing left to train: the summary is returned and left as it was
    let again = train(&dir, &s, true, None, None).unwrap();
    assert_eq!(again.final_loss, done.final_loss);
    assert!(!again.metric.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.json")).unwrap(),
        saved
    );
    // fewer steps than the run has: a clear error, and nothing saved is touched
    let err = train(&dir, &settings(4, 3, 3), true, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at step 6") && err.contains("cannot be shortened"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.json")).unwrap(),
        saved
    );
}

#[test]
fn settings_that_would_panic_or_train_nothing_are_refused() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    for (name, s, stop_after, want) in [
        (
            "zero-batch",
            TrainSettings {
                batch_size: 0,
                ..settings(4, 2, 2)
            },
            None,
            "batch_size",
        ),
        ("zero-steps", settings(0, 2, 2), None, "train.steps"),
        ("stop-0", settings(4, 2, 2), Some(0), "--stop-after"),
        (
            // the toy task has 32 examples
            "batch-beyond-the-data",
            TrainSettings {
                batch_size: 33,
                ..settings(4, 2, 2)
            },
            None,
            "larger than the 32 training examples",
        ),
        (
            // trained into a non-finite loss at step 2, blamed on the learning rate
            "negative-decay",
            TrainSettings {
                weight_decay: -1.0,
                ..settings(4, 2, 2)
            },
            None,
            "train.weight_decay must be a number of at least 0, not -1",
        ),
        (
            "no-clip",
            TrainSettings {
                grad_clip: 0.0,
                ..settings(4, 2, 2)
            },
            None,
            "train.grad_clip must be a positive number",
        ),
        (
            "all-smoothing",
            TrainSettings {
                label_smoothing: 1.0,
                ..settings(4, 2, 2)
            },
            None,
            "train.label_smoothing must be at least 0 and below 1",
        ),
    ] {
        let err = train(&tmp.path().join(name), &s, false, stop_after, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
}
