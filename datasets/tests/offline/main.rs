//! Offline tests of seqpe-datasets: every input is written by the tests into a temp folder, so no
//! network and no cached data are needed. One ignored test (`real::real_cached_data`) parses the
//! real fetched data when it is present.

mod fetch;
mod rdata;
mod real;
mod seeds;
mod text;
mod vision;

use std::io::Write;
use std::path::Path;

/// gzip `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// zlib-compress `bytes`.
pub fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}
