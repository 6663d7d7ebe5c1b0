//! Helpers shared by the seqpe-vision integration tests: small Fashion-MNIST-like image sets
//! written by the tests themselves (IDX files and PNG folders, no network, no real data needed),
//! a tiny configuration, and readers of a run's logs.
#![allow(dead_code, unused_imports)]

pub use std::path::{Path, PathBuf};

pub use burn::backend::flex::FlexDevice;
pub use burn::backend::{Autodiff, Flex};
pub use burn::module::AutodiffModule;
pub use burn::tensor::{Int, Tensor, TensorData};
pub use seqpe_core::PeKind;
pub use seqpe_train::run::RunDir;
use seqpe_train::Session;
pub use seqpe_vision::config::VisionConfig;
pub use seqpe_vision::data::ImageSource;
pub use seqpe_vision::eval::{evaluate_run, load_run};
pub use seqpe_vision::train::{train, TrainOptions};

pub type AD = Autodiff<Flex>;
pub const DEV: FlexDevice = FlexDevice;

/// A temporary folder, removed when the returned guard is dropped (also when a test fails).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A small deterministic generator (the tests need no `rand` dependency of their own).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

/// A 28×28 grayscale "garment" of class `class` (0–9): a class-specific silhouette (bars,
/// blocks, a ring…) at a slightly jittered place, with noise; image `index` varies the jitter.
pub fn synthetic_image(class: usize, index: usize) -> Vec<u8> {
    let mut rng = Lcg((class * 7919 + index * 104_729 + 1) as u64);
    let (dy, dx) = ((rng.next() % 3) as isize - 1, (rng.next() % 3) as isize - 1);
    let mut img = vec![0u8; 28 * 28];
    for y in 0..28isize {
        for x in 0..28isize {
            let (yy, xx) = (y - dy, x - dx);
            let on = match class {
                0 => {
                    (6..22).contains(&yy)
                        && (4..24).contains(&xx)
                        && !(yy < 10 && (10..18).contains(&xx))
                }
                1 => (3..26).contains(&yy) && ((8..12).contains(&xx) || (16..20).contains(&xx)),
                2 => (5..23).contains(&yy) && (3..25).contains(&xx),
                3 => (3..26).contains(&yy) && (14 - (yy / 3)..14 + (yy / 3) + 2).contains(&xx),
                4 => (4..25).contains(&yy) && (5..23).contains(&xx) && !(13..15).contains(&xx),
                5 => (18..23).contains(&yy) && (2..26).contains(&xx) && (xx + yy) % 4 < 2,
                6 => (5..23).contains(&yy) && (7..21).contains(&xx) && yy % 3 != 0,
                7 => (15..22).contains(&yy) && (3..25).contains(&xx) && (yy > 17 || xx > 14),
                8 => {
                    let (cy, cx) = (yy - 16, xx - 14);
                    (cy * cy + cx * cx < 64 && cy > -3)
                        || ((5..9).contains(&yy) && (9..19).contains(&xx) && !(6..8).contains(&yy))
                }
                _ => {
                    (4..24).contains(&yy) && (16..22).contains(&xx)
                        || (18..24).contains(&yy) && (6..22).contains(&xx)
                }
            };
            let noise = (rng.next() % 40) as u8;
            img[(y * 28 + x) as usize] = if on { 200 + noise % 56 } else { noise / 2 };
        }
    }
    img
}

/// `n` images cycling through the 10 classes.
pub fn synthetic_set(n: usize, offset: usize) -> (Vec<u8>, Vec<u8>) {
    let mut images = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 10;
        images.extend(synthetic_image(class, i + offset));
        labels.push(class as u8);
    }
    (images, labels)
}

pub fn idx_images(images: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.len());
    for v in [0x0000_0803u32, n as u32, 28, 28] {
        out.extend(v.to_be_bytes());
    }
    out.extend_from_slice(images);
    out
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for v in [0x0000_0801u32, labels.len() as u32] {
        out.extend(v.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

/// An IDX folder (MNIST file names) with `train` training and `test` test images.
pub fn write_idx(dir: &Path, train: usize, test: usize) -> PathBuf {
    let idx = dir.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    for (prefix, n, offset) in [("train", train, 0), ("t10k", test, 100_000)] {
        let (images, labels) = synthetic_set(n, offset);
        std::fs::write(
            idx.join(format!("{prefix}-images-idx3-ubyte")),
            idx_images(&images, n),
        )
        .unwrap();
        std::fs::write(
            idx.join(format!("{prefix}-labels-idx1-ubyte")),
            idx_labels(&labels),
        )
        .unwrap();
    }
    idx
}

/// An image folder `root/<class>/<i>.png` with `per_class` 28×28 grayscale PNGs per class.
pub fn write_png_folder(root: &Path, classes: &[&str], per_class: usize) {
    for (c, name) in classes.iter().enumerate() {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class {
            let img = image::GrayImage::from_raw(28, 28, synthetic_image(c, i)).unwrap();
            img.save(d.join(format!("{i}.png"))).unwrap();
        }
    }
}

/// A tiny ViT (2 layers, width 32) on the synthetic 28×28 images with small regularizer batches.
pub fn tiny_config(pe: PeKind, steps: usize) -> VisionConfig {
    let mut cfg = VisionConfig::preset("tiny").unwrap();
    cfg.model.pe = pe;
    cfg.model.d_model = 32;
    cfg.model.n_heads = 2;
    cfg.model.n_layers = 2;
    cfg.model.seqpe.d_model = 16;
    cfg.model.seqpe.max_position = 20;
    cfg.train.batch_size = 16;
    cfg.train.steps = steps;
    cfg.train.warmup_steps = 2;
    cfg.train.lr = 3e-3;
    cfg.train.eval_every = 1000;
    cfg.train.checkpoint_every = 3;
    let r = &mut cfg.train.regularizer;
    r.contrastive_batch = 4;
    r.contrastive_candidates = 8;
    r.distill_windows = 2;
    r.distill_per_window = 8;
    r.shift_windows = 2;
    r.shift_pool = 16;
    r.shift_rate = 0.3;
    cfg.data.valid_images = 16;
    cfg.data.crop_padding = 2;
    cfg.data.hflip = true;
    cfg.data.eval_sizes = vec![28, 56];
    cfg.data.eval_images = 0;
    cfg
}

pub fn options(run: &Path, idx: &Path) -> TrainOptions {
    TrainOptions {
        session: Session::fresh(run),
        source: ImageSource::Idx(idx.to_path_buf()),
    }
}

pub fn logged_losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((v["step"].as_u64()?, v.get("loss")?.as_f64()?))
        })
        .collect()
}
