//! The run configuration of a QA fine-tune: the GPT settings copied from the text run it starts
//! from, the QA data and protocol, and the shared training settings. Saved as `config.json`;
//! any field can be set with `--set section.field=value` or `--config FILE`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use seqpe_core::{CachedScalar, RegularizerSettings};
use seqpe_text::config::{ModelSettings, TextConfig, TextPreset};
use seqpe_train::config::{Preset, RunConfig};
use seqpe_train::schedule::Decay;
use seqpe_train::TrainSettings;
use serde::{Deserialize, Serialize};

/// The built-in QA task (when no `--qa-data` is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltInTask {
    /// A blanked content word of a real sentence, its passage at a random depth of other
    /// documents' passages (`seqpe_qa::data::cloze`).
    #[default]
    Cloze,
    /// A 5-digit number stated once at a drawn depth of filler text (`seqpe_qa::data::passkey`).
    Passkey,
}

/// The QA data and protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaSettings {
    /// The fine-tuning length: every training sequence is exactly this many tokens (prompt
    /// filled at the front with distractor text, then the answer and the end-of-text token).
    pub length: usize,
    /// Evaluation prompt lengths as multiples of `length` (the reference: 1×–16×).
    pub eval_factors: Vec<usize>,
    /// Users' QA data (`--qa-data`: a reference JSON-lines file, a SQuAD file, or a folder of
    /// them); `None` = the built-in `task` from the text corpora.
    pub data: Option<PathBuf>,
    /// The built-in task: `cloze` or `passkey` (questions per split: `train_questions`, …).
    #[serde(default)]
    pub task: BuiltInTask,
    /// Cloze task: passage size in tokens and questions per split.
    pub passage_tokens: usize,
    pub train_questions: usize,
    pub valid_questions: usize,
    pub test_questions: usize,
    /// Seed of the questions, their contexts and the fill.
    pub data_seed: u64,
    /// Greedy decoding: at most this many new tokens (the reference: 16).
    pub max_new_tokens: usize,
    /// SeqPE `attn_scalar` against cached keys during generation: `correct` (default) or the
    /// reference's `reference` quirk (no term after the prompt).
    pub cached_scalar: CachedScalar,
}

/// Everything a QA fine-tune needs; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaConfig {
    pub preset: String,
    /// The `train-text` run whose best weights and tokenizer the fine-tune starts from.
    pub from: PathBuf,
    /// The GPT (copied from the text run's config; its `block_size` is the pre-training length).
    pub model: ModelSettings,
    pub qa: QaSettings,
    pub train: TrainSettings,
}

/// The QA presets: `small` (the report, fine-tuning the `small` text runs) and `tiny` (the
/// tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QaPreset {
    Small,
    Tiny,
}

impl Preset for QaPreset {
    const WHAT: &'static str = "QA";
    const ALL: &'static [Self] = &[Self::Small, Self::Tiny];

    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Tiny => "tiny",
        }
    }
}

impl QaConfig {
    pub fn from_preset(p: QaPreset) -> Self {
        // The reference fine-tunes with its pre-training optimizer (AdamW, linear schedule with
        // 100 warm-up steps, no weight decay, clip 5), at twice the pre-training length, with
        // the SeqPE regularizers on (random-shift pool 160). Our small runs pre-train at lr 1e-3
        // on 128-token blocks, so: lr 5e-4, 256-token sequences.
        let train = TrainSettings {
            batch_size: 8,
            steps: 600,
            lr: 5e-4,
            warmup_steps: 50,
            warmup_start_lr: 0.0,
            final_lr: 0.0,
            decay: Decay::Linear,
            weight_decay: 0.0,
            grad_clip: 5.0,
            label_smoothing: 0.0,
            seed: 10086,
            eval_every: 100,
            valid_limit: 0,
            checkpoint_every: 100,
            precision: seqpe_train::Precision::F32,
            regularizer: RegularizerSettings {
                contrastive_batch: 8,
                contrastive_candidates: 16,
                distill_windows: 8,
                distill_per_window: 16,
                shift_windows: 8,
                shift_pool: 160,
                ..RegularizerSettings::reference(1)
            },
        };
        // the contrastive window follows the pre-training window, as the trained range does
        // (the reference fine-tunes with its pre-training PE settings)
        let scaled = |text: TextPreset, train: TrainSettings| TrainSettings {
            regularizer: train
                .regularizer
                .scaled_to_window(TextConfig::from_preset(text).model.block_size),
            ..train
        };
        let qa = QaSettings {
            length: 256,
            eval_factors: vec![1, 2, 4, 8, 16],
            data: None,
            task: BuiltInTask::Cloze,
            passage_tokens: 64,
            train_questions: 6000,
            valid_questions: 200,
            test_questions: 200,
            data_seed: 7,
            max_new_tokens: 16,
            cached_scalar: CachedScalar::Correct,
        };
        match p {
            QaPreset::Small => Self {
                preset: p.name().into(),
                from: PathBuf::from("runs/report-text-small-seqpe"),
                model: TextConfig::from_preset(TextPreset::Small).model,
                qa,
                train: scaled(TextPreset::Small, train),
            },
            // the tests and quick tries: short sequences, few questions
            QaPreset::Tiny => Self {
                preset: p.name().into(),
                from: PathBuf::from("runs/report-text-tiny-seqpe"),
                model: TextConfig::from_preset(TextPreset::Tiny).model,
                qa: QaSettings {
                    length: 96,
                    eval_factors: vec![1, 2, 4],
                    passage_tokens: 24,
                    train_questions: 400,
                    valid_questions: 40,
                    test_questions: 40,
                    ..qa
                },
                train: scaled(
                    TextPreset::Tiny,
                    TrainSettings {
                        steps: 200,
                        warmup_steps: 20,
                        eval_every: 50,
                        checkpoint_every: 50,
                        ..train
                    },
                ),
            },
        }
    }

    /// Sets the built-in task, and with it the training budget the task needs at this preset:
    /// passkey retrieval at `small` trains 3,000 steps (warm-up 100, validation and checkpoints
    /// every 250) instead of the cloze task's 600. Chosen on validation data (2026-12-07, an
    /// ALiBi fine-tune of `report-text-small-alibi`): the answer perplexity of the validation
    /// prompts was still 7.4 at step 600 (test EM 0 % at 1×, as the 600-step budget ended);
    /// with 3,000 steps it fell to 4.0 at step 1,500 and 1.2 at 2,250, once the model had learned
    /// to copy the number (`docs/reference-notes.md`, note 26). Call it before `--set` overrides.
    pub fn set_task(&mut self, task: BuiltInTask) {
        self.qa.task = task;
        if task == BuiltInTask::Passkey
            && QaPreset::parse(&self.preset).ok() == Some(QaPreset::Small)
        {
            self.train.steps = 3000;
            self.train.warmup_steps = 100;
            self.train.eval_every = 250;
            self.train.checkpoint_every = 250;
        }
    }

    /// The preset called `name` (an error lists the names).
    pub fn preset(name: &str) -> Result<Self> {
        Ok(Self::from_preset(QaPreset::parse(name)?))
    }
}

impl RunConfig for QaConfig {
    type Preset = QaPreset;

    fn from_preset(p: QaPreset) -> Self {
        QaConfig::from_preset(p)
    }

    fn validate(&self) -> Result<()> {
        self.model.check()?;
        let q = &self.qa;
        if q.length < 16 {
            bail!(
                "qa.length {} is too short for a question and its context",
                q.length
            );
        }
        if q.eval_factors.is_empty() || q.eval_factors.contains(&0) {
            bail!("qa.eval_factors must be positive multiples of qa.length");
        }
        let longest = q.length * q.eval_factors.iter().max().unwrap() + q.max_new_tokens;
        if self
            .model
            .position_config()
            .trained_range()
            .is_some_and(|range| longest > range)
        {
            // representable is 10^digits − 1; beyond max_position the encoder never trained
            eprintln!(
                "note: evaluation reaches position {longest}, beyond the SeqPE encoder's trained \
                 range ({})",
                self.model.seqpe.max_position
            );
        }
        if q.max_new_tokens == 0 {
            bail!("qa.max_new_tokens must be positive");
        }
        Ok(())
    }

    fn train(&self) -> &TrainSettings {
        &self.train
    }

    fn train_mut(&mut self) -> &mut TrainSettings {
        &mut self.train
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passkey_task_brings_its_budget_at_small_only() {
        let mut small = QaConfig::preset("small").unwrap();
        assert_eq!(small.train.steps, 600);
        small.set_task(BuiltInTask::Passkey);
        assert_eq!(small.qa.task, BuiltInTask::Passkey);
        assert_eq!(
            (
                small.train.steps,
                small.train.warmup_steps,
                small.train.eval_every,
                small.train.checkpoint_every
            ),
            (3000, 100, 250, 250)
        );
        let mut cloze = QaConfig::preset("small").unwrap();
        cloze.set_task(BuiltInTask::Cloze);
        assert_eq!(cloze, QaConfig::preset("small").unwrap());
        let mut tiny = QaConfig::preset("tiny").unwrap();
        tiny.set_task(BuiltInTask::Passkey);
        assert_eq!(tiny.train, QaConfig::preset("tiny").unwrap().train);
    }

    /// `train-qa --task` is checked against a resumed run's saved config as the setting
    /// `qa.task=…`: the key and value it writes must be ones a config takes.
    #[test]
    fn the_task_flag_names_the_task_setting() {
        use seqpe_train::config::{apply_overrides, GivenFlag};
        let flag = GivenFlag::new("--task", "qa.task", &BuiltInTask::Passkey);
        assert_eq!(flag.setting, "qa.task=\"passkey\"");
        let mut cfg = QaConfig::preset("small").unwrap();
        apply_overrides(&mut cfg, &[flag.setting]).unwrap();
        assert_eq!(cfg.qa.task, BuiltInTask::Passkey);
    }
}
