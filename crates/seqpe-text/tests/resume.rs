//! Kill-and-resume in its own test binary: the backend RNG is process-global, so no other test
//! may draw random numbers while the two runs are compared.

mod common;
use common::*;
use seqpe_text::train::train;

#[test]
fn kill_and_resume_gives_the_same_losses() {
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    let corpus = write_corpus(&dir);
    let whole = dir.join("whole");
    train::<AD>(
        tiny_config(PeKind::SeqPe, 9),
        &options(&whole, &corpus),
        &DEV,
    )
    .unwrap();
    let split = dir.join("split");
    let mut first = options(&split, &corpus);
    // the same tokenizer: BPE training may break ties differently between two trainings
    first.tokenizer = Some(whole.join("tokenizer.json"));
    first.session.stop_after = Some(6);
    train::<AD>(tiny_config(PeKind::SeqPe, 9), &first, &DEV).unwrap();
    // a second start without --resume is refused: nothing saved is overwritten
    let err = train::<AD>(
        tiny_config(PeKind::SeqPe, 9),
        &options(&split, &corpus),
        &DEV,
    )
    .unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    let mut second = options(&split, &corpus);
    second.session.resume = true;
    train::<AD>(tiny_config(PeKind::SeqPe, 9), &second, &DEV).unwrap();
    let a = logged_losses(&whole);
    let b = logged_losses(&split);
    assert_eq!(a.len(), 9);
    assert_eq!(b.len(), 9);
    for ((sa, la), (sb, lb)) in a.iter().zip(&b) {
        assert_eq!(sa, sb);
        assert!((la - lb).abs() < 1e-5, "step {sa}: {la} vs {lb}");
    }
}
