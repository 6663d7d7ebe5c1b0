//! The 1-D probes `copy` and `reverse` on the causal GPT (Ruoss et al. 2023's
//! `duplicate_string` with one copy and `reverse_string`).
//!
//! An example is a string `s` of `n` symbols over an alphabet of `A`, then a separator, then the
//! answer (`s` again, or `s` reversed), then an end token:
//!
//! ```text
//! tokens   s_1 … s_n SEP a_1 … a_n END        (ids: symbols 0..A, SEP = A, END = A+1, PAD = A+2)
//! input    s_1 … s_n SEP a_1 … a_n            (2n + 1 tokens at positions 0..=2n)
//! scored              a_1 … a_n END           (predicted at positions n..=2n)
//! ```
//!
//! Training draws `n` uniformly from `1..=train_len` and the symbols uniformly; example `i` of a
//! run is a function of `(seed, i)` only, so a resumed or data-parallel run sees the same data.
//! The loss is the cross-entropy of the scored tokens (mean over the batch's scored tokens); a
//! batch is right-padded to its longest example (padding follows every scored token under the
//! causal mask, so it never changes a score). Evaluation is greedy: the prompt `s SEP`, then
//! exactly `n` generated tokens, scored per token and as whole answers, in length bins up to
//! `8 × train_len`.

use anyhow::{bail, Result};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqpe_core::{AttentionOptions, CachedScalar, PeTableCache, PositionContext, PositionGrid};
use seqpe_text::model::Gpt;
use seqpe_train::{Goal, Metric, PositionedModel, Task};
use serde::{Deserialize, Serialize};

use crate::config::{end, pad, sep, SequenceSettings, SequenceTask};

/// One string and its answer (symbols only, no separator or end token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceExample {
    pub input: Vec<u32>,
    pub answer: Vec<u32>,
}

impl SequenceExample {
    /// The example of `task` for the string `input`.
    pub fn new(task: SequenceTask, input: Vec<u32>) -> Self {
        let answer = match task {
            SequenceTask::Copy => input.clone(),
            SequenceTask::Reverse => input.iter().rev().copied().collect(),
        };
        Self { input, answer }
    }

    /// A random example of `n` symbols over an alphabet of `alphabet`.
    pub fn random(task: SequenceTask, n: usize, alphabet: usize, rng: &mut ChaCha8Rng) -> Self {
        let input = (0..n)
            .map(|_| rng.random_range(0..alphabet as u32))
            .collect();
        Self::new(task, input)
    }

    /// The model input (`s SEP answer`, `2n + 1` tokens) for an alphabet of `alphabet`.
    pub fn tokens(&self, alphabet: usize) -> Vec<u32> {
        let mut t = self.input.clone();
        t.push(sep(alphabet));
        t.extend(&self.answer);
        t
    }

    /// The scored labels (`answer END`), predicted at positions `n..=2n`.
    pub fn labels(&self, alphabet: usize) -> Vec<u32> {
        let mut t = self.answer.clone();
        t.push(end(alphabet));
        t
    }
}

/// Training example `index` of a run seeded `seed`: a function of both only.
pub fn train_example(s: &SequenceSettings, seed: u64, index: usize) -> SequenceExample {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = rng.random_range(1..=s.train_len);
    SequenceExample::random(s.task, n, s.alphabet, &mut rng)
}

/// One evaluation bin: string lengths `lo + 1..=hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bin {
    pub lo: usize,
    pub hi: usize,
}

impl Bin {
    pub fn label(&self) -> String {
        format!("{}–{}", self.lo + 1, self.hi)
    }
}

/// The evaluation bins: `(0, L]`, then `(f_{k-1} L, f_k L]` for the settings' factors.
pub fn bins(s: &SequenceSettings) -> Vec<Bin> {
    let mut out = Vec::new();
    let mut lo = 0;
    for &f in &s.eval_factors {
        let hi = f * s.train_len;
        if hi > lo {
            out.push(Bin { lo, hi });
            lo = hi;
        }
    }
    out
}

/// The lengths evaluated in a bin: up to `per_bin` evenly spaced lengths over `lo + 1..=hi`,
/// the last one `hi`.
pub fn bin_lengths(bin: Bin, per_bin: usize) -> Vec<usize> {
    let span = bin.hi - bin.lo;
    let k = per_bin.clamp(1, span);
    let mut v: Vec<usize> = (1..=k).map(|i| bin.lo + (i * span).div_ceil(k)).collect();
    v.dedup();
    v
}

/// The test set of a split seeded `seed` (held out from training by its own seed stream): for
/// each bin, `eval_examples` strings spread evenly over [`bin_lengths`].
pub fn test_set(s: &SequenceSettings, seed: u64) -> Vec<(Bin, Vec<SequenceExample>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7E57_0000_0000_0001);
    bins(s)
        .into_iter()
        .map(|bin| {
            let lengths = bin_lengths(bin, s.lengths_per_bin);
            let examples = (0..s.eval_examples)
                .map(|i| {
                    let n = lengths[i * lengths.len() / s.eval_examples.max(1)];
                    SequenceExample::random(s.task, n, s.alphabet, &mut rng)
                })
                .collect();
            (bin, examples)
        })
        .collect()
}

/// Inputs `[b, t]` (right-padded), the scored labels `[b, t]` (padding where unscored) and their
/// mask.
pub struct SequenceBatch<B: Backend> {
    pub inputs: Tensor<B, 2, Int>,
    pub labels: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2>,
}

/// The batch of `examples`, padded to the longest.
pub fn batch_of<B: Backend>(
    examples: &[SequenceExample],
    alphabet: usize,
    device: &B::Device,
) -> SequenceBatch<B> {
    let b = examples.len();
    let t = examples
        .iter()
        .map(|e| 2 * e.input.len() + 1)
        .max()
        .unwrap_or(1);
    let p = pad(alphabet) as i64;
    let (mut inputs, mut labels, mut mask) = (vec![p; b * t], vec![p; b * t], vec![0f32; b * t]);
    for (row, e) in examples.iter().enumerate() {
        let n = e.input.len();
        for (j, &tok) in e.tokens(alphabet).iter().enumerate() {
            inputs[row * t + j] = tok as i64;
        }
        for (k, &tok) in e.labels(alphabet).iter().enumerate() {
            labels[row * t + n + k] = tok as i64;
            mask[row * t + n + k] = 1.0;
        }
    }
    SequenceBatch {
        inputs: Tensor::from_data(TensorData::new(inputs, [b, t]), device),
        labels: Tensor::from_data(TensorData::new(labels, [b, t]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, t]), device),
    }
}

/// Mean cross-entropy of the scored tokens of a batch.
pub fn masked_loss<B: Backend>(
    model: &Gpt<B>,
    batch: SequenceBatch<B>,
    positions: &PositionContext<B>,
) -> Tensor<B, 1> {
    let t = batch.inputs.dims()[1];
    // the context covers the task's longest input; a shorter batch uses its first t positions
    let ctx = positions.step(0, t, CachedScalar::Correct);
    let logits = model.forward_with(batch.inputs, &ctx, AttentionOptions::default());
    let logp = log_softmax(logits, 2);
    let picked = logp
        .gather(2, batch.labels.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2);
    let count = batch.mask.clone().sum();
    (picked * batch.mask).sum().neg() / count
}

/// Copy or reverse as a task of the one training loop.
pub struct SequenceProbe {
    pub settings: SequenceSettings,
    pub seed: u64,
    /// Training examples the run draws (steps × batch: every one is new).
    pub examples: usize,
    /// Validation strings (lengths `1..=train_len`, from their own seed stream).
    pub valid: Vec<SequenceExample>,
    grid: PositionGrid,
}

impl SequenceProbe {
    pub fn new(settings: SequenceSettings, seed: u64, examples: usize) -> Result<Self> {
        if settings.alphabet < 2 || settings.train_len == 0 {
            bail!(
                "a sequence probe needs an alphabet of at least 2 symbols and a positive \
                 train_len (got {} and {})",
                settings.alphabet,
                settings.train_len
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0A11_D000_0000_0002);
        let valid = (0..settings.valid_examples)
            .map(|i| {
                let n = 1 + i % settings.train_len;
                SequenceExample::random(settings.task, n, settings.alphabet, &mut rng)
            })
            .collect();
        Ok(Self {
            grid: PositionGrid::sequence(2 * settings.train_len + 1),
            settings,
            seed,
            examples,
            valid,
        })
    }
}

impl<B: AutodiffBackend> Task<B> for SequenceProbe {
    type Model = Gpt<B>;
    type Batch = SequenceBatch<B>;

    fn train_len(&self) -> usize {
        self.examples
    }

    fn grid(&self) -> &PositionGrid {
        &self.grid
    }

    fn batch(&self, indices: &[usize], _step: usize, device: &B::Device) -> Result<Self::Batch> {
        let examples: Vec<SequenceExample> = indices
            .iter()
            .map(|&i| train_example(&self.settings, self.seed, i))
            .collect();
        Ok(batch_of(&examples, self.settings.alphabet, device))
    }

    fn loss(
        &self,
        model: &Gpt<B>,
        batch: Self::Batch,
        positions: &PositionContext<B>,
    ) -> Tensor<B, 1> {
        masked_loss(model, batch, positions)
    }

    fn validate(&self, model: &Gpt<B::InnerBackend>, device: &B::Device) -> Result<Metric> {
        let score = greedy_score(model, &self.valid, self.settings.alphabet, device)?;
        Ok(Metric::new(
            "valid_token_acc",
            score.token_accuracy,
            Goal::Maximize,
        ))
    }

    fn unit(&self) -> (&'static str, usize) {
        // the mean input length of a training example: 2 · (L + 1)/2 + 1
        ("tokens", self.settings.train_len + 2)
    }
}

/// Greedy answers of equal-length prompts `[b, n + 1]`: `n` new symbols each (the argmax over
/// the alphabet), `[b][n]`, with the key/value cache and one position table for all `2n + 1`
/// positions.
pub fn greedy_answers<B: Backend>(
    model: &Gpt<B>,
    examples: &[SequenceExample],
    alphabet: usize,
    cache: &PeTableCache<B>,
    device: &B::Device,
) -> Result<Vec<Vec<u32>>> {
    let b = examples.len();
    let Some(n) = examples.first().map(|e| e.input.len()) else {
        return Ok(Vec::new());
    };
    if examples.iter().any(|e| e.input.len() != n) {
        bail!("greedy_answers decodes prompts of one length at a time");
    }
    let ctx = model.inference_context(&PositionGrid::sequence(2 * n + 1), b, cache, device)?;
    let prompt: Vec<i64> = examples
        .iter()
        .flat_map(|e| {
            e.input
                .iter()
                .map(|&t| t as i64)
                .chain([sep(alphabet) as i64])
        })
        .collect();
    let mut caches = model.stack.new_cache();
    let mut logits = model.forward_cached(
        Tensor::from_data(TensorData::new(prompt, [b, n + 1]), device),
        &ctx.step(0, n + 1, CachedScalar::Correct),
        &mut caches,
    );
    let mut out = vec![Vec::with_capacity(n); b];
    for i in 0..n {
        let t = logits.dims()[1];
        // the answer is symbols only: the argmax over the alphabet (not SEP, END or PAD)
        let next = logits
            .narrow(1, t - 1, 1)
            .narrow(2, 0, alphabet)
            .argmax(2)
            .reshape([b, 1]);
        let ids: Vec<i64> = next
            .to_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("cannot read the generated ids: {e:?}"))?;
        for (row, &id) in ids.iter().enumerate() {
            out[row].push(id as u32);
        }
        if i + 1 == n {
            break;
        }
        logits = model.forward_cached(
            next,
            &ctx.step(n + 1 + i, 1, CachedScalar::Correct),
            &mut caches,
        );
    }
    Ok(out)
}

/// Token accuracy and exact match of greedy answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Share of answer tokens generated correctly.
    pub token_accuracy: f64,
    /// Share of examples whose whole answer is correct.
    pub exact_match: f64,
    pub examples: usize,
}

/// Greedy decoding of every example (batched by length, batches of at most 64).
pub fn greedy_score<B: Backend>(
    model: &Gpt<B>,
    examples: &[SequenceExample],
    alphabet: usize,
    device: &B::Device,
) -> Result<Score> {
    let cache = PeTableCache::new();
    let mut by_len: std::collections::BTreeMap<usize, Vec<SequenceExample>> = Default::default();
    for e in examples {
        by_len.entry(e.input.len()).or_default().push(e.clone());
    }
    let (mut right, mut tokens, mut exact) = (0usize, 0usize, 0usize);
    for group in by_len.values() {
        for chunk in group.chunks(64) {
            let answers = greedy_answers(model, chunk, alphabet, &cache, device)?;
            for (e, got) in chunk.iter().zip(answers) {
                let ok = e.answer.iter().zip(&got).filter(|(a, b)| a == b).count();
                right += ok;
                tokens += e.answer.len();
                exact += usize::from(ok == e.answer.len());
            }
        }
    }
    Ok(Score {
        token_accuracy: right as f64 / tokens.max(1) as f64,
        exact_match: exact as f64 / examples.len().max(1) as f64,
        examples: examples.len(),
    })
}
