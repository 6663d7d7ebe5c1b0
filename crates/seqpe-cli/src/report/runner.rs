//! The one report runner: every result page (text, vision, QA, the probes) is an [`Experiment`]
//! whose methods [`run_plan`] trains or reuses, evaluates or reuses, for each seed, and returns
//! as [`Outcome`]s; the page then only lays out tables and plots.
//!
//! Reuse rules, the same for every page:
//! * a run folder holding a finished run (its `summary.json` at the planned step count) with the
//!   planned settings is reused; an unfinished one is resumed; one with other settings is an
//!   error unless `--retrain` (which starts it again). Settings a method does not read
//!   ([`unread_keys`]) and settings filled from the data ([`Experiment::ignored_keys`]) may
//!   differ;
//! * a saved evaluation is reused when it is newer than the run's weights and answers the plan's
//!   question ([`Experiment::eval_is_current`]).
//!
//! Seeds: seed 1 of a method is its preset's `train.seed` in the folder `<folder>`; seed `k ≥ 2`
//! trains with `train.seed = k` in `<folder>-seed<k>` (the convention of `scripts/ablation.sh`),
//! so a report can be run with more seeds later and reuses the runs it already has.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use seqpe_core::{PeKind, RegularizerSettings, SeqPeInjection, SeqPeSettings};
use seqpe_train::config::RunConfig;
use seqpe_train::run::RunDir;
use seqpe_train::FitSummary;
use seqpe_train::Session;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One seed of a method: `1..=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seed(pub usize);

impl Seed {
    /// Seeds `1..=n`.
    pub fn first(n: usize) -> Vec<Seed> {
        (1..=n).map(Seed).collect()
    }

    /// The run folder of this seed of a method whose first-seed folder is `folder`.
    pub fn folder(self, folder: &str) -> String {
        if self.0 <= 1 {
            folder.to_string()
        } else {
            format!("{folder}-seed{}", self.0)
        }
    }

    /// A method's label on a page: `label` for seed 1, `label (seed k)` for the others.
    pub fn label(self, label: &str) -> String {
        if self.0 <= 1 {
            label.to_string()
        } else {
            format!("{label} (seed {})", self.0)
        }
    }

    /// The `train.seed` of this seed, for a preset whose seed is `preset_seed`.
    pub fn value(self, preset_seed: u64) -> u64 {
        if self.0 <= 1 {
            preset_seed
        } else {
            self.0 as u64
        }
    }
}

/// One compared method of a page: an encoding (for the grids, with its coordinates).
pub trait Compared: Clone + PartialEq {
    /// Its name on the page and in progress lines.
    fn label(&self) -> String;
    /// The encoding it trains (for [`unread_keys`]).
    fn encoding(&self) -> PeKind;
    /// Whether this is the SeqPE that a page sets against every baseline (with several SeqPE
    /// variants, the main one).
    fn is_main_seqpe(&self) -> bool {
        self.encoding() == PeKind::SeqPe
    }
}

impl Compared for PeKind {
    fn label(&self) -> String {
        self.to_string()
    }

    fn encoding(&self) -> PeKind {
        *self
    }
}

/// What a page compares, and how a method becomes a run and an evaluation.
pub trait Experiment<B: AutodiffBackend> {
    /// One compared method.
    type Method: Compared;
    /// A run's configuration (its `config.json`).
    type Config: RunConfig;
    /// What evaluating a run gives (saved beside the run, reused while current).
    type Eval: Serialize + DeserializeOwned;

    /// The configuration of `method` for `seed`, before the seed's `train.seed` is set (the QA
    /// fine-tune of seed `k` starts from the text run of seed `k`).
    fn config(&self, method: &Self::Method, seed: Seed) -> Result<Self::Config>;
    /// The first seed's run folder name of `method` (under the plan's runs folder).
    fn folder(&self, method: &Self::Method) -> String;
    /// Settings filled from the data (vocabulary size, channel statistics, …), which a saved run
    /// may hold other values of.
    fn ignored_keys(&self) -> Vec<String>;
    /// Trains (or resumes) the run of `session` with `config`.
    fn train(
        &self,
        config: Self::Config,
        session: Session,
        device: &B::Device,
    ) -> Result<FitSummary>;
    /// Where a run's evaluation is saved.
    fn eval_file(&self, run: &RunDir) -> PathBuf;
    /// Whether a saved evaluation is the one this plan asks for (same lengths, sizes, items).
    fn eval_is_current(&self, eval: &Self::Eval) -> bool;
    /// Evaluates a finished run.
    fn evaluate(&self, run: &RunDir, device: &B::Device) -> Result<Self::Eval>;
    /// Seconds a saved evaluation records it took (0 when it records none).
    fn recorded_seconds(&self, _eval: &Self::Eval) -> f64 {
        0.0
    }
}

/// Which methods and seeds a page trains, and where.
#[derive(Debug, Clone)]
pub struct Plan<M> {
    pub methods: Vec<M>,
    pub seeds: Vec<Seed>,
    /// The folder of the run folders.
    pub runs: PathBuf,
    /// Train again even when a finished run exists.
    pub retrain: bool,
    /// Train nothing: show the methods and seeds whose runs are finished, skip the rest.
    pub finished_only: bool,
}

/// One method and seed of a page, trained and evaluated.
#[derive(Debug, Clone)]
pub struct Outcome<M, E> {
    pub method: M,
    pub seed: Seed,
    pub run: PathBuf,
    pub train: FitSummary,
    pub eval: E,
    pub eval_seconds: f64,
    /// Whether the run was already finished (not trained by this invocation).
    pub reused: bool,
}

/// Trains (or reuses / resumes) and evaluates (or reuses the evaluation of) every method of the
/// plan for every seed: all methods of seed 1 first, so an interrupted report has a complete
/// first seed before it starts the next.
pub fn run_plan<B: AutodiffBackend, X: Experiment<B>>(
    x: &X,
    plan: &Plan<X::Method>,
    device: &B::Device,
) -> Result<Vec<Outcome<X::Method, X::Eval>>> {
    let mut out = Vec::new();
    for &seed in &plan.seeds {
        for method in &plan.methods {
            let mut cfg = x.config(method, seed)?;
            let preset_seed = cfg.train().seed;
            cfg.train_mut().seed = seed.value(preset_seed);
            cfg.validate()?;
            let run = RunDir::new(plan.runs.join(seed.folder(&x.folder(method))));
            let mut ignore = x.ignored_keys();
            ignore.extend(unread_keys(method.encoding()));
            let mut unfinished = false;
            let trained = ensure_trained(&run, &cfg, &ignore, plan.retrain, |resume| {
                if plan.finished_only {
                    unfinished = true;
                    anyhow::bail!("not finished");
                }
                let session = Session {
                    resume,
                    ..Session::fresh(&run.root)
                };
                run.or_remove_if_new(|| x.train(cfg.clone(), session, device))
            });
            if unfinished {
                eprintln!(
                    "skipping {} (not finished; --finished-only trains nothing)",
                    run.root.display()
                );
                continue;
            }
            let (train, reused) = trained?;
            let eval_path = x.eval_file(&run);
            let (eval, eval_seconds) =
                match cached_result(&run, &eval_path, |e| x.eval_is_current(e)) {
                    Some(e) => {
                        eprintln!("reusing {}", eval_path.display());
                        let secs = x.recorded_seconds(&e);
                        (e, secs)
                    }
                    None => {
                        eprintln!("evaluating {} (seed {})", method.label(), seed.0);
                        let t = Instant::now();
                        let e = x.evaluate(&run, device)?;
                        seqpe_train::checkpoint::write_json(&eval_path, &e)?;
                        (e, t.elapsed().as_secs_f64())
                    }
                };
            out.push(Outcome {
                method: method.clone(),
                seed,
                run: run.root.clone(),
                train,
                eval,
                eval_seconds,
                reused,
            });
        }
    }
    Ok(out)
}

/// The settings an encoding does not read, as `section.field`: a run of it is reused when only
/// these differ. SeqPE's own settings (every `model.seqpe_*` field of [`SeqPeSettings`] and every
/// `train.` field of [`RegularizerSettings`], read off the types' serialised names) for every
/// other encoding; the RoPE base for the encodings that do not rotate; the ALiBi form for all but
/// ALiBi.
pub fn unread_keys(pe: PeKind) -> Vec<String> {
    let mut keys = Vec::new();
    if pe != PeKind::SeqPe {
        keys.extend(seqpe_only_keys());
    }
    if !matches!(pe, PeKind::Rope | PeKind::Rope2d | PeKind::RopeMixed) {
        keys.push("model.rope_base".into());
    }
    if pe != PeKind::Alibi {
        keys.push("model.alibi_form".into());
    }
    keys
}

/// The settings only SeqPE runs read, derived from the settings types: the fields of
/// [`SeqPeSettings`] (flattened into `model`) and of [`RegularizerSettings`] (flattened into
/// `train`).
pub fn seqpe_only_keys() -> Vec<String> {
    let fields = |value: serde_json::Value, section: &str| -> Vec<String> {
        value
            .as_object()
            .map(|o| o.keys().map(|k| format!("{section}.{k}")).collect())
            .unwrap_or_default()
    };
    let model = SeqPeSettings::reference(64, 100, SeqPeInjection::AttnScalar);
    let mut keys = fields(serde_json::to_value(model).unwrap_or_default(), "model");
    let train = RegularizerSettings::reference(1);
    keys.extend(fields(
        serde_json::to_value(train).unwrap_or_default(),
        "train",
    ));
    keys
}

/// The `section.field`s whose values differ between two configurations (saved → planned).
fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn collect(path: &str, x: Option<&Value>, y: Option<&Value>, out: &mut Vec<String>) {
        match (x.and_then(Value::as_object), y.and_then(Value::as_object)) {
            (Some(fx), Some(fy)) => {
                for key in fx.keys().chain(fy.keys().filter(|k| !fx.contains_key(*k))) {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    collect(&path, fx.get(key), fy.get(key), out);
                }
            }
            _ if matches!((x, y), (Some(p), Some(q)) if same_settings(p, q)) => {}
            _ => {
                let show = |v: Option<&Value>| v.map_or("absent".into(), |v| v.to_string());
                out.push(format!("{path}: {} → {}", show(x), show(y)));
            }
        }
    }
    let mut keys = Vec::new();
    collect("", Some(a), Some(b), &mut keys);
    keys
}

/// Equal configurations, numbers compared to float32 precision (a setting that went through an
/// `f32` reads back as 0.05000000074505806 where the preset says 0.05).
fn same_settings(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-30),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_settings(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_settings(v, w)))
        }
        _ => a == b,
    }
}

/// The JSON of a config without the given `section.field`s, to compare a planned config with a
/// saved one where some fields are filled from the data or not read.
fn without(value: &serde_json::Value, ignore: &[String]) -> serde_json::Value {
    let mut v = value.clone();
    for key in ignore {
        if let Some((section, field)) = key.split_once('.') {
            if let Some(obj) = v.get_mut(section).and_then(|s| s.as_object_mut()) {
                obj.remove(field);
            }
        }
    }
    v
}

/// Trains the run of a page (or reuses it); see the module doc. Returns the summary and whether
/// the run was reused.
pub fn ensure_trained<C: RunConfig>(
    run: &RunDir,
    planned: &C,
    ignore: &[String],
    retrain: bool,
    train: impl FnOnce(bool) -> Result<FitSummary>,
) -> Result<(FitSummary, bool)> {
    if retrain && run.root.exists() {
        std::fs::remove_dir_all(&run.root)?;
    }
    if run.config().is_file() {
        // read as the settings type and written back, so a setting added since the run was
        // saved reads as its default (as the run itself would), not as a difference
        let saved: serde_json::Value = match run.read_config::<C>() {
            Ok(typed) => serde_json::to_value(typed)?,
            Err(_) => run.read_config()?,
        };
        let planned = serde_json::to_value(planned)?;
        let (saved, planned) = (without(&saved, ignore), without(&planned, ignore));
        if !same_settings(&saved, &planned) {
            bail!(
                "{} holds a run with other settings than this report's ({}); pass --retrain \
                 to replace it or --runs to use another folder",
                run.root.display(),
                differing_keys(&saved, &planned).join(", ")
            );
        }
    }
    let summary_path = run.file("summary.json");
    if summary_path.is_file() {
        let s: FitSummary = seqpe_train::checkpoint::read_json(&summary_path)?;
        if s.steps == planned.train().steps {
            eprintln!("reusing {}", run.root.display());
            return Ok((s, true));
        }
    }
    eprintln!("training {}", run.root.display());
    Ok((train(run.latest().is_some())?, false))
}

/// A saved result (an evaluation) of a run, if it is newer than the run's weights and `accept`s
/// the request, so regenerating a report does not evaluate again.
pub fn cached_result<T: DeserializeOwned>(
    run: &RunDir,
    path: &Path,
    accept: impl Fn(&T) -> bool,
) -> Option<T> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let weights = [
        run.best().join("model.mpk"),
        run.checkpoint().join("model.mpk"),
    ]
    .into_iter()
    .filter_map(|p| modified(&p))
    .max()?;
    if modified(path)? < weights {
        return None;
    }
    let value: T = seqpe_train::checkpoint::read_json(path).ok()?;
    accept(&value).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_compare_to_float32_precision_and_name_what_differs() {
        let a = json!({"train": {"weight_decay": 0.05, "steps": 10}});
        let b = json!({"train": {"weight_decay": 0.05000000074505806, "steps": 10}});
        assert!(same_settings(&a, &b));
        let c = json!({"train": {"weight_decay": 0.1, "steps": 10}});
        assert!(!same_settings(&a, &c));
        assert_eq!(
            differing_keys(&a, &c),
            vec!["train.weight_decay: 0.05 → 0.1".to_string()]
        );
    }

    #[test]
    fn comparing_configs_ignores_only_the_listed_fields() {
        let a = json!({"model": {"pe": "ape", "vocab_size": 300}, "train": {"lr": 1}});
        let b = json!({"model": {"pe": "ape", "vocab_size": 290}, "train": {"lr": 1}});
        let c = json!({"model": {"pe": "ape", "vocab_size": 290}, "train": {"lr": 2}});
        let ignore = ["model.vocab_size".to_string()];
        assert_eq!(without(&a, &ignore), without(&b, &ignore));
        assert_ne!(without(&a, &ignore), without(&c, &ignore));
    }

    #[test]
    fn the_seqpe_only_settings_come_from_the_settings_types() {
        let keys = seqpe_only_keys();
        // the twenty names the reports used to list by hand, and one added since
        for k in [
            "model.seqpe_d_model",
            "model.seqpe_heads",
            "model.seqpe_layers",
            "model.seqpe_max_position",
            "model.seqpe_dropout",
            "model.seqpe_inject",
            "model.seqpe_per_layer",
            "model.seqpe_qk_bias",
            "model.seqpe_scalar_scale",
            "model.seqpe_init_width",
            "train.contrastive_weight",
            "train.distill_weight",
            "train.shift_rate",
            "train.shift_pool",
            "train.contrastive_batch",
            "train.contrastive_candidates",
            "train.distill_windows",
            "train.distill_per_window",
            "train.shift_windows",
            "train.encoder_lr_scale",
            // added to RegularizerSettings later, and picked up without a hand-kept list
            "train.contrastive_window",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
        }
        assert_eq!(keys.len(), 21, "{keys:?}");
        // SeqPE reads them all; RoPE reads its base; only ALiBi its form
        assert!(!unread_keys(PeKind::SeqPe).contains(&"model.seqpe_d_model".to_string()));
        assert!(unread_keys(PeKind::Learned).contains(&"train.shift_rate".to_string()));
        assert!(!unread_keys(PeKind::Rope2d).contains(&"model.rope_base".to_string()));
        assert!(unread_keys(PeKind::SeqPe).contains(&"model.rope_base".to_string()));
        assert!(!unread_keys(PeKind::Alibi).contains(&"model.alibi_form".to_string()));
    }

    #[test]
    fn seed_one_keeps_the_preset_and_its_folder() {
        assert_eq!(
            Seed(1).folder("report-text-small-ape"),
            "report-text-small-ape"
        );
        assert_eq!(
            Seed(3).folder("report-text-small-ape"),
            "report-text-small-ape-seed3"
        );
        assert_eq!(Seed(1).value(10086), 10086);
        assert_eq!(Seed(2).value(10086), 2);
        assert_eq!(Seed::first(3), vec![Seed(1), Seed(2), Seed(3)]);
    }

    /// A stand-in experiment: "training" writes the files a finished run has, "evaluating"
    /// returns the run's seed; both are counted.
    #[cfg(feature = "flex")]
    mod fake {
        use super::super::*;
        use std::cell::RefCell;

        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub struct FakeConfig {
            pub preset: String,
            pub train: seqpe_train::TrainSettings,
        }

        #[derive(Clone, Copy)]
        pub struct FakePreset;

        impl seqpe_train::config::Preset for FakePreset {
            const WHAT: &'static str = "fake";
            const ALL: &'static [Self] = &[FakePreset];
            fn name(self) -> &'static str {
                "fake"
            }
        }

        impl RunConfig for FakeConfig {
            type Preset = FakePreset;
            fn from_preset(_: FakePreset) -> Self {
                Self {
                    preset: "fake".into(),
                    train: seqpe_text::config::TextConfig::from_preset(
                        seqpe_text::config::TextPreset::Tiny,
                    )
                    .train,
                }
            }
            fn validate(&self) -> Result<()> {
                Ok(())
            }
            fn train(&self) -> &seqpe_train::TrainSettings {
                &self.train
            }
            fn train_mut(&mut self) -> &mut seqpe_train::TrainSettings {
                &mut self.train
            }
        }

        #[derive(Default)]
        pub struct Fake {
            pub lr: f64,
            pub shift_rate: f64,
            pub trained: RefCell<Vec<(String, u64)>>,
            pub evaluated: RefCell<usize>,
        }

        type B = burn::backend::Autodiff<burn::backend::Flex>;

        impl Experiment<B> for Fake {
            type Method = PeKind;
            type Config = FakeConfig;
            type Eval = u64;
            fn config(&self, _: &PeKind, _: Seed) -> Result<FakeConfig> {
                let mut c = FakeConfig::preset("fake")?;
                c.train.lr = self.lr;
                c.train.regularizer.shift_rate = self.shift_rate;
                Ok(c)
            }
            fn folder(&self, pe: &PeKind) -> String {
                format!("fake-{pe}")
            }
            fn ignored_keys(&self) -> Vec<String> {
                Vec::new()
            }
            fn train(
                &self,
                cfg: FakeConfig,
                session: Session,
                _: &burn::backend::flex::FlexDevice,
            ) -> Result<FitSummary> {
                let run = &session.run;
                std::fs::create_dir_all(run.best())?;
                seqpe_train::checkpoint::write_json(&run.config(), &cfg)?;
                std::fs::write(run.best().join("model.mpk"), b"weights")?;
                let summary = FitSummary {
                    steps: cfg.train.steps,
                    final_loss: 1.0,
                    metric: "valid".into(),
                    best_valid: Some(1.0),
                    last_valid: Some(1.0),
                    seconds: 1.0,
                    total_seconds: 1.0,
                    unit: "tokens".into(),
                    per_second: 1.0,
                    train_examples: 1,
                    epochs: 1.0,
                    backend: String::new(),
                };
                seqpe_train::checkpoint::write_json(&run.file("summary.json"), &summary)?;
                let name = run.root.file_name().unwrap().to_string_lossy().into_owned();
                self.trained.borrow_mut().push((name, cfg.train.seed));
                Ok(summary)
            }
            fn eval_file(&self, run: &RunDir) -> PathBuf {
                run.file("eval.json")
            }
            fn eval_is_current(&self, _: &u64) -> bool {
                true
            }
            fn evaluate(&self, run: &RunDir, _: &burn::backend::flex::FlexDevice) -> Result<u64> {
                *self.evaluated.borrow_mut() += 1;
                let cfg: FakeConfig = run.read_config()?;
                Ok(cfg.train.seed)
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_runner_trains_each_method_and_seed_once_then_reuses_them() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = Plan {
            methods: vec![PeKind::SeqPe, PeKind::Learned],
            seeds: Seed::first(2),
            runs: tmp.path().to_path_buf(),
            retrain: false,
            finished_only: false,
        };
        let x = fake::Fake {
            lr: 1e-3,
            shift_rate: 0.1,
            ..Default::default()
        };
        let out = run_plan::<fake_b::B, _>(&x, &plan, &DEV).unwrap();
        let preset_seed = <fake::FakeConfig as RunConfig>::preset("fake")
            .unwrap()
            .train
            .seed;
        // seed 1 of every method first, then seed 2; seed 2 trains with train.seed = 2
        assert_eq!(
            *x.trained.borrow(),
            vec![
                ("fake-seqpe".to_string(), preset_seed),
                ("fake-ape".to_string(), preset_seed),
                ("fake-seqpe-seed2".to_string(), 2),
                ("fake-ape-seed2".to_string(), 2),
            ]
        );
        assert_eq!(*x.evaluated.borrow(), 4);
        assert_eq!(
            out.iter().map(|o| o.eval).collect::<Vec<_>>(),
            vec![preset_seed, preset_seed, 2, 2]
        );
        assert!(out.iter().all(|o| !o.reused));
        // again: everything reused, nothing trained or evaluated
        let y = fake::Fake {
            lr: 1e-3,
            shift_rate: 0.1,
            ..Default::default()
        };
        // a run saved before a setting existed reads it as its default: still reusable
        let saved = plan.runs.join("fake-seqpe").join("config.json");
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
        // (`encoder_lr_scale` is such a setting: its default, 1, is what the run trained with)
        old["train"]
            .as_object_mut()
            .unwrap()
            .remove("encoder_lr_scale")
            .expect("the setting is saved");
        std::fs::write(&saved, old.to_string()).unwrap();
        let again = run_plan::<fake_b::B, _>(&y, &plan, &DEV).unwrap();
        assert!(y.trained.borrow().is_empty());
        assert_eq!(*y.evaluated.borrow(), 0);
        assert!(again.iter().all(|o| o.reused));
        // a setting only SeqPE reads may differ for APE's runs, not for SeqPE's
        let z = fake::Fake {
            lr: 1e-3,
            shift_rate: 0.3,
            ..Default::default()
        };
        let ape_only = Plan {
            methods: vec![PeKind::Learned],
            ..plan.clone()
        };
        run_plan::<fake_b::B, _>(&z, &ape_only, &DEV).unwrap();
        assert!(z.trained.borrow().is_empty());
        let err = run_plan::<fake_b::B, _>(&z, &plan, &DEV)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fake-seqpe")
                && err.contains("train.shift_rate")
                && err.contains("--retrain"),
            "{err}"
        );
    }

    #[cfg(feature = "flex")]
    #[test]
    fn finished_only_trains_nothing_and_shows_the_finished_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = Plan {
            methods: vec![PeKind::SeqPe, PeKind::Learned],
            seeds: Seed::first(2),
            runs: tmp.path().to_path_buf(),
            retrain: false,
            finished_only: false,
        };
        let fake = || fake::Fake {
            lr: 1e-3,
            shift_rate: 0.1,
            ..Default::default()
        };
        // only APE's first seed is finished
        let ape_one = Plan {
            methods: vec![PeKind::Learned],
            seeds: Seed::first(1),
            ..plan.clone()
        };
        run_plan::<fake_b::B, _>(&fake(), &ape_one, &DEV).unwrap();
        let x = fake();
        let only = Plan {
            finished_only: true,
            ..plan.clone()
        };
        let out = run_plan::<fake_b::B, _>(&x, &only, &DEV).unwrap();
        assert!(x.trained.borrow().is_empty());
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].method, out[0].seed), (PeKind::Learned, Seed(1)));
        // nothing was left behind for the skipped runs
        assert!(!tmp.path().join("fake-seqpe").exists());
    }

    #[cfg(feature = "flex")]
    mod fake_b {
        pub type B = burn::backend::Autodiff<burn::backend::Flex>;
    }

    #[cfg(feature = "flex")]
    const DEV: burn::backend::flex::FlexDevice = burn::backend::flex::FlexDevice;
}
