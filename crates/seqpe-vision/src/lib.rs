//! # seqpe-vision
//!
//! Image classification with a ViT and SeqPE (or a baseline position encoding), trained at one
//! resolution and evaluated at larger ones (the patch stays, the grid grows).
//!
//! * [`model`]: the ViT, readable top to bottom; position information enters through one seam.
//! * [`data`]: Fashion-MNIST / IDX / image-folder sources, augmentation, resizing, batching.
//! * [`train`]: the training loop (`cargo xtask train-vit`).
//! * [`eval`]: top-1 accuracy per image size (`cargo xtask eval-vit`), PE similarity maps.
//! * [`bench`]: images per second per PE method.
//! * [`config`]: presets `tiny` (Fashion-MNIST, 7×7 grid) and `vit-s` (ViT-S/16 at 224).

pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod model;
pub mod train;
