//! One probe's outcomes: the compared method and the helpers that read an evaluation's points
//! (shared by the page and the twin section).

use seqpe_core::PeKind;
use seqpe_probes::config::Probe;
use seqpe_probes::run::{ProbeEval, ProbePoint};

use crate::report::{Compared, Outcome};

/// One method of a probe: an encoding and its coordinates (1 for the sequences; 2 or 1 for the
/// grids, where 1 is SeqPE over the flat patch index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeMethod {
    pub pe: PeKind,
    pub dims: usize,
    /// Whether the probe is a grid probe (where `dims` is a choice).
    pub grid: bool,
}

impl Compared for ProbeMethod {
    fn label(&self) -> String {
        if self.dims == 1 && self.grid {
            format!("{} (dims 1)", self.pe)
        } else {
            self.pe.to_string()
        }
    }

    fn encoding(&self) -> PeKind {
        self.pe
    }

    /// On the grids, SeqPE over (row, col); the flat index is an ablation.
    fn is_main_seqpe(&self) -> bool {
        self.pe == PeKind::SeqPe && (self.dims == 2 || !self.grid)
    }
}

/// One probe, method and seed of the page.
pub type ProbeResult = Outcome<ProbeMethod, ProbeEval>;

/// The evaluation points of a probe's page (the first outcome's).
pub(crate) fn points(results: &[ProbeResult]) -> Vec<ProbePoint> {
    results.first().map_or(vec![], |r| r.eval.points.clone())
}

pub(crate) fn at(e: &ProbeEval, key: usize) -> Option<&ProbePoint> {
    e.points.iter().find(|p| p.key == key)
}

pub(crate) fn column(p: &ProbePoint, probe: Probe) -> String {
    match (probe.grid(), p.trained) {
        (Some(_), true) => format!("{} (train)", p.label),
        (Some(_), false) => p.label.clone(),
        (None, true) => format!("n {} (train)", p.label),
        (None, false) => format!("n {}", p.label),
    }
}
