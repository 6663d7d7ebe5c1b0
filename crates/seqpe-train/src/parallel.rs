//! Data parallelism on Burn's collective engine (`burn-collective`): [`DataParallel`] says where
//! the peers are, [`Peer`] is what one of them does in [`crate::fit`](mod@crate::fit)'s loop.
//!
//! Where to start: [`crate::fit::fit`] runs the one training loop once per local peer (a thread
//! each); with one device and one node it runs it on the calling thread exactly as before, with no
//! collective at all. Per step, every peer
//!
//! 1. takes the same global batch from the one [`crate::sampler::EpochSampler`] (each peer's copy
//!    advances alike) and builds its [`Shard`] of it (`batch_size / peers` contiguous examples);
//! 2. for SeqPE, draws the same regularizer batch and keeps its shard of the pivots and
//!    distillation windows ([`seqpe_core::SeqPeRegularizer::step_shard`]);
//! 3. computes its part's mean loss and gradients, and [`Peer::all_reduce`]s them (the gradients
//!    flattened into one tensor, the logged losses appended) with `ReduceOperation::Mean`: one
//!    collective per step; the mean of equal parts' means is the one-device mean;
//! 4. applies the identical optimizer step (clipping acts on the reduced gradients), so the
//!    replicas stay equal without a broadcast.
//!
//! Only the writer (peer 0 of node 0) logs progress and metrics, validates and writes checkpoints;
//! every peer reads the checkpoint when resuming. Several machines: each runs one node (its local
//! devices as peers), all connected through burn-collective's global orchestrator
//! ([`run_orchestrator`]); `docs/distributed.md` has the commands.

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};
use seqpe_core::Shard;

/// The machines of a multi-node run and this process's place among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes {
    /// Machines (processes), each with the same number of local devices.
    pub count: u32,
    /// This node's rank, `0..count`; rank 0 holds the writer.
    pub rank: u32,
    /// The global orchestrator, `ws://HOST:PORT` (`seqpe orchestrator --port PORT`).
    pub orchestrator: String,
    /// Where the other nodes reach this one, `ws://HOST:PORT`; PORT is this node's tensor data
    /// service.
    pub address: String,
}

impl Nodes {
    /// The port of [`Self::address`].
    pub fn data_port(&self) -> Result<u16> {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or_else(|| {
                anyhow!(
                    "--node-address {} must end in :PORT (e.g. ws://10.0.0.2:3001)",
                    self.address
                )
            })
    }
}

/// Where a run's data-parallel peers are. [`DataParallel::single`] (the default) is one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataParallel {
    /// This node's devices by index (`--devices 2` → `[0, 1]`, `--devices cuda:0,cuda:2` →
    /// `[0, 2]`); empty means the one device the command was given. On a backend with a single
    /// device (Flex, the CPU) the peers share it.
    pub devices: Vec<u16>,
    pub nodes: Option<Nodes>,
}

/// One entry of `--devices`: a count (`2`) or a list (`cuda:0,cuda:1`, `0,1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(pub Vec<u16>);

impl FromStr for DeviceList {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if !s.contains(',') && !s.contains(':') {
            let n: u16 = s
                .parse()
                .map_err(|_| format!("`{s}`: give a device count (2) or a list (cuda:0,cuda:1)"))?;
            if n == 0 {
                return Err("--devices must be at least 1".into());
            }
            return Ok(Self((0..n).collect()));
        }
        let mut ids = Vec::new();
        for item in s.split(',') {
            let index = item.rsplit(':').next().unwrap_or(item).trim();
            let id: u16 = index.parse().map_err(|_| {
                format!("`{item}`: a device is `NAME:INDEX` or `INDEX` (e.g. cuda:0)")
            })?;
            if ids.contains(&id) {
                return Err(format!("device {id} is listed twice"));
            }
            ids.push(id);
        }
        Ok(Self(ids))
    }
}

impl fmt::Display for DataParallel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} device(s)", self.devices.len().max(1))?;
        if let Some(n) = &self.nodes {
            write!(f, " on node {} of {}", n.rank, n.count)?;
        }
        Ok(())
    }
}

impl DataParallel {
    /// One device, one node: the plain training loop.
    pub fn single() -> Self {
        Self::default()
    }

    /// `n` peers on this machine's devices `0..n`.
    pub fn local(n: u16) -> Self {
        Self {
            devices: (0..n).collect(),
            nodes: None,
        }
    }

    /// Whether this is one device on one node (no collective at all).
    pub fn is_single(&self) -> bool {
        self.devices.len() <= 1 && self.nodes.is_none()
    }

    fn local_count(&self) -> u32 {
        self.devices.len().max(1) as u32
    }

    /// Peers in the whole run.
    pub fn peers(&self) -> u32 {
        self.local_count() * self.nodes.as_ref().map_or(1, |n| n.count)
    }

    /// Whether this process holds the writer (it runs on node 0).
    pub fn has_writer(&self) -> bool {
        self.nodes.as_ref().is_none_or(|n| n.rank == 0)
    }

    /// Checks the settings against a global batch size.
    pub fn check(&self, batch_size: usize) -> Result<()> {
        if let Some(n) = &self.nodes {
            if n.count == 0 || n.rank >= n.count {
                bail!("--node-rank {} must be below --nodes {}", n.rank, n.count);
            }
            n.data_port()?;
        }
        let peers = self.peers() as usize;
        if !batch_size.is_multiple_of(peers) {
            bail!(
                "the batch size ({batch_size}) must be a multiple of the number of data-parallel \
                 peers ({peers}: {self}); every peer takes an equal part of each global batch"
            );
        }
        Ok(())
    }

    /// The collective configuration every local peer registers with.
    fn config(&self) -> Result<CollectiveConfig> {
        let mut cfg = CollectiveConfig::default().with_num_devices(self.local_count() as usize);
        if let Some(n) = &self.nodes {
            let orchestrator = n.orchestrator.parse().map_err(|e: String| anyhow!(e))?;
            let address = n.address.parse().map_err(|e: String| anyhow!(e))?;
            cfg = cfg
                .with_num_nodes(n.count)
                .with_global_address(orchestrator)
                .with_node_address(address)
                .with_data_service_port(n.data_port()?);
        }
        Ok(cfg)
    }

    /// This node's peers, each with its device (`device`'s kind, the listed index).
    pub fn peers_here<D: burn::tensor::backend::DeviceOps>(
        &self,
        device: &D,
    ) -> Result<Vec<(Peer, D)>> {
        let config = self.config()?;
        if let Some(n) = &self.nodes {
            reachable(&n.orchestrator)?;
            quiet_transfer_logs();
        }
        let local = self.local_count();
        let rank = self.nodes.as_ref().map_or(0, |n| n.rank);
        let indices = if self.devices.is_empty() {
            vec![None]
        } else {
            self.devices.iter().map(|&i| Some(i)).collect()
        };
        Ok(indices
            .into_iter()
            .enumerate()
            .map(|(i, index)| {
                let global = rank * local + i as u32;
                let dev = match index {
                    Some(index) => {
                        let mut id = device.to_id();
                        id.index_id = index;
                        D::from_id(id)
                    }
                    None => device.clone(),
                };
                let peer = Peer {
                    id: PeerId(global),
                    count: self.peers(),
                    config: config.clone(),
                };
                (peer, dev)
            })
            .collect())
    }
}

/// One data-parallel peer: its place in the run and the collective it belongs to.
#[derive(Debug, Clone)]
pub struct Peer {
    id: PeerId,
    /// Peers in the whole run.
    count: u32,
    config: CollectiveConfig,
}

impl Peer {
    /// Its part of every global batch.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.id.0 as usize,
            count: self.count as usize,
        }
    }

    /// Whether this peer logs, validates and writes checkpoints (exactly one does).
    pub fn is_writer(&self) -> bool {
        self.id.0 == 0
    }

    /// Joins the collective (blocks until every local peer, and with several nodes every node,
    /// has joined).
    pub fn register<B: AutodiffBackend>(&self, device: &B::Device) -> Result<()> {
        burn_collective::register::<B::InnerBackend>(self.id, device.clone(), self.config.clone())
            .map_err(|e| anyhow!("peer {} could not join the collective: {e:?}", self.id.0))
    }

    /// Leaves the collective after the last step.
    pub fn finish<B: AutodiffBackend>(&self) -> Result<()> {
        burn_collective::finish_collective::<B::InnerBackend>(self.id)
            .map_err(|e| anyhow!("peer {} could not leave the collective: {e:?}", self.id.0))
    }

    /// Unblocks the other local peers after this one failed (their next collective call errors
    /// instead of waiting for it forever).
    pub fn abort<B: AutodiffBackend>(&self) {
        burn_collective::reset_collective::<B::InnerBackend>();
    }

    /// Replaces the gradients of `model`'s parameters in `grads` and `stats` by their means over
    /// every peer, with one all-reduce: the gradients are flattened (in the module's parameter
    /// order, the same on every peer) into one tensor with `stats` appended.
    pub fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        grads: &mut GradientsParams,
        stats: &mut [f64],
        device: &B::Device,
    ) -> Result<()> {
        let mut flat = Flatten::<B::InnerBackend> {
            grads,
            parts: Vec::new(),
            shapes: Vec::new(),
        };
        model.visit(&mut flat);
        let Flatten { parts, shapes, .. } = flat;
        let values: Vec<f32> = stats.iter().map(|&v| v as f32).collect();
        let mut all = parts;
        all.push(Tensor::from_data(
            TensorData::new(values, [stats.len()]),
            device,
        ));
        let flat = Tensor::cat(all, 0);
        let reduced = burn_collective::all_reduce::<B::InnerBackend>(
            self.id,
            flat.into_primitive().tensor(),
            ReduceOperation::Mean,
        )
        .map_err(|e| anyhow!("all-reduce of peer {} failed: {e:?}", self.id.0))?;
        let reduced: Tensor<B::InnerBackend, 1> =
            Tensor::from_primitive(TensorPrimitive::Float(reduced));
        let mut offset = 0;
        let mut restore = Restore::<B::InnerBackend> {
            grads,
            reduced: &reduced,
            shapes: shapes.into_iter(),
            offset: &mut offset,
        };
        model.visit(&mut restore);
        let tail = reduced
            .narrow(0, offset, stats.len())
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| anyhow!("reduced losses: {e:?}"))?;
        for (s, v) in stats.iter_mut().zip(tail) {
            *s = v as f64;
        }
        Ok(())
    }
}

/// Takes the gradients of a module's parameters out of `grads`, flattened, in visit order.
struct Flatten<'a, B: Backend> {
    grads: &'a mut GradientsParams,
    parts: Vec<Tensor<B, 1>>,
    shapes: Vec<(ParamId, Vec<usize>)>,
}

impl<AD: AutodiffBackend> ModuleVisitor<AD> for Flatten<'_, AD::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
        if let Some(g) = self.grads.remove::<AD::InnerBackend, D>(param.id) {
            self.shapes.push((param.id, g.dims().to_vec()));
            self.parts.push(g.flatten(0, D - 1));
        }
    }
}

/// Puts the reduced gradients back, in the order [`Flatten`] took them.
struct Restore<'a, B: Backend> {
    grads: &'a mut GradientsParams,
    reduced: &'a Tensor<B, 1>,
    shapes: std::vec::IntoIter<(ParamId, Vec<usize>)>,
    offset: &'a mut usize,
}

impl<AD: AutodiffBackend> ModuleVisitor<AD> for Restore<'_, AD::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
        let Some((id, shape)) = self.shapes.as_slice().first().cloned() else {
            return;
        };
        if id != param.id {
            return;
        }
        self.shapes.next();
        let numel: usize = shape.iter().product();
        let dims: [usize; D] = shape.try_into().expect("a parameter keeps its rank");
        let g = self
            .reduced
            .clone()
            .narrow(0, *self.offset, numel)
            .reshape(dims);
        *self.offset += numel;
        self.grads.register::<AD::InnerBackend, D>(param.id, g);
    }
}

/// Installs a warnings-only log subscriber for this process unless one is already installed or
/// `RUST_LOG` is set. burn-communication's servers install an INFO one when they start (first
/// come, first served), and a node's would then print a line per tensor transfer, several per
/// training step, between our progress lines; with `RUST_LOG` set (to anything) that one stays,
/// for debugging a connection.
fn quiet_transfer_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(LevelFilter::WARN);
    // an error only means a subscriber exists already (the orchestrator's, in the same process)
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// How long a node waits for the orchestrator to accept connections before giving up.
const ORCHESTRATOR_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Fails with a clear message unless a TCP connection to the orchestrator `ws://HOST:PORT` opens
/// within [`ORCHESTRATOR_WAIT`] (it may still be starting; burn-collective itself retries an
/// unreachable orchestrator forever, silently).
fn reachable(orchestrator: &str) -> Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};
    let hostport = orchestrator
        .trim_start_matches("ws://")
        .trim_start_matches("wss://")
        .split('/')
        .next()
        .unwrap_or_default();
    let fix = "start it first on its machine with `seqpe orchestrator --port PORT` \
               (docs/distributed.md), and check --orchestrator";
    let addrs: Vec<_> = hostport
        .to_socket_addrs()
        .map_err(|e| anyhow!("the orchestrator address {orchestrator} is not usable ({e}); {fix}"))?
        .collect();
    let started = std::time::Instant::now();
    let mut last = None;
    while started.elapsed() < ORCHESTRATOR_WAIT {
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, ORCHESTRATOR_WAIT) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    bail!(
        "cannot reach the orchestrator at {orchestrator} within {} s: {}; {fix}",
        ORCHESTRATOR_WAIT.as_secs(),
        last.map_or("no address".to_string(), |e| e.to_string())
    )
}

/// Runs burn-collective's global orchestrator on `port` until the process is interrupted
/// (`seqpe orchestrator`): every node of a multi-node run connects to it.
pub fn run_orchestrator(port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the orchestrator's runtime")?;
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

#[cfg(test)]
mod reach_tests {
    use super::*;

    /// `--orchestrator ws://127.0.0.1:1` retried forever without a word; now it is an error
    /// naming the address and the fix once the wait is over.
    #[test]
    fn an_unreachable_orchestrator_is_an_error_not_a_hang() {
        let started = std::time::Instant::now();
        let err = reachable("ws://127.0.0.1:1").unwrap_err().to_string();
        assert!(
            err.contains("ws://127.0.0.1:1") && err.contains("seqpe orchestrator"),
            "{err}"
        );
        assert!(started.elapsed() < ORCHESTRATOR_WAIT + std::time::Duration::from_secs(5));
        let err = reachable("ws://127.0.0.1").unwrap_err().to_string();
        assert!(err.contains("not usable"), "{err}");
        // a listening port is reachable at once
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        reachable(&format!("ws://127.0.0.1:{port}")).unwrap();
    }
}
