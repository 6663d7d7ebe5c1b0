//! The digit tokenizer: any largest position, any number of axes, any position (in range or
//! not), one at a time and flattened, with its padding mask.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seqpe_core::digits::{max_digits_for, per_axis_max, DigitTokenizer};

fn word(data: &[u8], at: usize) -> usize {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b) as usize
}

fuzz_target!(|data: &[u8]| {
    let max_position = word(data, 0);
    let dims = 1 + data.get(8).copied().unwrap_or(0) as usize % 4;
    let _ = max_digits_for(max_position);
    let per_axis = per_axis_max(max_position, dims);
    let tok = DigitTokenizer::for_max_per_axis(per_axis, dims);
    let _ = (tok.seq_len(), tok.largest(), tok.slot_ids(), tok.dim_ids());
    let positions: Vec<usize> = (0..(data.len().saturating_sub(9) / 8).min(64))
        .map(|i| word(data, 9 + 8 * i))
        .collect();
    if let Ok(digits) = tok.encode(&positions) {
        assert_eq!(digits.len(), tok.seq_len());
        assert!(digits
            .iter()
            .all(|&d| (d as usize) < seqpe_core::digits::BASE));
        assert_eq!(tok.pad_mask(&positions).unwrap().len(), tok.seq_len());
    }
    if let Ok(flat) = tok.encode_flat(&positions) {
        assert_eq!(flat.len() % tok.seq_len(), 0);
    }
});
