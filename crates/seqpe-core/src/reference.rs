//! Import of reference (`ghrua/seqpe`) weights and the parity check against its fixtures.
//!
//! The reference stores a `SequentialPE.state_dict()` under its own key names; HF `Conv1D` weights
//! are `[in, out]` (the same layout as a burn `Linear`), while `out_proj` is a torch `nn.Linear`
//! stored `[out, in]` and is transposed on import. See `shared/parity/README.md` for the fixture
//! layout and `docs/reference-notes.md` for the mapping.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::attention::AttnMask;
use crate::digits::DigitTokenizer;
use crate::encoder::{SeqPeEncoder, SeqPeEncoderConfig};
use crate::regularizers::{contrastive_loss, distill_loss};
use crate::sampling::nearest_label;

/// Failure to read reference weights or a parity fixture.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(
        "cannot read {path}: {source}; check the path (parity fixtures live in shared/parity/)"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid safetensors file ({reason}); it may be truncated or corrupt: fetch or regenerate it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} has no tensor `{key}`, which the reference {what} needs")]
    MissingKey {
        path: PathBuf,
        key: String,
        what: String,
    },
    #[error("{path}: tensor `{key}` has shape {got:?} but the encoder configuration needs {expected:?}; the weights were made for another configuration")]
    Shape {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{path}: tensor `{key}` has dtype {got}, expected {expected}")]
    Dtype {
        path: PathBuf,
        key: String,
        expected: &'static str,
        got: String,
    },
    #[error("{path}: metadata key `config` is missing or invalid ({reason})")]
    Config { path: PathBuf, reason: String },
}

/// The encoder configuration recorded in a fixture's `config` metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceConfig {
    pub dims: usize,
    pub max_digits: usize,
    pub d_model: usize,
    pub heads: usize,
    pub layers: usize,
    pub out_dim: usize,
    #[serde(default = "default_eps")]
    pub ln_eps: f64,
    #[serde(default = "default_true")]
    pub final_layernorm: bool,
    /// `causal` or `bi`.
    #[serde(default = "default_attn")]
    pub attn: String,
    #[serde(default = "default_one_usize")]
    pub distill_chunks: usize,
    #[serde(default = "default_one")]
    pub distill_beta: f64,
    #[serde(default = "default_one")]
    pub seqpe_temperature: f64,
    #[serde(default = "default_one")]
    pub contrastive_logit_scale: f64,
    #[serde(default = "default_one")]
    pub distill_logit_scale: f64,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_true() -> bool {
    true
}
fn default_attn() -> String {
    "causal".into()
}
fn default_one_usize() -> usize {
    1
}
fn default_one() -> f64 {
    1.0
}

impl ReferenceConfig {
    pub fn encoder_config(&self) -> SeqPeEncoderConfig {
        SeqPeEncoderConfig::new(
            self.dims,
            self.max_digits,
            self.d_model,
            self.out_dim,
            self.heads,
        )
        .with_n_layers(self.layers)
        .with_final_layernorm(self.final_layernorm)
        .with_temperature(self.seqpe_temperature)
        .with_mask(if self.attn == "bi" {
            AttnMask::Full
        } else {
            AttnMask::Causal
        })
    }
}

/// A safetensors file held in memory with its path (for error messages).
pub struct SafetensorsFile {
    pub path: PathBuf,
    bytes: Vec<u8>,
}

/// A tensor read from a file: shape and values.
pub struct HostTensor<T> {
    pub shape: Vec<usize>,
    pub values: Vec<T>,
}

impl SafetensorsFile {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReferenceError> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| ReferenceError::Io {
            path: path.clone(),
            source,
        })?;
        let file = Self { path, bytes };
        file.parse()?; // validate the header and offsets once, up front
        Ok(file)
    }

    fn parse(&self) -> Result<SafeTensors<'_>, ReferenceError> {
        SafeTensors::deserialize(&self.bytes).map_err(|e| ReferenceError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// The string metadata of the header.
    pub fn metadata(&self) -> Result<HashMap<String, String>, ReferenceError> {
        let (_, meta) =
            SafeTensors::read_metadata(&self.bytes).map_err(|e| ReferenceError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        Ok(meta.metadata().clone().unwrap_or_default())
    }

    pub fn has(&self, key: &str) -> bool {
        self.parse()
            .map(|st| st.tensor(key).is_ok())
            .unwrap_or(false)
    }

    fn raw(
        &self,
        key: &str,
        what: &str,
        dtype: Dtype,
    ) -> Result<(Vec<usize>, Vec<u8>), ReferenceError> {
        let st = self.parse()?;
        let view = st.tensor(key).map_err(|_| ReferenceError::MissingKey {
            path: self.path.clone(),
            key: key.into(),
            what: what.into(),
        })?;
        if view.dtype() != dtype {
            return Err(ReferenceError::Dtype {
                path: self.path.clone(),
                key: key.into(),
                expected: if dtype == Dtype::F32 { "F32" } else { "I64" },
                got: format!("{:?}", view.dtype()),
            });
        }
        Ok((view.shape().to_vec(), view.data().to_vec()))
    }

    pub fn f32(&self, key: &str, what: &str) -> Result<HostTensor<f32>, ReferenceError> {
        let (shape, data) = self.raw(key, what, Dtype::F32)?;
        let values = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(HostTensor { shape, values })
    }

    pub fn i64(&self, key: &str, what: &str) -> Result<HostTensor<i64>, ReferenceError> {
        let (shape, data) = self.raw(key, what, Dtype::I64)?;
        let values = data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        Ok(HostTensor { shape, values })
    }

    /// An f32 tensor whose element count must equal `expected`'s; reshaped to `expected`.
    fn weight<B: Backend, const D: usize>(
        &self,
        key: &str,
        expected: [usize; D],
        accept: &[&[usize]],
        device: &B::Device,
    ) -> Result<Tensor<B, D>, ReferenceError> {
        let t = self.f32(key, "encoder")?;
        if t.shape != expected && !accept.contains(&t.shape.as_slice()) {
            return Err(ReferenceError::Shape {
                path: self.path.clone(),
                key: key.into(),
                expected: expected.to_vec(),
                got: t.shape,
            });
        }
        Ok(Tensor::from_data(
            TensorData::new(t.values, expected),
            device,
        ))
    }

    /// The fixture configuration stored in the `config` metadata.
    pub fn reference_config(&self) -> Result<ReferenceConfig, ReferenceError> {
        let meta = self.metadata()?;
        let text = meta.get("config").ok_or_else(|| ReferenceError::Config {
            path: self.path.clone(),
            reason: "no `config` entry".into(),
        })?;
        serde_json::from_str(text).map_err(|e| ReferenceError::Config {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }
}

/// Builds a [`SeqPeEncoder`] for `config` and fills it with the reference weights in `file`.
pub fn load_reference_encoder<B: Backend>(
    file: &SafetensorsFile,
    config: &SeqPeEncoderConfig,
    device: &B::Device,
) -> Result<SeqPeEncoder<B>, ReferenceError> {
    let d = config.d_model;
    let l = config.dims * config.max_digits;
    let bad_config = |reason: String| ReferenceError::Config {
        path: file.path.clone(),
        reason,
    };
    // Checked before the encoder is built: a configuration it would panic on (width not divisible
    // by its heads, found by the fuzzer), and sizes the file's own tensors do not back (a 40-byte
    // header asking for a width of 10^9 must not allocate it).
    if config.n_heads == 0 || d == 0 || !d.is_multiple_of(config.n_heads) {
        return Err(bad_config(format!(
            "d_model {d} must be a positive multiple of heads {}",
            config.n_heads
        )));
    }
    if config.dims == 0 || config.max_digits == 0 || config.n_layers == 0 || config.out_dim == 0 {
        return Err(bad_config(
            "dims, max_digits, layers and out_dim must be at least 1".into(),
        ));
    }
    let token: Tensor<B, 2> = file.weight(
        "token_of_seqpe_embed.weight",
        [crate::digits::BASE, d],
        &[],
        device,
    )?;
    let slots: Tensor<B, 2> = file.weight("pos_of_seqpe_embed.weight", [l, d], &[], device)?;
    let out: Tensor<B, 2> = file.weight("out_proj.weight", [config.out_dim, d], &[], device)?;
    let last = format!("transformers.{}.layernorm_1.weight", config.n_layers - 1);
    if !file.has(&last) {
        return Err(ReferenceError::MissingKey {
            path: file.path.clone(),
            key: last,
            what: "encoder".into(),
        });
    }
    let mut enc = config.init::<B>(device);
    enc.token_embed.weight = Param::from_tensor(token);
    enc.slot_embed.weight = Param::from_tensor(slots);
    enc.cls = Param::from_tensor(file.weight("cls_token_embed", [d], &[&[1, 1, d]], device)?);
    if config.dims > 1 {
        enc.dim_embed = Some(Param::from_tensor(file.weight(
            "dim_token_embed",
            [config.dims, d],
            &[&[config.dims, 1, d]],
            device,
        )?));
    } else if file.has("dim_token_embed") {
        return Err(ReferenceError::Shape {
            path: file.path.clone(),
            key: "dim_token_embed".into(),
            expected: vec![],
            got: vec![config.dims],
        });
    }
    for (i, block) in enc.transformer.blocks.iter_mut().enumerate() {
        let k = |name: &str| format!("transformers.{i}.{name}");
        let set_ln = |ln: &mut burn::nn::LayerNorm<B>, name: &str| -> Result<(), ReferenceError> {
            ln.gamma =
                Param::from_tensor(file.weight(&k(&format!("{name}.weight")), [d], &[], device)?);
            ln.beta = Some(Param::from_tensor(file.weight(
                &k(&format!("{name}.bias")),
                [d],
                &[],
                device,
            )?));
            Ok(())
        };
        set_ln(&mut block.ln1, "layernorm_1")?;
        set_ln(&mut block.ln2, "layernorm_2")?;
        let set_lin = |lin: &mut burn::nn::Linear<B>, name: &str, din: usize, dout: usize| {
            lin.weight = Param::from_tensor(file.weight(
                &k(&format!("{name}.weight")),
                [din, dout],
                &[],
                device,
            )?);
            lin.bias = Some(Param::from_tensor(file.weight(
                &k(&format!("{name}.bias")),
                [dout],
                &[],
                device,
            )?));
            Ok::<(), ReferenceError>(())
        };
        set_lin(&mut block.attn.qkv, "attn.c_attn", d, 3 * d)?;
        set_lin(&mut block.attn.proj, "attn.c_proj", d, d)?;
        let hidden = block.mlp.fc.weight.dims()[1];
        set_lin(&mut block.mlp.fc, "mlp.c_fc", d, hidden)?;
        set_lin(&mut block.mlp.proj, "mlp.c_proj", hidden, d)?;
    }
    let extra = format!("transformers.{}.layernorm_1.weight", config.n_layers);
    if file.has(&extra) {
        return Err(ReferenceError::Shape {
            path: file.path.clone(),
            key: extra,
            expected: vec![config.n_layers],
            got: vec![config.n_layers + 1],
        });
    }
    if let Some(ln) = enc.final_ln.as_mut() {
        ln.gamma = Param::from_tensor(file.weight("layernorm.weight", [d], &[], device)?);
        ln.beta = Some(Param::from_tensor(file.weight(
            "layernorm.bias",
            [d],
            &[],
            device,
        )?));
    }
    // nn.Linear stores [out, in]; a burn Linear is [in, out].
    enc.out_proj.weight = Param::from_tensor(out.transpose());
    enc.out_proj.bias = Some(Param::from_tensor(file.weight(
        "out_proj.bias",
        [config.out_dim],
        &[],
        device,
    )?));
    Ok(enc)
}

/// Outcome of checking one fixture.
#[derive(Debug, Clone)]
pub struct ParityReport {
    pub path: PathBuf,
    pub config: ReferenceConfig,
    pub digits_match: bool,
    pub labels_match: bool,
    pub max_abs_embedding_error: f32,
    pub contrastive_rel_error: f64,
    pub distill_rel_error: f64,
    pub contrastive_loss: f64,
    pub distill_loss: f64,
}

/// Tolerances of the parity check (`shared/parity/README.md`).
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub embedding_abs: f32,
    pub loss_rel: f64,
}

impl Tolerance {
    /// float32 on CPU: 1e-4.
    pub const CPU: Self = Self {
        embedding_abs: 1e-4,
        loss_rel: 1e-4,
    };
    /// GPU kernels (TF32, fused ops): 1e-3.
    pub const GPU: Self = Self {
        embedding_abs: 1e-3,
        loss_rel: 1e-3,
    };
}

impl ParityReport {
    pub fn passes(&self, tol: Tolerance) -> bool {
        self.digits_match
            && self.labels_match
            && self.max_abs_embedding_error <= tol.embedding_abs
            && self.contrastive_rel_error <= tol.loss_rel
            && self.distill_rel_error <= tol.loss_rel
    }

    /// One line for humans.
    pub fn line(&self, tol: Tolerance) -> String {
        format!(
            "{} {}: dims={} digits={} d={} out={} | digits {} labels {} | emb max|err| {:.2e} | contrastive {:.6} (rel {:.2e}) | distill {:.6} (rel {:.2e})",
            if self.passes(tol) { "PASS" } else { "FAIL" },
            self.path.display(),
            self.config.dims,
            self.config.max_digits,
            self.config.d_model,
            self.config.out_dim,
            if self.digits_match { "ok" } else { "MISMATCH" },
            if self.labels_match { "ok" } else { "MISMATCH" },
            self.max_abs_embedding_error,
            self.contrastive_loss,
            self.contrastive_rel_error,
            self.distill_loss,
            self.distill_rel_error,
        )
    }
}

fn to_usize(values: &[i64]) -> Vec<usize> {
    values.iter().map(|&v| v as usize).collect()
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// Recomputes a fixture's digits, embeddings and both losses from its stored positions, with an
/// encoder built from the fixture's own configuration and weights (eval mode).
pub fn check_fixture<B: Backend>(
    path: impl AsRef<Path>,
    device: &B::Device,
) -> Result<ParityReport, ReferenceError> {
    let file = SafetensorsFile::open(path)?;
    let cfg = file.reference_config()?;
    let enc_cfg = cfg.encoder_config();
    let encoder = load_reference_encoder::<B>(&file, &enc_cfg, device)?;
    let dims = cfg.dims;
    let tokenizer = DigitTokenizer::new(cfg.max_digits, dims);

    let positions = file.i64("input.positions", "parity check")?;
    let positions = to_usize(&positions.values);
    let stored_digits = file.i64("input.digits", "parity check")?;
    let ours = tokenizer
        .encode_flat(&positions)
        .map_err(|e| ReferenceError::Config {
            path: file.path.clone(),
            reason: e.to_string(),
        })?;
    let digits_match = ours.len() == stored_digits.values.len()
        && ours
            .iter()
            .zip(&stored_digits.values)
            .all(|(&a, &b)| a as i64 == b);

    let expected = file.f32("expected.embeddings", "parity check")?;
    let emb = host(encoder.encode(&positions).expect("validated above"));
    let max_abs_embedding_error = if emb.len() == expected.values.len() {
        emb.iter()
            .zip(&expected.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    } else {
        f32::INFINITY
    };

    let pivots = to_usize(&file.i64("contrastive.pivots", "parity check")?.values);
    let cands = file.i64("contrastive.candidates", "parity check")?;
    let (p, c) = (cands.shape[0], cands.shape[1]);
    let cands = to_usize(&cands.values);
    let stored_labels = file.i64("contrastive.labels", "parity check")?.values;
    let labels: Vec<usize> = (0..p)
        .map(|i| {
            nearest_label(
                &pivots[i * dims..(i + 1) * dims],
                &cands[i * c * dims..(i + 1) * c * dims],
            )
        })
        .collect();
    let labels_match = labels
        .iter()
        .zip(&stored_labels)
        .all(|(&a, &b)| a as i64 == b)
        && labels.len() == stored_labels.len();
    let encode = |pos: &[usize]| {
        encoder.encode(pos).map_err(|e| ReferenceError::Config {
            path: file.path.clone(),
            reason: e.to_string(),
        })
    };
    let zp = encode(&pivots)? * cfg.contrastive_logit_scale.sqrt();
    let zc = encode(&cands)?.reshape([p, c, cfg.out_dim]) * cfg.contrastive_logit_scale.sqrt();
    let label_ids: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let labels_t = Tensor::<B, 1, Int>::from_data(TensorData::new(label_ids, [p]), device);
    let ct = host(contrastive_loss(zp, zc, labels_t))[0] as f64;

    let teacher = file.i64("distill.teacher", "parity check")?;
    let (w, n) = (teacher.shape[0], teacher.shape[1]);
    let teacher = to_usize(&teacher.values);
    let student = to_usize(&file.i64("distill.student", "parity check")?.values);
    let scale = cfg.distill_logit_scale.sqrt();
    let zt = encode(&teacher)?.reshape([w, n, cfg.out_dim]) * scale;
    let zs = encode(&student)?.reshape([w, n, cfg.out_dim]) * scale;
    let kd = host(distill_loss(zt, zs, cfg.distill_chunks, cfg.distill_beta))[0] as f64;

    let exp_ct = file
        .f32("expected.contrastive_loss", "parity check")?
        .values[0] as f64;
    let exp_kd = file.f32("expected.distill_loss", "parity check")?.values[0] as f64;
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-12);
    Ok(ParityReport {
        path: file.path.clone(),
        config: cfg,
        digits_match,
        labels_match,
        max_abs_embedding_error,
        contrastive_rel_error: rel(ct, exp_ct),
        distill_rel_error: rel(kd, exp_kd),
        contrastive_loss: ct,
        distill_loss: kd,
    })
}
