//! Brown tag stripping, corpus folders, the default split and their errors.

use seqpe_datasets::cache::{self, DataDir};
use seqpe_datasets::text::{
    count_words, default_splits, load_brown, load_corpus_dir, strip_brown_tags, DEFAULT_SPLIT,
};
use seqpe_datasets::DataError;

use crate::rdata::write_lazyload_db;
use crate::write;

const BROWN_SAMPLE: &str = "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ./.\n\tIt/pps cost/vbd 1-1/2/cd dollars/nns and/or/cc more/ap ./.\n\n\n\tA/at new/jj paragraph/nn ''/'' ./.\n";

#[test]
fn brown_tags_are_stripped_after_the_last_slash() {
    let text = strip_brown_tags(BROWN_SAMPLE);
    assert_eq!(
        text,
        "The Fulton County said .\nIt cost 1-1/2 dollars and/or more .\n\nA new paragraph '' .\n"
    );
    assert_eq!(count_words(&text), 17);
}

#[test]
fn load_brown_reads_only_brown_files_sorted() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("cb02"), "Second/ap file/nn ./.\n");
    write(&tmp.path().join("ca01"), BROWN_SAMPLE);
    write(&tmp.path().join("README"), "not/a brown/file");
    write(&tmp.path().join("cats.txt"), "ca01 news");
    let docs = load_brown(tmp.path()).unwrap();
    let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ca01", "cb02"]);
    assert_eq!(docs[1].text, "Second file .\n");
    assert!(docs[0].text.starts_with("The Fulton County"));
}

#[test]
fn load_brown_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load_brown(&tmp.path().join("nope")).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }), "{e}");
    let e = load_brown(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("ca01"), "{e}");
    write(&tmp.path().join("ca01"), b"ok/jj \xff/nn");
    let e = load_brown(tmp.path()).unwrap_err();
    assert!(
        matches!(&e, DataError::NotUtf8 { path, offset: 6 } if path.ends_with("ca01")),
        "{e}"
    );
}

#[test]
fn wikitext_layout() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        &tmp.path().join("wiki.train.tokens"),
        " = A = \n one two three \n",
    );
    write(&tmp.path().join("wiki.valid.tokens"), " = B = \n four \n");
    write(
        &tmp.path().join("wiki.test.tokens"),
        " = C = \n five six \n",
    );
    let s = load_corpus_dir(tmp.path()).unwrap();
    assert_eq!(s.train.len(), 1);
    assert_eq!(s.train[0].name, "wiki.train.tokens");
    assert_eq!(s.word_counts(), (6, 4, 5));

    // The .raw variant, with one file missing: the error names the missing file.
    let raw = tempfile::tempdir().unwrap();
    write(&raw.path().join("wiki.train.raw"), "text");
    write(&raw.path().join("wiki.test.raw"), "text");
    let e = load_corpus_dir(raw.path()).unwrap_err();
    assert!(
        matches!(&e, DataError::Missing { path, .. } if path.ends_with("wiki.valid.raw")),
        "{e}"
    );
    write(&raw.path().join("wiki.valid.raw"), "more text");
    assert_eq!(
        load_corpus_dir(raw.path()).unwrap().valid[0].text,
        "more text"
    );
}

#[test]
fn flat_txt_layout_splits_by_document() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("d.txt", "dee"),
        ("a.txt", "ay"),
        ("c.txt", "see"),
        ("b.txt", "bee"),
    ] {
        write(&tmp.path().join(name), text);
    }
    write(&tmp.path().join("notes.md"), "ignored");
    let s = load_corpus_dir(tmp.path()).unwrap();
    let names =
        |d: &[seqpe_datasets::text::Document]| d.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&s.train), ["a.txt", "b.txt"]);
    assert_eq!(names(&s.valid), ["c.txt"]);
    assert_eq!(names(&s.test), ["d.txt"]);
    assert_eq!(s.test[0].text, "dee");

    let two = tempfile::tempdir().unwrap();
    write(&two.path().join("a.txt"), "x");
    write(&two.path().join("b.txt"), "y");
    let e = load_corpus_dir(two.path()).unwrap_err();
    assert!(e.to_string().contains("at least three"), "{e}");
}

#[test]
fn split_folder_layout() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("train/2.txt"), "two");
    write(&tmp.path().join("train/1.txt"), "one");
    write(&tmp.path().join("valid/v.txt"), "vee");
    write(&tmp.path().join("test/t.txt"), "tee");
    let s = load_corpus_dir(tmp.path()).unwrap();
    assert_eq!(s.train[0].name, "1.txt");
    assert_eq!(s.train.len(), 2);
    assert_eq!(s.test[0].text, "tee");
}

#[test]
fn empty_split_and_non_utf8_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("a.txt"), "some text");
    write(&tmp.path().join("b.txt"), "  \n\t ");
    write(&tmp.path().join("c.txt"), "test text");
    let e = load_corpus_dir(tmp.path()).unwrap_err();
    match &e {
        DataError::EmptyCorpus { split, path, .. } => {
            assert_eq!(split, "valid");
            assert_eq!(path, tmp.path());
        }
        other => panic!("unexpected {other}"),
    }

    write(&tmp.path().join("b.txt"), b"valid \xc3\x28 text");
    let e = load_corpus_dir(tmp.path()).unwrap_err();
    match &e {
        DataError::NotUtf8 { path, offset } => {
            assert!(path.ends_with("b.txt"));
            assert_eq!(*offset, 6);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("b.txt") && e.to_string().contains("offset 6"));
}

#[test]
fn default_splits_needs_fetched_data() {
    let tmp = tempfile::tempdir().unwrap();
    let e = default_splits(&DataDir::new(tmp.path())).unwrap_err();
    assert!(matches!(e, DataError::NotFetched { .. }), "{e}");
    assert!(e.to_string().contains("cargo xtask fetch-data text"), "{e}");
}

#[test]
fn default_splits_assigns_documents_by_the_constant() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path());
    let brown = dir.brown_dir();
    for cat in b'a'..=b'r' {
        for i in 1..=28 {
            let name = format!("c{}{:02}", cat as char, i);
            write(&brown.join(name), "Word/nn ./.\n");
        }
    }
    // 18 * 28 = 504 files: too many, the loader must insist on exactly 500.
    cache::write_manifest(&brown).unwrap();
    let novels = [
        "emma",
        "mansfieldpark",
        "northangerabbey",
        "persuasion",
        "prideprejudice",
        "sensesensibility",
    ];
    let objects: Vec<(&str, Vec<&str>)> = novels.iter().map(|n| (*n, vec![*n, "line"])).collect();
    write_lazyload_db(&dir.austen_dir(), &objects);
    cache::write_manifest(&dir.austen_dir()).unwrap();
    let e = default_splits(&dir).unwrap_err();
    assert!(e.to_string().contains("504"), "{e}");

    for name in ["cr25", "cr26", "cr27", "cr28"] {
        std::fs::remove_file(brown.join(name)).unwrap();
    }
    let s = default_splits(&dir).unwrap();
    assert_eq!(s.train.len(), 500 + DEFAULT_SPLIT.austen_train.len());
    let train_novels: Vec<&str> = s.train[500..].iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        train_novels,
        [
            "sensesensibility",
            "prideprejudice",
            "mansfieldpark",
            "emma"
        ]
    );
    assert_eq!(s.valid.len(), 1);
    assert_eq!(s.valid[0].name, "northangerabbey");
    assert_eq!(s.test[0].name, "persuasion");
    assert_eq!(s.test[0].text, "persuasion\nline");
}
