//! What a model supplies to the training loop ([`crate::fit`](mod@crate::fit)): a [`Task`] knows
//! its examples, its unshifted positions, its loss and its validation [`Metric`]; its model has
//! one position seam ([`PositionedModel`]).

use anyhow::Result;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor};
use seqpe_core::{PeTableCache, PositionContext, PositionEncoding, PositionGrid};
use serde::{Deserialize, Serialize};

/// A model with one position-encoding seam (the GPT, the ViT).
pub trait PositionedModel<B: Backend> {
    fn positions(&self) -> &PositionEncoding<B>;

    /// The position context of `grid` for inference, tiled to `batch` rows, any SeqPE table
    /// taken from `cache`, in the dtype of the model's weights: a model cast to bf16 for a bf16
    /// evaluation gets a bf16 context (the parameter-free encodings build f32 tables); a no-op at
    /// f32. Every evaluation builds its context here.
    fn inference_context(
        &self,
        grid: &PositionGrid,
        batch: usize,
        cache: &PeTableCache<B>,
        device: &B::Device,
    ) -> Result<PositionContext<B>>
    where
        Self: Module<B> + Sized,
    {
        let context = cache.context(self.positions(), grid, batch, device)?;
        Ok(match weights_dtype(self) {
            Some(dtype) => context.cast(dtype),
            None => context,
        })
    }
}

/// The dtype of `model`'s first float parameter (`None` without one).
pub fn weights_dtype<B: Backend, M: Module<B>>(model: &M) -> Option<DType> {
    struct First(Option<DType>);
    impl<B: Backend> ModuleVisitor<B> for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.0.is_none() {
                self.0 = Some(param.val().dtype());
            }
        }
    }
    let mut first = First(None);
    model.visit(&mut first);
    first.0
}

/// Whether a validation metric is better when lower (perplexity) or higher (accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    Minimize,
    Maximize,
}

/// One validation result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Its key in `metrics.jsonl` (`valid_ppl`, `valid_top1`, `valid_answer_ppl`).
    pub name: String,
    pub value: f64,
    pub goal: Goal,
}

impl Metric {
    pub fn new(name: &str, value: f64, goal: Goal) -> Self {
        Self {
            name: name.into(),
            value,
            goal,
        }
    }

    /// Whether this result beats `best` (a NaN never does).
    pub fn better_than(&self, best: Option<f64>) -> bool {
        if !self.value.is_finite() {
            return false;
        }
        match (best, self.goal) {
            (None, _) => true,
            (Some(b), Goal::Minimize) => self.value < b,
            (Some(b), Goal::Maximize) => self.value > b,
        }
    }
}

/// What the loop needs to know about a task: its examples, its positions and its loss.
pub trait Task<B: AutodiffBackend> {
    type Model: AutodiffModule<B, InnerModule: PositionedModel<B::InnerBackend>>
        + PositionedModel<B>;
    type Batch;

    /// Training examples (blocks, images, questions); the epoch sampler shuffles `0..len`.
    fn train_len(&self) -> usize;
    /// Where the tokens of every training batch sit when unshifted (the regularizer may shift
    /// them).
    fn grid(&self) -> &PositionGrid;
    /// The batch of these example indices at `step` (which seeds any augmentation).
    fn batch(&self, indices: &[usize], step: usize, device: &B::Device) -> Result<Self::Batch>;
    /// One data-parallel peer's `part` of the global batch `indices` at `step`: the examples
    /// `indices[part]`, exactly as they are in the whole batch (a task whose augmentation draws
    /// from one stream over the batch overrides this).
    fn batch_part(
        &self,
        indices: &[usize],
        part: std::ops::Range<usize>,
        step: usize,
        device: &B::Device,
    ) -> Result<Self::Batch> {
        self.batch(&indices[part], step, device)
    }
    /// The task loss of a batch (a scalar) with the given position context.
    fn loss(
        &self,
        model: &Self::Model,
        batch: Self::Batch,
        positions: &PositionContext<B>,
    ) -> Tensor<B, 1>;
    /// Validation of the current weights.
    fn validate(
        &self,
        model: &<Self::Model as AutodiffModule<B>>::InnerModule,
        device: &B::Device,
    ) -> Result<Metric>;
    /// What one example counts for throughput: (`"tokens"`, block size) or (`"images"`, 1).
    fn unit(&self) -> (&'static str, usize);
}
