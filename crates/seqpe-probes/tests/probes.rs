//! The probes' data generators (labels correct by construction, checked by hand), their batches,
//! and a tiny run of the one training loop that learns a probe above chance.

use burn::backend::{Autodiff, Flex};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqpe_core::PeKind;
use seqpe_probes::config::{
    GridProbeConfig, GridSettings, GridTask, SequenceProbeConfig, SequenceTask,
};
use seqpe_probes::grid::{self, quadrant_label, relative_label, GridExample};
use seqpe_probes::sequence::{self, bin_lengths, bins, Bin, SequenceExample};
use seqpe_train::run::RunDir;
use seqpe_train::{Precision, Session};

type B = Autodiff<Flex>;
const DEV: burn::backend::flex::FlexDevice = burn::backend::flex::FlexDevice;

/// Burn's backend seed is global: every test that initialises a model holds this lock, so the
/// tiny training run starts from the same weights however the tests interleave (its f32/bf16
/// comparison failed once while another test drew initial weights).
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn copy_and_reverse_answers_and_layout_by_hand() {
    let copy = SequenceExample::new(SequenceTask::Copy, vec![3, 1, 4]);
    let rev = SequenceExample::new(SequenceTask::Reverse, vec![3, 1, 4]);
    assert_eq!(copy.answer, vec![3, 1, 4]);
    assert_eq!(rev.answer, vec![4, 1, 3]);
    // alphabet 5: SEP 5, END 6, PAD 7; input s SEP answer, labels answer END
    assert_eq!(rev.tokens(5), vec![3, 1, 4, 5, 4, 1, 3]);
    assert_eq!(rev.labels(5), vec![4, 1, 3, 6]);
    assert_eq!(seqpe_probes::config::vocab(5), 8);
    // a batch of a 1-symbol and a 3-symbol string: padded to 7 tokens, labels at n..=2n
    let short = SequenceExample::new(SequenceTask::Reverse, vec![2]);
    let b = sequence::batch_of::<Flex>(&[short, rev], 5, &DEV);
    let ids = |t: burn::tensor::Tensor<Flex, 2, burn::tensor::Int>| -> Vec<i64> {
        t.into_data().convert::<i64>().to_vec().unwrap()
    };
    assert_eq!(
        ids(b.inputs),
        vec![2, 5, 2, 7, 7, 7, 7, 3, 1, 4, 5, 4, 1, 3]
    );
    assert_eq!(
        ids(b.labels),
        vec![7, 2, 6, 7, 7, 7, 7, 7, 7, 7, 4, 1, 3, 6]
    );
    let mask: Vec<f32> = b.mask.into_data().to_vec().unwrap();
    assert_eq!(
        mask,
        vec![0., 1., 1., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 1.]
    );
}

#[test]
fn training_examples_and_test_bins() {
    let s = SequenceProbeConfig::for_task(SequenceTask::Reverse).probe;
    // example i of a seed is a function of both only; lengths within 1..=L
    for i in 0..200 {
        let e = sequence::train_example(&s, 7, i);
        assert_eq!(e, sequence::train_example(&s, 7, i));
        assert!((1..=s.train_len).contains(&e.input.len()));
        assert!(e.input.iter().all(|&c| (c as usize) < s.alphabet));
        let mut back = e.answer.clone();
        back.reverse();
        assert_eq!(back, e.input);
    }
    assert_ne!(
        sequence::train_example(&s, 7, 0),
        sequence::train_example(&s, 8, 0)
    );
    // bins (0, L], (L, 2L], (2L, 4L], (4L, 8L] for factors 1, 2, 4, 8
    let l = s.train_len;
    assert_eq!(
        bins(&s),
        vec![
            Bin { lo: 0, hi: l },
            Bin { lo: l, hi: 2 * l },
            Bin {
                lo: 2 * l,
                hi: 4 * l
            },
            Bin {
                lo: 4 * l,
                hi: 8 * l
            }
        ]
    );
    assert_eq!(bin_lengths(Bin { lo: 0, hi: 20 }, 4), vec![5, 10, 15, 20]);
    assert_eq!(bin_lengths(Bin { lo: 20, hi: 22 }, 8), vec![21, 22]);
    for (bin, examples) in sequence::test_set(&s, 99) {
        assert_eq!(examples.len(), s.eval_examples);
        assert!(examples
            .iter()
            .all(|e| e.input.len() > bin.lo && e.input.len() <= bin.hi));
    }
}

#[test]
fn relative_and_quadrant_labels_by_hand() {
    // same row: A at column 1, B at column 3 → A left of B; swapped → right of
    assert_eq!(relative_label(true, 1, 3), 0);
    assert_eq!(relative_label(true, 3, 1), 1);
    // same column: A at row 0, B at row 2 → A above B; swapped → below
    assert_eq!(relative_label(false, 0, 2), 2);
    assert_eq!(relative_label(false, 2, 0), 3);
    // a 4 × 4 grid: rows/columns 0-1 are the top/left half
    assert_eq!(quadrant_label(4, 0, 0), 0);
    assert_eq!(quadrant_label(4, 1, 2), 1);
    assert_eq!(quadrant_label(4, 2, 1), 2);
    assert_eq!(quadrant_label(4, 3, 3), 3);
}

fn grid_settings(task: GridTask) -> GridSettings {
    GridProbeConfig::for_task(task).probe
}

#[test]
fn marks_sit_where_the_label_says_at_every_grid_size() {
    let s = grid_settings(GridTask::Relative);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for g in [4usize, 8, 16, 32] {
        for _ in 0..200 {
            let e = GridExample::random(GridTask::Relative, &s, g, &mut rng);
            let [(ra, ca), (rb, cb)] = [e.marks[0], e.marks[1]];
            // one row or one column, two distinct cells
            assert!((ra == rb) != (ca == cb), "{:?}", e.marks);
            // the label read off the marks alone, whatever the grid size
            let want = if ra == rb {
                relative_label(true, ca, cb)
            } else {
                relative_label(false, ra, rb)
            };
            assert_eq!(e.label, want);
            // mark A raises channel 0 of its pixel, mark B channel 1
            let px = |r: usize, c: usize, k: usize| e.pixels[(r * g + c) * e.channels + k];
            assert!(
                px(ra, ca, 0) > 1.0 && px(rb, cb, 1) > 1.0,
                "marks not visible"
            );
        }
    }
    // the same marks on a larger grid keep their label (a shift or a wider grid changes nothing)
    assert_eq!(
        relative_label(true, 2, 5),
        relative_label(true, 2 + 9, 5 + 9)
    );
    let q = grid_settings(GridTask::Quadrant);
    for _ in 0..200 {
        let e = GridExample::random(GridTask::Quadrant, &q, 8, &mut rng);
        let (r, c) = e.marks[0];
        assert_eq!(e.label, quadrant_label(8, r, c));
    }
}

/// The coordinate regression applies where the positions are the image's own and is skipped on
/// a random-shift step: by hand, and in the loss of a SeqPE probe ViT (with the term skipped, the
/// loss is the task loss whatever its weight; at the origin the weight shows).
#[test]
fn the_coordinate_term_is_skipped_on_shifted_steps() {
    let _rng = rng_lock();
    use burn::tensor::ElementConversion;
    use seqpe_core::PositionGrid;
    use seqpe_train::Task;
    let origin = PositionGrid::new(1, vec![4, 4]);
    let shifted = origin.clone().with_starts(vec![0, 0, 3, 5]);
    assert!(grid::coordinates_apply(None));
    assert!(grid::coordinates_apply(Some(&origin)));
    assert!(!grid::coordinates_apply(Some(&shifted)));
    assert!(!grid::coordinates_apply(Some(
        &PositionGrid::new(1, vec![16]).with_starts(vec![7])
    )));

    type AD = Autodiff<Flex>;
    let mut cfg = GridProbeConfig::for_task(GridTask::Relative);
    cfg.probe.grid = 4;
    cfg.model.image_size = 4;
    cfg.model.d_model = 16;
    cfg.model.seqpe.d_model = 16;
    let model = grid::ProbeVit::new(cfg.model.init::<AD>(&DEV).unwrap(), 16, &DEV);
    let loss = |weight: f64, at: &PositionGrid| -> f64 {
        let mut settings = cfg.probe.clone();
        settings.aux_weight = weight;
        let task = grid::GridProbe::new(settings, 1, 8, cfg.model.trained_extent()).unwrap();
        let batch = <grid::GridProbe as Task<AD>>::batch(&task, &[0, 1, 2, 3], 0, &DEV).unwrap();
        let ctx = model.vit.positions.context(at, 4, None, &DEV).unwrap();
        task.loss(&model, batch, &ctx).into_scalar().elem()
    };
    // equal up to the order of parallel sums (the term at the origin adds about 0.8)
    let (a, b) = (loss(10.0, &shifted), loss(0.0, &shifted));
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    assert!(loss(10.0, &origin) > loss(0.0, &origin) + 1e-3);
}

#[test]
fn grid_batches_are_channel_first() {
    let s = GridSettings {
        channels: 2,
        noise: 0.0,
        amp: 1.0,
        ..grid_settings(GridTask::Quadrant)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let e = GridExample::random(GridTask::Quadrant, &s, 4, &mut rng);
    let (r, c) = e.marks[0];
    let b = grid::batch_of::<Flex>(std::slice::from_ref(&e), &DEV);
    assert_eq!(b.images.dims(), [1, 2, 4, 4]);
    let v: Vec<f32> = b.images.into_data().to_vec().unwrap();
    // without noise only channel 0 of the mark's pixel is set
    for (i, x) in v.iter().enumerate() {
        let expect = if i == r * 4 + c { 1.0 } else { 0.0 };
        assert_eq!(*x, expect, "index {i}");
    }
}

#[test]
fn a_tiny_vit_learns_the_quadrant_probe_above_chance() {
    let _rng = rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = GridProbeConfig::for_task(GridTask::Quadrant);
    cfg.probe.grid = 4;
    cfg.probe.eval_grids = vec![4, 8];
    cfg.probe.eval_examples = 128;
    cfg.probe.valid_examples = 128;
    cfg.model.image_size = 4;
    cfg.model.d_model = 32;
    cfg.model.n_layers = 2;
    cfg.model.pe = PeKind::Learned;
    cfg.train.steps = 600;
    cfg.train.batch_size = 32;
    cfg.train.warmup_steps = 20;
    cfg.train.eval_every = 0;
    cfg.train.checkpoint_every = 0;
    let run = RunDir::new(tmp.path().join("run"));
    let summary =
        seqpe_probes::run::train_grid::<B>(cfg, &Session::fresh(&run.root), &DEV).unwrap();
    let eval = seqpe_probes::run::evaluate::<Flex>(&run, Precision::F32, &DEV).unwrap();
    println!("{}", eval.table());
    let trained = &eval.points[0];
    assert!(trained.trained && trained.key == 4);
    // per class: four shares (`class_accuracy` is checked against hand-made counts below)
    assert_eq!(trained.per_class.len(), 4);
    // the learned table's differences split over row, column and both (diagnostics test by hand)
    let a = eval.axes.expect("a learned table has position vectors");
    assert!(
        (a.row + a.column + a.interaction - 1.0).abs() < 1e-6,
        "{a:?}"
    );
    assert!(trained.per_class.iter().all(|c| (0.0..=1.0).contains(c)));
    assert!(
        trained.accuracy > 0.5,
        "quadrant top-1 {} after {} steps (chance 0.25)",
        trained.accuracy,
        summary.steps
    );
    // bf16 (weights and position context cast) classifies the same images nearly alike
    let low = seqpe_probes::run::evaluate::<Flex>(&run, Precision::Bf16, &DEV).unwrap();
    assert_eq!(low.precision, Precision::Bf16);
    for (a, b) in eval.points.iter().zip(&low.points) {
        assert!(
            (a.accuracy - b.accuracy).abs() <= 0.05,
            "{}: f32 {} bf16 {}",
            a.label,
            a.accuracy,
            b.accuracy
        );
    }
}

/// Per-class top-1 of a grid model: each image counted under its own label, right where the
/// argmax (computed here from the logits) is that label.
#[test]
fn class_accuracy_counts_each_label_by_hand() {
    let _rng = rng_lock();
    use burn::tensor::ElementConversion;
    use seqpe_core::PeTableCache;
    let mut cfg = GridProbeConfig::for_task(GridTask::Relative);
    cfg.probe.grid = 4;
    cfg.model.image_size = 4;
    cfg.model.d_model = 16;
    cfg.model.pe = PeKind::Learned;
    let vit = cfg.model.init::<Flex>(&DEV).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let images: Vec<GridExample> = (0..24)
        .map(|_| GridExample::random(GridTask::Relative, &cfg.probe, 4, &mut rng))
        .collect();
    let mut expect = [(0usize, 0usize); 4];
    for e in &images {
        let b = grid::batch_of::<Flex>(std::slice::from_ref(e), &DEV);
        let ctx = vit
            .positions
            .context(&vit.grid_for(4, 4).unwrap(), 1, None, &DEV)
            .unwrap();
        let logits = vit.forward_with(b.images, &ctx, Default::default());
        let pred: i64 = logits.argmax(1).into_scalar().elem();
        let cell = &mut expect[e.label as usize];
        cell.0 += usize::from(pred == i64::from(e.label));
        cell.1 += 1;
    }
    let got = grid::class_accuracy(&vit, &images, &PeTableCache::new(), &DEV).unwrap();
    assert_eq!(got.0, expect);
    assert_eq!(got.0.iter().map(|c| c.1).sum::<usize>(), 24);
}

/// Greedy decoding of a SeqPE GPT cast to bf16 (its table and context follow the weights): the
/// same answers as at f32 for nearly every token of an untrained model's decisive argmaxes.
#[test]
fn a_bf16_sequence_probe_decodes_like_f32() {
    let _rng = rng_lock();
    let cfg = SequenceProbeConfig::quick(SequenceTask::Reverse);
    let model = cfg.model.init::<Flex>(&DEV).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let examples: Vec<SequenceExample> = (0..16)
        .map(|_| SequenceExample::random(SequenceTask::Reverse, 6, 4, &mut rng))
        .collect();
    let f32 = sequence::greedy_score(&model, &examples, 4, &DEV).unwrap();
    let low = Precision::Bf16.cast_model(model);
    let bf16 = sequence::greedy_score(&low, &examples, 4, &DEV).unwrap();
    assert_eq!(bf16.examples, 16);
    assert!(
        (f32.token_accuracy - bf16.token_accuracy).abs() <= 0.1,
        "f32 {f32:?} bf16 {bf16:?}"
    );
}
