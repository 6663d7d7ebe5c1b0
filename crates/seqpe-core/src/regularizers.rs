//! The two SeqPE regularizers (losses only; their samplers live in [`crate::sampling`]).
//!
//! * [`contrastive_loss`]: the embedding similarity must rank candidates by true distance. The
//!   logits are raw dot products `<z_pivot, z_candidate>` (no normalisation, no temperature) and the
//!   label is the index of the nearest candidate; cross-entropy, mean over pivots.
//! * [`distill_loss`]: relations among far (student) positions must copy those among trained
//!   (teacher) positions. Per window and per chunk of the embedding, the row-wise log-softmax of the
//!   Gram matrix; symmetric KL with PyTorch's `reduction='mean'` (divide by the element count).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Contrastive loss. `pivots [P, D]`, `candidates [P, C, D]`, `labels [P]` → scalar `[1]`.
pub fn contrastive_loss<B: Backend>(
    pivots: Tensor<B, 2>,
    candidates: Tensor<B, 3>,
    labels: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let [p, c, _] = candidates.dims();
    // logits[p, c] = <z_c, z_p>
    let logits = candidates
        .matmul(pivots.unsqueeze_dim::<3>(2))
        .reshape([p, c]);
    let log_probs = log_softmax(logits, 1);
    let picked = log_probs.gather(1, labels.reshape([p, 1]));
    picked.mean().neg()
}

/// Share of pivots whose label (nearest) candidate has the largest logit `<z_p, z_c>`, computed
/// without gradient: `pivots [P, D]`, `candidates [P, C, D]`, `labels [P]` → `[1]` in `[0, 1]`.
pub fn ranking_accuracy<B: Backend>(
    pivots: &Tensor<B, 2>,
    candidates: &Tensor<B, 3>,
    labels: &Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let [p, c, _] = candidates.dims();
    let logits = candidates
        .clone()
        .detach()
        .matmul(pivots.clone().detach().unsqueeze_dim::<3>(2))
        .reshape([p, c]);
    logits
        .argmax(1)
        .reshape([p])
        .equal(labels.clone())
        .float()
        .mean()
}

/// `Σ exp(a)(a − b) / numel`: PyTorch `kl_div(input=b, target=a, log_target=True)`, mean reduction.
fn kl_mean<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 1> {
    (a.clone().exp() * (a - b)).mean()
}

/// Row-wise log-softmax of the per-chunk Gram matrices. `z [W, n, D]` → `[W, chunks, n, n]`.
fn relation_log_probs<B: Backend>(z: Tensor<B, 3>, chunks: usize) -> Tensor<B, 4> {
    let [w, n, d] = z.dims();
    assert!(
        d % chunks == 0,
        "embedding size {d} is not divisible into {chunks} chunks"
    );
    let z = z.reshape([w, n, chunks, d / chunks]).swap_dims(1, 2);
    let gram = z.clone().matmul(z.swap_dims(2, 3));
    log_softmax(gram, 3)
}

/// Distillation ("transfer") loss. `teacher` and `student` are `[W, n, D]` with row `i` of both
/// belonging to the same relative index; `chunks` = the reference's head count
/// (`pe_embed_dim / 64`); `beta` = `seqpe_transfer_beta` (1.0 in every script).
///
/// `β·[KL(T̄‖S) + KL(S‖T̄)] + (1−β)·[KL(T‖S̄) + KL(S̄‖T)]` where a bar means detached.
pub fn distill_loss<B: Backend>(
    teacher: Tensor<B, 3>,
    student: Tensor<B, 3>,
    chunks: usize,
    beta: f64,
) -> Tensor<B, 1> {
    let t = relation_log_probs(teacher, chunks);
    let s = relation_log_probs(student, chunks);
    let mut loss =
        (kl_mean(t.clone().detach(), s.clone()) + kl_mean(s.clone(), t.clone().detach())) * beta;
    if beta != 1.0 {
        let other = kl_mean(t.clone(), s.clone().detach()) + kl_mean(s.detach(), t);
        loss = loss + other * (1.0 - beta);
    }
    loss
}
