//! The R unserializer and lazy-load database reader, against bytes written by a minimal XDR
//! serializer defined here (independent of the reader: it follows R's format description).

use std::path::Path;

use seqpe_datasets::text::load_austen;
use seqpe_datasets::text::rdata::{self, BlockCompression, RValue};
use seqpe_datasets::DataError;

use crate::{gzip, write, zlib};

const LISTSXP: i32 = 2;
const CHARSXP: i32 = 9;
const LGLSXP: i32 = 10;
const INTSXP: i32 = 13;
const REALSXP: i32 = 14;
const STRSXP: i32 = 16;
const VECSXP: i32 = 19;
const SYMSXP: i32 = 1;
const REFSXP: i32 = 255;
const NILVALUE: i32 = 254;
const HAS_ATTR: i32 = 1 << 9;
const HAS_TAG: i32 = 1 << 10;
const UTF8: i32 = 1 << 3;
const LATIN1: i32 = 1 << 2;
const ASCII: i32 = 1 << 6;

/// Minimal R XDR serializer: enough to write character vectors, named lists and integer vectors.
pub struct RWriter {
    pub buf: Vec<u8>,
    /// Symbols written so far (R's reference table), to emit REFSXP for repeats.
    symbols: Vec<String>,
}

impl RWriter {
    pub fn new(version: i32) -> Self {
        let mut w = RWriter {
            buf: b"X\n".to_vec(),
            symbols: Vec::new(),
        };
        w.int(version);
        w.int(0x0004_0201); // written by R 4.2.1
        w.int(0x0002_0300); // readable by R >= 2.3.0
        if version == 3 {
            w.int(5);
            w.buf.extend_from_slice(b"UTF-8");
        }
        w
    }

    pub fn int(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn real(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn charsxp(&mut self, s: Option<&str>) {
        match s {
            None => {
                self.int(CHARSXP);
                self.int(-1);
            }
            Some(s) => {
                let enc = if s.is_ascii() { ASCII } else { UTF8 };
                self.int(CHARSXP | (enc << 12));
                self.int(s.len() as i32);
                self.buf.extend_from_slice(s.as_bytes());
            }
        }
    }

    pub fn symbol(&mut self, name: &str) {
        if let Some(i) = self.symbols.iter().position(|s| s == name) {
            // Reference index packed into the flags (1-based).
            self.int((((i + 1) as i32) << 8) | REFSXP);
        } else {
            self.symbols.push(name.to_string());
            self.int(SYMSXP);
            self.charsxp(Some(name));
        }
    }

    /// A `names` attribute pairlist (one tagged cell, then NILVALUE).
    pub fn names_attr(&mut self, names: &[&str]) {
        self.int(LISTSXP | HAS_TAG);
        self.symbol("names");
        self.strsxp(&names.iter().map(|s| Some(*s)).collect::<Vec<_>>(), None);
        self.int(NILVALUE);
    }

    pub fn strsxp(&mut self, items: &[Option<&str>], names: Option<&[&str]>) {
        self.int(STRSXP | if names.is_some() { HAS_ATTR } else { 0 });
        self.int(items.len() as i32);
        for s in items {
            self.charsxp(*s);
        }
        if let Some(n) = names {
            self.names_attr(n);
        }
    }

    pub fn intsxp(&mut self, items: &[i32]) {
        self.int(INTSXP);
        self.int(items.len() as i32);
        for &v in items {
            self.int(v);
        }
    }

    /// Start a list of `len` elements; the caller writes the elements, then `names_attr` if named.
    pub fn vecsxp_header(&mut self, len: usize, named: bool) {
        self.int(VECSXP | if named { HAS_ATTR } else { 0 });
        self.int(len as i32);
    }
}

/// Serialized character vector (format version 3).
pub fn serialize_lines(lines: &[&str]) -> Vec<u8> {
    let mut w = RWriter::new(3);
    w.strsxp(&lines.iter().map(|s| Some(*s)).collect::<Vec<_>>(), None);
    w.buf
}

/// Write `Rdata.rdb` + `Rdata.rdx` into `dir` holding `objects` (name, lines), laid out like R's
/// `makeLazyLoadDB` with `compress = TRUE`: gzip'd index, zlib blocks with a 4-byte length.
pub fn write_lazyload_db(dir: &Path, objects: &[(&str, Vec<&str>)]) {
    let mut rdb = Vec::new();
    let mut entries = Vec::new();
    for (name, lines) in objects {
        let ser = serialize_lines(lines);
        let mut block = (ser.len() as u32).to_be_bytes().to_vec();
        block.extend_from_slice(&zlib(&ser));
        entries.push((*name, rdb.len() as i32, block.len() as i32));
        rdb.extend_from_slice(&block);
    }
    let mut w = RWriter::new(3);
    w.vecsxp_header(3, true);
    // variables
    w.vecsxp_header(entries.len(), true);
    for (_, off, len) in &entries {
        w.intsxp(&[*off, *len]);
    }
    let names: Vec<&str> = entries.iter().map(|e| e.0).collect();
    w.names_attr(&names);
    // references: an empty list
    w.vecsxp_header(0, false);
    // compressed = TRUE
    w.int(LGLSXP);
    w.int(1);
    w.int(1);
    w.names_attr(&["variables", "references", "compressed"]);
    write(&dir.join("Rdata.rdx"), gzip(&w.buf));
    write(&dir.join("Rdata.rdb"), rdb);
}

#[test]
fn character_vector_round_trips_with_na_and_utf8() {
    let mut w = RWriter::new(3);
    w.strsxp(
        &[Some("EMMA"), None, Some(""), Some("Fairfax — café")],
        None,
    );
    let obj = rdata::unserialize(&w.buf).unwrap();
    assert_eq!(
        obj.value,
        RValue::Character(vec![
            Some("EMMA".into()),
            None,
            Some(String::new()),
            Some("Fairfax — café".into()),
        ])
    );
    assert!(obj.attributes.is_empty());
}

#[test]
fn version_2_latin1_and_reals() {
    let mut w = RWriter::new(2);
    // list(c(1.5, -2), "caf\xe9" marked latin1)
    w.vecsxp_header(2, false);
    w.int(REALSXP);
    w.int(2);
    w.real(1.5);
    w.real(-2.0);
    w.int(STRSXP);
    w.int(1);
    w.int(CHARSXP | (LATIN1 << 12));
    w.int(4);
    w.buf.extend_from_slice(b"caf\xe9");
    let obj = rdata::unserialize(&w.buf).unwrap();
    let RValue::List(items) = obj.value else {
        panic!("not a list: {:?}", obj.value)
    };
    assert_eq!(items[0].value, RValue::Real(vec![1.5, -2.0]));
    assert_eq!(items[1].value, RValue::Character(vec![Some("café".into())]));
}

#[test]
fn named_list_uses_symbol_references() {
    let mut w = RWriter::new(3);
    w.vecsxp_header(2, true);
    w.strsxp(&[Some("a")], Some(&["first"])); // writes the `names` symbol
    w.intsxp(&[7, 8]);
    w.names_attr(&["x", "y"]); // the `names` symbol again: a REFSXP
    let written = w.buf.windows(5).filter(|win| win == b"names").count();
    assert_eq!(written, 1, "the second `names` symbol must be a reference");
    let obj = rdata::unserialize(&w.buf).unwrap();
    assert_eq!(obj.names(), Some(vec!["x".to_string(), "y".to_string()]));
    let x = obj.get("x").unwrap();
    assert_eq!(x.names(), Some(vec!["first".to_string()]));
    assert_eq!(obj.get("y").unwrap().value, RValue::Integer(vec![7, 8]));
}

#[test]
fn truncated_and_bad_header_are_errors() {
    let full = serialize_lines(&["one", "two"]);
    let e = rdata::unserialize(&full[..full.len() - 2]).unwrap_err();
    assert!(e.message.contains("unexpected end"), "{e}");
    let e = rdata::unserialize(b"A\n1\n").unwrap_err();
    assert!(e.message.contains("ASCII"), "{e}");
    let mut bad_ref = RWriter::new(3);
    bad_ref.int((5 << 8) | REFSXP);
    assert!(rdata::unserialize(&bad_ref.buf).is_err());
}

#[test]
fn lazyload_db_round_trips_through_load_austen() {
    let tmp = tempfile::tempdir().unwrap();
    write_lazyload_db(
        tmp.path(),
        &[
            ("emma", vec!["EMMA", "", "By Jane Austen"]),
            ("persuasion", vec!["Sir Walter Elliot, of Kellynch Hall"]),
        ],
    );
    let index = rdata::read_index(&std::fs::read(tmp.path().join("Rdata.rdx")).unwrap()).unwrap();
    assert_eq!(index.compression, BlockCompression::Zlib);
    assert_eq!(index.variables.len(), 2);
    assert_eq!(index.variables[0].0, "emma");
    assert_eq!(index.variables[0].1, 0);

    let docs = load_austen(tmp.path()).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].name, "emma");
    assert_eq!(docs[0].text, "EMMA\n\nBy Jane Austen");
    assert_eq!(docs[1].name, "persuasion");
    assert_eq!(docs[1].text, "Sir Walter Elliot, of Kellynch Hall");
}

#[test]
fn load_austen_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load_austen(tmp.path()).unwrap_err();
    assert!(matches!(&e, DataError::Missing { path, .. } if path.ends_with("Rdata.rdx")));
    assert!(e.to_string().contains("cargo xtask fetch-data text"), "{e}");

    write_lazyload_db(tmp.path(), &[("emma", vec!["EMMA"])]);
    let rdb = tmp.path().join("Rdata.rdb");
    let bytes = std::fs::read(&rdb).unwrap();
    write(&rdb, &bytes[..bytes.len() - 3]);
    let e = load_austen(tmp.path()).unwrap_err();
    match &e {
        DataError::Format { path, detail, .. } => {
            assert!(path.ends_with("Rdata.rdb"));
            assert!(detail.contains("emma"), "{detail}");
        }
        other => panic!("unexpected error {other}"),
    }
}
