"""What the two PyTorch benchmark scripts (`pytorch_bench_text.py`, `pytorch_bench_vision.py`)
share: the pre-LN transformer block with its position seam, the n-D SeqPE encoder, the merged
encoder pass with both regularisers, the two-group clipped optimiser step, the timing loop and
the arguments that configure all of these. Imported by the scripts (they put their own folder on
`sys.path` by being run as `python3 scripts/pytorch_bench_*.py`); not run on its own.
"""

from __future__ import annotations

import math
import platform
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def rotate(x, cos, sin):
    """Rotate-half RoPE: x = [x1 | x2] -> [x1·cos - x2·sin | x2·cos + x1·sin]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    """Pre-LN transformer block (LN -> fused qkv Linear -> softmax attention -> proj; LN -> Linear
    mlp_ratio·d -> GELU -> Linear d) with an optional per-layer position context on q and k:
    ``("scalar", p_q, p_k)`` (SeqPE attn_scalar: [q | p_q]·[k | p_k] = q·k + p_q·p_k, scaled by
    1/sqrt(d_head) afterwards), ``("mul", p_q, p_k)`` (SeqPE attn_mul) or ``("rope", cos, sin)``."""

    def __init__(self, d, heads, mlp_ratio, dropout, attn_dropout=0.0, eps=1e-6, causal=False,
                 gelu="none"):
        super().__init__()
        assert d % heads == 0
        self.d, self.h, self.dh = d, heads, d // heads
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.fc = nn.Linear(d, mlp_ratio * d)
        self.fc_out = nn.Linear(mlp_ratio * d, d)
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = attn_dropout
        self.causal = causal
        self.gelu = gelu

    def forward(self, x, pos=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        if pos is not None:
            kind, a, c = pos
            if kind == "scalar":
                q = torch.cat([q, a.expand(b, -1, -1, -1)], dim=-1)
                k = torch.cat([k, c.expand(b, -1, -1, -1)], dim=-1)
            elif kind == "mul":
                q, k = q * a, k * c                                  # [1, h, t, dh] broadcast
            else:
                q, k = rotate(q, a, c), rotate(k, a, c)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal, scale=1.0 / math.sqrt(self.dh),
            dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, self.d)))
        x = x + self.drop(self.fc_out(F.gelu(self.fc(self.ln2(x)), approximate=self.gelu)))
        return x


def init_normal(module, std=0.02):
    """GPT-2 / timm init: normal(std) linears and embeddings, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SeqPeEncoder(nn.Module):
    """n-D SeqPE encoder: the decimal digits of every coordinate (most significant first,
    left-padded with 0), digit + slot embeddings (+ a per-coordinate dim embedding when there is
    more than one coordinate), a CLS vector appended last, pre-LN causal blocks (LN eps 1e-5,
    GELU(tanh), MLP ratio 4), final LN, CLS row -> Linear(out_dim)."""

    def __init__(self, d, heads, layers, out_dim, dims, max_digits, dropout):
        super().__init__()
        self.dims, self.max_digits = dims, max_digits
        L = dims * max_digits
        self.tok = nn.Embedding(10, d)
        self.slot = nn.Embedding(L, d)
        self.dim = nn.Embedding(dims, d) if dims > 1 else None
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList([Block(d, heads, 4, dropout, eps=1e-5, causal=True, gelu="tanh")
                                     for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.out = nn.Linear(d, out_dim)
        init_normal(self)
        nn.init.normal_(self.cls, std=0.02)
        pw = torch.tensor([10 ** (max_digits - 1 - j) for j in range(max_digits)], dtype=torch.long)
        self.register_buffer("powers", pw, persistent=False)
        self.register_buffer("dim_ids", torch.arange(L) // max_digits, persistent=False)

    def digits(self, positions):
        # [M] or [M, dims] -> [M, dims·K]
        positions = positions.reshape(positions.shape[0], -1)
        return ((positions[:, :, None] // self.powers) % 10).reshape(positions.shape[0], -1)

    def forward(self, positions):
        dig = self.digits(positions)
        slots = self.slot.weight
        if self.dim is not None:
            slots = slots + self.dim.weight[self.dim_ids]
        h = self.tok(dig) + slots[None]
        h = torch.cat([h, self.cls.expand(h.shape[0], -1, -1)], dim=1)   # CLS last
        for blk in self.blocks:
            h = blk(h)                                                   # causal over digits + CLS
        return self.out(self.ln_f(h[:, -1]))


def kd_loss(zt, zs, chunks):
    """Symmetric distillation KL between the row-wise log-softmax of the Gram matrices of teacher
    and student, per chunk of the embedding (reduction 'mean', the teacher side detached)."""
    w, n, dim = zt.shape
    zt = zt.view(w, n, chunks, dim // chunks).transpose(1, 2)
    zs = zs.view(w, n, chunks, dim // chunks).transpose(1, 2)
    t = F.log_softmax(zt @ zt.transpose(-1, -2), dim=-1).detach()
    s = F.log_softmax(zs @ zs.transpose(-1, -2), dim=-1)
    # kl_div(input=s, target=t, log_target=True, reduction='mean') + the reverse direction:
    # divided by the element count (not batchmean), written out to avoid the deprecation path.
    return ((t.exp() * (t - s)).sum() + (s.exp() * (s - t)).sum()) / t.numel()


def seqpe_pass(encoder, main_pos, pivots, cands, labels, idx, student, kd_chunks):
    """One merged encoder pass over the main positions and both regularisers' positions (1-D
    positions are [M], n-D ones [M, dims]). Returns the main table, the contrastive CE (raw dot
    products, label = the nearest candidate) and the distillation KL (teacher = main-table rows)."""
    P, C = cands.shape[:2]
    W, n = idx.shape
    tail = main_pos.shape[1:]
    z = encoder(torch.cat([main_pos, pivots, cands.reshape(P * C, *tail),
                           student.reshape(W * n, *tail)]))
    o = main_pos.shape[0]
    table = z[:o]
    zp, zc = z[o:o + P], z[o + P:o + P + P * C].view(P, C, -1)
    zs = z[o + P + P * C:].view(W, n, -1)
    ct = F.cross_entropy(torch.einsum("pd,pcd->pc", zp, zc), labels)
    kd = kd_loss(table[idx], zs, kd_chunks)
    return table, ct, kd


def autocast(a, dev):
    """The forward pass's precision context: bf16 autocast for `--precision bf16`, else nothing."""
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                          enabled=a.precision == "bf16")


def clipped_step(opt, loss, model_params, enc_params, clip):
    """Backward, clip the model and the SeqPE encoder separately, optimiser step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model_params, clip)
    if enc_params:
        torch.nn.utils.clip_grad_norm_(enc_params, clip)
    opt.step()


def split_params(model):
    """(model parameters, SeqPE encoder parameters): the two clipping groups."""
    enc = list(model.seqpe.parameters()) if hasattr(model, "seqpe") else []
    ids = {id(p) for p in enc}
    return [p for p in model.parameters() if id(p) not in ids], enc


def add_run_args(ap):
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: the forward pass under torch.autocast(bfloat16), f32 weights and "
                         "optimizer (seqpe's `train.precision = bf16`)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=0)


def add_seqpe_args(ap, d_model, heads, max_position, kd_windows):
    """The SeqPE encoder and regulariser arguments; the defaults that differ between the text and
    the vision benchmark are parameters."""
    ap.add_argument("--seqpe-d-model", type=int, default=d_model)
    ap.add_argument("--seqpe-heads", type=int, default=heads)
    ap.add_argument("--seqpe-layers", type=int, default=2)
    ap.add_argument("--seqpe-dropout", type=float, default=0.1)
    ap.add_argument("--seqpe-max-position", type=int, default=max_position)
    ap.add_argument("--ct-pivots", type=int, default=16)
    ap.add_argument("--ct-candidates", type=int, default=32)
    ap.add_argument("--kd-windows", type=int, default=kd_windows)
    ap.add_argument("--kd-per-window", type=int, default=32)
    ap.add_argument("--kd-chunks", type=int, default=0,
                    help="distillation chunks (0 = seqpe_d_model/64, the reference rule)")
    ap.add_argument("--ct-weight", type=float, default=0.1)
    ap.add_argument("--kd-weight", type=float, default=0.1)


def finish_seqpe_args(a):
    """Derived settings: digits per coordinate and the distillation chunk count."""
    a.seqpe_max_digits = len(str(a.seqpe_max_position - 1))
    if a.kd_chunks <= 0:
        a.kd_chunks = max(1, a.seqpe_d_model // 64)


def timed_steps(step, batch, warmup, steps):
    """Runs `warmup` untimed then `steps` timed calls of step(*batch()); the batch is drawn
    before each step's timer starts. Returns (per-step seconds, the last step's result)."""
    for _ in range(warmup):
        step(*batch())
    times, out = [], None
    for _ in range(steps):
        args = batch()
        ts = time.perf_counter()
        out = step(*args)
        times.append(time.perf_counter() - ts)
    return times, out


def timing_fields(times, items_per_step, unit):
    """Throughput (`<unit>_per_s`, and from the median step) and step-time statistics."""
    sec = sum(times)
    med = sorted(times)[len(times) // 2]
    return {
        f"{unit}_per_s": round(items_per_step * len(times) / sec, 2),
        "ms_per_step": round(sec / len(times) * 1000, 2),
        f"{unit}_per_s_median_step": round(items_per_step / med, 2),
        "ms_per_step_median": round(med * 1000, 2),
        "ms_per_step_min": round(min(times) * 1000, 2),
        "ms_per_step_max": round(max(times) * 1000, 2),
        "cpu": platform.processor() or platform.machine(),
    }


def seqpe_fields(a, encoder_params, positions_per_step, extra):
    """The SeqPE lines of a result."""
    return {
        "seqpe_d_model": a.seqpe_d_model, "seqpe_heads": a.seqpe_heads, "seqpe_layers": a.seqpe_layers,
        "seqpe_max_digits": a.seqpe_max_digits, "encoder_params": encoder_params,
        "encoder_positions_per_step": positions_per_step,
        "kd_chunks": a.kd_chunks, "last_ct": round(extra["ct"], 4), "last_kd": round(extra["kd"], 6),
    }
