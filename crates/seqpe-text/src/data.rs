//! Text data: tokenizer training, token streams, training blocks and evaluation chunks.
//!
//! * [`train_tokenizer`]: a byte-level BPE trained on the training split with the `tokenizers`
//!   crate (or any `tokenizer.json`, e.g. GPT-2's, via [`load_tokenizer`]).
//! * [`TokenStream`]: a split's documents tokenized and concatenated with an end-of-text token
//!   between documents; [`TokenStream::word_starts`] counts words the way the reference does
//!   (tokens that begin with the byte-level space marker `Ġ`).
//! * [`gather_blocks`]: non-overlapping training blocks (the epoch order comes from the shared
//!   `seqpe_train::sampler::EpochSampler`).
//! * [`eval_chunks`]: the reference evaluation protocol (non-overlapping chunks, stride = length,
//!   last partial chunk kept).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use seqpe_datasets::text::Document;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerImpl};

/// The separator between documents.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The smallest vocabulary [`train_tokenizer`] trains: 256 bytes and [`END_OF_TEXT`].
pub const MIN_BPE_VOCAB: usize = 257;

/// Trains a byte-level BPE with `vocab_size` entries on the given documents.
///
/// A byte-level BPE holds at least its 256 bytes and the end-of-text token, so a `vocab_size`
/// below [`MIN_BPE_VOCAB`] is refused (it used to give a 257-entry vocabulary without a word).
pub fn train_tokenizer(docs: &[Document], vocab_size: usize) -> Result<Tokenizer> {
    if vocab_size < MIN_BPE_VOCAB {
        bail!(
            "model.vocab_size {vocab_size} is below the {MIN_BPE_VOCAB} entries every byte-level \
             BPE holds (256 bytes and {END_OF_TEXT}); set model.vocab_size to at least \
             {MIN_BPE_VOCAB}, or give a tokenizer with --tokenizer"
        );
    }
    if docs.iter().all(|d| d.text.trim().is_empty()) {
        bail!("cannot train a tokenizer on an empty corpus");
    }
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    let mut tok: TokenizerImpl<_, _, _, _, _> = Tokenizer::new(BPE::default()).into_inner();
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.train(&mut trainer, docs.iter().map(|d| d.text.clone()))
        .map_err(|e| anyhow!("tokenizer training failed: {e}"))?;
    Ok(Tokenizer::from(tok))
}

/// Loads a `tokenizer.json`, naming the file on failure.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        bail!("tokenizer file {} not found", path.display());
    }
    let invalid = |why: String| {
        anyhow!(
            "{} is not a valid tokenizer.json ({why}); give a file saved by the `tokenizers` \
             library",
            path.display()
        )
    };
    // `tokenizers` panics on some malformed files (a `decoder` entry that is not valid JSON of
    // its kind: `expect("Helper")`, found by the fuzzer): quietly, so the error below is all the
    // user sees
    seqpe_train::panics::catch_quietly(|| Tokenizer::from_file(path))
        .map_err(|panic| invalid(format!("the tokenizers library failed on it: {panic}")))?
        .map_err(|e| invalid(e.to_string()))
}

/// One more than the largest token id of `tok` (added tokens included): the vocabulary a model
/// needs for it. Usually its size, but a hand-made `tokenizer.json` may leave gaps in its ids.
pub fn id_bound(tok: &Tokenizer) -> usize {
    tok.get_vocab(true)
        .values()
        .map(|&id| id as usize + 1)
        .max()
        .unwrap_or(0)
}

/// Loads the tokenizer at `path` for a model with `vocab_size` token embeddings, refusing one
/// whose ids the model cannot embed (they used to panic deep inside the embedding lookup).
pub fn load_tokenizer_for(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    let tok = load_tokenizer(path)?;
    let bound = id_bound(&tok);
    if bound > vocab_size {
        bail!(
            "{} has token ids up to {} but the model embeds only {vocab_size} (model.vocab_size): \
             use the tokenizer the run was trained with, or train a new run with this one",
            path.display(),
            bound - 1
        );
    }
    Ok(tok)
}

pub fn save_tokenizer(tok: &Tokenizer, path: &Path) -> Result<()> {
    tok.save(path, false)
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

/// The end-of-text id, if the tokenizer has one.
pub fn eot_id(tok: &Tokenizer) -> Option<u32> {
    tok.token_to_id(END_OF_TEXT)
}

/// Whether each vocabulary entry starts a word (byte-level `Ġ` prefix, as the reference counts).
pub fn word_start_table(tok: &Tokenizer) -> Vec<bool> {
    let n = tok.get_vocab_size(true);
    (0..n as u32)
        .map(|id| tok.id_to_token(id).is_some_and(|t| t.starts_with('Ġ')))
        .collect()
}

/// A tokenized split.
#[derive(Debug, Clone)]
pub struct TokenStream {
    pub ids: Vec<u32>,
}

impl TokenStream {
    /// Tokenizes the documents and joins them with the end-of-text token (if any).
    pub fn encode(tok: &Tokenizer, docs: &[Document]) -> Result<Self> {
        let eot = eot_id(tok);
        let mut ids = Vec::new();
        for doc in docs {
            let enc = tok
                .encode(doc.text.as_str(), false)
                .map_err(|e| anyhow!("cannot tokenize document {}: {e}", doc.name))?;
            ids.extend_from_slice(enc.get_ids());
            if let Some(e) = eot {
                ids.push(e);
            }
        }
        if ids.len() < 2 {
            bail!("the split has fewer than two tokens; it cannot be used for language modelling");
        }
        Ok(Self { ids })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of word-starting tokens among `ids[range]`.
    pub fn word_starts(&self, range: std::ops::Range<usize>, table: &[bool]) -> usize {
        self.ids[range]
            .iter()
            .filter(|&&id| table.get(id as usize).copied().unwrap_or(false))
            .count()
    }
}

/// A stretch of the stream scored as one sequence: inputs `ids[start..start+len]`, labels
/// `ids[start+1..start+len+1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub len: usize,
}

/// The reference evaluation protocol: the stream cut into non-overlapping chunks of `length`
/// (stride = length), every token scored against its next token, the last partial chunk kept.
/// Together the chunks score exactly `stream_len − 1` tokens.
pub fn eval_chunks(stream_len: usize, length: usize) -> Vec<Chunk> {
    assert!(length > 0);
    let scored = stream_len.saturating_sub(1);
    (0..scored)
        .step_by(length)
        .map(|start| Chunk {
            start,
            len: length.min(scored - start),
        })
        .collect()
}

/// Inputs and labels of blocks starting at `starts`, flat `[batch * len]` each.
pub fn gather_blocks(stream: &TokenStream, starts: &[usize], len: usize) -> (Vec<i64>, Vec<i64>) {
    let mut inputs = Vec::with_capacity(starts.len() * len);
    let mut labels = Vec::with_capacity(starts.len() * len);
    for &s in starts {
        inputs.extend(stream.ids[s..s + len].iter().map(|&t| t as i64));
        labels.extend(stream.ids[s + 1..s + len + 1].iter().map(|&t| t as i64));
    }
    (inputs, labels)
}

/// Reads a tokenizer from `path` or trains one, for the CLI.
pub fn tokenizer_for_run(
    given: Option<&Path>,
    train_docs: &[Document],
    vocab: usize,
) -> Result<Tokenizer> {
    match given {
        Some(p) => load_tokenizer(p).with_context(|| "loading --tokenizer".to_string()),
        None => train_tokenizer(train_docs, vocab),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_scores_every_token_once() {
        let chunks = eval_chunks(1001, 256);
        assert_eq!(chunks.len(), 4);
        assert_eq!(
            chunks[3],
            Chunk {
                start: 768,
                len: 232
            }
        );
        assert_eq!(chunks.iter().map(|c| c.len).sum::<usize>(), 1000);
        // an exact multiple: no empty chunk
        let exact = eval_chunks(513, 256);
        assert_eq!(exact.len(), 2);
        assert!(exact.iter().all(|c| c.len == 256));
        assert!(eval_chunks(1, 8).is_empty());
    }
}
