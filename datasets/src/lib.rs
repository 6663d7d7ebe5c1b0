//! Data for seqpe (work in progress).
