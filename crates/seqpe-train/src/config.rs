//! Overriding a run configuration (any serde struct) from the command line or a JSON file, so
//! every model offers the same `--set section.field=value` and `--config FILE`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Applies `section.field=value` overrides. Values are parsed as JSON when they can be (numbers,
/// booleans, arrays) and taken as strings otherwise; unknown fields and wrong types are errors.
pub fn apply_overrides<T: Serialize + DeserializeOwned>(
    cfg: &mut T,
    overrides: &[String],
) -> Result<()> {
    let mut value = serde_json::to_value(&*cfg)?;
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
        *slot = parsed;
    }
    *cfg = serde_json::from_value(value).context("an override has the wrong type")?;
    Ok(())
}

/// Merges a JSON file of (partial) settings into `cfg`.
pub fn apply_file<T: Serialize + DeserializeOwned>(cfg: &mut T, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let patch: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let mut value = serde_json::to_value(&*cfg)?;
    merge(&mut value, patch);
    *cfg = serde_json::from_value(value)
        .with_context(|| format!("{} has a field of the wrong type", path.display()))?;
    Ok(())
}

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
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
        assert!(apply_overrides(&mut c, &["train.steps=abc".into()]).is_err());
        assert!(apply_overrides(&mut c, &["novalue".into()]).is_err());
        let dir = std::env::temp_dir().join(format!("seqpe-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("p.json"), r#"{"train": {"steps": 3}}"#).unwrap();
        apply_file(&mut c, &dir.join("p.json")).unwrap();
        assert_eq!(c.train.steps, 3);
        assert_eq!(c.train.name, "b c");
        std::fs::write(dir.join("bad.json"), "{").unwrap();
        let err = apply_file(&mut c, &dir.join("bad.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.json"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
