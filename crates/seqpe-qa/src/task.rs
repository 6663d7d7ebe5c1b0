//! QA fine-tuning as a task of the shared training loop ([`seqpe_train::fit`]).
//!
//! A training example is one sequence of exactly `qa.length + 1` tokens:
//!
//! ```text
//! [distractor text filling the front] \n\n [context … Question: … Answer:] [ answer] [EOS] [filler]
//! |<------------------------- prompt_budget(qa.length) tokens -------------------------->|
//! ```
//!
//! The model reads the first `qa.length` tokens at positions `0..qa.length` and is scored on the
//! answer tokens and the end-of-text token only. The prompt is filled to exactly the prompt budget,
//! the length evaluation fills its 1× prompts to, so the answer starts at the same position in
//! fine-tuning, validation and evaluation (absolute encodings depend on it); the filler after the
//! end-of-text is never scored and, the model being causal, never seen by a scored position. The
//! reference left-pads short examples and lets positions run through the pads; we fill with more
//! distractor text instead, so every sequence has the fine-tuning length, positions are `0..N−1`
//! as in the reference, and no padding mask is needed (see `docs/reference-notes.md`, item 18).
//! Validation is the answer perplexity of the validation questions.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use seqpe_core::{AttentionOptions, PeTableCache, PositionContext, PositionGrid};
use seqpe_text::config::TextConfig;
use seqpe_text::data::{eot_id, load_tokenizer_for, save_tokenizer};
use seqpe_text::eval::{load_splits, CorpusSource};
use seqpe_text::model::Gpt;
use seqpe_train::config::RunConfig;
use seqpe_train::run::RunDir;
use seqpe_train::Session;
use seqpe_train::{fit, FitSummary, Goal, Metric, Task};
use tokenizers::Tokenizer;

use crate::config::QaConfig;
use crate::data::{
    answer_target, cloze_task_from_splits, load_qa_path, BuiltItem, ClozeConfig, ClozeTask, QaItem,
    SplitCounts, SquadOptions, PARAGRAPH_SEPARATOR,
};

/// One fine-tuning sequence: `ids` has `length + 1` tokens; the answer and EOS, the `scored`
/// tokens from `ids[answer_at]` on, are the only labels scored.
#[derive(Debug, Clone, PartialEq)]
pub struct QaExample {
    pub ids: Vec<u32>,
    pub answer_at: usize,
    pub scored: usize,
}

/// Token ids of `text` (no special tokens added).
pub fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(tokenizer
        .encode(text, false)
        .map_err(|e| anyhow!("cannot tokenize: {e}"))?
        .get_ids()
        .to_vec())
}

/// The end-of-text id a QA tokenizer must have.
pub fn eos(tokenizer: &Tokenizer) -> Result<u32> {
    eot_id(tokenizer).ok_or_else(|| {
        anyhow!(
            "the tokenizer has no `{}` token, which ends every QA answer",
            seqpe_text::data::END_OF_TEXT
        )
    })
}

/// A token counter for the data layer.
pub fn counter(tokenizer: &Tokenizer) -> impl Fn(&str) -> usize + '_ {
    move |s: &str| tokenizer.encode(s, false).map_or(0, |e| e.len())
}

/// The answer's target tokens (`" answer"` then EOS).
pub fn answer_ids(tokenizer: &Tokenizer, answer: &str) -> Result<Vec<u32>> {
    let mut ids = encode(tokenizer, &answer_target(answer))?;
    ids.push(eos(tokenizer)?);
    Ok(ids)
}

/// Fine-tuning sequences of exactly `length + 1` tokens: the prompt filled at the front with
/// `filler` tokens (distractor text; item `i` starts at a seeded offset, cycling) and a paragraph
/// break to [`prompt_budget`]`(length)` tokens, its first answer and EOS, then unscored filler to
/// the end. A prompt longer than the budget is kept whole, and an answer too long for the room
/// after the budget ends the sequence; items whose prompt and answer exceed `length + 1` tokens
/// are skipped, and their number is returned.
pub fn build_examples(
    items: &[QaItem],
    tokenizer: &Tokenizer,
    length: usize,
    filler: &[u32],
    seed: u64,
) -> Result<(Vec<QaExample>, usize)> {
    let sep = encode(tokenizer, PARAGRAPH_SEPARATOR)?;
    let mut out = Vec::with_capacity(items.len());
    let mut skipped = 0;
    for (i, item) in items.iter().enumerate() {
        let answer = item
            .answers
            .first()
            .ok_or_else(|| anyhow!("QA item {} has no answer", item.id))?;
        let prompt = encode(tokenizer, &item.prompt)?;
        let ans = answer_ids(tokenizer, answer)?;
        if prompt.len() + ans.len() > length + 1 {
            skipped += 1;
            continue;
        }
        let prompt_len = prompt_budget(length)
            .min(length + 1 - ans.len())
            .max(prompt.len());
        let mut ids = fill_front(&prompt, prompt_len, filler, &sep, seed, i)
            .with_context(|| format!("QA item {}", item.id))?;
        ids.extend_from_slice(&ans);
        let rest = length + 1 - ids.len();
        if rest > 0 && filler.is_empty() {
            bail!(
                "QA item {}: no filler text to end the sequence with",
                item.id
            );
        }
        ids.extend((0..rest).map(|j| filler[(i + j) % filler.len()]));
        out.push(QaExample {
            ids,
            answer_at: prompt_len,
            scored: ans.len(),
        });
    }
    Ok((out, skipped))
}

/// `tail` preceded by filler tokens and a paragraph break so that the whole has exactly `total`
/// tokens (`tail` itself when it is that long already). Item `i` starts reading `filler` at a
/// seeded offset, cycling. Fine-tuning and evaluation prompts are both filled with it to the
/// prompt budget, so the question ends at the same position in both.
pub fn fill_front(
    tail: &[u32],
    total: usize,
    filler: &[u32],
    sep: &[u32],
    seed: u64,
    i: usize,
) -> Result<Vec<u32>> {
    let missing = total.saturating_sub(tail.len());
    let mut ids = Vec::with_capacity(total.max(tail.len()));
    if missing > 0 {
        if filler.is_empty() {
            bail!("no filler text to bring it to {total} tokens");
        }
        let fill = missing.saturating_sub(sep.len());
        let start = (seed as usize)
            .wrapping_mul(7919)
            .wrapping_add(i.wrapping_mul(104_729))
            % filler.len();
        ids.extend((0..fill).map(|j| filler[(start + j) % filler.len()]));
        ids.extend(sep.iter().take(missing - fill));
    }
    ids.extend_from_slice(tail);
    Ok(ids)
}

/// The QA data of a run: training and validation examples and, for the built-in task, the cloze
/// questions (which evaluation places in contexts of every length).
pub struct QaData {
    pub train: Vec<QaExample>,
    pub valid: Vec<QaExample>,
    pub cloze: Option<ClozeTask>,
    /// Items skipped because prompt + answer exceed the fine-tuning length.
    pub skipped: usize,
}

/// The cloze task of a configuration (deterministic: the same questions every time).
pub fn cloze_task(
    cfg: &QaConfig,
    corpus: &CorpusSource,
    tokenizer: &Tokenizer,
) -> Result<ClozeTask> {
    let splits = load_splits(corpus)?;
    let q = &cfg.qa;
    let cloze = ClozeConfig {
        passage_tokens: q.passage_tokens,
        target_tokens: q.length,
        questions_per_split: SplitCounts {
            train: q.train_questions,
            valid: q.valid_questions,
            test: q.test_questions,
        },
        seed: q.data_seed,
        ..ClozeConfig::default()
    };
    let count = counter(tokenizer);
    cloze_task_from_splits(&splits, &cloze, &count)
}

/// Tokens of a pool's passages, joined by paragraph breaks (the filler of [`build_examples`]).
pub fn filler_of(tokenizer: &Tokenizer, texts: impl Iterator<Item = String>) -> Result<Vec<u32>> {
    let text: Vec<String> = texts.take(400).collect();
    encode(tokenizer, &text.join(PARAGRAPH_SEPARATOR))
}

/// Tokens left after every prompt for the answer and EOS: the reference's 16 new tokens, so that
/// at `k×` a prompt and its longest generated answer fill exactly `k·N` positions (a learned table
/// is then read as trained at 1× and interpolated by exactly `k` beyond).
pub const ANSWER_ROOM: usize = 16;

/// Prompt length the contexts are built to, leaving [`ANSWER_ROOM`] for the answer and EOS.
pub fn prompt_budget(length: usize) -> usize {
    length.saturating_sub(ANSWER_ROOM).max(1)
}

/// The filler of the passkey prompts of one split: its documents' text (the first
/// [`PASSKEY_FILLER_CHARS`]) as tokens, and the 5-digit numbers it contains (never drawn as
/// keys).
pub fn passkey_filler(
    tokenizer: &Tokenizer,
    docs: &[seqpe_datasets::text::Document],
) -> Result<(Vec<u32>, std::collections::HashSet<u32>)> {
    let mut text = String::new();
    for d in docs {
        if text.len() >= PASSKEY_FILLER_CHARS {
            break;
        }
        text.push_str(d.text.trim());
        text.push_str(PARAGRAPH_SEPARATOR);
    }
    let cut = text
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|&i| i <= PASSKEY_FILLER_CHARS)
        .last()
        .unwrap_or(0);
    text.truncate(cut);
    if text.trim().is_empty() {
        bail!("the split has no text to fill passkey prompts with");
    }
    Ok((encode(tokenizer, &text)?, crate::data::numbers_in(&text)))
}

/// Characters of a split's text used as passkey filler (about 250k tokens: far more than the
/// longest prompt, so prompts start at many different places).
pub const PASSKEY_FILLER_CHARS: usize = 1_000_000;

/// `n` passkey fine-tuning sequences of exactly `length + 1` tokens: the prompt at the prompt
/// budget, the key and EOS, then unscored filler.
fn passkey_examples(
    tokenizer: &Tokenizer,
    docs: &[seqpe_datasets::text::Document],
    n: usize,
    length: usize,
    seed: u64,
) -> Result<Vec<QaExample>> {
    let (filler, forbidden) = passkey_filler(tokenizer, docs)?;
    let enc = |s: &str| encode(tokenizer, s);
    let prompts = crate::data::passkey_prompts(
        &enc,
        n,
        prompt_budget(length),
        &filler,
        &forbidden,
        false,
        seed,
    )?;
    prompts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let ans = answer_ids(tokenizer, &p.key.to_string())?;
            let answer_at = p.prompt.len();
            let mut ids = p.prompt;
            ids.extend_from_slice(&ans);
            if ids.len() > length + 1 {
                bail!("a passkey answer does not fit the fine-tuning length {length}");
            }
            let rest = length + 1 - ids.len();
            ids.extend((0..rest).map(|j| filler[(i * 7919 + j) % filler.len()]));
            Ok(QaExample {
                ids,
                answer_at,
                scored: ans.len(),
            })
        })
        .collect()
}

/// Loads or builds the data of a QA run.
pub fn load_data(cfg: &QaConfig, corpus: &CorpusSource, tokenizer: &Tokenizer) -> Result<QaData> {
    let q = &cfg.qa;
    let count = counter(tokenizer);
    match &q.data {
        None if q.task == crate::config::BuiltInTask::Passkey => {
            let splits = load_splits(corpus)?;
            Ok(QaData {
                train: passkey_examples(
                    tokenizer,
                    &splits.train,
                    q.train_questions,
                    q.length,
                    q.data_seed,
                )?,
                valid: passkey_examples(
                    tokenizer,
                    &splits.valid,
                    q.valid_questions,
                    q.length,
                    q.data_seed ^ 1,
                )?,
                cloze: None,
                skipped: 0,
            })
        }
        None => {
            let task = cloze_task(cfg, corpus, tokenizer)?;
            let target = prompt_budget(q.length);
            let items =
                |built: Vec<BuiltItem>| built.into_iter().map(|b| b.item).collect::<Vec<_>>();
            let train_items = items(task.train.contexts_at(target, q.data_seed, &count)?);
            let valid_items = items(task.valid.contexts_at(target, q.data_seed, &count)?);
            let filler_train =
                filler_of(tokenizer, task.train.pool.iter().map(|p| p.text.clone()))?;
            let filler_valid =
                filler_of(tokenizer, task.valid.pool.iter().map(|p| p.text.clone()))?;
            let (train, s1) = build_examples(
                &train_items,
                tokenizer,
                q.length,
                &filler_train,
                q.data_seed,
            )?;
            let (valid, s2) = build_examples(
                &valid_items,
                tokenizer,
                q.length,
                &filler_valid,
                q.data_seed,
            )?;
            Ok(QaData {
                train,
                valid,
                cloze: Some(task),
                skipped: s1 + s2,
            })
        }
        Some(path) => {
            let set = load_qa_path(
                path,
                &SquadOptions {
                    target_tokens: prompt_budget(q.length),
                    seed: q.data_seed,
                },
                &count,
            )?;
            let n = set.items.len();
            if n < 2 {
                bail!(
                    "{}: {n} QA item(s); fine-tuning needs at least two (one is held out for \
                     validation)",
                    path.display()
                );
            }
            // the last 5 % (at least one) validate
            let n_valid = (n / 20).max(1);
            let (train_items, valid_items) = set.items.split_at(n - n_valid);
            let filler = filler_of(
                tokenizer,
                set.items.iter().map(|i| {
                    crate::data::split_prompt(&i.prompt)
                        .map_or(i.prompt.clone(), |(c, _)| c.to_string())
                }),
            )?;
            let (train, s1) =
                build_examples(train_items, tokenizer, q.length, &filler, q.data_seed)?;
            let (valid, s2) =
                build_examples(valid_items, tokenizer, q.length, &filler, q.data_seed)?;
            if train.is_empty() {
                bail!(
                    "{}: no QA item fits the fine-tuning length of {} tokens (prompt + answer); \
                     raise --set qa.length",
                    path.display(),
                    q.length
                );
            }
            Ok(QaData {
                train,
                valid,
                cloze: None,
                skipped: s1 + s2,
            })
        }
    }
}

/// Fine-tuning on QA examples.
pub struct QaTask {
    pub train: Vec<QaExample>,
    pub valid: Vec<QaExample>,
    pub length: usize,
    grid: PositionGrid,
}

impl QaTask {
    pub fn new(train: Vec<QaExample>, valid: Vec<QaExample>, length: usize) -> Result<Self> {
        if train.is_empty() {
            bail!("no QA training examples");
        }
        if valid.is_empty() {
            bail!(
                "no QA validation examples fit the fine-tuning length {length} (model selection \
                 would score nothing); use shorter items or a longer qa.length"
            );
        }
        if let Some(e) = train.iter().chain(&valid).find(|e| {
            e.ids.len() != length + 1 || e.answer_at == 0 || e.answer_at + e.scored > length + 1
        }) {
            bail!(
                "a QA example of {} tokens with its answer at {} does not fit the fine-tuning \
                 length {length}",
                e.ids.len(),
                e.answer_at
            );
        }
        Ok(Self {
            train,
            valid,
            length,
            grid: PositionGrid::sequence(length),
        })
    }
}

/// Inputs `[b, length]`; the labels of positions `start..start + window` `[b, window]` (the
/// window that holds every scored label of the batch) and their mask.
pub struct QaBatch<B: Backend> {
    pub inputs: Tensor<B, 2, Int>,
    pub start: usize,
    pub labels: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2>,
}

fn qa_batch<B: Backend>(examples: &[&QaExample], length: usize, device: &B::Device) -> QaBatch<B> {
    let b = examples.len();
    // the label of position t is ids[t + 1]: answer token k is predicted at answer_at − 1 + k
    let start = examples.iter().map(|e| e.answer_at - 1).min().unwrap_or(0);
    let end = examples
        .iter()
        .map(|e| e.answer_at - 1 + e.scored)
        .max()
        .unwrap_or(start + 1);
    let window = end - start;
    let mut inputs = Vec::with_capacity(b * length);
    let mut labels = Vec::with_capacity(b * window);
    let mut mask = Vec::with_capacity(b * window);
    for e in examples {
        inputs.extend(e.ids[..length].iter().map(|&t| t as i64));
        labels.extend(e.ids[start + 1..end + 1].iter().map(|&t| t as i64));
        let scored = e.answer_at - 1..e.answer_at - 1 + e.scored;
        mask.extend((start..end).map(|t| if scored.contains(&t) { 1f32 } else { 0.0 }));
    }
    QaBatch {
        inputs: Tensor::from_data(TensorData::new(inputs, [b, length]), device),
        start,
        labels: Tensor::from_data(TensorData::new(labels, [b, window]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, window]), device),
    }
}

/// Summed negative log-likelihood of the masked labels and their count.
fn answer_nll<B: Backend>(
    model: &Gpt<B>,
    batch: QaBatch<B>,
    positions: &PositionContext<B>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let window = batch.labels.dims()[1];
    let h = model.hidden(batch.inputs, positions, AttentionOptions::default());
    let logits = model.head(h.narrow(1, batch.start, window));
    let logp = log_softmax(logits, 2);
    let picked = logp
        .gather(2, batch.labels.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2);
    ((picked * batch.mask.clone()).sum().neg(), batch.mask.sum())
}

/// Answer perplexity of `examples` (batches of 8, position table cached).
pub fn answer_perplexity<B: Backend>(
    model: &Gpt<B>,
    examples: &[QaExample],
    length: usize,
    device: &B::Device,
) -> Result<f64> {
    let cache = PeTableCache::new();
    let (mut nll, mut count) = (0f64, 0f64);
    for chunk in examples.chunks(8) {
        let refs: Vec<&QaExample> = chunk.iter().collect();
        let ctx = cache.context(
            &model.positions,
            &PositionGrid::sequence(length),
            chunk.len(),
            device,
        )?;
        let (s, c) = answer_nll(model, qa_batch::<B>(&refs, length, device), &ctx);
        nll += s.into_scalar().elem::<f64>();
        count += c.into_scalar().elem::<f64>();
    }
    Ok((nll / count.max(1.0)).exp())
}

impl<B: AutodiffBackend> Task<B> for QaTask {
    type Model = Gpt<B>;
    type Batch = QaBatch<B>;

    fn train_len(&self) -> usize {
        self.train.len()
    }

    fn grid(&self) -> &PositionGrid {
        &self.grid
    }

    fn batch(&self, indices: &[usize], _step: usize, device: &B::Device) -> Result<QaBatch<B>> {
        let refs: Vec<&QaExample> = indices.iter().map(|&i| &self.train[i]).collect();
        Ok(qa_batch(&refs, self.length, device))
    }

    fn loss(
        &self,
        model: &Gpt<B>,
        batch: QaBatch<B>,
        positions: &PositionContext<B>,
    ) -> Tensor<B, 1> {
        let (nll, count) = answer_nll(model, batch, positions);
        nll / count
    }

    fn validate(&self, model: &Gpt<B::InnerBackend>, device: &B::Device) -> Result<Metric> {
        let ppl = answer_perplexity(model, &self.valid, self.length, device)?;
        Ok(Metric::new("valid_answer_ppl", ppl, Goal::Minimize))
    }

    fn unit(&self) -> (&'static str, usize) {
        ("tokens", self.length)
    }
}

/// Where a QA fine-tune reads and writes.
#[derive(Debug, Clone)]
pub struct QaTrainOptions {
    pub session: Session,
    /// The text corpora of the built-in cloze task.
    pub corpus: CorpusSource,
}

/// The text run a QA run starts from: its configuration and tokenizer, with errors that say what
/// is wrong.
pub fn text_run(from: &Path) -> Result<(TextConfig, Tokenizer)> {
    let run = RunDir::new(from);
    if !run.config().is_file() {
        bail!(
            "--from {}: not a run folder (no config.json); give the folder of a `cargo xtask \
             train-text` run",
            from.display()
        );
    }
    let cfg: TextConfig = run.read_config().with_context(|| {
        format!(
            "--from {}: its config.json is not a text (GPT) run's; QA fine-tunes a `train-text` run",
            from.display()
        )
    })?;
    let tok = load_tokenizer_for(&run.file("tokenizer.json"), cfg.model.vocab_size)
        .with_context(|| format!("--from {}: the text run's tokenizer", from.display()))?;
    Ok((cfg, tok))
}

/// Fine-tunes (or resumes) a QA run; returns its summary.
pub fn train<B: AutodiffBackend>(
    cfg: QaConfig,
    opts: &QaTrainOptions,
    device: &B::Device,
) -> Result<FitSummary> {
    let (run, resume) = (&opts.session.run, opts.session.resume);
    let mut cfg = opts.session.config(cfg)?;
    cfg.validate()?;
    let tokenizer = if resume {
        load_tokenizer_for(&run.file("tokenizer.json"), cfg.model.vocab_size)?
    } else {
        let (text_cfg, tok) = text_run(&cfg.from)?;
        cfg.model = text_cfg.model;
        save_tokenizer(&tok, &run.file("tokenizer.json"))?;
        seqpe_train::checkpoint::write_json(&run.config(), &cfg)?;
        tok
    };
    eos(&tokenizer)?;
    eprintln!("building the QA data ({}) …", describe_data(&cfg));
    let data = load_data(&cfg, &opts.corpus, &tokenizer)?;
    eprintln!(
        "QA data: {} training and {} validation sequences of {} tokens ({} items too long, skipped)",
        data.train.len(),
        data.valid.len(),
        cfg.qa.length + 1,
        data.skipped
    );
    let task = QaTask::new(data.train, data.valid, cfg.qa.length)?;
    B::seed(device, cfg.train.seed);
    let model: Gpt<B> = if resume {
        cfg.model.init(device)?
    } else {
        RunDir::new(&cfg.from)
            .load_trained(cfg.model.init(device)?, device)
            .with_context(|| format!("loading the weights of --from {}", cfg.from.display()))?
    };
    let options = opts.session.fit_options("train-qa");
    fit(&task, model, &cfg.train, &options, device)
}

/// What data a configuration uses, in words.
pub fn describe_data(cfg: &QaConfig) -> String {
    match &cfg.qa.data {
        None if cfg.qa.task == crate::config::BuiltInTask::Passkey => format!(
            "passkey retrieval: {} / {} / {} prompts whose filler is the text corpus's own \
             split (a 5-digit number stated once at a uniformly drawn depth; test depths spread \
             evenly over the ten deciles)",
            cfg.qa.train_questions, cfg.qa.valid_questions, cfg.qa.test_questions
        ),
        None => format!(
            "the built-in cloze task: {} / {} / {} questions from the Brown and Austen corpora, \
             split by document",
            cfg.qa.train_questions, cfg.qa.valid_questions, cfg.qa.test_questions
        ),
        Some(p) => format!("{}", p.display()),
    }
}

/// The run folder of a QA fine-tune of `from` (`runs/qa-<preset>-<text run name>`).
pub fn default_run(preset: &str, from: &Path) -> PathBuf {
    let name = from
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "text".into());
    PathBuf::from("runs").join(format!("qa-{preset}-{name}"))
}

#[cfg(test)]
mod tests {
    use super::{
        answer_ids, build_examples, encode, fill_front, prompt_budget, qa_batch, QaExample,
    };
    use crate::data::QaItem;
    use burn::backend::flex::FlexDevice;
    use burn::backend::Flex;
    use seqpe_datasets::text::Document;

    #[test]
    fn the_answer_starts_at_the_prompt_budget_and_only_it_is_scored() {
        let text = "the cat sat on the mat and the dog ran to the park. ".repeat(40);
        let tok =
            seqpe_text::data::train_tokenizer(&[Document::new("d", text.clone())], 300).unwrap();
        let filler = encode(&tok, &text).unwrap();
        let item = |id: &str, prompt: &str, answer: &str| QaItem {
            id: id.into(),
            prompt: prompt.into(),
            answers: vec![answer.into()],
        };
        let items = [
            item("a", "the dog ran.\nAnswer:", "cat"),
            item(
                "b",
                "the mat.\nAnswer:",
                &"the cat sat on the mat ".repeat(4),
            ),
            item("c", &"the cat sat ".repeat(30), "dog"),
        ];
        let length = 40;
        let (ex, skipped) = build_examples(&items, &tok, length, &filler, 3).unwrap();
        assert_eq!(
            skipped, 1,
            "a prompt longer than the whole sequence is skipped"
        );
        assert_eq!(ex.len(), 2);
        for (e, it) in ex.iter().zip(&items) {
            let ans = answer_ids(&tok, &it.answers[0]).unwrap();
            let prompt = encode(&tok, &it.prompt).unwrap();
            assert_eq!(e.ids.len(), length + 1);
            assert_eq!(e.scored, ans.len());
            assert_eq!(&e.ids[e.answer_at..e.answer_at + e.scored], &ans[..]);
            assert_eq!(&e.ids[e.answer_at - prompt.len()..e.answer_at], &prompt[..]);
        }
        // a short answer starts exactly where evaluation's 1× prompts end; filler follows EOS
        assert_eq!(ex[0].answer_at, prompt_budget(length));
        assert!(ex[0].answer_at + ex[0].scored < length + 1);
        // an answer too long for the room after the budget ends the sequence instead
        assert!(ex[1].scored > length + 1 - prompt_budget(length));
        assert_eq!(ex[1].answer_at + ex[1].scored, length + 1);
    }

    #[test]
    fn a_batch_labels_the_answer_positions_of_each_example() {
        let ex = |answer_at, scored| QaExample {
            ids: (0..13).collect(),
            answer_at,
            scored,
        };
        let (a, b) = (ex(4, 2), ex(6, 3));
        let batch = qa_batch::<Flex>(&[&a, &b], 12, &FlexDevice);
        // answer token k of an example is predicted at answer_at − 1 + k: positions 3..5 and 5..8
        assert_eq!(batch.start, 3);
        let labels: Vec<i64> = batch.labels.into_data().iter::<i64>().collect();
        assert_eq!(labels, [4, 5, 6, 7, 8, 4, 5, 6, 7, 8]);
        let mask: Vec<f32> = batch.mask.into_data().iter::<f32>().collect();
        assert_eq!(mask, [1., 1., 0., 0., 0., 0., 0., 1., 1., 1.]);
        assert_eq!(batch.inputs.dims(), [2, 12]);
    }

    #[test]
    fn fill_front_reaches_the_total_and_keeps_the_tail_last() {
        let filler: Vec<u32> = (100..110).collect();
        let sep = [7, 7];
        let tail = [1, 2, 3];
        let ids = fill_front(&tail, 9, &filler, &sep, 5, 2).unwrap();
        assert_eq!(ids.len(), 9);
        assert_eq!(&ids[6..], &tail, "the prompt ends the sequence");
        assert_eq!(&ids[4..6], &sep, "a paragraph break before it");
        assert!(ids[..4].iter().all(|t| filler.contains(t)));
        // consecutive filler tokens, cycling from a seeded offset
        assert!(ids[..4]
            .windows(2)
            .all(|w| w[1] == 100 + (w[0] - 100 + 1) % 10));
        // one missing token: only (part of) the break; none missing: the tail as it is
        assert_eq!(
            fill_front(&tail, 4, &filler, &sep, 5, 2).unwrap(),
            [7, 1, 2, 3]
        );
        assert_eq!(fill_front(&tail, 3, &filler, &sep, 5, 2).unwrap(), tail);
        assert_eq!(fill_front(&tail, 2, &filler, &sep, 5, 2).unwrap(), tail);
        assert!(fill_front(&tail, 9, &[], &sep, 5, 2).is_err());
    }
}
