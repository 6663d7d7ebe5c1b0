//! [`GroupedAdamW`]: AdamW over three parameter groups with separate global-norm clipping.
//!
//! The reference trains the SeqPE encoder with weight decay 0 and clips the model and the encoder
//! separately (`clip_grad_norm_(model, 5)`, `clip_grad_norm_(seqpe, 5)`); within the main model,
//! biases, norm gains, the CLS token and position tables take no weight decay (timm's rule:
//! `ndim <= 1` or in `no_weight_decay()`). Burn's built-in clipping works per parameter tensor,
//! so the global norms are computed here. Groups are sets of [`ParamId`]s, so the optimizer knows
//! nothing about which module they belong to.

use std::collections::HashSet;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

/// Settings of [`GroupedAdamW`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimSettings {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Weight decay of the main model's decayed group (the other groups use 0).
    pub weight_decay: f32,
    /// Global-norm clip of the main model's gradients (`None`: no clipping).
    pub clip_model: Option<f64>,
    /// Global-norm clip of the encoder's gradients.
    pub clip_encoder: Option<f64>,
    /// The encoder group's learning rate is `lr · encoder_lr_scale`.
    pub encoder_lr_scale: f64,
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
            encoder_lr_scale: 1.0,
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

/// Every float parameter of a module: its id and number of dimensions.
pub fn param_ids<B: Backend, M: Module<B>>(module: &M) -> Vec<(ParamId, usize)> {
    struct Ids(Vec<(ParamId, usize)>);
    impl<B: Backend> ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push((param.id, D));
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// Which optimizer group each parameter belongs to.
#[derive(Debug, Clone, Default)]
pub struct ParamGroups {
    /// The SeqPE encoder: no weight decay, its own clip and learning-rate scale.
    pub encoder: HashSet<ParamId>,
    /// Main-model parameters without weight decay.
    pub no_decay: HashSet<ParamId>,
}

impl ParamGroups {
    /// Groups for `model`: `encoder` holds the ids of the encoder's parameters; every other
    /// parameter with at most one dimension (biases, norms, 1-D tokens) or listed in
    /// `no_decay` takes no weight decay; the rest decays.
    pub fn new<B: Backend, M: Module<B>>(
        model: &M,
        encoder: impl IntoIterator<Item = ParamId>,
        no_decay: impl IntoIterator<Item = ParamId>,
    ) -> Self {
        let encoder: HashSet<ParamId> = encoder.into_iter().collect();
        let mut nd: HashSet<ParamId> = no_decay.into_iter().collect();
        for (id, dims) in param_ids(model) {
            if dims <= 1 && !encoder.contains(&id) {
                nd.insert(id);
            }
        }
        nd.retain(|id| !encoder.contains(id));
        Self {
            encoder,
            no_decay: nd,
        }
    }
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

/// Moves the gradients of the parameters in `pick` from `from` to `to`.
struct Take<'a> {
    from: &'a mut GradientsParams,
    to: &'a mut GradientsParams,
    pick: &'a HashSet<ParamId>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Take<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.pick.contains(&param.id) {
            if let Some(g) = self.from.remove::<B::InnerBackend, D>(param.id) {
                self.to.register(param.id, g);
            }
        }
    }
}

fn take<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    from: &mut GradientsParams,
    pick: &HashSet<ParamId>,
) -> GradientsParams {
    let mut to = GradientsParams::new();
    module.visit(&mut Take {
        from,
        to: &mut to,
        pick,
    });
    to
}

/// Clips the gradients in `grads` (of `module`'s parameters) to a global L2 norm of `max_norm`
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

/// AdamW with an encoder group, a decayed main group and an undecayed main group.
pub struct GroupedAdamW<B: AutodiffBackend, M: AutodiffModule<B>> {
    decay: OptimizerAdaptor<AdamW, M, B>,
    no_decay: OptimizerAdaptor<AdamW, M, B>,
    encoder: OptimizerAdaptor<AdamW, M, B>,
    pub groups: ParamGroups,
    pub settings: OptimSettings,
}

/// The optimizer state of the three groups, for checkpoints.
pub type GroupedRecord<B, M> = (
    <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record,
    <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record,
    <OptimizerAdaptor<AdamW, M, B> as Optimizer<M, B>>::Record,
);

impl<B: AutodiffBackend, M: AutodiffModule<B>> GroupedAdamW<B, M> {
    pub fn new(settings: OptimSettings, groups: ParamGroups) -> Self {
        let cfg = |wd: f32| {
            AdamWConfig::new()
                .with_beta_1(settings.beta_1)
                .with_beta_2(settings.beta_2)
                .with_epsilon(settings.epsilon)
                .with_weight_decay(wd)
        };
        Self {
            decay: cfg(settings.weight_decay).init(),
            no_decay: cfg(0.0).init(),
            encoder: cfg(0.0).init(),
            groups,
            settings,
        }
    }

    /// One update of every group at learning rate `lr` (the encoder's scaled).
    pub fn step(&mut self, lr: f64, model: M, grads: B::Gradients) -> (M, GradNorms) {
        let main = GradientsParams::from_grads(grads, &model);
        self.step_params(lr, model, main)
    }

    /// [`Self::step`] with the gradients already per parameter (data parallelism reduces them
    /// between backward and the step).
    pub fn step_params(&mut self, lr: f64, model: M, grads: GradientsParams) -> (M, GradNorms) {
        let mut main = grads;
        let mut encoder = take(&model, &mut main, &self.groups.encoder);
        let norms = GradNorms {
            encoder: clip_global_norm(&model, &mut encoder, self.settings.clip_encoder),
            model: clip_global_norm(&model, &mut main, self.settings.clip_model),
        };
        let no_decay = take(&model, &mut main, &self.groups.no_decay);
        let mut model = self.decay.step(lr, model, main);
        model = self.no_decay.step(lr, model, no_decay);
        if !self.groups.encoder.is_empty() {
            model = self
                .encoder
                .step(lr * self.settings.encoder_lr_scale, model, encoder);
        }
        (model, norms)
    }

    pub fn to_record(&self) -> GroupedRecord<B, M> {
        (
            self.decay.to_record(),
            self.no_decay.to_record(),
            self.encoder.to_record(),
        )
    }

    pub fn load_record(mut self, record: GroupedRecord<B, M>) -> Self {
        self.decay = self.decay.load_record(record.0);
        self.no_decay = self.no_decay.load_record(record.1);
        self.encoder = self.encoder.load_record(record.2);
        self
    }
}
