//! # seqpe-core
//!
//! SeqPE (Li et al., "Transformer with Sequential Position Encoding", arXiv 2506.13277) on Burn:
//! every position is written as digits, a small causal transformer reads them, and its CLS output
//! is the position embedding. Any integer (or tuple) can be written in digits, so models extrapolate
//! beyond their training length without new parameters.
//!
//! Where to start:
//! * [`digits::DigitTokenizer`]: positions → digit ids (`123 → 0 0 1 2 3`, `(3,14) → 0 3 1 4`).
//! * [`encoder::SeqPeEncoder`]: digit ids → embeddings.
//! * [`regularizers`] and [`sampling`]: the contrastive and distillation losses and their samplers.
//! * [`position::PositionEncoding`]: the one abstraction for "a position encoding" (SeqPE and the
//!   baselines), consumed by the shared [`transformer::Transformer`] through
//!   [`attention::LayerPosition`].
//! * [`table::PeTableCache`]: compute the SeqPE table once per length/grid at inference.
//! * [`training::SeqPeRegularizer`]: what SeqPE adds to a training step (one merged encoder
//!   pass, both losses); [`diagnostics::table_stats`]: how distinct a position table is.
//! * [`reference`]: import of the reference implementation's weights and the parity check.
//!
//! Everything is generic over `B: Backend`; training uses `burn::backend::Autodiff<B>`.

pub mod attention;
pub mod diagnostics;
pub mod digits;
pub mod encoder;
pub mod position;
pub mod reference;
pub mod regularizers;
pub mod sampling;
pub mod table;
pub mod training;
pub mod transformer;

pub use attention::{AttentionOptions, AttnMask, KvCache, LayerPosition};
pub use digits::{DigitError, DigitTokenizer};
pub use encoder::{SeqPeEncoder, SeqPeEncoderConfig};
pub use position::{
    grid_range, text_range, CachedScalar, PeKind, PositionContext, PositionEncoding,
    PositionEncodingConfig, PositionGrid, SeqPeInjection, SeqPeSettings, GRID_RANGE_PER_SIDE,
    TEXT_RANGE_PER_TOKEN,
};
pub use table::PeTableCache;
pub use training::{
    training_context, RegularizerConfig, RegularizerSettings, SeqPeRegularizer, Shard, ShardError,
    StepError,
};
