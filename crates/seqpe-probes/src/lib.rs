//! # seqpe-probes
//!
//! Position probes: small synthetic tasks that cannot be solved without knowing where tokens
//! are, trained on short inputs and tested on much longer ones (the length-generalisation
//! setting of Ruoss et al. 2023, "Randomized Positional Encodings Boost Length Generalization
//! of Transformers"). They answer in minutes on a CPU whether an encoding learns positions and
//! whether what it learns extrapolates, which language modelling at our budgets cannot.
//!
//! Where to start:
//! * [`config`]: the four probes ([`config::Probe`]) and their presets; SeqPE's trained range
//!   scaled from the reference's ratios ([`config::text_range`], [`config::grid_range`]).
//! * [`sequence`]: `copy` and `reverse` on the causal GPT (greedy answers scored per token and
//!   whole, in length bins up to 8× the longest training string).
//! * [`grid`]: `relative` and `quadrant` on the ViT (noise images with marks, top-1 at grids up
//!   to 4× as wide).
//! * [`run`]: training (a task of the one loop, [`seqpe_train::fit`]), evaluation and the data
//!   dump the PyTorch twin (`scripts/probe_twin.py --data`) reads.

pub mod config;
pub mod grid;
pub mod run;
pub mod sequence;
