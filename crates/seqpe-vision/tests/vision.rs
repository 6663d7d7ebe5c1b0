//! End-to-end tests of seqpe-vision on small image sets the tests write themselves (IDX files
//! and PNG folders; no network, no fetched data).

mod common;
use common::*;

use rand::SeedableRng;
use seqpe_core::digits::DigitTokenizer;
use seqpe_core::{PeTableCache, PositionGrid, SeqPeRegularizer};
use seqpe_datasets::vision::ImageSet;
use seqpe_train::fit::{optimizer_for, train_step};
use seqpe_train::Task;
use seqpe_vision::data::{
    augment, load_splits, resize_bilinear, resize_nearest, subset, Augment, Batcher,
};
use seqpe_vision::eval::{accuracy, similarity_map};
use seqpe_vision::model::Vit;
use seqpe_vision::train::ClassifyTask;

/// Burn's backend seed is global: tests that seed and then initialise a model hold this lock, so
/// another test's initialisation cannot draw from the stream in between (which made the overfit
/// test start from a different model on some runs).
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn data_pipeline_idx_and_folders() {
    let _rng = rng_lock();
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    let idx = write_idx(&dir, 60, 20);
    let s = load_splits(&ImageSource::Idx(idx.clone()), 28, 1, 10, 0).unwrap();
    assert_eq!((s.train.len, s.valid.len, s.test.len), (50, 10, 20));
    assert_eq!(
        (s.train.height, s.train.width, s.train.channels),
        (28, 28, 1)
    );
    // the hold-out is disjoint from the training images and labels stay with their images
    let (images, labels) = synthetic_set(60, 0);
    let originals: Vec<(&[u8], u32)> = images
        .chunks(784)
        .zip(labels.iter().map(|&l| l as u32))
        .collect();
    let mut pairs: Vec<(&[u8], u32)> = (0..s.train.len)
        .map(|i| (s.train.image(i), s.train.labels[i]))
        .chain((0..s.valid.len).map(|i| (s.valid.image(i), s.valid.labels[i])))
        .collect();
    assert!(
        pairs.iter().all(|p| originals.contains(p)),
        "labels stay with their images"
    );
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 60, "train and validation are disjoint");
    let s2 = load_splits(&ImageSource::Idx(idx.clone()), 28, 1, 10, 8).unwrap();
    assert_eq!(s2.train.len, 8, "train_subset keeps the first N");

    // batches: normalised, channel-first, resized on demand
    let batcher = Batcher::new(vec![0.2], vec![0.3]);
    let (x, y) = batcher.batch::<Flex>(&s.test, &[0, 1, 2], 28, None, &DEV);
    assert_eq!(x.dims(), [3, 1, 28, 28]);
    assert_eq!(y.dims(), [3]);
    let v: Vec<f32> = x.into_data().to_vec().unwrap();
    let raw = s.test.image(0)[5 * 28 + 7] as f32 / 255.0;
    assert!((v[5 * 28 + 7] - (raw - 0.2) / 0.3).abs() < 1e-5);
    let (x, _) = batcher.batch::<Flex>(&s.test, &[0, 1], 56, None, &DEV);
    assert_eq!(x.dims(), [2, 1, 56, 56]);

    // resizing: constant stays constant, 2× bilinear interpolates between pixels
    let flat = vec![77u8; 3 * 5 * 2];
    assert!(resize_bilinear(&flat, 3, 5, 2, 7, 9)
        .iter()
        .all(|&p| (p - 77.0).abs() < 1e-4));
    let up = resize_bilinear(&[0, 100, 100, 200], 2, 2, 1, 4, 4);
    assert_eq!(up.len(), 16);
    assert_eq!((up[0], up[15]), (0.0, 200.0));
    assert!((up[1] - 25.0).abs() < 1e-4 && (up[5] - 50.0).abs() < 1e-4);
    assert_eq!(
        resize_nearest(&[1, 2, 3, 4], 2, 2, 1, 4, 4)[..4],
        [1.0, 1.0, 2.0, 2.0]
    );

    // augmentation keeps the shape; flip-only mirrors, crop-only shifts in zeros
    let img: Vec<u8> = (0..12).collect(); // 3×4, one channel
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let flips: Vec<Vec<u8>> = (0..16)
        .map(|_| {
            let a = Augment {
                crop_padding: 0,
                hflip: true,
            };
            augment(&img, 3, 4, 1, a, &mut rng)
        })
        .collect();
    assert!(flips.iter().any(|f| f == &img));
    assert!(flips.iter().any(|f| f[..4] == [3, 2, 1, 0]));
    for _ in 0..16 {
        let a = Augment {
            crop_padding: 1,
            hflip: false,
        };
        let out = augment(&img, 3, 4, 1, a, &mut rng);
        assert_eq!(out.len(), 12);
        // every non-zero pixel is the original shifted by the same offset
        assert!(out.iter().filter(|&&v| v > 0).all(|v| img.contains(v)));
    }

    // image folders: train/val layout and a flat layout with every 10th image as test
    let folder = dir.join("folder");
    write_png_folder(&folder.join("train"), &["bag", "coat", "shirt"], 4);
    write_png_folder(&folder.join("val"), &["bag", "coat", "shirt"], 2);
    let f = load_splits(&ImageSource::Folder(folder.clone()), 14, 1, 2, 0).unwrap();
    assert_eq!((f.train.len, f.valid.len, f.test.len), (10, 2, 6));
    assert_eq!(f.test.classes, vec!["bag", "coat", "shirt"]);
    assert_eq!((f.test.height, f.test.channels), (14, 1));
    let flat_dir = dir.join("flat");
    write_png_folder(&flat_dir, &["a", "b"], 12);
    let f = load_splits(&ImageSource::Folder(flat_dir), 28, 3, 2, 0).unwrap();
    assert_eq!((f.train.len + f.valid.len, f.test.len), (22, 2));
    assert_eq!(f.train.channels, 3);
}

#[test]
fn digit_layout_matches_the_reference() {
    let _rng = rng_lock();
    // a 4×4-patch image: patch (2, 3) is "0 2 0 3" with two digits per axis (max 100 per axis)
    let mut cfg = tiny_config(PeKind::SeqPe, 1);
    cfg.model.seqpe.max_position = 100;
    cfg.model.image_size = 16;
    let model: Vit<Flex> = cfg.model.init(&DEV).unwrap();
    let enc = &model.positions.seqpe().unwrap().encoder;
    assert_eq!(enc.tokenizer, DigitTokenizer::new(2, 2));
    let grid = model.grid_for(16, 16).unwrap();
    assert_eq!((grid.prefix, grid.extent.clone()), (1, vec![4, 4]));
    let flat = grid.flat_positions();
    // row-major: the patch at flat index 2·4+3 = 11 is (row 2, col 3)
    assert_eq!(&flat[22..24], &[2, 3]);
    assert_eq!(
        enc.tokenizer.encode(&flat[22..24]).unwrap(),
        vec![0, 2, 0, 3]
    );
    assert_eq!(enc.tokenizer.encode(&[3, 14]).unwrap(), vec![0, 3, 1, 4]);
    // the whole 7×7 training grid enumerates rows first
    let g7 = model.grid_for(28, 28).unwrap().flat_positions();
    assert_eq!(&g7[..6], &[0, 0, 0, 1, 0, 2]);
    assert_eq!(&g7[14..16], &[1, 0]);
    // dims 1: the row-major index with the width of 100² positions (4 digits)
    cfg.model.dims = 1;
    let m1: Vit<Flex> = cfg.model.init(&DEV).unwrap();
    let e1 = &m1.positions.seqpe().unwrap().encoder;
    assert_eq!(e1.tokenizer, DigitTokenizer::new(4, 1));
    let g1 = m1.grid_for(16, 16).unwrap();
    assert_eq!(g1.extent, vec![16]);
    assert_eq!(
        e1.tokenizer.encode(&g1.flat_positions()[11..12]).unwrap(),
        vec![0, 0, 1, 1]
    );
    // the regularizers use the trained range per axis and the 7×7 window (after the CLS)
    let c = tiny_config(PeKind::SeqPe, 1);
    let m = &c.model;
    let model: Vit<Flex> = m.init(&DEV).unwrap();
    let grid = PositionGrid::new(1, m.trained_extent());
    let r = SeqPeRegularizer::for_encoding(&model.positions, &grid, &c.train.regularizer, 1)
        .expect("SeqPE has regularizers")
        .config;
    assert_eq!(
        (r.main.window.clone(), r.main.max_per_axis),
        (vec![7, 7], 20)
    );
    // with the flat index, the range is the square of the per-axis one
    let mut c1 = c.clone();
    c1.model.dims = 1;
    let m1: Vit<Flex> = c1.model.init(&DEV).unwrap();
    let r1 = SeqPeRegularizer::for_encoding(&m1.positions, &grid, &c1.train.regularizer, 1)
        .unwrap()
        .config;
    assert_eq!(r1.main.max_per_axis, 400);
    // encodings without a training loss have no regularizer
    let ape: Vit<Flex> = tiny_config(PeKind::Learned, 1).model.init(&DEV).unwrap();
    assert!(
        SeqPeRegularizer::for_encoding(&ape.positions, &grid, &c.train.regularizer, 1).is_none()
    );
}

fn train_on_fixed_images(pe: PeKind, set: &ImageSet, steps: usize) -> (f64, f64, Vit<AD>) {
    let mut cfg = tiny_config(pe, steps);
    cfg.model.dims = 2;
    cfg.model.seqpe.dropout = 0.0;
    cfg.train.weight_decay = 0.0;
    <AD as burn::tensor::backend::Backend>::seed(&DEV, 5);
    let m = &cfg.model;
    let mut model: Vit<AD> = m.init(&DEV).unwrap();
    let mut optim = optimizer_for::<AD, Vit<AD>>(&model, &cfg.train);
    let grid = PositionGrid::new(1, m.trained_extent());
    let mut reg =
        SeqPeRegularizer::for_encoding(&model.positions, &grid, &cfg.train.regularizer, 5);
    let batcher = Batcher::new(vec![0.3], vec![0.4]);
    let no_aug = Augment {
        crop_padding: 0,
        hflip: false,
    };
    let task = ClassifyTask::new(
        set.clone(),
        set.clone(),
        28,
        m.trained_extent(),
        batcher.clone(),
        no_aug,
        5,
        0.0,
    );
    let idx: Vec<usize> = (0..set.len).collect();
    let mut losses = vec![];
    for step in 0..steps {
        let batch = <ClassifyTask as Task<AD>>::batch(&task, &idx, step, &DEV).unwrap();
        let lr = if step < 5 {
            2e-3 * (step + 1) as f64 / 5.0
        } else {
            2e-3
        };
        let (next, stats) = train_step(
            &task,
            model,
            &mut optim,
            reg.as_mut(),
            batch,
            set.len,
            lr,
            seqpe_train::Precision::F32,
            &DEV,
        )
        .unwrap();
        model = next;
        losses.push(stats.loss);
    }
    let acc = accuracy(
        &model.valid(),
        set,
        28,
        &batcher,
        &PeTableCache::new(),
        &DEV,
    )
    .unwrap();
    (losses[0], acc.top1(), model)
}

#[test]
fn vit_overfits_64_images() {
    let _rng = rng_lock();
    let (images, labels) = synthetic_set(64, 0);
    let set = ImageSet {
        images,
        labels: labels.iter().map(|&l| l as u32).collect(),
        len: 64,
        height: 28,
        width: 28,
        channels: 1,
        classes: (0..10).map(|c| c.to_string()).collect(),
    };
    for pe in [PeKind::SeqPe, PeKind::Rope2d] {
        let (first, acc, model) = train_on_fixed_images(pe, &set, 120);
        println!("{pe}: first loss {first:.3}, train accuracy {acc:.3}");
        assert!(
            acc >= 0.95,
            "{pe}: accuracy on its 64 training images {acc}"
        );
        if pe == PeKind::SeqPe {
            // SeqPE extrapolates without new parameters: a 4× larger grid still runs
            let big = subset(&set, &[0, 1, 2, 3]);
            let a = accuracy(
                &model.valid(),
                &big,
                112,
                &Batcher::new(vec![0.3], vec![0.4]),
                &PeTableCache::new(),
                &DEV,
            )
            .unwrap();
            assert_eq!(a.total, 4);
            // similarity maps: 1 on the diagonal, one value per patch
            let sim = similarity_map(&model.valid(), 28, 14, 14, true)
                .unwrap()
                .unwrap();
            assert_eq!(sim.len(), 28 * 28);
            assert!((sim[14 * 28 + 14] - 1.0).abs() < 1e-4);
        }
    }
}

#[test]
fn evaluation_builds_one_pe_table_per_size() {
    let _rng = rng_lock();
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    let idx = write_idx(&dir, 48, 24);
    for (pe, dims) in [(PeKind::SeqPe, 2), (PeKind::SeqPe, 1), (PeKind::Learned, 2)] {
        let run = dir.join(format!("run-{pe}-{dims}"));
        let mut cfg = tiny_config(pe, 2);
        cfg.model.dims = dims;
        train::<AD>(cfg, &options(&run, &idx), &DEV).unwrap();
        let report = evaluate_run::<Flex>(
            &run,
            &[28, 56, 112],
            &ImageSource::Idx(idx.clone()),
            0,
            &DEV,
        )
        .unwrap();
        assert_eq!(
            report.pe_tables_built,
            if pe == PeKind::SeqPe { 3 } else { 0 }
        );
        assert_eq!(report.results.len(), 3);
        assert_eq!(report.results[2].grid, 28);
        assert!(report
            .results
            .iter()
            .all(|r| r.images == 24 && (0.0..=1.0).contains(&r.top1)));
        assert!(report.table().contains("| 112 | 28×28 |"));
        // a subset of the test split
        let r =
            evaluate_run::<Flex>(&run, &[28], &ImageSource::Idx(idx.clone()), 10, &DEV).unwrap();
        assert_eq!(r.results[0].images, 10);
        // `eval-vit --precision bf16`: every size scores the same images, top-1 within 2 of 24
        // images of f32's (a bf16 forward pass may flip a near tie)
        let bf16 = seqpe_vision::eval::evaluate_run_on::<Flex>(
            &run,
            &[28, 56, 112],
            &ImageSource::Idx(idx.clone()),
            seqpe_datasets::EvalSplit::Test,
            0,
            seqpe_train::Precision::Bf16,
            &DEV,
        )
        .unwrap();
        assert_eq!(bf16.precision, seqpe_train::Precision::Bf16);
        for (a, b) in report.results.iter().zip(&bf16.results) {
            assert_eq!(a.images, b.images);
            assert!(
                (a.top1 - b.top1).abs() <= 2.0 / 24.0 + 1e-9,
                "{pe}: {a:?} {b:?}"
            );
        }
    }
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() {
    let _rng = rng_lock();
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    let idx = write_idx(&dir, 40, 10);
    let run = dir.join("run");
    train::<AD>(tiny_config(PeKind::SeqPe, 3), &options(&run, &idx), &DEV).unwrap();
    assert!(run.join("best/model.mpk").is_file() && run.join("checkpoint/model.mpk").is_file());
    let (cfg, a) = load_run::<Flex>(&RunDir::new(&run), &DEV).unwrap();
    let (_, b) = load_run::<Flex>(&RunDir::new(&run), &DEV).unwrap();
    let fresh: Vit<Flex> = cfg.model.init(&DEV).unwrap();
    for size in [28, 56] {
        let x = Tensor::<Flex, 4>::from_data(
            TensorData::new(
                (0..2 * size * size)
                    .map(|i| ((i % 17) as f32) / 17.0)
                    .collect::<Vec<_>>(),
                [2, 1, size, size],
            ),
            &DEV,
        );
        let la = a.forward(x.clone()).unwrap().into_data();
        let lb = b.forward(x.clone()).unwrap().into_data();
        let lf = fresh.forward(x).unwrap().into_data();
        assert_eq!(la, lb, "loading twice gives identical logits at {size}px");
        assert_ne!(la, lf, "the loaded weights are not a fresh init");
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let _rng = rng_lock();
    let tmp = temp_dir();
    let dir = tmp.path().to_path_buf();
    // a corrupt image in a class folder
    let folder = dir.join("corrupt");
    write_png_folder(&folder, &["a", "b"], 10);
    std::fs::write(folder.join("b/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = load_splits(&ImageSource::Folder(folder), 28, 1, 2, 0).unwrap_err();
    assert!(format!("{err:#}").contains("broken.png"), "{err:#}");
    // an empty class folder
    let folder = dir.join("empty");
    write_png_folder(&folder, &["a"], 10);
    std::fs::create_dir_all(folder.join("z-empty")).unwrap();
    let err = load_splits(&ImageSource::Folder(folder), 28, 1, 2, 0).unwrap_err();
    assert!(format!("{err:#}").contains("z-empty"), "{err:#}");
    // labels that do not match the images
    let idx = write_idx(&dir, 30, 10);
    std::fs::write(idx.join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 3])).unwrap();
    let err = load_splits(&ImageSource::Idx(idx.clone()), 28, 1, 2, 0).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("train-labels-idx1-ubyte") && msg.contains("3 labels"),
        "{msg}"
    );
    // a missing IDX file
    let (_, labels) = synthetic_set(30, 0);
    std::fs::write(idx.join("train-labels-idx1-ubyte"), idx_labels(&labels)).unwrap();
    std::fs::remove_file(idx.join("t10k-images-idx3-ubyte")).unwrap();
    let err = load_splits(&ImageSource::Idx(idx), 28, 1, 2, 0).unwrap_err();
    assert!(
        format!("{err:#}").contains("t10k-images-idx3-ubyte"),
        "{err:#}"
    );
    // a checkpoint of the wrong shape
    let idx = write_idx(&dir.join("ok"), 30, 10);
    let run = dir.join("r");
    let mut small_batch = tiny_config(PeKind::Learned, 1);
    // 14 training images: a batch cannot be larger
    small_batch.train.batch_size = 8;
    train::<AD>(small_batch, &options(&run, &idx), &DEV).unwrap();
    let mut cfg: VisionConfig = RunDir::new(&run).read_config().unwrap();
    cfg.model.d_model = 48;
    seqpe_train::checkpoint::write_json(&RunDir::new(&run).config(), &cfg).unwrap();
    let err = load_run::<Flex>(&RunDir::new(&run), &DEV).unwrap_err();
    assert!(format!("{err:#}").contains("model.mpk"), "{err:#}");
    // sizes that are not whole patches, unknown encodings, too large a hold-out
    let err = evaluate_run::<Flex>(
        &dir.join("r"),
        &[42],
        &ImageSource::Idx(idx.clone()),
        0,
        &DEV,
    );
    assert!(err.is_err());
    let (_, m) = {
        let c = tiny_config(PeKind::SeqPe, 1);
        (c.clone(), c.model.init::<Flex>(&DEV).unwrap())
    };
    let e = m.grid_for(42, 42).unwrap_err();
    assert!(
        e.to_string().contains("multiple of the patch size 4"),
        "{e}"
    );
    let err = train::<AD>(
        tiny_config(PeKind::Alibi, 1),
        &options(&dir.join("r2"), &idx),
        &DEV,
    )
    .unwrap_err();
    assert!(err.to_string().contains("alibi"), "{err}");
    let mut c = tiny_config(PeKind::SeqPe, 1);
    c.data.valid_images = 500;
    let err = train::<AD>(c, &options(&dir.join("r3"), &idx), &DEV).unwrap_err();
    assert!(err.to_string().contains("valid_images"), "{err}");
}

/// The reference's no-weight-decay lists: biases, norms, the CLS token, the CLS position vector
/// and position tables take no decay; the SeqPE encoder is its own group; matrices (the patch
/// embedding, attention, MLP, head and SeqPE's per-layer q/k projections) decay.
#[test]
fn weight_decay_groups_follow_the_reference() {
    let _rng = rng_lock();
    use seqpe_train::optim::param_ids;
    for pe in [PeKind::SeqPe, PeKind::Learned, PeKind::RopeMixed] {
        let cfg = tiny_config(pe, 1);
        let model: Vit<AD> = cfg.model.init(&DEV).unwrap();
        let optim = optimizer_for::<AD, Vit<AD>>(&model, &cfg.train);
        let g = &optim.groups;
        let decays = |id| !g.no_decay.contains(id) && !g.encoder.contains(id);
        assert!(g.no_decay.contains(&model.cls_token.id));
        assert!(decays(&model.patch_embed.weight.id));
        assert!(!decays(&model.patch_embed.bias.as_ref().unwrap().id));
        assert!(decays(&model.head.weight.id));
        let block = &model.stack.blocks[0];
        assert!(decays(&block.attn.qkv.weight.id) && decays(&block.mlp.fc.weight.id));
        assert!(g.no_decay.contains(&block.ln1.gamma.id));
        assert!(g
            .no_decay
            .contains(&block.attn.qkv.bias.as_ref().unwrap().id));
        match &model.positions {
            seqpe_core::PositionEncoding::SeqPe(s) => {
                let enc: Vec<_> = param_ids(&s.encoder)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                assert!(enc.iter().all(|id| g.encoder.contains(id)));
                assert_eq!(enc.len(), g.encoder.len());
                assert!(g.no_decay.contains(&s.prefix_pos.as_ref().unwrap().id));
                assert!(s.qk.iter().all(|l| decays(&l.weight.id)));
            }
            seqpe_core::PositionEncoding::Learned(l) => {
                assert!(g.no_decay.contains(&l.weight.id));
                assert!(g.encoder.is_empty());
            }
            seqpe_core::PositionEncoding::RopeMixed(r) => {
                assert!(g.no_decay.contains(&r.freqs.id));
            }
            _ => unreachable!(),
        }
    }
}

/// The patch embedding starts as PyTorch's `Conv2d` default (uniform ±1/√fan_in), not normal(0.02).
#[test]
fn patch_embedding_uses_the_conv2d_default_init() {
    let _rng = rng_lock();
    let cfg = tiny_config(PeKind::SeqPe, 1);
    let model: Vit<Flex> = cfg.model.init(&DEV).unwrap();
    let fan_in = (cfg.model.channels * cfg.model.patch * cfg.model.patch) as f32;
    let bound = 1.0 / fan_in.sqrt();
    let w: Vec<f32> = model.patch_embed.weight.val().into_data().to_vec().unwrap();
    let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mean_abs = w.iter().map(|v| v.abs()).sum::<f32>() / w.len() as f32;
    assert!(max <= bound + 1e-6, "{max} > {bound}");
    // uniform on ±b has mean |x| = b/2 (normal(0.02) would give 0.016)
    assert!(
        (mean_abs - bound / 2.0).abs() < 0.1 * bound,
        "{mean_abs} vs {bound}"
    );
}

/// A bf16 step (`train.precision = bf16`) runs for every vision encoding: the image patches, the
/// RoPE-Mixed coordinates and the parameter-free tables follow the step's dtype.
#[test]
fn a_bf16_step_runs_for_every_vision_encoding() {
    let rows = seqpe_vision::bench::run::<AD>(
        &["tiny".to_string()],
        &seqpe_vision::config::VISION_PES,
        1,
        Some(4),
        &["train.precision=\"bf16\"".to_string()],
        &DEV,
        "flex",
    )
    .unwrap();
    assert_eq!(rows.len(), seqpe_vision::config::VISION_PES.len());
    assert!(rows.iter().all(|r| r.train_images_per_s > 0.0));
}
