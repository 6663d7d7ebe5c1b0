//! `eval-qa`: exact match and answer perplexity at several context lengths.
//!
//! The same test questions are placed in contexts of every length (1×, 2×, 4×, 8×, 16× the
//! fine-tuning length by default); each answer is generated greedily with the key/value cache
//! (at most `qa.max_new_tokens` tokens, stopping at the end-of-text token or a newline) and
//! scored with the reference's lenient EM (a gold answer is a substring of the output) and a
//! strict EM (the first line equals a gold answer); the answer perplexity is the teacher-forced
//! perplexity of the answer and EOS. The position context (for SeqPE, one encoder table) is built
//! once per length.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Result};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, ElementConversion, Int, Tensor, TensorData};
use seqpe_core::{AttentionOptions, CachedScalar, PeKind, PeTableCache, PositionContext};
use seqpe_text::eval::CorpusSource;
use seqpe_text::generate::{context_for, greedy, GenerateOptions};
use seqpe_text::model::Gpt;
use seqpe_train::run::RunDir;
use seqpe_train::Precision;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::config::QaConfig;
use crate::data::{load_qa_path, BuiltItem, QaItem, SquadOptions, PARAGRAPH_SEPARATOR};
use crate::metrics::{lenient_em, strict_em, trivial_baselines};
use crate::task::{answer_ids, cloze_task, counter, encode, fill_front, filler_of, prompt_budget};

/// Scores at one context length.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LengthScore {
    /// Multiple of the fine-tuning length (0: users' JSON-lines prompts as given).
    pub factor: usize,
    /// Prompt budget in tokens.
    pub target_tokens: usize,
    pub items: usize,
    pub mean_prompt_tokens: f64,
    /// Percentages.
    pub lenient_em: f64,
    pub strict_em: f64,
    pub answer_ppl: f64,
    /// What guessing scores on these items (built-in task only): the most frequent training
    /// answer, and each context's most frequent eligible word (lenient EM, %).
    pub baseline_frequent_answer: Option<f64>,
    pub baseline_context_word: Option<f64>,
    pub seconds: f64,
    /// Passkey only: lenient EM (%) of the prompts whose number sits in each tenth of the
    /// context (0 = the first tenth); empty for the other tasks.
    #[serde(default)]
    pub by_depth: Vec<f64>,
}

/// One scored answer, for the report's examples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub factor: usize,
    pub id: String,
    pub answers: Vec<String>,
    pub output: String,
}

/// The evaluation of a QA run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QaEvalReport {
    pub run: PathBuf,
    pub pe: PeKind,
    /// The fine-tuning length.
    pub length: usize,
    pub cached_scalar: CachedScalar,
    pub data: String,
    /// The arithmetic of the forward passes (reports before the setting existed: f32).
    #[serde(default)]
    pub precision: Precision,
    pub results: Vec<LengthScore>,
    pub samples: Vec<Sample>,
}

impl QaEvalReport {
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} ({}; fine-tuned at {} tokens; generation: attn_scalar {:?}; {})\n\
             | prompt tokens | × | items | lenient EM % | strict EM % | answer ppl | guess: frequent answer / context word % |\n\
             |---:|---:|---:|---:|---:|---:|---:|\n",
            self.run.display(),
            self.pe,
            self.length,
            self.cached_scalar,
            self.precision
        );
        for r in &self.results {
            s += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {} |\n",
                r.target_tokens,
                r.factor,
                r.items,
                r.lenient_em,
                r.strict_em,
                r.answer_ppl,
                match (r.baseline_frequent_answer, r.baseline_context_word) {
                    (Some(a), Some(b)) => format!("{a:.1} / {b:.1}"),
                    _ => "-".into(),
                }
            );
        }
        s
    }
}

fn ids<B: Backend>(tokens: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, tokens.len()]), device)
}

/// Teacher-forced NLL (sum) of `answer` after `prompt`.
fn answer_nll<B: Backend>(
    model: &Gpt<B>,
    prompt: &[u32],
    answer: &[u32],
    context: &PositionContext<B>,
    device: &B::Device,
) -> f64 {
    let mut seq = prompt.to_vec();
    seq.extend_from_slice(&answer[..answer.len() - 1]);
    let n = seq.len();
    let h = model.hidden(
        ids::<B>(&seq, device),
        &context.step(0, n, CachedScalar::Correct),
        AttentionOptions { query_chunk: 512 },
    );
    let k = answer.len();
    // the log-softmax in f32, as autocast does (a no-op at f32)
    let logp = log_softmax(model.head(h.narrow(1, n - k, k)).cast(DType::F32), 2);
    let labels: Vec<i64> = answer.iter().map(|&t| t as i64).collect();
    let labels = Tensor::<B, 3, Int>::from_data(TensorData::new(labels, [1, k, 1]), device);
    let nll: f64 = logp.gather(2, labels).sum().neg().into_scalar().elem();
    nll
}

/// Distractor tokens that fill evaluation prompts at the front to their target length.
struct Filler {
    tokens: Vec<u32>,
    sep: Vec<u32>,
    seed: u64,
}

/// The token prompts of `items`, filled at the front to `target` when a filler is given.
fn item_prompts(
    tokenizer: &Tokenizer,
    items: &[QaItem],
    target: usize,
    filler: Option<&Filler>,
) -> Result<Vec<Vec<u32>>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let prompt = encode(tokenizer, &item.prompt)?;
            match filler {
                Some(f) => fill_front(&prompt, target, &f.tokens, &f.sep, f.seed, i),
                None => Ok(prompt),
            }
        })
        .collect()
}

/// Scores `items` (their token `prompts`) at one length; with `depths` (passkey), also the EM
/// of each tenth of the context.
#[allow(clippy::too_many_arguments)]
fn score<B: Backend>(
    model: &Gpt<B>,
    tokenizer: &Tokenizer,
    items: &[QaItem],
    prompts: Vec<Vec<u32>>,
    depths: Option<&[f64]>,
    factor: usize,
    target: usize,
    opts: &GenerateOptions,
    samples: &mut Vec<Sample>,
    device: &B::Device,
) -> Result<LengthScore> {
    let started = Instant::now();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(1);
    let answers_longest = items
        .iter()
        .map(|i| answer_ids(tokenizer, &i.answers[0]).map(|a| a.len()))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .max()
        .unwrap_or(1);
    let total = longest + opts.max_new_tokens.max(answers_longest);
    let context = context_for(model, total, &PeTableCache::new(), device)?;
    let (mut lenient, mut strict, mut nll, mut count) = (0usize, 0usize, 0f64, 0usize);
    let mut by_decile = [(0usize, 0usize); 10];
    for (i, (item, prompt)) in items.iter().zip(&prompts).enumerate() {
        let mut out = greedy(model, prompt, &context, opts, device)?;
        if out.last().is_some_and(|t| opts.stop.contains(t)) {
            out.pop();
        }
        let text = tokenizer
            .decode(&out, false)
            .map_err(|e| anyhow!("cannot decode an answer: {e}"))?;
        let right = lenient_em(&text, &item.answers);
        lenient += usize::from(right);
        if let Some(d) = depths.and_then(|d| d.get(i)) {
            let cell = &mut by_decile[crate::data::decile(*d)];
            cell.0 += usize::from(right);
            cell.1 += 1;
        }
        strict += usize::from(strict_em(&text, &item.answers));
        let answer = answer_ids(tokenizer, &item.answers[0])?;
        nll += answer_nll(model, prompt, &answer, &context, device);
        count += answer.len();
        if samples.iter().filter(|s| s.factor == factor).count() < 3 {
            samples.push(Sample {
                factor,
                id: item.id.clone(),
                answers: item.answers.clone(),
                output: text,
            });
        }
    }
    let n = items.len().max(1) as f64;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "  {target} tokens ({factor}×): lenient EM {:.1}%, strict {:.1}% on {} items ({seconds:.0}s)",
        100.0 * lenient as f64 / n,
        100.0 * strict as f64 / n,
        items.len()
    );
    Ok(LengthScore {
        factor,
        target_tokens: target,
        items: items.len(),
        mean_prompt_tokens: prompts.iter().map(Vec::len).sum::<usize>() as f64 / n,
        lenient_em: 100.0 * lenient as f64 / n,
        strict_em: 100.0 * strict as f64 / n,
        answer_ppl: (nll / count.max(1) as f64).exp(),
        baseline_frequent_answer: None,
        baseline_context_word: None,
        seconds,
        by_depth: if depths.is_some() {
            by_decile
                .iter()
                .map(|&(r, n)| 100.0 * r as f64 / n.max(1) as f64)
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// Evaluates a QA run at each factor × its fine-tuning length on `limit` test questions (0 =
/// all). `data` replaces the run's data (users' files); `scalar` the run's generation setting;
/// `precision` the arithmetic (f32: as saved; bf16: the forward passes in bf16, the answer's
/// log-softmax in f32).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_run<B: Backend>(
    run_path: &Path,
    factors: &[usize],
    corpus: &CorpusSource,
    data: Option<&Path>,
    limit: usize,
    scalar: Option<CachedScalar>,
    precision: Precision,
    device: &B::Device,
) -> Result<QaEvalReport> {
    precision.check()?;
    if factors.is_empty() || factors.contains(&0) {
        anyhow::bail!(
            "evaluation factors must be positive multiples of the fine-tuning length (got \
             {factors:?}); e.g. --factors 1,2,4"
        );
    }
    let run = RunDir::new(run_path);
    let mut cfg: QaConfig = seqpe_train::config::load(&run)?;
    if let Some(d) = data {
        cfg.qa.data = Some(d.to_path_buf());
    }
    let tokenizer =
        seqpe_text::data::load_tokenizer_for(&run.file("tokenizer.json"), cfg.model.vocab_size)?;
    let model = precision.cast_model(run.load_trained(cfg.model.init::<B>(device)?, device)?);
    let scalar = scalar.unwrap_or(cfg.qa.cached_scalar);
    let mut opts = GenerateOptions::qa(&tokenizer, scalar);
    opts.max_new_tokens = cfg.qa.max_new_tokens;
    let count = counter(&tokenizer);
    let take = |mut v: Vec<BuiltItem>| {
        if limit > 0 {
            v.truncate(limit);
        }
        v
    };
    let mut results = Vec::new();
    let mut samples = Vec::new();
    match &cfg.qa.data {
        None if cfg.qa.task == crate::config::BuiltInTask::Passkey => {
            // the test split's own text as filler; the same prompts at every length (seeded
            // alike), so lengths differ only in the filler around the number
            let splits = seqpe_text::eval::load_splits(corpus)?;
            let (filler, forbidden) = crate::task::passkey_filler(&tokenizer, &splits.test)?;
            let enc = |s: &str| encode(&tokenizer, s);
            let n = if limit > 0 {
                limit.min(cfg.qa.test_questions)
            } else {
                cfg.qa.test_questions
            };
            for &f in factors {
                let target = prompt_budget(f * cfg.qa.length);
                let keys = crate::data::passkey_prompts(
                    &enc,
                    n,
                    target,
                    &filler,
                    &forbidden,
                    true,
                    cfg.qa.data_seed ^ 2,
                )?;
                let items: Vec<QaItem> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, p)| QaItem {
                        id: format!("passkey-{i:04}"),
                        prompt: String::new(),
                        answers: vec![p.key.to_string()],
                    })
                    .collect();
                let depths: Vec<f64> = keys.iter().map(|p| p.depth).collect();
                let prompts = keys.into_iter().map(|p| p.prompt).collect();
                results.push(score(
                    &model,
                    &tokenizer,
                    &items,
                    prompts,
                    Some(&depths),
                    f,
                    target,
                    &opts,
                    &mut samples,
                    device,
                )?);
            }
        }
        None => {
            let task = cloze_task(&cfg, corpus, &tokenizer)?;
            // test prompts are filled at the front to exactly their target, as the fine-tuning
            // sequences are to theirs, from the test documents' passages
            let filler = Filler {
                tokens: filler_of(&tokenizer, task.test.pool.iter().map(|p| p.text.clone()))?,
                sep: encode(&tokenizer, PARAGRAPH_SEPARATOR)?,
                seed: cfg.qa.data_seed,
            };
            let train_items =
                task.train
                    .contexts_at(prompt_budget(cfg.qa.length), cfg.qa.data_seed, &count)?;
            for &f in factors {
                let target = prompt_budget(f * cfg.qa.length);
                let built = take(task.test.contexts_at(target, cfg.qa.data_seed, &count)?);
                let base = trivial_baselines(&train_items, &built);
                let items: Vec<QaItem> = built.into_iter().map(|b| b.item).collect();
                let prompts = item_prompts(&tokenizer, &items, target, Some(&filler))?;
                let mut r = score(
                    &model,
                    &tokenizer,
                    &items,
                    prompts,
                    None,
                    f,
                    target,
                    &opts,
                    &mut samples,
                    device,
                )?;
                r.baseline_frequent_answer = Some(base.most_frequent_answer_em);
                r.baseline_context_word = Some(base.most_frequent_context_word_em);
                results.push(r);
            }
        }
        Some(path) => {
            for &f in factors {
                let target = prompt_budget(f * cfg.qa.length);
                let set = load_qa_path(
                    path,
                    &SquadOptions {
                        target_tokens: target,
                        seed: cfg.qa.data_seed,
                    },
                    &count,
                )?;
                let mut items = set.items;
                if limit > 0 {
                    items.truncate(limit);
                }
                let as_given = set.files.iter().all(|p| {
                    p.extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"))
                });
                let prompts = item_prompts(&tokenizer, &items, target, None)?;
                results.push(score(
                    &model,
                    &tokenizer,
                    &items,
                    prompts,
                    None,
                    if as_given { 0 } else { f },
                    target,
                    &opts,
                    &mut samples,
                    device,
                )?);
                if as_given {
                    // JSON-lines prompts have their own lengths: one evaluation
                    break;
                }
            }
        }
    }
    Ok(QaEvalReport {
        run: run_path.to_path_buf(),
        pe: cfg.model.pe,
        length: cfg.qa.length,
        cached_scalar: scalar,
        data: crate::task::describe_data(&cfg),
        precision,
        results,
        samples,
    })
}
