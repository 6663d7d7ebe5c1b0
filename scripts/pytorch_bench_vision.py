#!/usr/bin/env python3
"""PyTorch CPU training-throughput benchmark of the ViT timed by the Rust `bench vision`.

The point is a like-for-like number to divide the Rust images/s by. Model (defaults = the `tiny`
vision preset): images [B, 1, 28, 28], batch 64, patch 4 -> a 7×7 grid of 49 patches; the patch
embedding is a Linear on each flattened c×p×p patch (channel-major, = Conv2d with stride p) to
d_model 64; a learned CLS token is prepended (50 tokens); 4 pre-LN timm blocks (LN eps 1e-6 ->
fused qkv Linear with bias -> 4 heads of full (non-causal) softmax attention, scale 1/sqrt(d_head)
-> proj; LN -> Linear(d, mlp_ratio·d) -> exact GELU -> Linear d), MLP ratio 2, dropout 0 on the
input and residual branches, attention-probability dropout 0; final LN and a Linear head on the
CLS row to 10 classes. Cross-entropy on random labels, AdamW (lr 1e-4 as the Rust bench passes,
wd 0.05), gradient clipping at 5, random normal images from a fixed seed. Init as timm / the Rust
model: normal 0.02 linears (zero bias), CLS token and position tables; the patch embedding keeps
PyTorch's Conv2d default (uniform ±1/sqrt(fan_in)).

Position encodings (`--pe`):

* ``ape``    a learned table [1, 50, d] (CLS + 49 patches) added after the CLS is prepended.
* ``seqpe``  the ViT recipe of SeqPE (``attn_mul``), nothing added at the input. The encoder writes
  each patch position (row, col) as 2 + 2 decimal digits (max 100 per axis), digit embedding (10
  rows) + slot embedding (4 rows) + a per-coordinate dim embedding (2 rows; slot t gets dim t//2),
  a CLS vector appended last (no slot/dim embedding), 2 pre-LN causal blocks of width 32 with 1
  head (LN eps 1e-5, fused qkv, GELU(tanh) MLP ratio 4, residual dropout 0.1), final LN, CLS (last)
  row -> Linear(32 -> d). That is the [49, d] table; the ViT's CLS token gets its own learned
  position vector [1, d] in front. Every block has its own Linear(d -> 2d) of the table giving
  p_q, p_k (split into heads); after the qkv projection q = q ⊙ p_q, k = k ⊙ p_k, then the usual
  attention. Each step also encodes the regularisers' positions in the same encoder pass (16
  pivots + 16×32 candidates, uniform in [0, 100)², half of the candidates near the pivot; 8×32
  distillation students = 32 of the 49 grid cells of a window shifted by a random offset; the
  teacher rows are the main-table rows at the same cells, detached) and adds 0.1·contrastive CE
  (raw dot products, label = the nearest candidate) + 0.1·symmetric distillation KL (row-wise
  log-softmax of the Gram matrices per chunk of seqpe_d_model/64 (>= 1) dims, reduction 'mean';
  shared/parity/README.md). The encoder is clipped separately from the ViT. Random-shift steps are
  not simulated (every step is the unshifted, distillation-on kind).
* ``rope2d`` axial RoPE on q and k (base 100, rotate-half layout, half the rotary pairs per axis:
  frequencies base^(-j/band), band = d_head/4; rows on the first band, columns on the second); the
  CLS token sits at (0, 0), i.e. the identity rotation. Nothing is added at the input.

images/s = batch·steps / seconds, timed only after the warm-up steps; the random image batch is
drawn before each step's timer starts (the Rust bench also builds its batch outside the timed
region), the regulariser sampling is inside it.

Examples::

    python3 scripts/pytorch_bench_vision.py --threads 2 --steps 30 --warmup 5 --pe ape
    python3 scripts/pytorch_bench_vision.py --threads 2 --steps 30 --warmup 5 --pe seqpe
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_common import (autocast, Block, SeqPeEncoder, add_run_args, add_seqpe_args, clipped_step,
                            finish_seqpe_args, init_normal, seqpe_pass, seqpe_fields, split_params,
                            timed_steps, timing_fields)


class Vit(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, p, c = a.d_model, a.patch, a.channels
        self.a = a
        self.side = a.image_size // p
        n = self.side * self.side
        self.patch_embed = nn.Linear(c * p * p, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList([Block(d, a.heads, a.mlp_ratio, a.dropout, a.attn_dropout)
                                     for _ in range(a.layers)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, a.classes)
        if a.pe == "ape":
            self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d))
        elif a.pe == "seqpe":
            self.pe_qk = nn.ModuleList([nn.Linear(d, 2 * d) for _ in range(a.layers)])   # per layer
            self.cls_pos = nn.Parameter(torch.zeros(1, d))
        init_normal(self)
        # PyTorch's Conv2d default for the patch embedding (uniform ±1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(c * p * p)
        nn.init.uniform_(self.patch_embed.weight, -bound, bound)
        nn.init.uniform_(self.patch_embed.bias, -bound, bound)
        nn.init.normal_(self.cls_token, std=0.02)
        if a.pe == "ape":
            nn.init.normal_(self.pos_embed, std=0.02)
        elif a.pe == "seqpe":
            nn.init.normal_(self.cls_pos, std=0.02)
            self.seqpe = SeqPeEncoder(a.seqpe_d_model, a.seqpe_heads, a.seqpe_layers, d, 2,
                                      a.seqpe_max_digits, a.seqpe_dropout)
        elif a.pe == "rope2d":
            dh = d // a.heads
            assert dh % 4 == 0, "axial RoPE needs d_head divisible by 4"
            band = dh // 4
            inv = a.rope_base ** (-torch.arange(band, dtype=torch.float64) / band)
            r, cc = torch.meshgrid(torch.arange(self.side), torch.arange(self.side), indexing="ij")
            ang = torch.cat([r.reshape(-1, 1) * inv, cc.reshape(-1, 1) * inv], dim=1)   # [n, dh/2]
            ang = torch.cat([torch.zeros(1, dh // 2, dtype=ang.dtype), ang])         # CLS (0, 0)
            self.register_buffer("rope_cos", ang.cos().float()[None, None], persistent=False)
            self.register_buffer("rope_sin", ang.sin().float()[None, None], persistent=False)

    def embed_patches(self, images):
        b, c, hh, ww = images.shape
        p = self.a.patch
        gh, gw = hh // p, ww // p
        x = images.view(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
        return self.patch_embed(x)

    def forward(self, images, pe_table=None):
        x = self.embed_patches(images)
        b, n, d = x.shape
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        t = n + 1
        pos = [None] * len(self.blocks)
        if self.a.pe == "ape":
            x = x + self.pos_embed
        elif self.a.pe == "seqpe":
            h, dh = self.a.heads, d // self.a.heads
            table = torch.cat([self.cls_pos, pe_table], dim=0)               # [t, d], CLS first
            pos = []
            for lin in self.pe_qk:
                pq, pk = lin(table).view(t, 2, h, dh).permute(1, 2, 0, 3).unsqueeze(1)  # [1,h,t,dh]
                pos.append(("mul", pq, pk))
        elif self.a.pe == "rope2d":
            pos = [("rope", self.rope_cos, self.rope_sin)] * len(self.blocks)
        x = self.drop(x)
        for blk, ps in zip(self.blocks, pos):
            x = blk(x, ps)
        return self.head(self.norm(x)[:, 0])


def sample_regulariser_positions(a, side, gen):
    """One contrastive batch (pivots [P, 2], candidates [P, C, 2], labels) and one distillation
    batch (teacher indices into the main grid [W, n], student positions [W, n, 2])."""
    P, C, R = a.ct_pivots, a.ct_candidates, a.seqpe_max_position
    pivots = torch.randint(0, R, (P, 2), generator=gen)
    near = pivots[:, None] + torch.randint(-side, side + 1, (P, C // 2, 2), generator=gen)
    far = torch.randint(0, R, (P, C - C // 2, 2), generator=gen)
    cands = torch.cat([near, far], dim=1).clamp_(0, R - 1)
    same = (cands == pivots[:, None]).all(dim=-1, keepdim=True)
    cands = torch.where(same, (cands + torch.tensor([0, 1])) % R, cands)   # never the pivot
    labels = ((cands - pivots[:, None]) ** 2).sum(-1).argmin(dim=1)       # first on ties
    W, n = a.kd_windows, min(a.kd_per_window, side * side)
    idx = torch.stack([torch.randperm(side * side, generator=gen)[:n] for _ in range(W)])   # [W, n]
    cell = torch.stack([idx // side, idx % side], dim=-1)                  # [W, n, 2]
    offset = torch.randint(0, R - side + 1, (W, 1, 2), generator=gen)
    return pivots, cands, labels, idx, cell + offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pe", choices=["ape", "seqpe", "rope2d"], default="ape")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU kit")
    add_run_args(ap)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--attn-dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--rope-base", type=float, default=100.0)
    add_seqpe_args(ap, d_model=32, heads=1, max_position=100, kd_windows=8)
    a = ap.parse_args()
    assert a.image_size % a.patch == 0, "image size must be a multiple of the patch"
    finish_seqpe_args(a)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    dev = torch.device(a.device)
    model = Vit(a).to(dev)
    model.train()
    side = model.side
    model_params, enc_params = split_params(model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    n_params = sum(p.numel() for p in model.parameters())
    n_enc = sum(p.numel() for p in enc_params)
    r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    main_pos = torch.stack([r.reshape(-1), c.reshape(-1)], dim=1).to(dev)  # [49, 2] row-major
    n_main = main_pos.shape[0]
    kd_n = min(a.kd_per_window, n_main)

    def batch():
        x = torch.randn(a.batch, a.channels, a.image_size, a.image_size, generator=gen)
        y = torch.randint(0, a.classes, (a.batch,), generator=gen)
        return x.to(dev), y.to(dev)

    def step(x, y):
        extra = {}
        with autocast(a, dev):
            if a.pe == "seqpe":
                sampled = (t.to(dev) for t in sample_regulariser_positions(a, side, gen))
                table, ct, kd = seqpe_pass(model.seqpe, main_pos, *sampled, a.kd_chunks)
                ce = F.cross_entropy(model(x, table), y)
                loss = ce + a.ct_weight * ct + a.kd_weight * kd
                extra = {"ct": ct.item(), "kd": kd.item()}
            else:
                ce = F.cross_entropy(model(x), y)
                loss = ce
        clipped_step(opt, loss, model_params, enc_params, a.clip)
        return ce.item(), extra

    times, (ce, extra) = timed_steps(step, batch, a.warmup, a.steps)
    result = {
        "bench": "pytorch_vision", "pe": a.pe, "device": a.device, "threads": a.threads, "precision": a.precision, "torch": torch.__version__,
        **timing_fields(times, a.batch, "images"),
        "steps": a.steps, "warmup": a.warmup, "batch": a.batch, "image_size": a.image_size,
        "patch": a.patch, "channels": a.channels, "classes": a.classes, "tokens": n_main + 1,
        "d_model": a.d_model, "layers": a.layers, "heads": a.heads, "mlp_ratio": a.mlp_ratio,
        "dropout": a.dropout, "attn_dropout": a.attn_dropout, "params": n_params,
        "last_ce_loss": round(ce, 4),
    }
    if a.pe == "rope2d":
        result["rope_base"] = a.rope_base
    if a.pe == "seqpe":
        result.update(seqpe_fields(a, n_enc, n_main + a.ct_pivots * (1 + a.ct_candidates)
                                   + a.kd_windows * kd_n, extra))
    print(f"pytorch {torch.__version__} {a.device} threads={a.threads} pe={a.pe}: "
          f"{result['images_per_s']:.1f} images/s ({result['ms_per_step']:.1f} ms/step mean, "
          f"{result['ms_per_step_median']:.1f} median over {a.steps} steps after {a.warmup} warm-up; "
          f"params {n_params / 1e6:.3f}M, encoder {n_enc / 1e6:.3f}M; last ce loss {ce:.3f})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
