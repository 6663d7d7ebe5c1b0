#!/usr/bin/env python3
"""Position probes in PyTorch: the twin of the Rust GPT / ViT, on small synthetic tasks that
cannot be solved without position information, trained at small sizes and tested on much longer
sequences / larger grids (length generalisation). python3 + torch + numpy only; ONE CPU thread.

Defaults (chosen by measurement, see PROBES-FINDINGS.md):
  1-D: alphabet 4, train lengths 1..16, GPT d 64, 4 heads, 3 layers, MLP x4, batch 64,
       2000 steps, AdamW lr 3e-3, warm-up 100, cosine to 0, wd 0.01, clip 1.0; test bins
       (0,16], (16,32], (32,64], (64,128], 200 examples each.
  2-D: 8x8 grid, 3 channels, noise 0.25, mark amplitude 2, ViT d 64, 4 heads, 2 layers, MLP x2,
       batch 64, 1500 steps, AdamW lr 2e-3, warm-up 100, cosine to 0, wd 0.01, clip 1.0,
       --aux coords with weight 10; test grids 8, 12, 16, 24, 32, 400 images each.

Usage:

    python3 scripts/probe_twin.py --task copy     --pe ape      # 1-D, causal GPT
    python3 scripts/probe_twin.py --task reverse  --pe rope
    python3 scripts/probe_twin.py --task relative --pe ape      # 2-D, ViT
    python3 scripts/probe_twin.py --task quadrant --pe rope2d
    ... --data FILE        read train/test examples from a JSON-lines file instead of generating
    ... --dump-data FILE   write the generated train (--train-size) and test examples, then exit

It prints progress lines and, at the end, ONE JSON line (starting with '{') holding the per-bin /
per-grid results and the training time.

=====================================================================================
Generators (numpy PCG64; train rng = default_rng([seed, 0]), test rng = default_rng([seed, 1]);
model init: torch.manual_seed(seed)). A Rust port need not reproduce the numbers, only the
distributions below.
-------------------------------------------------------------------------------------
1-D tasks `copy` / `reverse` (Ruoss et al. 2023 duplicate_string / reverse_string, one copy):
  * alphabet A = --alphabet symbols 0..A-1; SEP = A, END = A+1, PAD = A+2; vocab = A+3.
  * one example: n ~ Uniform{1..L} (L = --train-len), s_1..s_n iid Uniform{0..A-1};
    answer = s (copy) or reversed(s) (reverse).
  * sequence = s ++ [SEP] ++ answer ++ [END]   (2n+2 tokens; tokens at positions 0..2n+1).
    Model input = sequence[:-1] (2n+1 tokens), target = sequence[1:]. The loss is the
    cross-entropy on the targets at input positions n..2n (the n answer tokens and END), mean
    over all such tokens of the batch. Batches are right-padded with PAD (ignored; the mask is
    causal so padding never influences scored positions).
  * every training step draws a fresh batch (--batch examples, independent lengths).
  * test: bins (0,L], (L,2L], (2L,4L], (4L,8L] (--bins multiples of L); per bin --eval-n examples
    with n ~ Uniform{lo+1..hi}, symbols as above. Evaluation is GREEDY: the prompt is
    s ++ [SEP]; the model generates exactly n tokens (argmax over the A symbol logits only --
    SEP/END/PAD are never emitted -- each appended to the input; no KV cache, full recompute).
    Metrics: token accuracy = mean over all answer tokens of (generated == answer);
    exact = fraction of examples whose n generated tokens all match.
2-D tasks `relative` / `quadrant` (ViT, patch 1: each pixel = one token of C channels):
  * image = G x G pixels, C = --channels; every channel of every pixel ~ N(0, noise^2)
    (noise = --noise), iid. A mark k (k = 0 for A, 1 for B) ADDS amp (= --amp) to channel k of
    its pixel (so a mark pixel = noise + amp*e_k).
  * relative (4 classes): orientation ~ Uniform{row, col}; line index ~ Uniform{0..G-1};
    an ordered pair (a, b) of DISTINCT coordinates along that line ~ Uniform (a first drawn
    Uniform{0..G-1}, then b Uniform over the other G-1); A at coordinate a, B at b.
    Same row r: A = (r, a), B = (r, b); label 0 "A left of B" if a < b else 1 "A right of B".
    Same column c: A = (a, c), B = (b, c); label 2 "A above B" if a < b else 3 "A below B".
  * quadrant (4 classes; G even): one mark A at (r, c) ~ Uniform over the G x G pixels;
    label = 2*[r >= G/2] + [c >= G/2]  (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
  * train: fresh batches of size --batch at G = --grid every step; test: --eval-n images at
    each G in --eval-grids (the train rng is never used for test images).
  * auxiliary dense loss (--aux coords, the 2-D default; needed: without it the CLS head stays
    at chance, see PROBES-FINDINGS.md): a per-token Linear(d, 5) head on the final-LN patch
    tokens (CLS excluded); its first two outputs regress each token's OWN normalised
    coordinates ((r+0.5)/G - 0.5, (c+0.5)/G - 0.5); loss = CE(CLS logits, label)
    + --aux-weight (10) * mean-squared error over tokens and both coordinates. The targets
    depend only on the grid, never on the image. Evaluation uses the CLS head only.
-------------------------------------------------------------------------------------
--data FILE (JSON lines) replaces the generators (and --dump-data writes the same format):
  1-D: {"split": "train"|"test", "input": [symbols], "answer": [symbols]}   (no SEP/END)
  2-D: {"split": ..., "grid": G, "channels": C, "pixels": [G*G*C floats, row-major, channel
        last], "label": k}
  Training then takes batches from shuffled epochs of the train lines (every line once per
  epoch, as the Rust loop's sampler does; train rng);
  test lines are grouped into the length bins (1-D, by len(input)) / by grid (2-D).
=====================================================================================
Models (mirroring crates/seqpe-text/src/model.rs, seqpe-vision/src/model.rs, seqpe-core):
  GPT: token embedding N(0, 0.02) (+ APE table N(0, 0.02) or sinusoidal added to the input),
       dropout, pre-LN blocks [x += proj(attn(LN1 x)); x += fc_out(gelu_tanh(fc(LN2 x)))],
       fused qkv with bias, MLP ratio 4, LN eps 1e-5, Linear init N(0, 0.02), biases 0, residual
       projections N(0, 0.02/sqrt(2 n_layers)); final LN; head tied to the token embedding;
       causal mask. RoPE: rotate-half, base 10000, token index 0..; ALiBi: Press et al. slopes,
       logits/sqrt(dh) - slope_h*(i-j).
       APE beyond the trained length: --ape-long table (default; the table has rows for the
       longest test sequence, rows never reached in training stay at their init, as GPT-2 /
       Ruoss et al.) or interp (table of 2L+1 rows, linearly resized with the end rows kept
       (align_corners=True) to the full prompt+answer length, as learned.rs).
  ViT: patch 1: Linear(C -> d), weight and bias U(-1/sqrt(C), 1/sqrt(C)) (Conv2d default); CLS
       token N(0, 0.02); APE table [1 + G*G, d] N(0, 0.02) (CLS row + grid rows, added to the
       input), resized for other grids by bicubic interpolation (align_corners=False) of the
       G x G part, CLS row kept; pre-LN blocks with exact GELU, MLP ratio --mlp-ratio, LN eps 1e-6;
       final LN; Linear head N(0, 0.02) on the CLS output (+ the --aux per-token head,
       Linear(d, 5) N(0, 0.02), on the patch-token outputs). rope2d: axial, head_dim/2 split in a
       row band then a column band, frequencies base^(-j/band), base 100, CLS unrotated.
  Optimiser: AdamW (0.9, 0.999, eps 1e-8), weight decay on >= 2-D weights except embeddings /
  position tables / CLS; linear warm-up from 0 over --warmup steps then --decay (cosine or
  linear) to --final-lr; global grad-norm clip --clip.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

TEXT_TASKS = ("copy", "reverse")
VISION_TASKS = ("relative", "quadrant")


# ----------------------------------------------------------------------------- positions

def rotate(x, cos, sin):
    """Rotate-half RoPE: [x1 | x2] -> [x1 cos - x2 sin | x2 cos + x1 sin]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def rope_1d(n, head_dim, base):
    inv = base ** (-2.0 * torch.arange(head_dim // 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().float(), ang.sin().float()               # [n, dh/2]


def rope_2d(g, head_dim, base, prefix=1):
    half = head_dim // 2
    assert half % 2 == 0, "axial RoPE needs head_dim/2 divisible by 2"
    band = half // 2
    inv = base ** (-torch.arange(band, dtype=torch.float64) / band)
    r, c = torch.meshgrid(torch.arange(g, dtype=torch.float64),
                          torch.arange(g, dtype=torch.float64), indexing="ij")
    ang = torch.cat([r.reshape(-1, 1) * inv, c.reshape(-1, 1) * inv], dim=1)   # [g*g, half]
    ang = torch.cat([torch.zeros(prefix, half, dtype=torch.float64), ang], dim=0)
    return ang.cos().float(), ang.sin().float()


def alibi_slopes(n):
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return pow2(n)
    closest = 2 ** math.floor(math.log2(n))
    return pow2(closest) + pow2(2 * closest)[0::2][: n - closest]


def sinusoidal_table(n, d):
    p = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(d // 2, dtype=torch.float64)[None, :]
    ang = p / 10000.0 ** (2.0 * i / d)
    t = torch.zeros(n, d, dtype=torch.float64)
    t[:, 0::2], t[:, 1::2] = ang.sin(), ang.cos()
    return t.float()


def linear_resize(rows, m):
    """n rows -> m rows, end rows kept (x_j = j (n-1)/(m-1)), as learned.rs::linear_resize."""
    n = rows.shape[0]
    if m == 1:
        return rows[:1]
    x = torch.arange(m, dtype=torch.float64) * (n - 1) / (m - 1)
    lo = x.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    w = (x - lo.double()).float()[:, None]
    return rows[lo] * (1 - w) + rows[hi] * w


# ----------------------------------------------------------------------------- model parts

class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio, eps, exact_gelu, dropout):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.fc_out = nn.Linear(d, mlp_ratio * d), nn.Linear(mlp_ratio * d, d)
        self.exact_gelu = exact_gelu
        self.drop = nn.Dropout(dropout)

    def forward(self, x, causal, rope=None, bias=None):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        if bias is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        hmid = self.fc(self.ln2(x))
        hmid = F.gelu(hmid) if self.exact_gelu else F.gelu(hmid, approximate="tanh")
        return x + self.drop(self.fc_out(hmid))


class Gpt(nn.Module):
    def __init__(self, a, vocab, table_rows):
        super().__init__()
        d, self.pe, self.a = a.d_model, a.pe, a
        self.tok = nn.Embedding(vocab, d)
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList(Block(d, a.n_heads, a.mlp_ratio, 1e-5, False, a.dropout)
                                    for _ in range(a.n_layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for blk in self.blocks:
            nn.init.normal_(blk.proj.weight, std=0.02 / math.sqrt(2 * a.n_layers))
            nn.init.normal_(blk.fc_out.weight, std=0.02 / math.sqrt(2 * a.n_layers))
        nn.init.normal_(self.tok.weight, std=0.02)
        if self.pe == "ape":
            self.wpe = nn.Parameter(torch.randn(table_rows, d) * 0.02)
        self.dh = d // a.n_heads

    def forward(self, idx, full_len=None):
        """idx [b, n] -> logits [b, n, vocab]. full_len: the length the APE table is resized to
        (--ape-long interp), default n."""
        b, n = idx.shape
        x = self.tok(idx)
        rope = bias = None
        if self.pe == "ape":
            rows = self.wpe.shape[0]
            m = max(n, full_len or n)
            if m > rows and self.a.ape_long == "table":
                raise ValueError(f"sequence of {m} tokens exceeds the APE table ({rows} rows)")
            table = self.wpe if m <= rows else linear_resize(self.wpe, m)
            x = x + table[:n]
        elif self.pe == "sin":
            x = x + sinusoidal_table(n, x.shape[-1])
        elif self.pe == "rope":
            rope = rope_1d(n, self.dh, self.a.rope_base)
        elif self.pe == "alibi":
            slopes = torch.tensor(alibi_slopes(self.a.n_heads))[:, None, None]
            i = torch.arange(n)
            dist = (i[:, None] - i[None, :]).float()
            bias = -slopes * dist
            bias = bias.masked_fill(dist < 0, float("-inf"))[None]          # [1, h, n, n]
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x, True, rope, bias)
        return self.ln_f(x) @ self.tok.weight.t()


class Vit(nn.Module):
    def __init__(self, a, classes):
        super().__init__()
        d, self.pe, self.a, self.g = a.d_model, a.pe, a, a.grid
        c = a.channels
        self.patch = nn.Linear(c, d)
        bound = 1.0 / math.sqrt(c)
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.drop = nn.Dropout(a.dropout)
        self.blocks = nn.ModuleList(Block(d, a.n_heads, a.mlp_ratio, 1e-6, True, a.dropout)
                                    for _ in range(a.n_layers))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)
        self.dense = nn.Linear(d, 5) if a.aux != "none" else None
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.uniform_(self.patch.weight, -bound, bound)
        nn.init.uniform_(self.patch.bias, -bound, bound)
        if self.pe == "ape":
            self.pos = nn.Parameter(torch.randn(1 + self.g * self.g, d) * 0.02)
        self.dh = d // a.n_heads

    def pos_table(self, g):
        if g == self.g:
            return self.pos
        d = self.pos.shape[1]
        grid = self.pos[1:].reshape(1, self.g, self.g, d).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(g, g), mode="bicubic", align_corners=False)
        return torch.cat([self.pos[:1], grid.permute(0, 2, 3, 1).reshape(g * g, d)], 0)

    def forward(self, img, return_tokens=False):
        """img [b, g, g, C] -> CLS logits [b, classes] (and per-token logits [b, g*g, classes])."""
        b, g, _, c = img.shape
        x = self.patch(img.reshape(b, g * g, c))
        x = torch.cat([self.cls.expand(b, 1, -1), x], 1)
        rope = None
        if self.pe == "ape":
            x = x + self.pos_table(g)
        elif self.pe == "rope2d":
            rope = rope_2d(g, self.dh, self.a.rope_base)
        elif self.pe != "nope":
            raise ValueError(f"--pe {self.pe} is not available for the ViT")
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x, False, rope)
        x = self.norm(x)
        out = self.head(x[:, 0])
        if return_tokens:
            return out, (self.dense(x[:, 1:]) if self.dense is not None else None)
        return out


# ----------------------------------------------------------------------------- data

def text_example(rng, task, n, alphabet):
    s = rng.integers(0, alphabet, size=n).tolist()
    return s, (s if task == "copy" else s[::-1])


def text_batch(pairs, alphabet):
    """(input, answer) pairs -> input ids [b, T], targets [b, T] (-100 = not scored)."""
    sep, end, pad = alphabet, alphabet + 1, alphabet + 2
    seqs = [s + [sep] + ans + [end] for s, ans in pairs]
    t = max(len(q) for q in seqs) - 1
    x = torch.full((len(seqs), t), pad, dtype=torch.long)
    y = torch.full((len(seqs), t), -100, dtype=torch.long)
    for i, ((s, _), q) in enumerate(zip(pairs, seqs)):
        n = len(s)
        x[i, : len(q) - 1] = torch.tensor(q[:-1])
        y[i, n: 2 * n + 1] = torch.tensor(q[n + 1:])
    return x, y


def vision_example(rng, task, g, a):
    img = rng.standard_normal((g, g, a.channels)) * a.noise
    if task == "relative":
        row = rng.integers(0, 2) == 0
        line = int(rng.integers(0, g))
        p = int(rng.integers(0, g))
        q = int(rng.integers(0, g - 1))
        q = q + 1 if q >= p else q
        if row:
            pa, pb, label = (line, p), (line, q), (0 if p < q else 1)
        else:
            pa, pb, label = (p, line), (q, line), (2 if p < q else 3)
        img[pa[0], pa[1], 0] += a.amp
        img[pb[0], pb[1], 1] += a.amp
        return img, label, (pa, pb)
    assert g % 2 == 0, "quadrant needs an even grid"
    r, c = int(rng.integers(0, g)), int(rng.integers(0, g))
    img[r, c, 0] += a.amp
    return img, 2 * int(r >= g // 2) + int(c >= g // 2), ((r, c),)


def dense_targets(aux, g, marks, label):
    """Per-token targets [g*g] (5 classes) of the optional dense head (--aux):
    own-quadrant: each token's OWN quadrant 2*[r >= g/2] + [c >= g/2] (needs no marks);
    relation: each token's relation to the LAST mark (B for relative, A for quadrant):
      1 same row & left of it, 2 same row & right, 3 same column & above, 4 same column & below,
      0 otherwise (the mark itself included);
    label: every token predicts the image label;
    coords: each token regresses its OWN normalised coordinates ((r+0.5)/g - 0.5, (c+0.5)/g - 0.5)
      (float [g*g, 2], mean-squared error on the first two outputs of the dense head)."""
    r, c = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    if aux == "coords":
        t = np.stack([(r + 0.5) / g - 0.5, (c + 0.5) / g - 0.5], -1).reshape(-1, 2)
        return torch.from_numpy(t.astype(np.float32))
    if aux == "own-quadrant":
        t = 2 * (r >= g // 2) + (c >= g // 2)
    elif aux == "relation":
        br, bc = marks[-1]
        t = np.zeros((g, g), dtype=np.int64)
        t[(r == br) & (c < bc)] = 1
        t[(r == br) & (c > bc)] = 2
        t[(c == bc) & (r < br)] = 3
        t[(c == bc) & (r > br)] = 4
    else:
        t = np.full((g, g), label)
    return torch.from_numpy(t.reshape(-1).astype(np.int64))


# ----------------------------------------------------------------------------- training

def make_optimizer(model, a):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        emb = name.startswith(("tok.", "wpe", "pos", "cls"))
        (decay if p.dim() >= 2 and not emb else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=a.lr, betas=(0.9, 0.999), eps=1e-8)


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * step / a.warmup
    t = min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup))
    if a.decay == "cosine":
        return a.final_lr + 0.5 * (a.lr - a.final_lr) * (1 + math.cos(math.pi * t))
    if a.decay == "linear":
        return a.lr + (a.final_lr - a.lr) * t
    return a.lr


def train_loop(model, a, batch_fn, loss_fn, log):
    opt = make_optimizer(model, a)
    model.train()
    t0 = time.time()
    ema_loss = ema_acc = None
    history = []
    for step in range(a.steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, a)
        batch = batch_fn()
        loss, acc = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        lv = loss.item()
        ema_loss = lv if ema_loss is None else 0.95 * ema_loss + 0.05 * lv
        ema_acc = acc if ema_acc is None else 0.95 * ema_acc + 0.05 * acc
        if (step + 1) % a.log_every == 0 or step + 1 == a.steps:
            el = time.time() - t0
            history.append([step + 1, round(ema_loss, 4), round(ema_acc, 4), round(el, 1)])
            log(f"step {step + 1:5d}  loss {ema_loss:.4f}  train-acc {ema_acc:.4f}  "
                f"lr {lr_at(step, a):.2e}  {el:.1f}s")
    return time.time() - t0, ema_loss, ema_acc, history


# ----------------------------------------------------------------------------- 1-D

@torch.no_grad()
def greedy_eval(model, a, examples):
    """examples: (input, answer) pairs of one bin -> token accuracy, exact match."""
    model.eval()
    by_len = {}
    for s, ans in examples:
        by_len.setdefault(len(s), []).append((s, ans))
    correct = tokens = exact = 0
    sep = a.alphabet
    for n, group in sorted(by_len.items()):
        for i in range(0, len(group), a.eval_batch):
            chunk = group[i: i + a.eval_batch]
            x = torch.tensor([s + [sep] for s, _ in chunk])
            full = 2 * n + 1                       # the input length that scores END
            for _ in range(n):
                logits = model(x, full_len=full)[:, -1, : a.alphabet]   # symbols only
                x = torch.cat([x, logits.argmax(-1, keepdim=True)], 1)
            gen = x[:, n + 1:]
            ref = torch.tensor([ans for _, ans in chunk])
            eq = gen == ref
            correct += eq.sum().item()
            tokens += eq.numel()
            exact += eq.all(1).sum().item()
    model.train()
    return correct / max(1, tokens), exact / max(1, len(examples))


def epoch_batches(n, batch, rng):
    """Batches of indices into n examples: shuffled epochs, every example once per epoch (as the
    Rust loop's EpochSampler draws them), so a file of steps x batch examples is each seen once."""
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield order[i: i + batch]


def run_text(a, log):
    def make_bins(L):
        return [(0 if i == 0 else int(a.bins[i - 1] * L), int(m * L)) for i, m in enumerate(a.bins)]
    L = a.train_len
    bins = make_bins(L)
    rng_train = np.random.default_rng([a.seed, 0])
    rng_test = np.random.default_rng([a.seed, 1])
    if a.data:
        train, test = [], []
        for line in open(a.data):
            if line.strip():
                o = json.loads(line)
                (train if o["split"] == "train" else test).append((o["input"], o["answer"]))
        max_sym = max(max(s + ans, default=0) for s, ans in train + test)
        if max_sym >= a.alphabet:
            sys.exit(f"--data uses symbol {max_sym} but --alphabet is {a.alphabet}")
        L = a.train_len = max(len(s) for s, _ in train)
        bins = make_bins(L)
        hi = max(len(s) for s, _ in test)
        bins = [(lo, h) for lo, h in bins if lo < hi]
        test_bins = {f"{lo}-{h}": [e for e in test if lo < len(e[0]) <= h] for lo, h in bins}
        if any(len(e[0]) > bins[-1][1] for e in test):
            test_bins[f"{bins[-1][1]}-{hi}"] = [e for e in test if len(e[0]) > bins[-1][1]]

        batches = epoch_batches(len(train), a.batch, rng_train)

        def batch_fn():
            idx = next(batches)
            return text_batch([train[i] for i in idx], a.alphabet)
    else:
        test_bins = {}
        for lo, h in bins:
            test_bins[f"{lo}-{h}"] = [
                text_example(rng_test, a.task, int(rng_test.integers(lo + 1, h + 1)), a.alphabet)
                for _ in range(a.eval_n)]

        def batch_fn():
            ns = rng_train.integers(1, L + 1, size=a.batch)
            return text_batch([text_example(rng_train, a.task, int(n), a.alphabet) for n in ns],
                              a.alphabet)
    max_test = max(len(e[0]) for v in test_bins.values() for e in v)
    table_rows = (2 * max_test + 1) if a.ape_long == "table" else 2 * L + 1
    torch.manual_seed(a.seed)
    model = Gpt(a, a.alphabet + 3, table_rows)
    log(f"GPT params {sum(p.numel() for p in model.parameters())}  train lengths 1..{L}  "
        f"bins {list(test_bins)}  APE rows {table_rows if a.pe == 'ape' else '-'}")

    def loss_fn(model, batch):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=-100)
        m = y != -100
        acc = (logits.argmax(-1)[m] == y[m]).float().mean().item()
        return loss, acc

    train_s, loss, acc, hist = train_loop(model, a, batch_fn, loss_fn, log)
    t0 = time.time()
    results = {}
    for name, ex in test_bins.items():
        tok, ex_m = greedy_eval(model, a, ex)
        results[name] = {"token_acc": round(tok, 4), "exact": round(ex_m, 4), "n": len(ex)}
        log(f"bin {name:>8}: token acc {tok:.4f}  exact {ex_m:.4f}  (n={len(ex)})")
    return model, train_s, time.time() - t0, loss, acc, hist, results


# ----------------------------------------------------------------------------- 2-D

@torch.no_grad()
def vision_eval(model, a, imgs, labels):
    model.eval()
    g = imgs.shape[1]
    bs = max(1, min(256, (1 << 22) // ((g * g + 1) ** 2 // 16 + 1)))
    correct = 0
    for i in range(0, len(imgs), bs):
        correct += (model(imgs[i: i + bs]).argmax(-1) == labels[i: i + bs]).sum().item()
    model.train()
    return correct / len(imgs)


def run_vision(a, log):
    rng_train = np.random.default_rng([a.seed, 0])
    rng_test = np.random.default_rng([a.seed, 1])
    if a.data:
        train, test = [], {}
        for line in open(a.data):
            if not line.strip():
                continue
            o = json.loads(line)
            g, c = o["grid"], o["channels"]
            img = np.asarray(o["pixels"], dtype=np.float32).reshape(g, g, c)
            if o["split"] == "train":
                train.append((img, o["label"]))
            else:
                test.setdefault(g, []).append((img, o["label"]))
        a.grid, a.channels = train[0][0].shape[0], train[0][0].shape[2]
        train_x = torch.from_numpy(np.stack([t[0] for t in train]))
        train_y = torch.tensor([t[1] for t in train])
        test_sets = {g: (torch.from_numpy(np.stack([t[0] for t in v])),
                         torch.tensor([t[1] for t in v])) for g, v in sorted(test.items())}
        if a.aux == "relation":
            sys.exit("--aux relation needs the generator (it needs the mark positions)")

        batches = epoch_batches(len(train), a.batch, rng_train)

        def batch_fn():
            idx = torch.from_numpy(next(batches))
            y = train_y[idx]
            dt = (torch.stack([dense_targets(a.aux, a.grid, None, int(k)) for k in y])
                  if a.aux != "none" else None)
            return train_x[idx], y, dt
    else:
        test_sets = {}
        for g in a.eval_grids:
            ex = [vision_example(rng_test, a.task, g, a) for _ in range(a.eval_n)]
            test_sets[g] = (torch.tensor(np.stack([e[0] for e in ex]), dtype=torch.float32),
                            torch.tensor([e[1] for e in ex]))

        def batch_fn():
            ex = [vision_example(rng_train, a.task, a.grid, a) for _ in range(a.batch)]
            x = torch.tensor(np.stack([e[0] for e in ex]), dtype=torch.float32)
            y = torch.tensor([e[1] for e in ex])
            dt = (torch.stack([dense_targets(a.aux, a.grid, e[2], e[1]) for e in ex])
                  if a.aux != "none" else None)
            return x, y, dt
    torch.manual_seed(a.seed)
    model = Vit(a, 4)
    log(f"ViT params {sum(p.numel() for p in model.parameters())}  train grid {a.grid}  "
        f"test grids {list(test_sets)}")

    def loss_fn(model, batch):
        x, y, dt = batch
        logits, tok = model(x, return_tokens=True)
        loss = F.cross_entropy(logits, y)
        if dt is not None:
            if a.aux == "coords":
                loss = loss + a.aux_weight * F.mse_loss(tok[..., :2], dt)
            else:
                loss = loss + a.aux_weight * F.cross_entropy(tok.reshape(-1, 5), dt.reshape(-1))
        return loss, (logits.argmax(-1) == y).float().mean().item()

    train_s, loss, acc, hist = train_loop(model, a, batch_fn, loss_fn, log)
    t0 = time.time()
    results = {}
    for g, (x, y) in test_sets.items():
        acc_g = vision_eval(model, a, x, y)
        results[str(g)] = {"acc": round(acc_g, 4), "n": len(y)}
        log(f"grid {g:3d}: acc {acc_g:.4f}  (n={len(y)})")
    return model, train_s, time.time() - t0, loss, acc, hist, results


# ----------------------------------------------------------------------------- dump

def dump_data(a):
    rng_train = np.random.default_rng([a.seed, 0])
    rng_test = np.random.default_rng([a.seed, 1])
    with open(a.dump_data, "w") as f:
        if a.task in TEXT_TASKS:
            L = a.train_len
            for _ in range(a.train_size):
                s, ans = text_example(rng_train, a.task, int(rng_train.integers(1, L + 1)),
                                      a.alphabet)
                f.write(json.dumps({"split": "train", "input": s, "answer": ans}) + "\n")
            prev = 0
            for m in a.bins:
                hi = int(m * L)
                for _ in range(a.eval_n):
                    s, ans = text_example(rng_test, a.task, int(rng_test.integers(prev + 1, hi + 1)),
                                          a.alphabet)
                    f.write(json.dumps({"split": "test", "input": s, "answer": ans}) + "\n")
                prev = hi
        else:
            def write(split, g, rng):
                img, label, _ = vision_example(rng, a.task, g, a)
                f.write(json.dumps({"split": split, "grid": g, "channels": a.channels,
                                    "pixels": [round(float(v), 5) for v in img.reshape(-1)],
                                    "label": label}) + "\n")
            for _ in range(a.train_size):
                write("train", a.grid, rng_train)
            for g in a.eval_grids:
                for _ in range(a.eval_n):
                    write("test", g, rng_test)


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=TEXT_TASKS + VISION_TASKS)
    ap.add_argument("--pe", default="ape", choices=["ape", "nope", "rope", "sin", "alibi", "rope2d"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--decay", default=None, choices=["cosine", "linear", "none"])
    ap.add_argument("--final-lr", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--d-model", type=int, default=None)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--n-layers", type=int, default=None)
    ap.add_argument("--mlp-ratio", type=int, default=None)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--rope-base", type=float, default=None)
    # 1-D
    ap.add_argument("--alphabet", type=int, default=None)
    ap.add_argument("--train-len", type=int, default=None)
    ap.add_argument("--bins", type=float, nargs="+", default=[1, 2, 4, 8],
                    help="bin upper edges as multiples of the train length")
    ap.add_argument("--ape-long", default="table", choices=["table", "interp"])
    ap.add_argument("--eval-batch", type=int, default=64)
    # 2-D
    ap.add_argument("--grid", type=int, default=None)
    ap.add_argument("--eval-grids", type=int, nargs="+", default=None)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--noise", type=float, default=None)
    ap.add_argument("--amp", type=float, default=None)
    ap.add_argument("--aux", default=None, choices=["none", "coords", "own-quadrant", "relation", "label"],
                    help="auxiliary per-token head and its targets (see dense_targets)")
    ap.add_argument("--aux-weight", type=float, default=None)
    # data / run
    ap.add_argument("--eval-n", type=int, default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--dump-data", default=None)
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    text = a.task in TEXT_TASKS
    defaults = (dict(steps=2000, batch=64, lr=3e-3, warmup=100, decay="cosine", d_model=64,
                     n_layers=3, mlp_ratio=4, rope_base=10000.0, alphabet=4, train_len=16,
                     eval_n=200, aux="none", aux_weight=0.0)
                if text else
                dict(steps=1500, batch=64, lr=2e-3, warmup=100, decay="cosine", d_model=64,
                     n_layers=2, mlp_ratio=2, rope_base=100.0, grid=8,
                     eval_grids=[8, 12, 16, 24, 32], noise=0.25, amp=2.0, eval_n=400,
                     aux="coords", aux_weight=10.0))
    for k, v in defaults.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    if text and a.pe == "rope2d":
        sys.exit("--pe rope2d is for the 2-D tasks (use rope)")
    if not text and a.pe not in ("ape", "nope", "rope2d"):
        sys.exit("the 2-D tasks take --pe ape, nope or rope2d")

    log = (lambda s: None) if a.quiet else (lambda s: print(s, flush=True))
    if a.dump_data:
        dump_data(a)
        log(f"wrote {a.dump_data}")
        return
    run = run_text if text else run_vision
    model, train_s, eval_s, loss, acc, hist, results = run(a, log)
    cfg = {k: v for k, v in vars(a).items() if k not in ("quiet", "log_every", "dump_data")}
    print(json.dumps({"task": a.task, "pe": a.pe, "seed": a.seed, "steps": a.steps,
                      "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
                      "final_train_loss": round(loss, 4), "final_train_acc": round(acc, 4),
                      "results": results, "history": hist, "config": cfg,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}),
          flush=True)


if __name__ == "__main__":
    main()
