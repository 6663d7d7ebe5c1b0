//! IDX files (raw and gzip'd), Fashion-MNIST from a cache folder, and ImageNet-style folders.

use std::path::Path;

use seqpe_datasets::cache::{self, DataDir};
use seqpe_datasets::vision::{fashion_mnist, load_idx, load_image_folder, FASHION_MNIST_CLASSES};
use seqpe_datasets::DataError;

use crate::{gzip, write};

pub fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..n * rows * cols).map(|i| (i % 251) as u8));
    b
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = 0x0000_0801u32.to_be_bytes().to_vec();
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

#[test]
fn idx_raw_and_gz_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (imgs, labs) = (idx_images(3, 2, 4), idx_labels(&[0, 4, 2]));
    write(&tmp.path().join("i"), &imgs);
    write(&tmp.path().join("l"), &labs);
    write(&tmp.path().join("i.gz"), gzip(&imgs));
    write(&tmp.path().join("l.gz"), gzip(&labs));
    let raw = load_idx(&tmp.path().join("i"), &tmp.path().join("l")).unwrap();
    let gz = load_idx(&tmp.path().join("i.gz"), &tmp.path().join("l.gz")).unwrap();
    assert_eq!(raw, gz);
    assert_eq!((raw.len, raw.height, raw.width, raw.channels), (3, 2, 4, 1));
    assert_eq!(raw.labels, [0, 4, 2]);
    assert_eq!(raw.classes.len(), 5);
    assert_eq!(raw.image(1), &(8u8..16).collect::<Vec<_>>()[..]);
    assert_eq!(raw.images.len(), 24);
}

#[test]
fn idx_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    write(&p("i"), idx_images(3, 2, 2));
    write(&p("l"), idx_labels(&[1, 2, 3]));

    // Swapped files: bad magic.
    let e = load_idx(&p("l"), &p("i")).unwrap_err();
    assert!(
        matches!(&e, DataError::Format { path, detail, .. } if path == &p("l") && detail.contains("magic")),
        "{e}"
    );

    // Truncated image file (raw and gzip'd).
    let mut short = idx_images(3, 2, 2);
    short.pop();
    write(&p("short"), &short);
    let e = load_idx(&p("short"), &p("l")).unwrap_err();
    assert!(
        matches!(&e, DataError::Format { path, detail, .. } if path == &p("short") && detail.contains("truncated")),
        "{e}"
    );
    let gz = gzip(&idx_images(3, 2, 2));
    write(&p("cut.gz"), &gz[..gz.len() - 10]);
    let e = load_idx(&p("cut.gz"), &p("l")).unwrap_err();
    assert!(e.to_string().contains("cut.gz"), "{e}");

    // Count mismatch.
    write(&p("l2"), idx_labels(&[1, 2]));
    let e = load_idx(&p("i"), &p("l2")).unwrap_err();
    assert!(
        matches!(&e, DataError::Format { path, detail, .. } if path == &p("l2") && detail.contains("2 labels")),
        "{e}"
    );

    // Missing file.
    let e = load_idx(&p("absent"), &p("l")).unwrap_err();
    assert!(e.to_string().contains("absent"), "{e}");
}

#[test]
fn fashion_mnist_from_cache_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path());
    let e = fashion_mnist(&dir).unwrap_err();
    assert!(
        e.to_string().contains("cargo xtask fetch-data vision"),
        "{e}"
    );

    let root = dir.fashion_mnist_dir();
    write(
        &root.join("train-images-idx3-ubyte.gz"),
        gzip(&idx_images(4, 28, 28)),
    );
    write(
        &root.join("train-labels-idx1-ubyte.gz"),
        gzip(&idx_labels(&[9, 0, 3, 1])),
    );
    write(
        &root.join("t10k-images-idx3-ubyte.gz"),
        gzip(&idx_images(2, 28, 28)),
    );
    write(
        &root.join("t10k-labels-idx1-ubyte.gz"),
        gzip(&idx_labels(&[5, 8])),
    );
    cache::write_manifest(&root).unwrap();
    let (train, test) = fashion_mnist(&dir).unwrap();
    assert_eq!((train.len, test.len), (4, 2));
    assert_eq!(train.classes, FASHION_MNIST_CLASSES);
    assert_eq!(train.classes[train.labels[0] as usize], "Ankle boot");
    assert_eq!(test.class_counts()[8], 1);
}

pub fn solid_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

#[test]
fn image_folder_two_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    solid_png(&root.join("dog/b.png"), 8, 6, [0, 0, 255]);
    solid_png(&root.join("cat/2.png"), 4, 4, [255, 0, 0]);
    solid_png(&root.join("cat/1.png"), 16, 3, [0, 255, 0]);
    image::RgbImage::from_pixel(10, 10, image::Rgb([200, 200, 200]))
        .save(root.join("dog/c.jpg"))
        .unwrap();
    write(&root.join("dog/readme.txt"), "not an image");

    let set = load_image_folder(root, (4, 4), false).unwrap();
    assert_eq!(set.classes, ["cat", "dog"]);
    assert_eq!(set.labels, [0, 0, 1, 1]);
    assert_eq!((set.len, set.height, set.width, set.channels), (4, 4, 4, 3));
    assert_eq!(set.images.len(), 4 * 4 * 4 * 3);
    // cat/1.png (green, resized from 16×3) comes first: sorted file names.
    assert!(set.image(0).chunks(3).all(|p| p == [0, 255, 0]));
    assert!(set.image(1).chunks(3).all(|p| p == [255, 0, 0]));
    assert!(set.image(2).chunks(3).all(|p| p == [0, 0, 255]));
    // JPEG is lossy: close to grey 200.
    assert!(set.image(3).iter().all(|&v| (190..=210).contains(&v)));

    let gray = load_image_folder(root, (2, 3), true).unwrap();
    assert_eq!((gray.height, gray.width, gray.channels), (3, 2, 1));
    assert_eq!(gray.images.len(), 4 * 6);
    // Pure red in luma (Rec. 709 weights, as the image crate uses): ~54.
    assert!(
        gray.image(1).iter().all(|&v| (50..=60).contains(&v)),
        "{:?}",
        gray.image(1)
    );
}

/// Images at the edge (issue 20): a 1-pixel image is a defined input, stretched to the set's size
/// as any other; a 1×1 target size keeps one pixel per image.
#[test]
fn one_pixel_images_are_stretched_and_a_one_pixel_size_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    solid_png(&root.join("a/1.png"), 1, 1, [10, 20, 30]);
    solid_png(&root.join("b/1.png"), 7, 5, [200, 100, 0]);
    let set = load_image_folder(root, (4, 4), false).unwrap();
    assert_eq!((set.len, set.height, set.width), (2, 4, 4));
    assert!(set.image(0).chunks(3).all(|p| p == [10, 20, 30]));
    let tiny = load_image_folder(root, (1, 1), false).unwrap();
    assert_eq!(tiny.images, [10, 20, 30, 200, 100, 0]);
}

#[test]
fn image_folder_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let e = load_image_folder(root, (4, 4), false).unwrap_err();
    assert!(e.to_string().contains("no class subfolders"), "{e}");

    solid_png(&root.join("a/1.png"), 4, 4, [1, 2, 3]);
    std::fs::create_dir_all(root.join("b")).unwrap();
    let e = load_image_folder(root, (4, 4), false).unwrap_err();
    assert!(
        matches!(&e, DataError::Format { path, .. } if path == &root.join("b")),
        "{e}"
    );

    write(
        &root.join("b/broken.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png body",
    );
    let e = load_image_folder(root, (4, 4), false).unwrap_err();
    assert!(
        matches!(&e, DataError::Image { path, .. } if path == &root.join("b/broken.png")),
        "{e}"
    );
    assert!(e.to_string().contains("broken.png"));
}
