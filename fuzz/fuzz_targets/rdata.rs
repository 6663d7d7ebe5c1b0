//! The R serialization / lazy-load reader (Jane Austen's novels come as an R package's
//! `Rdata.rdx` + `Rdata.rdb`): the index, a block at an offset, and a bare serialized object.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_datasets::text::{load_austen, rdata};

fuzz_target!(|data: &[u8]| {
    let _ = rdata::unserialize(data);
    let _ = rdata::decompress_file(data);
    let _ = rdata::read_index(data);
    if data.len() >= 5 {
        let offset = u64::from(u16::from_le_bytes([data[0], data[1]]));
        let len = u64::from(u16::from_le_bytes([data[2], data[3]]));
        let compression = match data[4] % 3 {
            0 => rdata::BlockCompression::None,
            1 => rdata::BlockCompression::Zlib,
            _ => rdata::BlockCompression::Tagged,
        };
        let _ = rdata::read_block(&data[5..], offset, len, compression);
    }
    // the whole loader: index and database as two parts of the input
    let parts = seqpe_fuzz::parts(data);
    if parts.len() == 2 {
        let dir = seqpe_fuzz::fresh_dir("austen");
        seqpe_fuzz::write(&dir, "Rdata.rdx", parts[0]);
        seqpe_fuzz::write(&dir, "Rdata.rdb", parts[1]);
        let _ = load_austen(&dir);
    }
});
