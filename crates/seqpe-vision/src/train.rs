//! `train-vit`: image classification as a task of the shared training loop
//! ([`seqpe_train::fit`]).
//!
//! [`ClassifyTask`] supplies what is particular to images: training examples are the images of
//! the training split, augmented per step (random crop with padding, horizontal flip; the
//! augmentation RNG is a function of (seed, step), so resuming is exact); the loss is the
//! classification cross-entropy; validation is top-1 accuracy on the held-out images at the
//! training size. The loop does the rest (SeqPE's merged encoder pass with its 2-D random shift
//! and regularizers, grouped AdamW with the ViT's warm-up + cosine schedule, checkpoints, resume).

use anyhow::{anyhow, Result};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use seqpe_core::{AttentionOptions, PeTableCache, PositionContext, PositionGrid};
use seqpe_datasets::vision::ImageSet;
use seqpe_train::config::RunConfig;
use seqpe_train::Session;
use seqpe_train::{fit, FitSummary, Goal, Metric, Task};

use crate::config::VisionConfig;
use crate::data::{
    channel_stats, evenly_spaced, load_splits, step_rng, Augment, Batcher, ImageSource,
};
use crate::eval::accuracy;
use crate::model::Vit;

/// Where a run reads its data and writes its files.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub session: Session,
    pub source: ImageSource,
}

/// Classification of augmented training images.
pub struct ClassifyTask {
    pub train: ImageSet,
    pub valid: ImageSet,
    /// Training (and validation) image side in pixels.
    pub size: usize,
    pub batcher: Batcher,
    pub augment: Augment,
    pub seed: u64,
    pub label_smoothing: f64,
    grid: PositionGrid,
}

impl ClassifyTask {
    /// The task for a model trained at `size` pixels on positions `extent` (the model settings'
    /// [`crate::config::ModelSettings::trained_extent`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        train: ImageSet,
        valid: ImageSet,
        size: usize,
        extent: Vec<usize>,
        batcher: Batcher,
        augment: Augment,
        seed: u64,
        label_smoothing: f64,
    ) -> Self {
        Self {
            train,
            valid,
            size,
            batcher,
            augment,
            seed,
            label_smoothing,
            grid: PositionGrid::new(1, extent),
        }
    }
}

/// Normalised images and their labels.
pub struct ImageBatch<B: AutodiffBackend> {
    pub images: Tensor<B, 4>,
    pub labels: Tensor<B, 1, Int>,
}

impl<B: AutodiffBackend> Task<B> for ClassifyTask {
    type Model = Vit<B>;
    type Batch = ImageBatch<B>;

    fn train_len(&self) -> usize {
        self.train.len
    }

    fn grid(&self) -> &PositionGrid {
        &self.grid
    }

    fn batch(&self, indices: &[usize], step: usize, device: &B::Device) -> Result<ImageBatch<B>> {
        let mut rng = step_rng(self.seed, step);
        let (images, labels) = self.batcher.batch::<B>(
            &self.train,
            indices,
            self.size,
            Some((self.augment, &mut rng)),
            device,
        );
        Ok(ImageBatch { images, labels })
    }

    /// The augmentation stream runs over the whole global batch (as on one device), so every
    /// image is augmented as it is with one device; this peer keeps its part.
    fn batch_part(
        &self,
        indices: &[usize],
        part: std::ops::Range<usize>,
        step: usize,
        device: &B::Device,
    ) -> Result<ImageBatch<B>> {
        let mut rng = step_rng(self.seed, step);
        let (pixels, labels) = self.batcher.batch_data(
            &self.train,
            indices,
            self.size,
            Some((self.augment, &mut rng)),
        );
        let per_image = pixels.len() / indices.len().max(1);
        let (b, c) = (part.len(), self.train.channels);
        let pixels = pixels[part.start * per_image..part.end * per_image].to_vec();
        let labels = labels[part].to_vec();
        Ok(ImageBatch {
            images: Tensor::from_data(
                TensorData::new(pixels, [b, c, self.size, self.size]),
                device,
            ),
            labels: Tensor::from_data(TensorData::new(labels, [b]), device),
        })
    }

    fn loss(
        &self,
        model: &Vit<B>,
        batch: ImageBatch<B>,
        positions: &PositionContext<B>,
    ) -> Tensor<B, 1> {
        let logits = model.forward_with(batch.images, positions, AttentionOptions::default());
        let smoothing = (self.label_smoothing > 0.0).then_some(self.label_smoothing as f32);
        CrossEntropyLossConfig::new()
            .with_smoothing(smoothing)
            .init(&logits.device())
            .forward(logits, batch.labels)
    }

    fn validate(&self, model: &Vit<B::InnerBackend>, device: &B::Device) -> Result<Metric> {
        let acc = accuracy(
            model,
            &self.valid,
            self.size,
            &self.batcher,
            &PeTableCache::new(),
            device,
        )?;
        Ok(Metric::new("valid_top1", acc.top1(), Goal::Maximize))
    }

    fn unit(&self) -> (&'static str, usize) {
        ("images", 1)
    }
}

/// Trains (or resumes) a run; returns its summary.
pub fn train<B: AutodiffBackend>(
    cfg: VisionConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<FitSummary> {
    let (run, resume) = (&opts.session.run, opts.session.resume);
    let mut cfg = opts.session.config(cfg)?;
    cfg.validate()?;
    let m0 = &cfg.model;
    let splits = load_splits(
        &opts.source,
        m0.image_size,
        m0.channels,
        cfg.data.valid_images,
        cfg.data.train_subset,
    )?;
    // channels, classes and normalisation come from the data (and are saved for evaluation)
    if resume {
        if splits.train.channels != cfg.model.channels
            || splits.train.classes.len() != cfg.model.num_classes
        {
            return Err(anyhow!(
                "{} has {} channels and {} classes but the run in {} was trained on {} and {}",
                opts.source.describe(),
                splits.train.channels,
                splits.train.classes.len(),
                run.root.display(),
                cfg.model.channels,
                cfg.model.num_classes
            ));
        }
    } else {
        cfg.model.channels = splits.train.channels;
        cfg.model.num_classes = splits.train.classes.len();
        if cfg.data.mean.len() != cfg.model.channels {
            let (mean, std) = channel_stats(&splits.train);
            cfg.data.mean = mean;
            cfg.data.std = std;
        }
        seqpe_train::checkpoint::write_json(&run.config(), &cfg)?;
    }
    let m = &cfg.model;
    let task = ClassifyTask::new(
        splits.train,
        evenly_spaced(&splits.valid, cfg.train.valid_limit),
        m.image_size,
        m.trained_extent(),
        Batcher::new(cfg.data.mean.clone(), cfg.data.std.clone()),
        Augment {
            crop_padding: cfg.data.crop_padding,
            hflip: cfg.data.hflip,
        },
        cfg.train.seed,
        cfg.train.label_smoothing,
    );
    B::seed(device, cfg.train.seed);
    let model: Vit<B> = m.init(device)?;
    let options = opts.session.fit_options("train-vit");
    fit(&task, model, &cfg.train, &options, device)
}
