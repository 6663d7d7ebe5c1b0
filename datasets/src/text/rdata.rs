//! A minimal reader for R's serialization format and R lazy-load databases.
//!
//! Jane Austen's novels ship (in the `r-cran-janeaustenr` Debian package) only as an R lazy-load
//! database, `Rdata.rdb` + `Rdata.rdx`. Installing R to read them would pull in hundreds of
//! megabytes, so this module reads them directly:
//!
//! * `Rdata.rdx` is a (gzip- or zlib-compressed) serialized R list with elements `variables`
//!   (a named list: object name → `c(offset, length)` into the `.rdb`), `references` and
//!   `compressed` (how the blocks are compressed).
//! * Each block of `Rdata.rdb` at `offset` is a 4-byte big-endian uncompressed length, then (for
//!   `compressed` = 2 or 3) a one-byte method tag, then the compressed bytes; the decompressed bytes
//!   are a serialized R object.
//!
//! Only the XDR (big-endian binary, header `X\n`) format, versions 2 and 3, is implemented, and only
//! as much of it as data objects need: vectors of every atomic type, lists, pairlists with tags and
//! attributes, symbols, references, environments (read and discarded), ALTREP compact sequences and
//! wrappers. Byte code and the ASCII/native formats are rejected with a clear error rather than
//! guessed at.

use std::fmt;
use std::io::Read;

/// An R object: a value plus its attributes (`names`, `class`, `dim`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct RObject {
    pub value: RValue,
    /// Attribute pairlist as (tag, value); empty when the object has none.
    pub attributes: Vec<(String, RObject)>,
}

/// The payload of an [`RObject`]. `NA` elements are `None` (character) or R's sentinels
/// (`i32::MIN` for logical/integer NA, a NaN for real NA).
#[derive(Debug, Clone, PartialEq)]
pub enum RValue {
    Null,
    Symbol(String),
    /// A `CHARSXP` (only seen inside other objects).
    Char(Option<String>),
    /// A pairlist (`LISTSXP`): (tag, value) cells.
    Pairlist(Vec<(Option<String>, RObject)>),
    /// Another cons-cell type (language object, closure, promise, `...`): kept opaque-ish.
    Node {
        sxptype: u8,
        cells: Vec<(Option<String>, RObject)>,
    },
    Logical(Vec<i32>),
    Integer(Vec<i32>),
    Real(Vec<f64>),
    Complex(Vec<(f64, f64)>),
    Character(Vec<Option<String>>),
    /// A generic vector (`VECSXP`) or expression vector.
    List(Vec<RObject>),
    Raw(Vec<u8>),
    /// An environment; its contents are read and dropped (data never needs them).
    Environment,
    /// Built-in singletons such as `R_GlobalEnv` or `R_MissingArg`.
    Special(&'static str),
    /// A namespace, package environment or persistent reference, by its name strings.
    Named {
        kind: &'static str,
        names: Vec<String>,
    },
    /// Opaque objects: builtins, external pointers, weak references, S4 objects.
    Opaque(&'static str),
}

impl RObject {
    fn plain(value: RValue) -> Self {
        RObject {
            value,
            attributes: Vec::new(),
        }
    }

    /// The attribute named `name`.
    pub fn attr(&self, name: &str) -> Option<&RObject> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The `names` attribute as strings (NA → empty).
    pub fn names(&self) -> Option<Vec<String>> {
        match &self.attr("names")?.value {
            RValue::Character(v) => Some(v.iter().map(|s| s.clone().unwrap_or_default()).collect()),
            _ => None,
        }
    }

    /// Element `name` of a named list.
    pub fn get(&self, name: &str) -> Option<&RObject> {
        let RValue::List(items) = &self.value else {
            return None;
        };
        let names = self.names()?;
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| items.get(i))
    }
}

/// A parse error with the byte offset (in the decompressed stream) where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for RError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for RError {}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, RError> {
    Err(RError {
        offset,
        message: message.into(),
    })
}

// SEXP type codes (R's Rinternals.h) and serialization pseudo-types (serialize.c).
const NILSXP: u8 = 0;
const SYMSXP: u8 = 1;
const LISTSXP: u8 = 2;
const CLOSXP: u8 = 3;
const ENVSXP: u8 = 4;
const PROMSXP: u8 = 5;
const LANGSXP: u8 = 6;
const SPECIALSXP: u8 = 7;
const BUILTINSXP: u8 = 8;
const CHARSXP: u8 = 9;
const LGLSXP: u8 = 10;
const INTSXP: u8 = 13;
const REALSXP: u8 = 14;
const CPLXSXP: u8 = 15;
const STRSXP: u8 = 16;
const DOTSXP: u8 = 17;
const VECSXP: u8 = 19;
const EXPRSXP: u8 = 20;
const BCODESXP: u8 = 21;
const EXTPTRSXP: u8 = 22;
const WEAKREFSXP: u8 = 23;
const RAWSXP: u8 = 24;
const S4SXP: u8 = 25;
const ALTREP_SXP: u8 = 238;
const BASEENV_SXP: u8 = 241;
const EMPTYENV_SXP: u8 = 242;
const PERSISTSXP: u8 = 247;
const PACKAGESXP: u8 = 248;
const NAMESPACESXP: u8 = 249;
const BASENAMESPACE_SXP: u8 = 250;
const MISSINGARG_SXP: u8 = 251;
const UNBOUNDVALUE_SXP: u8 = 252;
const GLOBALENV_SXP: u8 = 253;
const NILVALUE_SXP: u8 = 254;
const REFSXP: u8 = 255;

const IS_OBJECT_BIT: i32 = 1 << 8;
const HAS_ATTR_BIT: i32 = 1 << 9;
const HAS_TAG_BIT: i32 = 1 << 10;
// CHARSXP encoding flags, stored in the "levels" field (bits 12..27 of the flags word).
const BYTES_MASK: u32 = 1 << 1;
const LATIN1_MASK: u32 = 1 << 2;
const UTF8_MASK: u32 = 1 << 3;
const ASCII_MASK: u32 = 1 << 6;

/// Nesting deeper than this is treated as corrupt input (it would otherwise overflow the stack).
const MAX_DEPTH: usize = 1000;

/// Unserialize one R object from `bytes` (starting with the `X\n` header).
pub fn unserialize(bytes: &[u8]) -> Result<RObject, RError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        refs: Vec::new(),
        native_latin1: false,
    };
    r.header()?;
    r.item(0)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The reference table: symbols, environments and persistent names, in order of appearance.
    refs: Vec<RValue>,
    /// The writer's native encoding was Latin-1 (only known for format version 3).
    native_latin1: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RError> {
        if self.buf.len() - self.pos < n {
            return err(
                self.pos,
                format!(
                    "unexpected end of data (wanted {n} more bytes, {} left)",
                    self.buf.len() - self.pos
                ),
            );
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn int(&mut self) -> Result<i32, RError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn real(&mut self) -> Result<f64, RError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn header(&mut self) -> Result<(), RError> {
        let magic = self.take(2)?;
        match magic {
            b"X\n" => {}
            b"A\n" => return err(0, "R ASCII serialization is not supported (only XDR)"),
            b"B\n" => {
                return err(
                    0,
                    "R native-binary serialization is not supported (only XDR)",
                )
            }
            _ => return err(0, "not an R serialization (missing `X\\n` header)"),
        }
        let version = self.int()?;
        let _writer_version = self.int()?;
        let _min_reader_version = self.int()?;
        match version {
            2 => {}
            3 => {
                let n = self.int()?;
                if !(0..=256).contains(&n) {
                    return err(self.pos, format!("bad native-encoding length {n}"));
                }
                let enc = String::from_utf8_lossy(self.take(n as usize)?).to_ascii_lowercase();
                self.native_latin1 = matches!(
                    enc.as_str(),
                    "latin1" | "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "cp1252"
                );
            }
            v => {
                return err(
                    2,
                    format!("unsupported serialization version {v} (need 2 or 3)"),
                )
            }
        }
        Ok(())
    }

    /// A vector length: one int, or -1 followed by two ints for long vectors. Checked against the
    /// bytes left (`min_elem` bytes per element) so corrupt input cannot demand huge allocations.
    fn length(&mut self, min_elem: usize) -> Result<usize, RError> {
        let at = self.pos;
        let n = self.int()?;
        let len = if n == -1 {
            let hi = self.int()? as u32 as u64;
            let lo = self.int()? as u32 as u64;
            (hi << 32) | lo
        } else if n < 0 {
            return err(at, format!("negative vector length {n}"));
        } else {
            n as u64
        };
        let left = (self.buf.len() - self.pos) as u64;
        if len.saturating_mul(min_elem as u64) > left {
            return err(
                at,
                format!("vector length {len} exceeds the {left} bytes left"),
            );
        }
        Ok(len as usize)
    }

    fn item(&mut self, depth: usize) -> Result<RObject, RError> {
        let at = self.pos;
        let flags = self.int()?;
        self.item_from(flags, at, depth)
    }

    fn item_from(&mut self, flags: i32, at: usize, depth: usize) -> Result<RObject, RError> {
        if depth > MAX_DEPTH {
            return err(at, "objects nested too deeply (corrupt data?)");
        }
        let ty = (flags & 0xff) as u8;
        let levels = ((flags as u32) >> 12) & 0xffff;
        let has_attr = flags & HAS_ATTR_BIT != 0;
        let _is_object = flags & IS_OBJECT_BIT != 0;
        let value = match ty {
            NILVALUE_SXP => return Ok(RObject::plain(RValue::Null)),
            EMPTYENV_SXP => return Ok(RObject::plain(RValue::Special("emptyenv"))),
            BASEENV_SXP => return Ok(RObject::plain(RValue::Special("baseenv"))),
            GLOBALENV_SXP => return Ok(RObject::plain(RValue::Special("globalenv"))),
            UNBOUNDVALUE_SXP => return Ok(RObject::plain(RValue::Special("unbound"))),
            MISSINGARG_SXP => return Ok(RObject::plain(RValue::Special("missingarg"))),
            BASENAMESPACE_SXP => return Ok(RObject::plain(RValue::Special("basenamespace"))),
            REFSXP => {
                let mut index = ((flags as u32) >> 8) as usize;
                if index == 0 {
                    index = self.int()? as usize;
                }
                return match index.checked_sub(1).and_then(|i| self.refs.get(i)) {
                    Some(v) => Ok(RObject::plain(v.clone())),
                    None => err(
                        at,
                        format!(
                            "reference {index} to an object not read yet ({} known)",
                            self.refs.len()
                        ),
                    ),
                };
            }
            PERSISTSXP | PACKAGESXP | NAMESPACESXP => {
                let names = self.string_vec(at, depth)?;
                let kind = match ty {
                    PERSISTSXP => "persistent",
                    PACKAGESXP => "package",
                    _ => "namespace",
                };
                let v = RValue::Named { kind, names };
                self.refs.push(v.clone());
                return Ok(RObject::plain(v));
            }
            SYMSXP => {
                let name = self.item(depth + 1)?;
                let RValue::Char(name) = name.value else {
                    return err(at, "symbol name is not a CHARSXP");
                };
                let v = RValue::Symbol(name.unwrap_or_else(|| "NA".into()));
                self.refs.push(v.clone());
                return Ok(RObject::plain(v));
            }
            ENVSXP => {
                let _locked = self.int()?;
                // Registered before its contents so that self-references resolve.
                self.refs.push(RValue::Environment);
                for _ in 0..4 {
                    // enclosure, frame, hash table, attributes
                    self.item(depth + 1)?;
                }
                return Ok(RObject::plain(RValue::Environment));
            }
            LISTSXP | LANGSXP | CLOSXP | PROMSXP | DOTSXP => return self.cons_cells(flags, depth),
            EXTPTRSXP => {
                self.refs.push(RValue::Opaque("externalptr"));
                self.item(depth + 1)?; // protected value
                self.item(depth + 1)?; // tag
                RValue::Opaque("externalptr")
            }
            WEAKREFSXP => {
                self.refs.push(RValue::Opaque("weakref"));
                RValue::Opaque("weakref")
            }
            SPECIALSXP | BUILTINSXP => {
                let n = self.length(1)?;
                self.take(n)?;
                RValue::Opaque("builtin")
            }
            CHARSXP => {
                let n = self.int()?;
                if n == -1 {
                    RValue::Char(None)
                } else if n < 0 {
                    return err(at, format!("bad string length {n}"));
                } else {
                    let start = self.pos;
                    let bytes = self.take(n as usize)?;
                    RValue::Char(Some(self.decode_string(bytes, levels, start)?))
                }
            }
            LGLSXP | INTSXP => {
                let n = self.length(4)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.int()?);
                }
                if ty == LGLSXP {
                    RValue::Logical(v)
                } else {
                    RValue::Integer(v)
                }
            }
            REALSXP => {
                let n = self.length(8)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.real()?);
                }
                RValue::Real(v)
            }
            CPLXSXP => {
                let n = self.length(16)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push((self.real()?, self.real()?));
                }
                RValue::Complex(v)
            }
            STRSXP => {
                let n = self.length(4)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let el_at = self.pos;
                    match self.item(depth + 1)?.value {
                        RValue::Char(s) => v.push(s),
                        _ => return err(el_at, "character vector element is not a CHARSXP"),
                    }
                }
                RValue::Character(v)
            }
            VECSXP | EXPRSXP => {
                let n = self.length(4)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.item(depth + 1)?);
                }
                RValue::List(v)
            }
            RAWSXP => {
                let n = self.length(1)?;
                RValue::Raw(self.take(n)?.to_vec())
            }
            S4SXP => RValue::Opaque("S4"),
            ALTREP_SXP => return self.altrep(at, depth),
            BCODESXP => return err(at, "R byte code is not supported"),
            NILSXP => RValue::Null,
            other => return err(at, format!("unknown or unsupported R type {other}")),
        };
        let attributes = if has_attr {
            self.attributes(depth)?
        } else {
            Vec::new()
        };
        Ok(RObject { value, attributes })
    }

    /// `InStringVec`: a 0, a length, then that many CHARSXP items.
    fn string_vec(&mut self, at: usize, depth: usize) -> Result<Vec<String>, RError> {
        if self.int()? != 0 {
            return err(at, "names of a persistent object are malformed");
        }
        let n = self.length(4)?;
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            match self.item(depth + 1)?.value {
                RValue::Char(s) => names.push(s.unwrap_or_default()),
                _ => return err(at, "persistent name is not a string"),
            }
        }
        Ok(names)
    }

    /// Read an attribute pairlist and turn it into (tag, value) pairs.
    fn attributes(&mut self, depth: usize) -> Result<Vec<(String, RObject)>, RError> {
        let at = self.pos;
        let obj = self.item(depth + 1)?;
        match obj.value {
            RValue::Pairlist(cells) => Ok(cells
                .into_iter()
                .map(|(k, v)| (k.unwrap_or_default(), v))
                .collect()),
            RValue::Null => Ok(Vec::new()),
            _ => err(at, "attributes are not a pairlist"),
        }
    }

    /// A chain of cons cells. The cdr chain is followed in a loop (not by recursion) because
    /// pairlists can be long.
    fn cons_cells(&mut self, flags: i32, depth: usize) -> Result<RObject, RError> {
        let ty = (flags & 0xff) as u8;
        let mut cur = flags;
        let mut cells = Vec::new();
        let mut attributes = Vec::new();
        loop {
            let cell_ty = (cur & 0xff) as u8;
            let attrs = if cur & HAS_ATTR_BIT != 0 {
                self.attributes(depth)?
            } else {
                Vec::new()
            };
            let tag = if cur & HAS_TAG_BIT != 0 {
                match self.item(depth + 1)?.value {
                    RValue::Symbol(s) => Some(s),
                    RValue::Char(s) => s,
                    _ => None, // e.g. a closure's environment
                }
            } else {
                None
            };
            let car = self.item(depth + 1)?;
            if cells.is_empty() {
                attributes = attrs;
            }
            cells.push((tag, car));
            let next_at = self.pos;
            let next = self.int()?;
            let next_ty = (next & 0xff) as u8;
            if next_ty == NILVALUE_SXP {
                break;
            }
            let chains = matches!(cell_ty, LISTSXP | LANGSXP | DOTSXP)
                && matches!(next_ty, LISTSXP | DOTSXP);
            if chains {
                cur = next;
                continue;
            }
            // A dotted pair, or a closure/promise whose cdr is not a list: read it whole.
            let cdr = self.item_from(next, next_at, depth + 1)?;
            cells.push((None, cdr));
            break;
        }
        let value = if ty == LISTSXP {
            RValue::Pairlist(cells)
        } else {
            RValue::Node { sxptype: ty, cells }
        };
        Ok(RObject { value, attributes })
    }

    /// ALTREP objects: (class info, state, attributes). Only the classes data objects use are
    /// expanded; the rest are rejected.
    fn altrep(&mut self, at: usize, depth: usize) -> Result<RObject, RError> {
        let info = self.item(depth + 1)?;
        let state = self.item(depth + 1)?;
        let attr = self.item(depth + 1)?;
        let class = match &info.value {
            RValue::Pairlist(cells) => match cells.first().map(|(_, v)| &v.value) {
                Some(RValue::Symbol(s)) => s.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        let value = match (class.as_str(), state.value) {
            ("compact_intseq", RValue::Real(s)) if s.len() == 3 => {
                let (n, start, step) = (s[0] as i64, s[1] as i64, s[2] as i64);
                RValue::Integer((0..n).map(|i| (start + i * step) as i32).collect())
            }
            ("compact_realseq", RValue::Real(s)) if s.len() == 3 => {
                let n = s[0] as i64;
                RValue::Real((0..n).map(|i| s[1] + i as f64 * s[2]).collect())
            }
            (c, RValue::List(mut items)) if c.starts_with("wrap_") && !items.is_empty() => {
                let inner = items.swap_remove(0);
                inner.value
            }
            ("deferred_string", RValue::Pairlist(cells)) if !cells.is_empty() => {
                match &cells[0].1.value {
                    RValue::Integer(v) => RValue::Character(
                        v.iter()
                            .map(|&x| (x != i32::MIN).then(|| x.to_string()))
                            .collect(),
                    ),
                    _ => return err(at, "unsupported deferred_string ALTREP payload"),
                }
            }
            (c, _) => return err(at, format!("unsupported ALTREP class `{c}`")),
        };
        let attributes = match attr.value {
            RValue::Pairlist(cells) => cells
                .into_iter()
                .map(|(k, v)| (k.unwrap_or_default(), v))
                .collect(),
            _ => Vec::new(),
        };
        Ok(RObject { value, attributes })
    }

    fn decode_string(&self, bytes: &[u8], levels: u32, start: usize) -> Result<String, RError> {
        let latin1 = levels & LATIN1_MASK != 0
            || (self.native_latin1 && levels & (UTF8_MASK | ASCII_MASK | BYTES_MASK) == 0);
        if latin1 {
            return Ok(bytes.iter().map(|&b| b as char).collect());
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => err(
                start + e.valid_up_to(),
                "string is not valid UTF-8 (and not marked Latin-1)",
            ),
        }
    }
}

/// How the blocks of a lazy-load database are compressed (the `compressed` entry of the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCompression {
    /// Plain serialized bytes.
    None,
    /// `TRUE`/1: a 4-byte length then a zlib stream.
    Zlib,
    /// 2 or 3: a 4-byte length, a method byte (`Z` zlib, `2` bzip2, `X` xz, `0` none), then data.
    Tagged,
}

/// The index (`.rdx`) of a lazy-load database.
#[derive(Debug, Clone, PartialEq)]
pub struct LazyLoadIndex {
    /// (variable name, byte offset into the `.rdb`, block length in bytes), in index order.
    pub variables: Vec<(String, u64, u64)>,
    pub compression: BlockCompression,
}

/// Decompress a whole `.rdx`/`.rds` file: gzip, zlib, xz or already-plain serialized bytes.
pub fn decompress_file(bytes: &[u8]) -> Result<Vec<u8>, RError> {
    let mut out = Vec::new();
    let res = match bytes {
        [0x1f, 0x8b, ..] => flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map(|_| ()),
        [0x78, ..] => flate2::read::ZlibDecoder::new(bytes)
            .read_to_end(&mut out)
            .map(|_| ()),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => {
            return lzma_rs::xz_decompress(&mut &bytes[..], &mut out)
                .map(|_| out)
                .map_err(|e| RError {
                    offset: 0,
                    message: format!("xz: {e}"),
                })
        }
        [b'B', b'Z', b'h', ..] => return err(0, "bzip2-compressed files are not supported"),
        _ => return Ok(bytes.to_vec()),
    };
    res.map(|_| out).map_err(|e| RError {
        offset: 0,
        message: format!("decompression failed: {e}"),
    })
}

/// Parse the (decompressed or not) `.rdx` index.
pub fn read_index(rdx: &[u8]) -> Result<LazyLoadIndex, RError> {
    let obj = unserialize(&decompress_file(rdx)?)?;
    let vars = obj.get("variables").ok_or_else(|| RError {
        offset: 0,
        message: "index has no `variables` element".into(),
    })?;
    let RValue::List(items) = &vars.value else {
        return err(0, "`variables` is not a list");
    };
    let names = vars.names().unwrap_or_default();
    if names.len() != items.len() {
        return err(0, "`variables` has no names");
    }
    let mut variables = Vec::with_capacity(items.len());
    for (name, item) in names.into_iter().zip(items) {
        let pair: Vec<f64> = match &item.value {
            RValue::Integer(v) => v.iter().map(|&x| x as f64).collect(),
            RValue::Real(v) => v.clone(),
            _ => return err(0, format!("entry `{name}` is not c(offset, length)")),
        };
        if pair.len() != 2
            || pair
                .iter()
                .any(|x| x.is_nan() || *x < 0.0 || x.fract() != 0.0)
        {
            return err(0, format!("entry `{name}` is not c(offset, length)"));
        }
        variables.push((name, pair[0] as u64, pair[1] as u64));
    }
    let compression = match obj.get("compressed").map(|c| &c.value) {
        None => BlockCompression::Zlib,
        Some(RValue::Logical(v)) | Some(RValue::Integer(v)) => match v.first() {
            Some(0) => BlockCompression::None,
            Some(2) | Some(3) => BlockCompression::Tagged,
            Some(_) => BlockCompression::Zlib,
            None => BlockCompression::Zlib,
        },
        Some(RValue::Real(v)) => match v.first().copied() {
            Some(0.0) => BlockCompression::None,
            Some(x) if x == 2.0 || x == 3.0 => BlockCompression::Tagged,
            _ => BlockCompression::Zlib,
        },
        Some(_) => return err(0, "`compressed` is not logical or numeric"),
    };
    Ok(LazyLoadIndex {
        variables,
        compression,
    })
}

/// Decompress and unserialize the block `[offset, offset + len)` of a `.rdb` file.
pub fn read_block(
    rdb: &[u8],
    offset: u64,
    len: u64,
    compression: BlockCompression,
) -> Result<RObject, RError> {
    let start = offset as usize;
    let end = offset.checked_add(len).map(|e| e as usize);
    let block = match end {
        Some(end) if end <= rdb.len() && start <= end => &rdb[start..end],
        _ => {
            return err(
                start,
                format!(
                    "block [{offset}, +{len}) lies outside the {}-byte database",
                    rdb.len()
                ),
            )
        }
    };
    let bytes = match compression {
        BlockCompression::None => block.to_vec(),
        BlockCompression::Zlib => inflate_block(block, start, false)?,
        BlockCompression::Tagged => inflate_block(block, start, true)?,
    };
    unserialize(&bytes)
}

fn inflate_block(block: &[u8], start: usize, tagged: bool) -> Result<Vec<u8>, RError> {
    if block.len() < 4 + tagged as usize {
        return err(start, "block shorter than its header");
    }
    let out_len = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) as usize;
    let (method, data) = if tagged {
        (block[4], &block[5..])
    } else {
        (b'Z', &block[4..])
    };
    let mut out = Vec::with_capacity(out_len.min(1 << 30));
    let res = match method {
        b'Z' => flate2::read::ZlibDecoder::new(data)
            .read_to_end(&mut out)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        b'0' => {
            out.extend_from_slice(data);
            Ok(())
        }
        b'X' => lzma_rs::lzma2_decompress(&mut &data[..], &mut out).map_err(|e| e.to_string()),
        b'2' => return err(start, "bzip2-compressed blocks are not supported"),
        m => return err(start, format!("unknown block compression tag {m:#04x}")),
    };
    if let Err(e) = res {
        return err(start, format!("block decompression failed: {e}"));
    }
    if out.len() != out_len {
        return err(
            start,
            format!(
                "block decompressed to {} bytes, its header says {out_len}",
                out.len()
            ),
        );
    }
    Ok(out)
}
