//! The 2-D probes `relative` and `quadrant` on the ViT (patch 1: every pixel of `C` channels is
//! one token).
//!
//! An image is a `G × G` grid of noise, every channel of every pixel drawn from `N(0, noise²)`;
//! a mark `k` (A = 0, B = 1) adds `amp` to channel `k` of its pixel, so a mark is visible in its
//! own pixel only and says nothing about where it is.
//!
//! * `relative` (4 classes): marks A and B on one row or one column (which, the line and the
//!   two distinct coordinates drawn uniformly); the label is A left of B, right of B, above B or
//!   below B. It means the same at every grid size, and a model without positions cannot tell
//!   an image from its mirror image, so NoPE sits at chance (25 %).
//! * `quadrant` (4 classes, `G` even): one mark A uniformly placed; the label is its quadrant
//!   (top-left, top-right, bottom-left, bottom-right): a question about absolute position.
//!
//! Training image `i` of a run is a function of `(seed, i)` only; evaluation images at every
//! grid size come from their own seed stream.
//!
//! **Dense coordinate supervision.** Trained through the CLS head alone, a small ViT sits at
//! chance on both probes for thousands of steps (measured, `scripts/PROBES-FINDINGS.md`): at
//! initialisation every position appears once in every image, so the position part of what the
//! CLS gathers is the same for every image, and the attention that would find the marks gets no
//! gradient in expectation (a symmetric saddle). As in the PyTorch twin, every patch token
//! therefore also regresses its own normalised coordinates (`(r + ½)/G − ½`, `(c + ½)/G − ½`)
//! through a small head ([`ProbeVit::coords`], weight `aux_weight`), which makes the position
//! path carry coordinates from the start. The targets depend on the grid only (the same for
//! every image, so they say nothing about the marks; SeqPE's random-shift steps, whose positions
//! are not the image's, skip the term: [`coordinates_apply`]); evaluation reads the CLS head
//! alone, and a model without positions (NoPE) can fit neither.

use anyhow::{bail, Result};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::Linear;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_core::{AttentionOptions, PeTableCache, PositionContext, PositionEncoding, PositionGrid};
use seqpe_train::{Goal, Metric, PositionedModel, Task};
use seqpe_vision::model::Vit;
use serde::{Deserialize, Serialize};

use crate::config::{GridSettings, GridTask};

/// One image: `grid × grid` pixels of `channels` values (row-major, channel last) and its label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridExample {
    pub grid: usize,
    pub channels: usize,
    pub pixels: Vec<f32>,
    pub label: u32,
    /// Where the marks are, `(row, col)` of A then B (for tests and the data dump).
    pub marks: Vec<(usize, usize)>,
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Where the marks of a `relative` example go and its label: the line's orientation, the line,
/// and A's and B's (distinct) coordinates along it.
pub fn relative_label(same_row: bool, a: usize, b: usize) -> u32 {
    match (same_row, a < b) {
        (true, true) => 0,   // A left of B
        (true, false) => 1,  // A right of B
        (false, true) => 2,  // A above B
        (false, false) => 3, // A below B
    }
}

/// The quadrant of `(row, col)` on a `grid × grid` image: 0 top-left, 1 top-right, 2
/// bottom-left, 3 bottom-right.
pub fn quadrant_label(grid: usize, row: usize, col: usize) -> u32 {
    2 * u32::from(2 * row >= grid) + u32::from(2 * col >= grid)
}

/// The names of the four classes of a task.
pub fn class_names(task: GridTask) -> [&'static str; 4] {
    match task {
        GridTask::Relative => ["A left of B", "A right of B", "A above B", "A below B"],
        GridTask::Quadrant => ["top-left", "top-right", "bottom-left", "bottom-right"],
    }
}

impl GridExample {
    /// A random image of `task` at `grid` from `rng`.
    pub fn random(task: GridTask, s: &GridSettings, grid: usize, rng: &mut ChaCha8Rng) -> Self {
        let c = s.channels;
        let (marks, label) = match task {
            GridTask::Relative => {
                let same_row = rng.random_bool(0.5);
                let line = rng.random_range(0..grid);
                let a = rng.random_range(0..grid);
                let mut b = rng.random_range(0..grid - 1);
                if b >= a {
                    b += 1;
                }
                let at = |k: usize| if same_row { (line, k) } else { (k, line) };
                (vec![at(a), at(b)], relative_label(same_row, a, b))
            }
            GridTask::Quadrant => {
                let (r, col) = (rng.random_range(0..grid), rng.random_range(0..grid));
                (vec![(r, col)], quadrant_label(grid, r, col))
            }
        };
        let mut pixels: Vec<f32> = (0..grid * grid * c)
            .map(|_| s.noise as f32 * normal(rng))
            .collect();
        for (k, &(r, col)) in marks.iter().enumerate() {
            pixels[(r * grid + col) * c + k] += s.amp as f32;
        }
        Self {
            grid,
            channels: c,
            pixels,
            label,
            marks,
        }
    }
}

/// Training image `index` of a run seeded `seed`, at the training grid.
pub fn train_example(s: &GridSettings, seed: u64, index: usize) -> GridExample {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    GridExample::random(s.task, s, s.grid, &mut rng)
}

/// The test images: `eval_examples` at each of the settings' evaluation grids.
pub fn test_set(s: &GridSettings, seed: u64) -> Vec<(usize, Vec<GridExample>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7E57_0000_0000_0003);
    s.eval_grids
        .iter()
        .map(|&g| {
            let images = (0..s.eval_examples)
                .map(|_| GridExample::random(s.task, s, g, &mut rng))
                .collect();
            (g, images)
        })
        .collect()
}

/// Images `[b, C, G, G]` and labels `[b]`.
pub struct GridBatch<B: Backend> {
    pub images: Tensor<B, 4>,
    pub labels: Tensor<B, 1, Int>,
}

/// The batch of equally sized `examples`.
pub fn batch_of<B: Backend>(examples: &[GridExample], device: &B::Device) -> GridBatch<B> {
    let b = examples.len();
    let (g, c) = examples.first().map_or((1, 1), |e| (e.grid, e.channels));
    // channel last → channel first
    let mut images = vec![0f32; b * c * g * g];
    for (i, e) in examples.iter().enumerate() {
        for p in 0..g * g {
            for k in 0..c {
                images[((i * c + k) * g * g) + p] = e.pixels[p * c + k];
            }
        }
    }
    let labels: Vec<i64> = examples.iter().map(|e| e.label as i64).collect();
    GridBatch {
        images: Tensor::from_data(TensorData::new(images, [b, c, g, g]), device),
        labels: Tensor::from_data(TensorData::new(labels, [b]), device),
    }
}

/// The probes' ViT: the shared ViT and a head that regresses each patch token's coordinates
/// during training (see the module doc).
#[derive(Module, Debug)]
pub struct ProbeVit<B: Backend> {
    pub vit: Vit<B>,
    /// `d → 2`: a patch token's normalised (row, col).
    pub coords: Linear<B>,
}

impl<B: Backend> PositionedModel<B> for ProbeVit<B> {
    fn positions(&self) -> &PositionEncoding<B> {
        &self.vit.positions
    }
}

impl<B: Backend> ProbeVit<B> {
    /// The probe model around a freshly initialised ViT of width `d_model` (the coordinate
    /// head: normal 0.02, bias 0, as the ViT's linears).
    pub fn new(vit: Vit<B>, d_model: usize, device: &B::Device) -> Self {
        Self {
            coords: seqpe_core::attention::normal_linear(d_model, 2, true, 0.02, device),
            vit,
        }
    }
}

/// The coordinate targets of a `grid × grid` image, `[grid², 2]` row-major:
/// `((r + ½)/G − ½, (c + ½)/G − ½)`.
pub fn coordinate_targets(grid: usize) -> Vec<f32> {
    let g = grid as f32;
    (0..grid * grid)
        .flat_map(|p| {
            let (r, c) = ((p / grid) as f32, (p % grid) as f32);
            [(r + 0.5) / g - 0.5, (c + 0.5) / g - 0.5]
        })
        .collect()
}

/// Whether the coordinate regression applies to a step whose positions are `positions` (the
/// grid of [`PositionContext::grid`]): only where every window sits at the origin. On SeqPE's
/// random-shift steps (the reference's recipe) the window is moved to another corner of the
/// trained range, where the image's own coordinates would ask two positions for one target
/// (measured: those steps stayed at 1.9–2.3 nats while the others fell to 0.03–1.1,
/// `docs/reference-notes.md`, note 25); the term is skipped there, as the reference skips
/// distillation on shifted steps, so shifted steps carry the task loss alone. Every other
/// encoding never shifts.
pub fn coordinates_apply(positions: Option<&PositionGrid>) -> bool {
    positions.is_none_or(|p| p.starts.iter().all(|&s| s == 0))
}

/// Relative or quadrant as a task of the one training loop.
pub struct GridProbe {
    pub settings: GridSettings,
    pub seed: u64,
    /// Training images the run draws (steps × batch: every one is new).
    pub examples: usize,
    /// Validation images at the training grid (their own seed stream).
    pub valid: Vec<GridExample>,
    grid: PositionGrid,
}

impl GridProbe {
    /// `extent` is the model's position grid at the training size (`[G, G]`, or `[G²]` for the
    /// flat index).
    pub fn new(
        settings: GridSettings,
        seed: u64,
        examples: usize,
        extent: Vec<usize>,
    ) -> Result<Self> {
        if settings.grid < 2 || settings.channels < 2 {
            bail!(
                "a grid probe needs a grid of at least 2×2 and 2 channels (one per mark); got \
                 grid {} and {} channels",
                settings.grid,
                settings.channels
            );
        }
        if settings.task == GridTask::Quadrant
            && (settings.grid % 2 == 1 || settings.eval_grids.iter().any(|g| g % 2 == 1))
        {
            bail!("the quadrant probe needs even grid sizes (the quadrants must be equal)");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0A11_D000_0000_0004);
        let valid = (0..settings.valid_examples)
            .map(|_| GridExample::random(settings.task, &settings, settings.grid, &mut rng))
            .collect();
        Ok(Self {
            settings,
            seed,
            examples,
            valid,
            grid: PositionGrid::new(1, extent),
        })
    }
}

impl<B: AutodiffBackend> Task<B> for GridProbe {
    type Model = ProbeVit<B>;
    type Batch = GridBatch<B>;

    fn train_len(&self) -> usize {
        self.examples
    }

    fn grid(&self) -> &PositionGrid {
        &self.grid
    }

    fn batch(&self, indices: &[usize], _step: usize, device: &B::Device) -> Result<Self::Batch> {
        let examples: Vec<GridExample> = indices
            .iter()
            .map(|&i| train_example(&self.settings, self.seed, i))
            .collect();
        Ok(batch_of(&examples, device))
    }

    fn loss(
        &self,
        model: &ProbeVit<B>,
        batch: Self::Batch,
        positions: &PositionContext<B>,
    ) -> Tensor<B, 1> {
        let h = model
            .vit
            .hidden(batch.images, positions, AttentionOptions::default());
        let [b, t, d] = h.dims();
        let device = h.device();
        let logits = model
            .vit
            .head
            .forward(h.clone().narrow(1, 0, 1).reshape([b, d]));
        let task = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, batch.labels);
        if self.settings.aux_weight == 0.0 || !coordinates_apply(positions.grid.as_ref()) {
            return task;
        }
        let n = t - 1;
        let g = self.settings.grid;
        let pred = model.coords.forward(h.narrow(1, 1, n));
        let target =
            Tensor::<B, 2>::from_data(TensorData::new(coordinate_targets(g), [n, 2]), &device)
                .unsqueeze_dim::<3>(0);
        let mse = (pred - target).powf_scalar(2.0).mean();
        task + mse * self.settings.aux_weight
    }

    fn validate(&self, model: &ProbeVit<B::InnerBackend>, device: &B::Device) -> Result<Metric> {
        let acc = accuracy(&model.vit, &self.valid, &PeTableCache::new(), device)?;
        Ok(Metric::new("valid_top1", acc, Goal::Maximize))
    }

    fn unit(&self) -> (&'static str, usize) {
        ("images", 1)
    }
}

/// Top-1 accuracy on equally sized images (batches of 128, one position table per size).
pub fn accuracy<B: Backend>(
    model: &Vit<B>,
    examples: &[GridExample],
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<f64> {
    Ok(class_accuracy(model, examples, cache, device)?.top1())
}

/// `(right, images)` of each of the four classes, in the order of [`class_names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassCounts(pub [(usize, usize); 4]);

impl ClassCounts {
    /// Top-1 over every image.
    pub fn top1(&self) -> f64 {
        let (right, images) = self.0.iter().fold((0, 0), |(r, n), c| (r + c.0, n + c.1));
        right as f64 / images.max(1) as f64
    }

    /// Top-1 of each class's images.
    pub fn shares(&self) -> Vec<f64> {
        self.0
            .iter()
            .map(|&(r, n)| r as f64 / n.max(1) as f64)
            .collect()
    }
}

/// Top-1 of `model` on `examples` per class (which answers a model gets right: an encoding that
/// tells rows apart but not columns answers `relative`'s above/below and one side for every
/// same-row pair).
pub fn class_accuracy<B: Backend>(
    model: &Vit<B>,
    examples: &[GridExample],
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<ClassCounts> {
    let mut out = ClassCounts::default();
    for chunk in examples.chunks(128) {
        let g = chunk[0].grid;
        if chunk.iter().any(|e| e.grid != g) {
            bail!("accuracy scores images of one size at a time");
        }
        let batch = batch_of::<B>(chunk, device);
        let grid = model.grid_for(g, g)?;
        let ctx = model.inference_context(&grid, chunk.len(), cache, device)?;
        let pred = model
            .forward_with(batch.images, &ctx, AttentionOptions::default())
            .argmax(1)
            .reshape([chunk.len()]);
        let pred: Vec<i64> = pred
            .into_data()
            .convert::<i64>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("cannot read the predictions: {e:?}"))?;
        for (e, p) in chunk.iter().zip(pred) {
            let cell = &mut out.0[e.label as usize];
            cell.0 += usize::from(p == i64::from(e.label));
            cell.1 += 1;
        }
    }
    Ok(out)
}
