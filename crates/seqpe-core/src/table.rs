//! [`PeTableCache`]: the SeqPE table of a length or grid is computed once and reused.
//!
//! At inference the encoder output depends only on the positions, so evaluating a dataset at one
//! length (or resolution) needs a single encoder pass; the reference recomputes nothing either.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::digits::DigitError;
use crate::encoder::SeqPeEncoder;
use crate::position::{PositionContext, PositionEncoding, PositionError, PositionGrid};

/// Cache of encoder outputs keyed by grid (extent and corners).
#[derive(Debug, Default)]
pub struct PeTableCache<B: Backend> {
    tables: Mutex<HashMap<(Vec<usize>, Vec<usize>), Tensor<B, 2>>>,
    builds: Mutex<usize>,
}

impl<B: Backend> PeTableCache<B> {
    pub fn new() -> Self {
        Self {
            tables: Mutex::new(HashMap::new()),
            builds: Mutex::new(0),
        }
    }

    /// The table `[groups * grid_len, out_dim]` for `grid`, built with `encoder` on first use.
    /// Positions are encoded in slices of 4096 to bound memory (e.g. 32k text positions).
    pub fn get_or_build(
        &self,
        encoder: &SeqPeEncoder<B>,
        grid: &PositionGrid,
    ) -> Result<Tensor<B, 2>, DigitError> {
        let key = (grid.extent.clone(), grid.starts.clone());
        if let Some(t) = self.tables.lock().unwrap().get(&key) {
            return Ok(t.clone());
        }
        let table = encoder.encode_chunked(&grid.flat_positions(), 4096)?;
        self.tables.lock().unwrap().insert(key, table.clone());
        *self.builds.lock().unwrap() += 1;
        Ok(table)
    }

    /// The position context of `positions` for `grid`, tiled to `batch` rows, with any SeqPE
    /// table taken from (or added to) this cache: [`PositionEncoding::context`] for inference.
    pub fn context(
        &self,
        positions: &PositionEncoding<B>,
        grid: &PositionGrid,
        batch: usize,
        device: &B::Device,
    ) -> Result<PositionContext<B>, PositionError> {
        let table = match positions.seqpe() {
            Some(s) => Some(self.get_or_build(&s.encoder, grid)?),
            None => None,
        };
        positions.context(grid, batch, table, device)
    }

    /// How many tables were computed (not served from the cache).
    pub fn builds(&self) -> usize {
        *self.builds.lock().unwrap()
    }

    /// Forget every table (call after the encoder's weights change).
    pub fn clear(&self) {
        self.tables.lock().unwrap().clear();
    }
}
