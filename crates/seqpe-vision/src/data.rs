//! The vision data pipeline: sources, splits, augmentation, resizing, normalisation, batching.
//!
//! * [`ImageSource`]: Fashion-MNIST from the data cache (default), a folder of IDX files, or an
//!   ImageNet-style image folder (one subfolder per class).
//! * [`load_splits`]: train / validation (held out from the training split after a fixed
//!   shuffle) / test.
//! * [`augment`]: random crop with zero padding and horizontal flip (on the `u8` pixels).
//! * [`resize_bilinear`] / [`resize_nearest`]: evaluation at other resolutions.
//! * [`Batcher`]: `u8` images → normalised `[b, c, s, s]` float tensors and label tensors.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_datasets::cache::DataDir;
use seqpe_datasets::vision::{fashion_mnist, load_idx, load_image_folder, ImageSet};
use serde::{Deserialize, Serialize};

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// Fashion-MNIST from the data cache (`cargo xtask fetch-data vision`).
    FashionMnist(DataDir),
    /// A folder with `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    /// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]` (MNIST naming; `test-`
    /// instead of `t10k-` also works).
    Idx(PathBuf),
    /// An image folder: `DIR/train/<class>/*.png|jpg` with `DIR/val/<class>/…` (or `DIR/test`),
    /// or just `DIR/<class>/…`, in which case every 10th image of a class is the test split.
    Folder(PathBuf),
}

impl ImageSource {
    /// A short name for result files: `default` (the fetched Fashion-MNIST), `idx-<folder>` or
    /// `folder-<folder>`, so results on different data never overwrite each other.
    pub fn label(&self) -> String {
        let name = |p: &Path| -> String {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into())
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        match self {
            ImageSource::FashionMnist(_) => "default".into(),
            ImageSource::Idx(p) => format!("idx-{}", name(p)),
            ImageSource::Folder(p) => format!("folder-{}", name(p)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ImageSource::FashionMnist(d) => {
                format!("Fashion-MNIST ({})", d.fashion_mnist_dir().display())
            }
            ImageSource::Idx(p) => format!("IDX files in {}", p.display()),
            ImageSource::Folder(p) => format!("image folder {}", p.display()),
        }
    }
}

/// Train, validation and test images.
#[derive(Debug, Clone)]
pub struct VisionSplits {
    pub train: ImageSet,
    pub valid: ImageSet,
    pub test: ImageSet,
}

/// The images at `indices`, in that order.
pub fn subset(set: &ImageSet, indices: &[usize]) -> ImageSet {
    let mut images = Vec::with_capacity(indices.len() * set.image_len());
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        images.extend_from_slice(set.image(i));
        labels.push(set.labels[i]);
    }
    ImageSet {
        images,
        labels,
        len: indices.len(),
        height: set.height,
        width: set.width,
        channels: set.channels,
        classes: set.classes.clone(),
    }
}

fn idx_file(dir: &Path, prefixes: &[&str], kind: &str) -> Result<PathBuf> {
    for p in prefixes {
        for ext in ["", ".gz"] {
            let f = dir.join(format!("{p}-{kind}{ext}"));
            if f.is_file() {
                return Ok(f);
            }
        }
    }
    bail!(
        "{} has no `{}-{kind}[.gz]` file (IDX folders use the MNIST file names)",
        dir.display(),
        prefixes[0]
    )
}

fn load_idx_dir(dir: &Path) -> Result<(ImageSet, ImageSet)> {
    if !dir.is_dir() {
        bail!("IDX folder {} not found", dir.display());
    }
    let train = load_idx(
        &idx_file(dir, &["train"], "images-idx3-ubyte")?,
        &idx_file(dir, &["train"], "labels-idx1-ubyte")?,
    )?;
    let test = load_idx(
        &idx_file(dir, &["t10k", "test"], "images-idx3-ubyte")?,
        &idx_file(dir, &["t10k", "test"], "labels-idx1-ubyte")?,
    )?;
    Ok((train, test))
}

fn load_folder(dir: &Path, size: usize, channels: usize) -> Result<(ImageSet, ImageSet)> {
    let gray = channels == 1;
    let sz = (size as u32, size as u32);
    let train_dir = dir.join("train");
    let test_dir = ["val", "test"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_dir());
    if train_dir.is_dir() {
        let test_dir = test_dir.ok_or_else(|| {
            anyhow!(
                "{} has a train/ folder but no val/ or test/ folder next to it",
                dir.display()
            )
        })?;
        let train = load_image_folder(&train_dir, sz, gray)?;
        let test = load_image_folder(&test_dir, sz, gray)?;
        if train.classes != test.classes {
            bail!(
                "the classes of {} ({:?}) differ from those of {} ({:?})",
                test_dir.display(),
                test.classes,
                train_dir.display(),
                train.classes
            );
        }
        return Ok((train, test));
    }
    let all = load_image_folder(dir, sz, gray)?;
    // every 10th image of each class is a test image
    let mut seen = vec![0usize; all.classes.len()];
    let (mut tr, mut te) = (Vec::new(), Vec::new());
    for (i, &l) in all.labels.iter().enumerate() {
        let k = &mut seen[l as usize];
        if *k % 10 == 9 {
            te.push(i);
        } else {
            tr.push(i);
        }
        *k += 1;
    }
    if te.is_empty() {
        bail!(
            "{} holds too few images for a test split (every 10th image of a class is a test \
             image); add images or use DIR/train + DIR/val",
            dir.display()
        );
    }
    Ok((subset(&all, &tr), subset(&all, &te)))
}

/// Loads the training and test images of a source. Image folders are decoded at `size` with
/// `channels` (1 = grayscale); IDX data keeps its own size and one channel.
pub fn load_source(
    source: &ImageSource,
    size: usize,
    channels: usize,
) -> Result<(ImageSet, ImageSet)> {
    Ok(match source {
        ImageSource::FashionMnist(dir) => fashion_mnist(dir)?,
        ImageSource::Idx(dir) => load_idx_dir(dir)?,
        ImageSource::Folder(dir) => load_folder(dir, size, channels)?,
    })
}

/// Resizes every image of a set to `size × size` (bilinear); returns it unchanged if it already
/// has that size.
pub fn resize_set(set: &ImageSet, size: usize) -> ImageSet {
    if set.height == size && set.width == size {
        return set.clone();
    }
    let mut images = Vec::with_capacity(set.len * size * size * set.channels);
    for i in 0..set.len {
        images.extend(
            resize_bilinear(
                set.image(i),
                set.height,
                set.width,
                set.channels,
                size,
                size,
            )
            .into_iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8),
        );
    }
    ImageSet {
        images,
        height: size,
        width: size,
        ..set.clone()
    }
}

/// Train / validation / test. The training split is shuffled with a fixed seed (image folders
/// come sorted by class), the last `valid_images` become the validation split, and the first
/// `train_subset` (0 = all) of the rest are trained on. Images are resized to `size`.
pub fn load_splits(
    source: &ImageSource,
    size: usize,
    channels: usize,
    valid_images: usize,
    train_subset: usize,
) -> Result<VisionSplits> {
    let (train, test) = load_source(source, size, channels)?;
    if train.len == 0 || test.len == 0 {
        bail!("{} has an empty train or test split", source.describe());
    }
    if valid_images >= train.len {
        bail!(
            "{} has {} training images; cannot hold out {valid_images} for validation \
             (set data.valid_images lower)",
            source.describe(),
            train.len
        );
    }
    let order = holdout_order(train.len);
    let n_train = train.len - valid_images;
    let mut train_idx = order[..n_train].to_vec();
    if train_subset > 0 {
        train_idx.truncate(train_subset);
    }
    let valid = subset(&train, &order[n_train..]);
    let train = subset(&train, &train_idx);
    Ok(VisionSplits {
        train: resize_set(&train, size),
        valid: resize_set(&valid, size),
        test: resize_set(&test, size),
    })
}

/// The fixed shuffle of the training split whose last `valid_images` entries are the validation
/// split (see [`load_splits`]).
fn holdout_order(len: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(0x5EED_DA7A));
    order
}

/// Which held-out images an evaluation scores (`Valid`: the images held out of the training
/// split).
pub use seqpe_datasets::EvalSplit;

/// Per-channel mean and standard deviation of pixel values in `[0, 1]`.
pub fn channel_stats(set: &ImageSet) -> (Vec<f32>, Vec<f32>) {
    let c = set.channels;
    let mut sum = vec![0f64; c];
    let mut sq = vec![0f64; c];
    for (i, &v) in set.images.iter().enumerate() {
        let x = v as f64 / 255.0;
        sum[i % c] += x;
        sq[i % c] += x * x;
    }
    let n = (set.images.len() / c.max(1)).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - m * m).max(1e-12)).sqrt() as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// Bilinear resize of one `[h, w, c]` image to `[oh, ow, c]` (half-pixel centres, edges
/// clamped: PyTorch `align_corners=False` without antialiasing). Values stay in `0..=255`.
pub fn resize_bilinear(src: &[u8], h: usize, w: usize, c: usize, oh: usize, ow: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(oh * ow * c);
    let coord = |o: usize, n_in: usize, n_out: usize| {
        let x = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
        let i0 = (x.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        (i0, i1, (x - i0 as f64) as f32)
    };
    let cols: Vec<_> = (0..ow).map(|x| coord(x, w, ow)).collect();
    for y in 0..oh {
        let (y0, y1, fy) = coord(y, h, oh);
        for &(x0, x1, fx) in &cols {
            for ch in 0..c {
                let px = |yy: usize, xx: usize| src[(yy * w + xx) * c + ch] as f32;
                let top = px(y0, x0) * (1.0 - fx) + px(y0, x1) * fx;
                let bottom = px(y1, x0) * (1.0 - fx) + px(y1, x1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    out
}

/// Nearest-neighbour resize of one `[h, w, c]` image to `[oh, ow, c]`.
pub fn resize_nearest(src: &[u8], h: usize, w: usize, c: usize, oh: usize, ow: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(oh * ow * c);
    for y in 0..oh {
        let sy = (y * h / oh).min(h - 1);
        for x in 0..ow {
            let sx = (x * w / ow).min(w - 1);
            for ch in 0..c {
                out.push(src[(sy * w + sx) * c + ch] as f32);
            }
        }
    }
    out
}

/// Training augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Zero padding of the random crop (0 = none).
    pub crop_padding: usize,
    pub hflip: bool,
}

/// Random crop (pad with zeros by `crop_padding`, crop back to `h × w` at a random offset) and
/// random horizontal flip of one `[h, w, c]` image.
pub fn augment(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    aug: Augment,
    rng: &mut impl Rng,
) -> Vec<u8> {
    let pad = aug.crop_padding as isize;
    let (dy, dx) = if pad > 0 {
        (
            rng.random_range(0..=2 * pad as i64) as isize - pad,
            rng.random_range(0..=2 * pad as i64) as isize - pad,
        )
    } else {
        (0, 0)
    };
    let flip = aug.hflip && rng.random_bool(0.5);
    let mut out = vec![0u8; h * w * c];
    for y in 0..h {
        let sy = y as isize + dy;
        if sy < 0 || sy >= h as isize {
            continue;
        }
        for x in 0..w {
            let xx = if flip { w - 1 - x } else { x };
            let sx = xx as isize + dx;
            if sx < 0 || sx >= w as isize {
                continue;
            }
            let s = (sy as usize * w + sx as usize) * c;
            let d = (y * w + x) * c;
            out[d..d + c].copy_from_slice(&src[s..s + c]);
        }
    }
    out
}

/// How test images are brought to an evaluation size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interp {
    Nearest,
    Bilinear,
}

/// Builds normalised batches `[b, c, size, size]`.
#[derive(Debug, Clone)]
pub struct Batcher {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub interp: Interp,
}

impl Batcher {
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Self {
        Self {
            mean,
            std,
            interp: Interp::Bilinear,
        }
    }

    /// The images at `indices` of `set`, augmented when `augment` is given, resized to
    /// `size × size`, normalised, channel-first. Returns `(pixels [b·c·size·size], labels)`.
    pub fn batch_data(
        &self,
        set: &ImageSet,
        indices: &[usize],
        size: usize,
        mut augmentation: Option<(Augment, &mut ChaCha8Rng)>,
    ) -> (Vec<f32>, Vec<i64>) {
        let (h, w, c) = (set.height, set.width, set.channels);
        assert_eq!(
            self.mean.len(),
            c,
            "normalisation has {} channels, images {c}",
            self.mean.len()
        );
        let mut pixels = vec![0f32; indices.len() * c * size * size];
        let mut labels = Vec::with_capacity(indices.len());
        for (b, &i) in indices.iter().enumerate() {
            let img = match augmentation.as_mut() {
                Some((aug, rng)) => {
                    std::borrow::Cow::Owned(augment(set.image(i), h, w, c, *aug, *rng))
                }
                None => std::borrow::Cow::Borrowed(set.image(i)),
            };
            let hwc: Vec<f32> = if h == size && w == size {
                img.iter().map(|&v| v as f32).collect()
            } else {
                match self.interp {
                    Interp::Bilinear => resize_bilinear(&img, h, w, c, size, size),
                    Interp::Nearest => resize_nearest(&img, h, w, c, size, size),
                }
            };
            let base = b * c * size * size;
            for p in 0..size * size {
                for ch in 0..c {
                    pixels[base + ch * size * size + p] =
                        (hwc[p * c + ch] / 255.0 - self.mean[ch]) / self.std[ch];
                }
            }
            labels.push(set.labels[i] as i64);
        }
        (pixels, labels)
    }

    /// [`Self::batch_data`] as tensors: images `[b, c, size, size]`, labels `[b]`.
    pub fn batch<B: Backend>(
        &self,
        set: &ImageSet,
        indices: &[usize],
        size: usize,
        augmentation: Option<(Augment, &mut ChaCha8Rng)>,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        let (pixels, labels) = self.batch_data(set, indices, size, augmentation);
        let b = indices.len();
        let c = set.channels;
        (
            Tensor::from_data(TensorData::new(pixels, [b, c, size, size]), device),
            Tensor::from_data(TensorData::new(labels, [b]), device),
        )
    }
}

/// The augmentation RNG of one training step: a pure function of (seed, step), so a resumed run
/// augments exactly as an uninterrupted one.
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F))
}

/// The held-out images of a source at each evaluation size: IDX data is resized from its own
/// size; image-folder test images are decoded again at the requested size (no double resampling).
#[derive(Debug, Clone)]
pub struct TestImages {
    pub source: ImageSource,
    pub split: EvalSplit,
    pub native: ImageSet,
    pub channels: usize,
}

impl TestImages {
    /// The test split.
    pub fn load(source: &ImageSource, native_size: usize, channels: usize) -> Result<Self> {
        Self::load_split(source, EvalSplit::Test, 0, native_size, channels)
    }

    /// The test split, or the `valid_images` validation images held out of the training split
    /// (the same images as [`load_splits`] holds out, at their own size).
    pub fn load_split(
        source: &ImageSource,
        split: EvalSplit,
        valid_images: usize,
        native_size: usize,
        channels: usize,
    ) -> Result<Self> {
        let (train, test) = load_source(source, native_size, channels)
            .with_context(|| format!("loading {}", source.describe()))?;
        let native = match split {
            EvalSplit::Test => test,
            EvalSplit::Valid => {
                if valid_images == 0 || valid_images >= train.len {
                    bail!(
                        "{} has {} training images; cannot hold out {valid_images} for validation",
                        source.describe(),
                        train.len
                    );
                }
                let order = holdout_order(train.len);
                subset(&train, &order[train.len - valid_images..])
            }
        };
        Ok(Self {
            source: source.clone(),
            split,
            native,
            channels,
        })
    }

    /// `limit` test images (0 = all; otherwise evenly spaced over the split, so class-sorted
    /// folders stay balanced). IDX images keep their own size (the [`Batcher`] resizes them);
    /// image folders are decoded again at `size`.
    pub fn at(&self, size: usize, limit: usize) -> Result<ImageSet> {
        let set = match &self.source {
            ImageSource::Folder(_)
                if self.split == EvalSplit::Test && self.native.height != size =>
            {
                load_source(&self.source, size, self.channels)?.1
            }
            _ => self.native.clone(),
        };
        Ok(evenly_spaced(&set, limit))
    }
}

/// `limit` images evenly spaced over the set (all of them when `limit` is 0 or too large).
pub fn evenly_spaced(set: &ImageSet, limit: usize) -> ImageSet {
    if limit == 0 || limit >= set.len {
        return set.clone();
    }
    let idx: Vec<usize> = (0..limit).map(|i| i * set.len / limit).collect();
    subset(set, &idx)
}
