//! Run configurations: one way for every model to go from a preset to the configuration a run
//! trains with.
//!
//! [`build`]: preset → `--config FILE` (a partial JSON config) → the command's typed flags that
//! were given → `--set section.field=value`; unknown keys are errors in both the file and `--set`.
//! [`for_run`]: a fresh run uses that configuration; a resumed run continues with its saved
//! `config.json`, and only `--set train.steps=N` may change it (to extend or shorten the run).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::run::RunDir;
use crate::settings::TrainSettings;

/// A closed set of named presets: one enum per kind of run, whose variants are the typed
/// constructors of its configuration (as candle-transformers' `Config::v1_7b()`…).
pub trait Preset: Copy + 'static {
    /// What the presets configure, for messages (`text`, `vision`, …).
    const WHAT: &'static str;
    /// Every preset, in the order messages list them.
    const ALL: &'static [Self];
    /// Its name on the command line and in `config.json`'s `preset`.
    fn name(self) -> &'static str;

    /// The preset called `name`; otherwise an error that lists the names.
    fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name() == name)
            .with_context(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown {} preset `{name}`; choose one of {}",
                    Self::WHAT,
                    names.join(", ")
                )
            })
    }
}

/// A model's run configuration (`TextConfig`, `VisionConfig`, `QaConfig`, the probes').
pub trait RunConfig: Serialize + DeserializeOwned + Clone {
    /// Its presets.
    type Preset: Preset;
    /// The configuration of a preset.
    fn from_preset(preset: Self::Preset) -> Self;
    /// The preset called `name` (an error lists the names).
    fn preset(name: &str) -> Result<Self> {
        Ok(Self::from_preset(Self::Preset::parse(name)?))
    }
    /// Checks settings that would otherwise fail deep inside a run.
    fn validate(&self) -> Result<()>;
    fn train(&self) -> &TrainSettings;
    fn train_mut(&mut self) -> &mut TrainSettings;
}

/// The configuration of a new run: `preset`, then the JSON file, then `flags` (the command's
/// typed options that were given — a flag that was not given must not touch the config), then
/// the `--set` overrides; validated.
pub fn build<C: RunConfig>(
    preset: &str,
    file: Option<&Path>,
    flags: impl FnOnce(&mut C),
    overrides: &[String],
) -> Result<C> {
    let mut cfg = C::preset(preset)?;
    if let Some(path) = file {
        apply_file(&mut cfg, path)?;
    }
    flags(&mut cfg);
    apply_overrides(&mut cfg, overrides)?;
    cfg.validate()?;
    Ok(cfg)
}

/// The configuration a run trains with. A fresh run (`resume == false`) uses `fresh`. A resumed
/// run continues with the configuration saved in its folder, whatever the preset or flags say;
/// `--set train.steps=N` is the one override that may change it, an override that repeats a saved
/// value is accepted, and any other `--set` is an error (it would silently not apply).
pub fn for_run<C: RunConfig>(
    run: &RunDir,
    resume: bool,
    fresh: C,
    overrides: &[String],
) -> Result<C> {
    for_run_with_flags(run, resume, fresh, overrides, &[])
}

/// A typed command-line flag that was given (`--pe ape`), with the `--set` override it amounts to
/// (`model.pe="ape"`): a resumed run refuses one that would change its saved settings, as it
/// refuses such a `--set`.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenFlag {
    /// As the user typed it, for the message.
    pub shown: String,
    /// `section.field=JSON value`.
    pub setting: String,
}

impl GivenFlag {
    /// `flag value` setting `key` to `value` (serialised as the config file holds it).
    pub fn new<T: Serialize>(flag: &str, key: &str, value: &T) -> Self {
        let json = serde_json::to_string(value).unwrap_or_default();
        Self {
            shown: format!("{flag} {}", json.trim_matches('"')),
            setting: format!("{key}={json}"),
        }
    }
}

/// [`for_run`], also refusing the typed `flags` that would change a resumed run's settings (a
/// resumed SeqPE run given `--pe ape` used to continue as SeqPE without a word).
pub fn for_run_with_flags<C: RunConfig>(
    run: &RunDir,
    resume: bool,
    fresh: C,
    overrides: &[String],
    flags: &[GivenFlag],
) -> Result<C> {
    if !resume {
        return Ok(fresh);
    }
    let mut saved: C = run.read_config()?;
    let saved_json = serde_json::to_value(&saved)?;
    let given = flags
        .iter()
        .map(|f| (f.shown.clone(), f.setting.clone()))
        .chain(
            overrides
                .iter()
                .filter(|item| {
                    item.split_once('=').map_or(item.as_str(), |(k, _)| k) != "train.steps"
                })
                .map(|item| (format!("--set {item}"), item.clone())),
        );
    for (shown, setting) in given {
        let mut probe = saved.clone();
        apply_overrides(&mut probe, std::slice::from_ref(&setting))?;
        if serde_json::to_value(&probe)? != saved_json {
            bail!(
                "--resume continues {} with its saved config.json; `{shown}` would change it, \
                 and only --set train.steps=N can. Start a new --run folder to train with other \
                 settings.",
                run.root.display()
            );
        }
    }
    let steps = fresh.train().steps;
    if overrides.iter().any(|o| o.starts_with("train.steps=")) && steps != saved.train().steps {
        eprintln!(
            "resuming {} with steps = {steps} (was {})",
            run.root.display(),
            saved.train().steps
        );
        saved.train_mut().steps = steps;
    }
    Ok(saved)
}

/// A run's saved `config.json`, checked as a `--config` file is: a file of another kind of run
/// (a text run given to a vision command) says so, unknown keys are errors, and the settings are
/// validated, so a hand-edited `block_size` or a typo fails here with the file named, not deep
/// inside a command.
pub fn load<C: RunConfig>(run: &RunDir) -> Result<C> {
    let path = run.config();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is this a run folder written by seqpe?)",
            path.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let what = <C::Preset as Preset>::WHAT;
    let cfg: C = serde_json::from_value(value.clone()).map_err(|e| {
        anyhow::anyhow!(
            "{} does not hold the settings of a {what} run ({e}); is this a run of another \
             kind?",
            path.display()
        )
    })?;
    let known = serde_json::to_value(&cfg)?;
    if let Some(key) = unknown_key(&value, &known, "") {
        bail!(
            "{}: unknown setting `{key}` for a {what} run (a typo, or a file from another \
             version of seqpe)",
            path.display()
        );
    }
    cfg.validate()
        .with_context(|| format!("{} holds settings a {what} run cannot use", path.display()))?;
    Ok(cfg)
}

/// Older setting names the settings types still read (their `#[serde(alias)]`es).
const ALIASES: [&str; 2] = ["eval_blocks", "seqpe_max_per_axis"];

/// The dotted path of the first key of `file` that `known` lacks.
fn unknown_key(file: &serde_json::Value, known: &serde_json::Value, at: &str) -> Option<String> {
    let (serde_json::Value::Object(f), serde_json::Value::Object(k)) = (file, known) else {
        return None;
    };
    for (key, v) in f {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match k.get(key) {
            // the older names serde still accepts (`#[serde(alias)]`)
            None if ALIASES.contains(&key.as_str()) => {}
            None => return Some(path),
            Some(w) => {
                if let Some(found) = unknown_key(v, w, &path) {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// Applies `section.field=value` overrides. Values are parsed as JSON when they can be (numbers,
/// booleans, arrays) and taken as strings otherwise; unknown fields and wrong types are errors.
pub fn apply_overrides<T: Serialize + DeserializeOwned>(
    cfg: &mut T,
    overrides: &[String],
) -> Result<()> {
    let original = serde_json::to_value(&*cfg)?;
    let mut value = original.clone();
    let mut leaves = Vec::new();
    for item in overrides {
        let (path, raw) = item
            .split_once('=')
            .with_context(|| format!("override `{item}` is not of the form section.field=value"))?;
        let parsed: serde_json::Value =
            serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.into()));
        let mut slot = &mut value;
        for key in path.split('.') {
            slot = slot
                .get_mut(key)
                .with_context(|| format!("override `{item}`: no field `{path}` in the config"))?;
        }
        *slot = parsed.clone();
        leaves.push((path.to_string(), parsed));
    }
    *cfg = serde_json::from_value(value).map_err(|e| {
        let field = wrong_type::<T>(&original, &leaves);
        anyhow::anyhow!(
            "{}: {e}",
            field.map_or("an override has the wrong type".to_string(), |f| format!(
                "--set {f}=… has the wrong type"
            ))
        )
    })?;
    Ok(())
}

/// The first of `leaves` (dotted path, value) that alone makes `original` fail to deserialise as
/// `T`: the setting a type error comes from (serde_json's message names no field).
fn wrong_type<T: DeserializeOwned>(
    original: &serde_json::Value,
    leaves: &[(String, serde_json::Value)],
) -> Option<String> {
    leaves.iter().find_map(|(path, v)| {
        let mut value = original.clone();
        let mut slot = &mut value;
        for key in path.split('.') {
            slot = slot.get_mut(key)?;
        }
        *slot = v.clone();
        serde_json::from_value::<T>(value)
            .is_err()
            .then(|| path.clone())
    })
}

/// The leaves of a JSON object as (dotted path, value).
fn leaves_of(v: &serde_json::Value, at: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                leaves_of(v, &path, out);
            }
        }
        leaf => out.push((at.to_string(), leaf.clone())),
    }
}

/// Merges a JSON file of (partial) settings into `cfg`. Every key of the file must exist in the
/// configuration (as with `--set`): a misspelt key is an error, not a silently ignored setting.
pub fn apply_file<T: Serialize + DeserializeOwned>(cfg: &mut T, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let patch: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let original = serde_json::to_value(&*cfg)?;
    let mut value = original.clone();
    let mut leaves = Vec::new();
    leaves_of(&patch, "", &mut leaves);
    merge(&mut value, patch, "").map_err(|key| {
        anyhow::anyhow!(
            "{}: unknown setting `{key}` (see the run's config.json for the valid names)",
            path.display()
        )
    })?;
    *cfg = serde_json::from_value(value).map_err(|e| {
        let field =
            wrong_type::<T>(&original, &leaves).map_or("a field".to_string(), |f| format!("`{f}`"));
        anyhow::anyhow!("{}: {field} has the wrong type ({e})", path.display())
    })?;
    Ok(())
}

/// Merges `patch` into `base`; returns the dotted path of the first key `base` lacks.
fn merge(
    base: &mut serde_json::Value,
    patch: serde_json::Value,
    at: &str,
) -> std::result::Result<(), String> {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v, &path)?,
                    None => return Err(path),
                }
            }
            Ok(())
        }
        (b, p) => {
            *b = p;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Inner {
        steps: usize,
        name: String,
    }
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Cfg {
        train: Inner,
        lr: f64,
    }

    #[test]
    fn overrides_and_files() {
        let mut c = Cfg {
            train: Inner {
                steps: 1,
                name: "a".into(),
            },
            lr: 0.1,
        };
        apply_overrides(
            &mut c,
            &[
                "train.steps=7".into(),
                "train.name=b c".into(),
                "lr=0.5".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            c,
            Cfg {
                train: Inner {
                    steps: 7,
                    name: "b c".into()
                },
                lr: 0.5
            }
        );
        assert!(apply_overrides(&mut c, &["train.nope=1".into()]).is_err());
        // a wrong type names the setting, among good ones
        let err = apply_overrides(&mut c, &["lr=0.1".into(), "train.steps=abc".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("train.steps"), "{err}");
        assert!(apply_overrides(&mut c, &["novalue".into()]).is_err());
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("p.json"), r#"{"train": {"steps": 3}}"#).unwrap();
        apply_file(&mut c, &dir.join("p.json")).unwrap();
        assert_eq!(c.train.steps, 3);
        assert_eq!(c.train.name, "b c");
        std::fs::write(dir.join("bad.json"), "{").unwrap();
        let err = apply_file(&mut c, &dir.join("bad.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.json"), "{err}");
        // a misspelt key is rejected, naming the file and the key, and nothing is applied
        std::fs::write(
            dir.join("typo.json"),
            r#"{"train": {"steps": 9, "stpes": 3}}"#,
        )
        .unwrap();
        let err = apply_file(&mut c, &dir.join("typo.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("typo.json") && err.contains("train.stpes"),
            "{err}"
        );
        assert_eq!(c.train.steps, 3);
        // so does a file's (serde_json's own message names no field)
        std::fs::write(
            dir.join("types.json"),
            r#"{"lr": 0.2, "train": {"name": "x", "steps": "many"}}"#,
        )
        .unwrap();
        let err = apply_file(&mut c, &dir.join("types.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("types.json") && err.contains("`train.steps`"),
            "{err}"
        );
    }
}
