//! [`GroupedAdamW`]: AdamW over two parameter groups with separate global-norm clipping.
//!
//! The reference trains the SeqPE encoder with weight decay 0 and clips the model and the encoder
//! separately (`clip_grad_norm_(model, 5)`, `clip_grad_norm_(seqpe, 5)`). Burn's built-in
//! clipping works per parameter tensor, so the global norms are computed here.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use seqpe_core::SeqPeEncoder;

/// Settings of [`GroupedAdamW`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimSettings {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Weight decay of the main model (the encoder group always uses 0).
    pub weight_decay: f32,
    /// Global-norm clip of the main model's gradients (`None`: no clipping).
    pub clip_model: Option<f64>,
    /// Global-norm clip of the encoder's gradients.
    pub clip_encoder: Option<f64>,
}

impl Default for OptimSettings {
    /// PyTorch AdamW defaults (eps 1e-8), no weight decay, both groups clipped at 5.0.
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            clip_model: Some(5.0),
            clip_encoder: Some(5.0),
        }
    }
}

impl OptimSettings {
    /// PyTorch AdamW defaults with the main group's `weight_decay` and both groups clipped at
    /// `clip` (the reference clips the model and the encoder at the same norm).
    pub fn clipped(weight_decay: f32, clip: f64) -> Self {
        Self {
            weight_decay,
            clip_model: Some(clip),
            clip_encoder: Some(clip),
            ..Self::default()
        }
    }
}

/// Gradient norms before clipping.
#[derive(Debug, Clone, Copy, Default)]
pub struct GradNorms {
    pub model: f64,
    pub encoder: f64,
}

/// Sums the squared gradients of every parameter of a module found in `grads`.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let sq = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

/// Multiplies every gradient of a module found in `grads` by `factor`.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

/// Clips the gradients of `module`'s parameters in `grads` to a global L2 norm of `max_norm`
/// (like `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: Option<f64>,
) -> f64 {
    let mut v = SquaredNorm::<B> { grads, total: None };
    module.visit(&mut v);
    let norm = v
        .total
        .map(|t| t.into_scalar().elem::<f64>().sqrt())
        .unwrap_or(0.0);
    if let Some(max) = max_norm {
        let factor = max / (norm + 1e-6);
        if factor < 1.0 {
            module.visit(&mut Scale { grads, factor });
        }
    }
    norm
}

/// AdamW with an encoder group (no weight decay) and a main group.
pub struct GroupedAdamW<B: AutodiffBackend, M: AutodiffModule<B>> {
    main: OptimizerAdaptor<AdamW, M, B>,
    encoder: OptimizerAdaptor<AdamW, M, B>,
    pub settings: OptimSettings,
}

/// The optimizer state of both groups, for checkpoints.
pub type GroupedRecord<B, M> = (
    <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record,
    <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record,
);

impl<B: AutodiffBackend, M: AutodiffModule<B>> GroupedAdamW<B, M> {
    pub fn new(settings: OptimSettings) -> Self {
        let cfg = |wd: f32| {
            AdamWConfig::new()
                .with_beta_1(settings.beta_1)
                .with_beta_2(settings.beta_2)
                .with_epsilon(settings.epsilon)
                .with_weight_decay(wd)
        };
        Self {
            main: cfg(settings.weight_decay).init(),
            encoder: cfg(0.0).init(),
            settings,
        }
    }

    /// One update. `encoder` selects the SeqPE encoder inside `model` (if it has one).
    pub fn step(
        &mut self,
        lr: f64,
        model: M,
        grads: B::Gradients,
        encoder: impl Fn(&M) -> Option<&SeqPeEncoder<B>>,
    ) -> (M, GradNorms) {
        let mut grads = grads;
        let mut norms = GradNorms::default();
        let enc_grads = encoder(&model).map(|enc| {
            let mut g = GradientsParams::from_module(&mut grads, enc);
            norms.encoder = clip_global_norm(enc, &mut g, self.settings.clip_encoder);
            g
        });
        let mut main_grads = GradientsParams::from_grads(grads, &model);
        norms.model = clip_global_norm(&model, &mut main_grads, self.settings.clip_model);
        let mut model = self.main.step(lr, model, main_grads);
        if let Some(g) = enc_grads {
            model = self.encoder.step(lr, model, g);
        }
        (model, norms)
    }

    pub fn to_record(&self) -> GroupedRecord<B, M> {
        (self.main.to_record(), self.encoder.to_record())
    }

    pub fn load_record(mut self, record: GroupedRecord<B, M>) -> Self {
        self.main = self.main.load_record(record.0);
        self.encoder = self.encoder.load_record(record.1);
        self
    }
}
