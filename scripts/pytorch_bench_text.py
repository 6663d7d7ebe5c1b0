#!/usr/bin/env python3
"""PyTorch CPU training-throughput benchmark of the GPT used by the Rust `bench` text preset.

The point is a like-for-like number to divide the Rust tokens/s by. Model (defaults = the `bench`
preset): vocab 8192, d_model 256, 4 layers, 4 heads, sequence 256, batch 8, pre-LN GPT-2 blocks
(LN -> fused qkv Linear with bias -> causal softmax attention -> proj; LN -> Linear 4d -> GELU(tanh)
-> Linear d), dropout 0.1 on the embedding and residual branches, attention-probability dropout
``--attn-dropout`` (default 0; the model's blocks only, the SeqPE encoder keeps 0 as in the Rust
encoder), final LN and a tied LM head. AdamW (wd 0), gradient clipping, random token batches from a
fixed seed.

Position encodings (`--pe`):

* ``ape``   learned absolute position embedding (seq rows) added to the token embedding.
* ``seqpe`` a SeqPE encoder instead of the APE: positions as 5 decimal digits (pe_max_position
  20000), digit + slot embeddings, CLS appended last, pre-LN causal encoder (resid dropout 0.1),
  final LN, CLS -> Linear(out = d_model). It enters as ``attn_scalar``: one shared Linear(d, 2d)
  maps the PE table to p_q, p_k (split into heads) and every layer adds p_q·p_k to the attention
  logits before the 1/sqrt(d_head) scaling (done by concatenating p_q to q and p_k to k along the head
  dimension and calling SDPA with scale = 1/sqrt(d_head)). Each step also encodes the two
  regularisers' positions in the same encoder pass (16 pivots + 16×32 candidates, 16×32 distillation
  students; the teacher rows are the main-window rows) and adds 0.1·contrastive CE + 0.1·symmetric
  distillation KL (shared/parity/README.md). The encoder is clipped separately from the model.
  Random-shift steps are not simulated (every step is the unshifted, distillation-on kind).

tokens/s = batch·seq·steps / seconds, timed only after the warm-up steps.

Examples::

    python3 scripts/pytorch_bench_text.py --threads 2 --steps 30 --warmup 5 --pe ape
    python3 scripts/pytorch_bench_text.py --threads 2 --steps 30 --warmup 5 --pe seqpe
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_common import (autocast, Block, SeqPeEncoder, add_run_args, add_seqpe_args, clipped_step,
                            finish_seqpe_args, init_normal, seqpe_pass, seqpe_fields, split_params,
                            timed_steps, timing_fields)


def gpt_block(d, heads, dropout, attn_dropout=0.0):
    """Pre-LN GPT-2 block: LN eps 1e-5, MLP ratio 4, GELU(tanh), causal."""
    return Block(d, heads, 4, dropout, attn_dropout, eps=1e-5, causal=True, gelu="tanh")


class Gpt(nn.Module):
    def __init__(self, a):
        super().__init__()
        d = a.d_model
        self.a = a
        self.wte = nn.Embedding(a.vocab, d)
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList([gpt_block(d, a.heads, a.dropout, a.attn_dropout)
                                     for _ in range(a.layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        if a.pe == "ape":
            self.wpe = nn.Embedding(a.seq, d)
        else:
            self.pe_qk = nn.Linear(d, 2 * d)   # shared attn_scalar projection
        init_normal(self)
        if a.pe == "seqpe":
            self.seqpe = SeqPeEncoder(a.seqpe_d_model, a.seqpe_heads, a.seqpe_layers, d, 1,
                                      a.seqpe_max_digits, a.seqpe_dropout)

    def forward(self, idx, pe_table=None):
        b, t = idx.shape
        x = self.wte(idx)
        pos = None
        if self.a.pe == "ape":
            x = x + self.wpe.weight[:t][None]
        else:
            h, dh = self.a.heads, self.a.d_model // self.a.heads
            p = self.pe_qk(pe_table[:t])                                  # [t, 2d]
            pq, pk = p.view(t, 2, h, dh).permute(1, 2, 0, 3).unsqueeze(1)  # [1, h, t, dh] each
            pos = ("scalar", pq, pk)
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x, pos)
        return self.ln_f(x) @ self.wte.weight.t()                          # tied LM head


def sample_regulariser_positions(a, gen):
    """One contrastive batch (pivots, candidates, labels) and one distillation batch
    (teacher indices into the main window, student positions)."""
    P, C, R = a.ct_pivots, a.ct_candidates, a.seqpe_max_position
    pivots = torch.randint(0, R, (P,), generator=gen)
    near = pivots[:, None] + torch.randint(-a.ct_window, a.ct_window + 1, (P, C // 2), generator=gen)
    far = torch.randint(0, R, (P, C - C // 2), generator=gen)
    cands = torch.cat([near, far], dim=1).clamp_(0, R - 1)
    same = cands == pivots[:, None]
    cands = torch.where(same, (cands + 1) % R, cands)                 # never the pivot
    labels = ((cands - pivots[:, None]) ** 2).argmin(dim=1)           # first on ties
    W, n = a.kd_windows, a.kd_per_window
    idx = torch.stack([torch.randperm(a.seq, generator=gen)[:n] for _ in range(W)])   # [W, n]
    offset = torch.randint(1, R - a.seq + 1, (W, 1), generator=gen)
    student = idx + offset
    return pivots, cands, labels, idx, student


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pe", choices=["ape", "seqpe"], default="ape")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU kit")
    add_run_args(ap)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--attn-dropout", type=float, default=0.0,
                    help="attention-probability dropout of every model block (SDPA dropout_p)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--clip", type=float, default=1.0)
    add_seqpe_args(ap, d_model=256, heads=4, max_position=20000, kd_windows=16)
    ap.add_argument("--ct-window", type=int, default=256, help="half-width of the near-candidate window")
    a = ap.parse_args()
    finish_seqpe_args(a)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    dev = torch.device(a.device)
    model = Gpt(a).to(dev)
    model.train()
    model_params, enc_params = split_params(model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    n_params = sum(p.numel() for p in model.parameters())
    n_enc = sum(p.numel() for p in enc_params)
    main_pos = torch.arange(a.seq, device=dev)

    def batch():
        return (torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen).to(dev),)

    def step(tokens):
        x, y = tokens[:, :-1], tokens[:, 1:]
        extra = {}
        with autocast(a, dev):
            if a.pe == "seqpe":
                sampled = (t.to(dev) for t in sample_regulariser_positions(a, gen))
                table, ct, kd = seqpe_pass(model.seqpe, main_pos, *sampled, a.kd_chunks)
                logits = model(x, table)
                lm = F.cross_entropy(logits.reshape(-1, a.vocab), y.reshape(-1))
                loss = lm + a.ct_weight * ct + a.kd_weight * kd
                extra = {"ct": ct.item(), "kd": kd.item()}
            else:
                logits = model(x)
                lm = F.cross_entropy(logits.reshape(-1, a.vocab), y.reshape(-1))
                loss = lm
        clipped_step(opt, loss, model_params, enc_params, a.clip)
        return lm.item(), extra

    times, (lm, extra) = timed_steps(step, batch, a.warmup, a.steps)
    result = {
        "bench": "pytorch_text", "pe": a.pe, "device": a.device, "threads": a.threads, "precision": a.precision,
        "torch": torch.__version__, **timing_fields(times, a.batch * a.seq, "tokens"),
        "steps": a.steps, "warmup": a.warmup, "batch": a.batch, "seq": a.seq, "vocab": a.vocab,
        "d_model": a.d_model, "layers": a.layers, "heads": a.heads, "params": n_params,
        "dropout": a.dropout, "attn_dropout": a.attn_dropout, "last_lm_loss": round(lm, 4),
    }
    if a.pe == "seqpe":
        result.update(seqpe_fields(a, n_enc, a.seq + a.ct_pivots * (1 + a.ct_candidates)
                                   + a.kd_windows * a.kd_per_window, extra))
    print(f"pytorch {torch.__version__} {a.device} threads={a.threads} pe={a.pe}: "
          f"{result['tokens_per_s']:.1f} tokens/s ({result['ms_per_step']:.1f} ms/step mean, "
          f"{result['ms_per_step_median']:.1f} median over {a.steps} steps after {a.warmup} warm-up; "
          f"params {n_params / 1e6:.2f}M, encoder {n_enc / 1e6:.2f}M; last lm loss {lm:.3f})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
