//! Kill-and-resume in its own test binary: the backend RNG is process-global, so no other test
//! may draw random numbers while the two runs are compared.

mod common;
use common::*;

#[test]
fn kill_and_resume_gives_the_same_losses() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let idx = write_idx(&dir, 64, 16);
    // SeqPE with random shifts, dropout in the encoder, crops and flips: every source of
    // randomness must be restored for the losses to match
    let whole = dir.join("whole");
    train::<AD>(tiny_config(PeKind::SeqPe, 9), &options(&whole, &idx), &DEV).unwrap();
    let split = dir.join("split");
    let mut first = options(&split, &idx);
    first.session.stop_after = Some(5);
    train::<AD>(tiny_config(PeKind::SeqPe, 9), &first, &DEV).unwrap();
    // a second start without --resume is refused: nothing saved is overwritten
    let err = train::<AD>(tiny_config(PeKind::SeqPe, 9), &options(&split, &idx), &DEV).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    let mut second = options(&split, &idx);
    second.session.resume = true;
    // the resumed run keeps its saved 9 steps although the fresh config says 30 (only an
    // explicit --set train.steps=N changes it)
    let summary = train::<AD>(tiny_config(PeKind::SeqPe, 30), &second, &DEV).unwrap();
    assert_eq!(summary.steps, 9);
    let a = logged_losses(&whole);
    let b = logged_losses(&split);
    assert_eq!(a.len(), 9);
    assert_eq!(b.len(), 9);
    for ((sa, la), (sb, lb)) in a.iter().zip(&b) {
        assert_eq!(sa, sb);
        assert!((la - lb).abs() < 1e-5, "step {sa}: {la} vs {lb}");
    }
}
