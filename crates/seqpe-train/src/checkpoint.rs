//! Atomic run folders. A checkpoint is a folder (weights, optimizer state, sampler and data RNG
//! state, config, tokenizer…) written under a temporary name and renamed into place, so a run
//! killed at any moment leaves either the previous checkpoint or the new one, never a mix.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    target.with_file_name(format!("{name}.{suffix}"))
}

/// Writes the folder `target` atomically: `fill` writes into a temporary sibling, which then
/// replaces `target`. The previous version is kept as `target.old` until the swap is complete.
pub fn write_dir_atomically(target: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = sibling(target, &format!("tmp-{}", std::process::id()));
    let old = sibling(target, "old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    for entry in std::fs::read_dir(&tmp)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    if target.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(target, &old)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
    }
    std::fs::rename(&tmp, target)
        .with_context(|| format!("cannot move {} into place", target.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// The checkpoint folder to read: `target`, or `target.old` when a previous run died between the
/// two renames of [`write_dir_atomically`].
pub fn existing_dir(target: &Path) -> Option<PathBuf> {
    if target.is_dir() {
        return Some(target.to_path_buf());
    }
    let old = sibling(target, "old");
    old.is_dir().then_some(old)
}

/// Writes `bytes` to `path` and syncs it, naming the file and the operating system's reason in
/// the error, with what to do when the disk is full (Burn's file recorders report a full disk
/// as "error while writing multi-byte MessagePack value", without the cause or the file).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let written = std::fs::File::create(path).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    written.map_err(|e| {
        let full = e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28);
        let hint = if full {
            "; the disk is full: free space, then continue with --resume (the previous \
             checkpoint is kept)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot write {}: {e}{hint}", path.display())
    })
}

/// Writes JSON to a file atomically (temporary file + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()));
    let text = serde_json::to_string_pretty(value)?;
    write_file(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads JSON, naming the file in every error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (is this a run folder written by seqpe?)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is corrupt or from another version of seqpe",
            path.display()
        )
    })
}

/// Fails unless `path` exists, with a message saying what to do.
pub fn require_file(path: &Path, what: &str) -> Result<()> {
    if !path.is_file() {
        bail!("{} not found: {what}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_replace_keeps_the_old_version_on_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let target = root.join("checkpoint");
        write_dir_atomically(&target, |d| Ok(std::fs::write(d.join("a"), "1")?)).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "1");
        // a failing writer leaves the previous checkpoint untouched and no temporary folder
        let err = write_dir_atomically(&target, |d| {
            std::fs::write(d.join("a"), "2")?;
            anyhow::bail!("disk full")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "1");
        let leftovers: Vec<_> = std::fs::read_dir(root).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        write_dir_atomically(&target, |d| Ok(std::fs::write(d.join("a"), "3")?)).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "3");
        // a run that died between the renames is recovered from `.old`
        std::fs::rename(&target, root.join("checkpoint.old")).unwrap();
        assert_eq!(existing_dir(&target).unwrap(), root.join("checkpoint.old"));
    }
}
