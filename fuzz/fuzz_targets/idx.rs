//! IDX image and label files (Fashion-MNIST's format, also what `train-vit --idx` reads), plain
//! or gzip'd: the images file and the labels file are the two parts of the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_datasets::vision::load_idx;

fuzz_target!(|data: &[u8]| {
    let parts = seqpe_fuzz::parts(data);
    let (images, labels) = match parts.as_slice() {
        [images, labels, ..] => (*images, *labels),
        [one] => (*one, *one),
        [] => return,
    };
    let dir = seqpe_fuzz::scratch();
    let images = seqpe_fuzz::write(dir, "images.idx", images);
    let labels = seqpe_fuzz::write(dir, "labels.idx", labels);
    if let Ok(set) = load_idx(&images, &labels) {
        // every image the set claims is readable
        for i in 0..set.len {
            let _ = set.image(i);
        }
        let _ = set.class_counts();
    }
});
