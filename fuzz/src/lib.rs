//! Helpers shared by the fuzz targets in `fuzz_targets/`: a scratch folder per process (the
//! readers under test take paths, as the commands do) and a way to cut one input into parts.
//!
//! Start with `docs/reliability.md` ("Fuzzing"): which reader each target covers, how to run it,
//! and what the runs found.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A folder of this process's own under `/dev/shm` (memory, so the many small writes cost
/// little), emptied by the caller as it needs; removed by hand after a run (`rm -r
/// /dev/shm/seqpe-fuzz-*`).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("seqpe-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// An empty folder `name` inside [`scratch`].
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = scratch().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `dir/name`, creating folders on the way.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Splits `data` at every `0xFF 0x00` pair: the parts of a multi-file input (a corpus folder, an
/// images file and its labels). The seed files are written the same way.
pub fn parts(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0xFF && data[i + 1] == 0x00 {
            out.push(&data[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

/// The separator [`parts`] cuts at.
pub const SEPARATOR: [u8; 2] = [0xFF, 0x00];
