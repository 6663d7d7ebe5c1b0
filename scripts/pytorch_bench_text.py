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
import math
import platform
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """Pre-LN GPT-2 block; optional extra q/k features concatenated per head (attn_scalar PE)."""

    def __init__(self, d, heads, dropout, attn_dropout=0.0):
        super().__init__()
        assert d % heads == 0
        self.d, self.h, self.dh = d, heads, d // heads
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, 4 * d)
        self.fc_out = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = attn_dropout

    def forward(self, x, pq=None, pk=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        if pq is not None:
            # [q | p_q]·[k | p_k] = q·k + p_q·p_k, scaled by 1/sqrt(d_head) afterwards.
            q = torch.cat([q, pq.expand(b, -1, -1, -1)], dim=-1)
            k = torch.cat([k, pk.expand(b, -1, -1, -1)], dim=-1)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=1.0 / math.sqrt(self.dh),
            dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, self.d)))
        x = x + self.drop(self.fc_out(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))
        return x


def init_gpt2(module):
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SeqPeEncoder(nn.Module):
    def __init__(self, d, heads, layers, out_dim, max_digits, dropout):
        super().__init__()
        self.max_digits = max_digits
        self.tok = nn.Embedding(10, d)
        self.slot = nn.Embedding(max_digits, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList([Block(d, heads, dropout) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.out = nn.Linear(d, out_dim)
        init_gpt2(self)
        nn.init.normal_(self.cls, std=0.02)
        pw = torch.tensor([10 ** (max_digits - 1 - j) for j in range(max_digits)], dtype=torch.long)
        self.register_buffer("powers", pw, persistent=False)

    def digits(self, positions):
        # [M] -> [M, K]: most significant first, left-padded with 0.
        return (positions[:, None] // self.powers) % 10

    def forward(self, positions):
        dig = self.digits(positions)
        h = self.tok(dig) + self.slot.weight[None]
        h = torch.cat([h, self.cls.expand(h.shape[0], -1, -1)], dim=1)   # CLS last
        for blk in self.blocks:
            h = blk(h)                                                   # causal over digits + CLS
        return self.out(self.ln_f(h[:, -1]))


class Gpt(nn.Module):
    def __init__(self, a):
        super().__init__()
        d = a.d_model
        self.a = a
        self.wte = nn.Embedding(a.vocab, d)
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList([Block(d, a.heads, a.dropout, a.attn_dropout)
                                     for _ in range(a.layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        if a.pe == "ape":
            self.wpe = nn.Embedding(a.seq, d)
        else:
            self.pe_qk = nn.Linear(d, 2 * d)   # shared attn_scalar projection
        init_gpt2(self)
        if a.pe == "seqpe":
            self.seqpe = SeqPeEncoder(a.seqpe_d_model, a.seqpe_heads, a.seqpe_layers, d,
                                      a.seqpe_max_digits, a.seqpe_dropout)

    def forward(self, idx, pe_table=None):
        b, t = idx.shape
        x = self.wte(idx)
        pq = pk = None
        if self.a.pe == "ape":
            x = x + self.wpe.weight[:t][None]
        else:
            h, dh = self.a.heads, self.a.d_model // self.a.heads
            p = self.pe_qk(pe_table[:t])                                  # [t, 2d]
            pq, pk = p.view(t, 2, h, dh).permute(1, 2, 0, 3).unsqueeze(1)  # [1, h, t, dh] each
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x, pq, pk)
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


def kd_loss(zt, zs, chunks):
    w, n, dim = zt.shape
    zt = zt.view(w, n, chunks, dim // chunks).transpose(1, 2)
    zs = zs.view(w, n, chunks, dim // chunks).transpose(1, 2)
    t = F.log_softmax(zt @ zt.transpose(-1, -2), dim=-1).detach()
    s = F.log_softmax(zs @ zs.transpose(-1, -2), dim=-1)
    # kl_div(input=s, target=t, log_target=True, reduction='mean') + the reverse direction:
    # divided by the element count (not batchmean), written out to avoid the deprecation path.
    return ((t.exp() * (t - s)).sum() + (s.exp() * (s - t)).sum()) / t.numel()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pe", choices=["ape", "seqpe"], default="ape")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU kit")
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=0)
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
    ap.add_argument("--seqpe-d-model", type=int, default=256)
    ap.add_argument("--seqpe-heads", type=int, default=4)
    ap.add_argument("--seqpe-layers", type=int, default=2)
    ap.add_argument("--seqpe-dropout", type=float, default=0.1)
    ap.add_argument("--seqpe-max-position", type=int, default=20000)
    ap.add_argument("--ct-pivots", type=int, default=16)
    ap.add_argument("--ct-candidates", type=int, default=32)
    ap.add_argument("--ct-window", type=int, default=256, help="half-width of the near-candidate window")
    ap.add_argument("--kd-windows", type=int, default=16)
    ap.add_argument("--kd-per-window", type=int, default=32)
    ap.add_argument("--kd-chunks", type=int, default=0,
                    help="distillation chunks (0 = seqpe_d_model/64, the reference rule)")
    ap.add_argument("--ct-weight", type=float, default=0.1)
    ap.add_argument("--kd-weight", type=float, default=0.1)
    a = ap.parse_args()
    a.seqpe_max_digits = len(str(a.seqpe_max_position - 1))
    if a.kd_chunks <= 0:
        a.kd_chunks = max(1, a.seqpe_d_model // 64)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    dev = torch.device(a.device)
    model = Gpt(a).to(dev)
    model.train()
    enc_params = list(model.seqpe.parameters()) if a.pe == "seqpe" else []
    enc_ids = {id(p) for p in enc_params}
    model_params = [p for p in model.parameters() if id(p) not in enc_ids]
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    n_params = sum(p.numel() for p in model.parameters())
    n_enc = sum(p.numel() for p in enc_params)
    main_pos = torch.arange(a.seq, device=dev)

    def step():
        tokens = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen).to(dev)
        x, y = tokens[:, :-1], tokens[:, 1:]
        extra = {}
        if a.pe == "seqpe":
            piv, cand, labels, idx, student = (
                t.to(dev) for t in sample_regulariser_positions(a, gen))
            P, C = cand.shape
            allpos = torch.cat([main_pos, piv, cand.reshape(-1), student.reshape(-1)])
            z = model.seqpe(allpos)                                      # one merged encoder pass
            o = a.seq
            table = z[:o]
            zp, zc = z[o:o + P], z[o + P:o + P + P * C].view(P, C, -1)
            zs = z[o + P + P * C:].view(a.kd_windows, a.kd_per_window, -1)
            zt = table[idx]                                              # teacher = main-window rows
            ct = F.cross_entropy(torch.einsum("pd,pcd->pc", zp, zc), labels)
            kd = kd_loss(zt, zs, a.kd_chunks)
            logits = model(x, table)
            lm = F.cross_entropy(logits.reshape(-1, a.vocab), y.reshape(-1))
            loss = lm + a.ct_weight * ct + a.kd_weight * kd
            extra = {"ct": ct.item(), "kd": kd.item()}
        else:
            logits = model(x)
            lm = F.cross_entropy(logits.reshape(-1, a.vocab), y.reshape(-1))
            loss = lm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model_params, a.clip)
        if enc_params:
            torch.nn.utils.clip_grad_norm_(enc_params, a.clip)
        opt.step()
        return lm.item(), extra

    for _ in range(a.warmup):
        step()
    times = []
    t0 = time.perf_counter()
    for _ in range(a.steps):
        ts = time.perf_counter()
        lm, extra = step()
        times.append(time.perf_counter() - ts)
    sec = time.perf_counter() - t0
    tok_s = a.batch * a.seq * a.steps / sec
    med = sorted(times)[len(times) // 2]
    print(f"pytorch {torch.__version__} {a.device} threads={a.threads} pe={a.pe}: {tok_s:.1f} tokens/s "
          f"({sec / a.steps * 1000:.1f} ms/step mean, {med * 1000:.1f} median, {min(times) * 1000:.1f} min, "
          f"{max(times) * 1000:.1f} max over {a.steps} steps after {a.warmup} warm-up; "
          f"params {n_params / 1e6:.2f}M, encoder {n_enc / 1e6:.2f}M; last lm loss {lm:.3f})")
    result = {
        "bench": "pytorch_text", "pe": a.pe, "device": a.device, "threads": a.threads,
        "torch": torch.__version__,
        "tokens_per_s": round(tok_s, 2), "ms_per_step": round(sec / a.steps * 1000, 2),
        "tokens_per_s_median_step": round(a.batch * a.seq / med, 2),
        "ms_per_step_median": round(med * 1000, 2), "ms_per_step_min": round(min(times) * 1000, 2),
        "ms_per_step_max": round(max(times) * 1000, 2),
        "steps": a.steps, "warmup": a.warmup, "batch": a.batch, "seq": a.seq, "vocab": a.vocab,
        "d_model": a.d_model, "layers": a.layers, "heads": a.heads, "params": n_params,
        "dropout": a.dropout, "attn_dropout": a.attn_dropout,
        "last_lm_loss": round(lm, 4), "cpu": platform.processor() or platform.machine(),
    }
    if a.pe == "seqpe":
        result.update({
            "seqpe_d_model": a.seqpe_d_model, "seqpe_heads": a.seqpe_heads, "seqpe_layers": a.seqpe_layers,
            "seqpe_max_digits": a.seqpe_max_digits, "encoder_params": n_enc,
            "encoder_positions_per_step": a.seq + a.ct_pivots * (1 + a.ct_candidates)
            + a.kd_windows * a.kd_per_window,
            "kd_chunks": a.kd_chunks, "last_ct": round(extra["ct"], 4), "last_kd": round(extra["kd"], 6),
        })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
