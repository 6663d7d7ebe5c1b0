//! Seed inputs for the fuzz targets in `fuzz/` (docs/reliability.md, "Fuzzing"), written with the
//! same writers these tests use, so a fuzzer starts from files the readers accept.
//! `SEQPE_FUZZ_SEEDS=fuzz/seeds cargo test -p seqpe-datasets --test offline -- --ignored
//! write_fuzz_seeds` writes them; the committed copies are in `fuzz/seeds/`.

use std::path::Path;

use crate::rdata::{serialize_lines, write_lazyload_db};
use crate::vision::{idx_images, idx_labels, solid_png};
use crate::{gzip, write};

/// What `parts()` in the fuzz crate splits a multi-file input at.
const SEPARATOR: [u8; 2] = [0xFF, 0x00];

fn joined(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&SEPARATOR[..])
}

#[test]
#[ignore = "writes the fuzz seeds; run by hand (module docs)"]
fn write_fuzz_seeds() {
    let Some(out) = std::env::var_os("SEQPE_FUZZ_SEEDS") else {
        return;
    };
    let out = Path::new(&out);
    let tmp = tempfile::tempdir().unwrap();

    // rdata: a bare object, a lazy-load index + database, a block behind its 5-byte prefix
    let lines = serialize_lines(&["It is a truth universally acknowledged,", "ünïcode", "3"]);
    write(&out.join("rdata/object"), &lines);
    write_lazyload_db(tmp.path(), &[("emma", vec!["Emma Woodhouse,", "handsome"])]);
    let rdx = std::fs::read(tmp.path().join("Rdata.rdx")).unwrap();
    let rdb = std::fs::read(tmp.path().join("Rdata.rdb")).unwrap();
    write(&out.join("rdata/index"), &rdx);
    write(&out.join("rdata/database"), joined(&[&rdx, &rdb]));
    let mut block = vec![0, 0];
    block.extend((lines.len() as u16).to_le_bytes());
    block.push(0); // not compressed
    block.extend(&lines);
    write(&out.join("rdata/block"), block);

    // idx: images and labels, plain and gzip'd (pixel values avoid the separator's 0xFF)
    let (images, labels) = (idx_images(3, 2, 2), idx_labels(&[0, 1, 2]));
    write(&out.join("idx/plain"), joined(&[&images, &labels]));
    write(
        &out.join("idx/gzip"),
        joined(&[&gzip(&images), &gzip(&labels)]),
    );

    // image_folder: a PNG (first byte even) and a JPEG (odd)
    solid_png(&tmp.path().join("a.png"), 3, 2, [10, 200, 30]);
    let mut png = vec![0u8];
    png.extend(std::fs::read(tmp.path().join("a.png")).unwrap());
    write(&out.join("image_folder/png"), png);
    image::RgbImage::from_pixel(4, 4, image::Rgb([90, 90, 90]))
        .save(tmp.path().join("a.jpg"))
        .unwrap();
    let mut jpg = vec![1u8];
    jpg.extend(std::fs::read(tmp.path().join("a.jpg")).unwrap());
    write(&out.join("image_folder/jpeg"), jpg);

    // corpus: WikiText files, split folders, a flat folder (the first byte chooses)
    let texts: [&[u8]; 3] = [
        b" = Valkyria = \n the game began in 2011 .",
        b"It was the best of times",
        b"the/at fulton/np county/nn",
    ];
    for (layout, name) in ["wikitext", "splits", "flat"].iter().enumerate() {
        let mut input = vec![layout as u8];
        input.extend(joined(&texts));
        write(&out.join(format!("corpus/{name}")), input);
    }
}
