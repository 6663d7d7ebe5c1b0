//! The on-disk data cache.
//!
//! Everything fetched is unpacked under one root folder ([`DataDir`]): `$SEQPE_DATA` when set,
//! else `./data`. Layout:
//!
//! ```text
//! data/text/brown/            ca01 … cr09 (+ README, CONTENTS, …), SHA256SUMS
//! data/text/janeaustenr/      Rdata.rdb, Rdata.rdx, …, SHA256SUMS
//! data/vision/fashion-mnist/  {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, SHA256SUMS
//! data/.tmp/                  scratch folders of fetches in progress (removed when they end)
//! ```
//!
//! Why this shape: a fetch unpacks into a scratch folder under `data/.tmp/` and only *renames* the
//! finished folder into place, so a crash or a failed checksum never leaves a half-written dataset
//! that a later run would trust. Each finished folder carries a `SHA256SUMS` manifest of its own
//! files; its presence marks the folder as complete and lets a later fetch verify the cache without
//! touching the network.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::error::DataError;

/// Name of the manifest written into every finished cache folder.
pub const MANIFEST: &str = "SHA256SUMS";

/// Environment variable that overrides the cache root.
pub const ENV_VAR: &str = "SEQPE_DATA";

/// The root of the data cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl Default for DataDir {
    /// `$SEQPE_DATA` when set and non-empty, else `./data`.
    fn default() -> Self {
        match std::env::var_os(ENV_VAR) {
            Some(v) if !v.is_empty() => DataDir::new(PathBuf::from(v)),
            _ => DataDir::new("data"),
        }
    }
}

impl DataDir {
    /// A cache rooted at `root` (created lazily, on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// Same as [`Default::default`]: `$SEQPE_DATA` or `./data`.
    pub fn from_env() -> Self {
        Self::default()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/text`.
    pub fn text_dir(&self) -> PathBuf {
        self.root.join("text")
    }

    /// `root/vision`.
    pub fn vision_dir(&self) -> PathBuf {
        self.root.join("vision")
    }

    /// Unpacked Brown corpus: `root/text/brown`.
    pub fn brown_dir(&self) -> PathBuf {
        self.text_dir().join("brown")
    }

    /// Jane Austen's lazy-load database: `root/text/janeaustenr`.
    pub fn austen_dir(&self) -> PathBuf {
        self.text_dir().join("janeaustenr")
    }

    /// Fashion-MNIST IDX files: `root/vision/fashion-mnist`.
    pub fn fashion_mnist_dir(&self) -> PathBuf {
        self.vision_dir().join("fashion-mnist")
    }

    /// Whether `dir` is a finished cache folder (it holds its manifest). Cheap: hashes nothing.
    pub fn is_complete(dir: &Path) -> bool {
        dir.join(MANIFEST).is_file()
    }

    /// A fresh, empty scratch folder under `root/.tmp/`, removed when the guard drops.
    ///
    /// It lives inside the cache (not in `/tmp`) so that the final `rename` into place stays on one
    /// filesystem and is atomic.
    pub fn scratch(&self, label: &str) -> Result<ScratchDir, DataError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = self.root.join(".tmp");
        create_dir_all(&base)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("{label}-{}-{nanos}-{n}", std::process::id()));
        fs::create_dir(&path).map_err(|e| DataError::io("create folder", &path, e))?;
        Ok(ScratchDir { path: Some(path) })
    }
}

/// A scratch folder that deletes itself (with its contents) on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: Option<PathBuf>,
}

impl ScratchDir {
    pub fn path(&self) -> &Path {
        self.path
            .as_deref()
            .expect("scratch folder already consumed")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            // Best effort: a leftover scratch folder is harmless (it is never read), only untidy.
            let _ = fs::remove_dir_all(&p);
            if let Some(parent) = p.parent() {
                // Removes `.tmp` itself when this was the last scratch folder; fails harmlessly otherwise.
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// `fs::create_dir_all` with a [`DataError`] naming the folder.
pub fn create_dir_all(path: &Path) -> Result<(), DataError> {
    fs::create_dir_all(path).map_err(|e| DataError::io("create folder", path, e))
}

/// Read a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|e| DataError::io("read", path, e))
}

/// Write `bytes` to `path` atomically: write a sibling temp file, fsync it, rename it over `path`.
///
/// Readers therefore see either the old file or the whole new one, never a prefix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir_all(&parent)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| DataError::io("create", &tmp, e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| DataError::io("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| DataError::io("rename into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Move a finished folder `from` to `to` (replacing an existing `to`) by renames only.
///
/// An existing `to` is first renamed aside and deleted after the new folder is in place, so `to`
/// never holds a mix of old and new files.
pub fn install_dir(from: &Path, to: &Path) -> Result<(), DataError> {
    if let Some(parent) = to.parent() {
        create_dir_all(parent)?;
    }
    let mut aside = None;
    if to.exists() {
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = to.with_file_name(format!(".{name}.old-{}", std::process::id()));
        let _ = fs::remove_dir_all(&old);
        fs::rename(to, &old).map_err(|e| DataError::io("move the stale cache folder", to, e))?;
        aside = Some(old);
    }
    if let Err(e) = fs::rename(from, to) {
        if let Some(old) = &aside {
            let _ = fs::rename(old, to);
        }
        return Err(DataError::io("rename into place", to, e));
    }
    if let Some(old) = aside {
        let _ = fs::remove_dir_all(old);
    }
    Ok(())
}

/// Lower-case hex sha256 of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut f = fs::File::open(path).map_err(|e| DataError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| DataError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Check a file against a pinned sha256 (hex, any case); a mismatch is [`DataError::Checksum`].
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), DataError> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            actual,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `dir/SHA256SUMS` listing every regular file below `dir` (sorted, `sha256  relative/path`).
pub fn write_manifest(dir: &Path) -> Result<(), DataError> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    files.sort();
    let mut out = String::new();
    for rel in files {
        if rel == MANIFEST {
            continue;
        }
        let sum = sha256_file(&dir.join(&rel))?;
        out.push_str(&format!("{sum}  {rel}\n"));
    }
    write_atomic(&dir.join(MANIFEST), out.as_bytes())
}

/// Parse `dir/SHA256SUMS` into `(relative path, sha256)` pairs.
pub fn read_manifest(dir: &Path) -> Result<Vec<(String, String)>, DataError> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(|e| DataError::io("read", &path, e))?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (sum, rel) = line.split_once("  ").ok_or_else(|| {
            DataError::format(
                &path,
                format!("line {} is not `SHA256  PATH`", i + 1),
                "delete the folder and fetch the data again",
            )
        })?;
        entries.push((rel.to_string(), sum.to_string()));
    }
    Ok(entries)
}

/// Verify every file listed in `dir/SHA256SUMS`, plus that each `(path, sha256)` of `pinned` is
/// listed with that exact sum. Returns the first problem.
pub fn verify_manifest(dir: &Path, pinned: &[(&str, &str)]) -> Result<(), DataError> {
    let entries = read_manifest(dir)?;
    for (rel, sum) in pinned {
        if !entries
            .iter()
            .any(|(r, s)| r == rel && s.eq_ignore_ascii_case(sum))
        {
            return Err(DataError::Checksum {
                path: dir.join(rel),
                expected: sum.to_string(),
                actual: entries
                    .iter()
                    .find(|(r, _)| r == rel)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| "(not in the manifest)".into()),
            });
        }
    }
    for (rel, sum) in &entries {
        verify_sha256(&dir.join(rel), sum)?;
    }
    Ok(())
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), DataError> {
    let rd = fs::read_dir(dir).map_err(|e| DataError::io("list", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io("list", dir, e))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| DataError::io("stat", &path, e))?;
        if ft.is_dir() {
            list_files(root, &path, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(rel.join("/"));
        }
    }
    Ok(())
}
