//! Image sets for classification.
//!
//! All loaders produce one in-memory layout, [`ImageSet`]: `u8` pixels, row-major
//! `[len, height, width, channels]`, plus `u32` labels and class names. Keeping pixels as bytes
//! (not floats) makes Fashion-MNIST's 70 000 images 55 MB instead of 220 MB; normalisation happens
//! when batches are built.
//!
//! Sources: the IDX files of (Fashion-)MNIST ([`load_idx`], [`fashion_mnist`]) and ImageNet-style
//! folders with one subfolder per class ([`load_image_folder`]) for users who have such data.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cache::DataDir;
use crate::error::DataError;
use crate::fetch::FETCH_VISION_COMMAND;

/// Images and labels in one contiguous buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Row-major `[len, height, width, channels]`.
    pub images: Vec<u8>,
    /// One class id per image, each `< classes.len()`.
    pub labels: Vec<u32>,
    pub len: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Class names; the label is the index.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// Bytes per image: `height * width * channels`.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The pixels of image `i` (`[height, width, channels]`).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Read a file, gunzipping it when it starts with the gzip magic (whatever its name).
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::format(
                    path,
                    format!("gzip data is corrupt or truncated: {e}"),
                    "delete the file and fetch or copy it again",
                )
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Parse an IDX header: magic, then `dims` big-endian u32 sizes. Checks that the payload is
/// exactly the product of the sizes, so truncated or padded files are caught here, not as
/// garbage images later.
fn idx_payload<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: u32,
    what: &str,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let dims = (magic & 0xff) as usize;
    let header = 4 + 4 * dims;
    let fix = "delete the file and fetch or copy it again";
    let too_short = || {
        DataError::format(
            path,
            format!(
                "too short for an IDX {what} header ({} bytes, need {header})",
                bytes.len()
            ),
            fix,
        )
    };
    if bytes.len() < 4 {
        return Err(too_short());
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::format(
            path,
            format!("bad magic number {found:#010x}, expected {magic:#010x} (IDX {what} file)"),
            "check that the images and labels files are not swapped and that this is an IDX file",
        ));
    }
    if bytes.len() < header {
        return Err(too_short());
    }
    let sizes: Vec<usize> = (0..dims)
        .map(|i| be_u32(bytes, 4 + 4 * i) as usize)
        .collect();
    let expected = sizes
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .ok_or_else(|| DataError::format(path, "header sizes overflow", fix))?;
    let payload = &bytes[header..];
    if payload.len() != expected {
        return Err(DataError::format(
            path,
            format!(
                "header {sizes:?} promises {expected} bytes of data but the file holds {} \
                 (truncated or corrupt)",
                payload.len()
            ),
            fix,
        ));
    }
    Ok((sizes, payload))
}

/// Load an IDX image file (magic `0x00000803`, `[n, rows, cols]` u8) and its label file (magic
/// `0x00000801`, `[n]` u8). Either may be gzip'd. Classes are named `"0"`, `"1"`, … up to the
/// largest label.
pub fn load_idx(images: &Path, labels: &Path) -> Result<ImageSet, DataError> {
    let img_bytes = read_maybe_gz(images)?;
    let (dims, pixels) = idx_payload(images, &img_bytes, IDX_IMAGES_MAGIC, "images")?;
    let lab_bytes = read_maybe_gz(labels)?;
    let (ldims, label_bytes) = idx_payload(labels, &lab_bytes, IDX_LABELS_MAGIC, "labels")?;
    let (len, height, width) = (dims[0], dims[1], dims[2]);
    if ldims[0] != len {
        return Err(DataError::format(
            labels,
            format!(
                "holds {} labels but `{}` holds {len} images",
                ldims[0],
                images.display()
            ),
            "use the label file that belongs to these images (train with train, t10k with t10k)",
        ));
    }
    let labels: Vec<u32> = label_bytes.iter().map(|&b| b as u32).collect();
    let classes = (0..=labels.iter().copied().max().unwrap_or(0))
        .map(|c| c.to_string())
        .collect();
    Ok(ImageSet {
        images: pixels.to_vec(),
        labels,
        len,
        height,
        width,
        channels: 1,
        classes,
    })
}

/// Fashion-MNIST (train: 60 000, test: 10 000 images of 28×28×1) from the cache, with its class
/// names. Needs `cargo xtask fetch-data vision` to have run.
pub fn fashion_mnist(dir: &DataDir) -> Result<(ImageSet, ImageSet), DataError> {
    let root = dir.fashion_mnist_dir();
    if !DataDir::is_complete(&root) {
        return Err(DataError::NotFetched {
            what: "Fashion-MNIST".into(),
            path: root,
            command: FETCH_VISION_COMMAND.into(),
        });
    }
    let load = |prefix: &str| -> Result<ImageSet, DataError> {
        let images = root.join(format!("{prefix}-images-idx3-ubyte.gz"));
        let labels = root.join(format!("{prefix}-labels-idx1-ubyte.gz"));
        let mut set = load_idx(&images, &labels)?;
        if set.classes.len() > FASHION_MNIST_CLASSES.len() {
            return Err(DataError::format(
                &labels,
                format!(
                    "has label {} but Fashion-MNIST has 10 classes",
                    set.classes.len() - 1
                ),
                format!("delete the folder and run `{FETCH_VISION_COMMAND}` again"),
            ));
        }
        set.classes = FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect();
        Ok(set)
    };
    Ok((load("train")?, load("t10k")?))
}

fn is_image_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DataError::io("list", dir, e))? {
        let entry = entry.map_err(|e| DataError::io("list", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // hidden files and folders (.DS_Store, .git) are never data
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

/// Load an ImageNet-style folder: one subfolder per class (sorted names are the class ids), each
/// holding PNG/JPEG files (other files are ignored). Every image is converted to RGB (or to
/// grayscale when `grayscale`) and resized to `size = (width, height)` with a bilinear (triangle)
/// filter, so the set has one shape.
pub fn load_image_folder(
    dir: &Path,
    size: (u32, u32),
    grayscale: bool,
) -> Result<ImageSet, DataError> {
    let (width, height) = size;
    if width == 0 || height == 0 {
        return Err(DataError::format(
            dir,
            format!("requested image size {width}×{height} is empty"),
            "pass a size of at least 1×1",
        ));
    }
    if !dir.is_dir() {
        return Err(DataError::missing(
            dir,
            "pass a folder with one subfolder of PNG/JPEG images per class",
        ));
    }
    let class_dirs: Vec<PathBuf> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if class_dirs.is_empty() {
        return Err(DataError::format(
            dir,
            "no class subfolders",
            "put the images of each class into their own subfolder (e.g. dir/cat/1.png, \
             dir/dog/2.jpg)",
        ));
    }
    let channels = if grayscale { 1 } else { 3 };
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut classes = Vec::with_capacity(class_dirs.len());
    for (class_id, class_dir) in class_dirs.iter().enumerate() {
        let files: Vec<PathBuf> = sorted_entries(class_dir)?
            .into_iter()
            .filter(|p| p.is_file() && is_image_file(p))
            .collect();
        if files.is_empty() {
            return Err(DataError::format(
                class_dir,
                "class folder holds no PNG/JPEG images",
                "add images to it or remove the folder (every subfolder is a class)",
            ));
        }
        for file in files {
            images.extend_from_slice(&decode_resized(&file, width, height, grayscale)?);
            labels.push(class_id as u32);
        }
        classes.push(
            class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    Ok(ImageSet {
        len: labels.len(),
        images,
        labels,
        height: height as usize,
        width: width as usize,
        channels,
        classes,
    })
}

fn decode_resized(
    path: &Path,
    width: u32,
    height: u32,
    grayscale: bool,
) -> Result<Vec<u8>, DataError> {
    use image::imageops::{resize, FilterType};
    let img_err = |detail: String| DataError::Image {
        path: path.to_path_buf(),
        detail,
    };
    let img = image::ImageReader::open(path)
        .map_err(|e| DataError::io("open", path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io("read", path, e))?
        .decode()
        .map_err(|e| img_err(e.to_string()))?;
    let same = img.width() == width && img.height() == height;
    Ok(if grayscale {
        let g = img.to_luma8();
        if same {
            g.into_raw()
        } else {
            resize(&g, width, height, FilterType::Triangle).into_raw()
        }
    } else {
        let c = img.to_rgb8();
        if same {
            c.into_raw()
        } else {
            resize(&c, width, height, FilterType::Triangle).into_raw()
        }
    })
}
