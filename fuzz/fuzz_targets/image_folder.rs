//! An ImageNet-style image folder (`train-vit --images DIR`): the input is one image file of a
//! class folder, PNG or JPEG by its first byte, decoded, converted and resized to a small size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_datasets::vision::load_image_folder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let dir = seqpe_fuzz::fresh_dir("images");
    let ext = if first & 1 == 0 { "png" } else { "jpg" };
    seqpe_fuzz::write(&dir, &format!("cat/0.{ext}"), bytes);
    let size = (1 + u32::from(first >> 4 & 3), 1 + u32::from(first >> 6));
    if let Ok(set) = load_image_folder(&dir, size, first & 2 != 0) {
        assert_eq!(set.len, 1);
        assert_eq!(set.image(0).len(), set.image_len());
    }
});
