#!/usr/bin/env python3
"""Independent numpy implementation of the SeqPE encoder and its two regularisers.

It writes parity fixtures in the same safetensors layout as ``shared/parity/seqpe_{1d,2d}.safetensors``
(see ``shared/parity/README.md``), for any encoder configuration, and it can check itself against
those reference fixtures first.

Everything is computed in float64 and stored as float32. Only numpy is needed: safetensors files are
read and written by hand (8-byte little-endian header length, JSON header, raw little-endian data).

Examples
--------
Check this implementation against the reference fixtures (exit status 1 on failure)::

    python3 scripts/make_parity_fixture.py \\
        --verify ../shared/parity/seqpe_1d.safetensors --verify ../shared/parity/seqpe_2d.safetensors

Generate a fixture::

    python3 scripts/make_parity_fixture.py --dims 3 --max-digits 2 --d-model 32 --heads 4 --layers 1 \\
        --out-dim 24 --attn bi --no-final-layernorm --distill-chunks 3 --seed 7 --positions 24 \\
        --pivots 6 --candidates 10 --windows 3 --per-window 8 \\
        --out crates/seqpe-core/tests/fixtures/seqpe_3d_bi.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------------------------------
# safetensors I/O (by hand)
# --------------------------------------------------------------------------------------------------

_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """Returns (tensors: dict name -> np.ndarray, metadata: dict str -> str)."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        dt = _DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        arr = np.frombuffer(raw[base + start : base + end], dtype=dt).reshape(info["shape"])
        tensors[name] = arr.copy()
    return tensors, meta


def write_safetensors(path, tensors, metadata):
    """Writes tensors in the order the official library uses (larger alignment first, then by name),
    with the JSON header padded by spaces to a multiple of 8 bytes, like the shared fixtures."""
    items = []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dname = next((k for k, v in _DTYPES.items() if arr.dtype == v), None)
        if dname is None:
            raise ValueError(f"unsupported dtype {arr.dtype} for {name}")
        items.append((name, arr, dname))
    items.sort(key=lambda t: (-t[1].dtype.itemsize, t[0]))
    header = {}
    blobs = []
    off = 0
    for name, arr, dname in items:
        b = arr.astype(_DTYPES[dname], copy=False).tobytes(order="C")
        header[name] = {"dtype": dname, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# --------------------------------------------------------------------------------------------------
# Configuration and weights
# --------------------------------------------------------------------------------------------------


class Cfg:
    def __init__(self, dims, max_digits, d_model, heads, layers, out_dim, attn="causal",
                 final_layernorm=True, distill_chunks=1, ln_eps=1e-5, temperature=1.0,
                 contrastive_logit_scale=1.0, distill_logit_scale=1.0, distill_beta=1.0):
        self.dims = int(dims)
        self.max_digits = int(max_digits)
        self.d_model = int(d_model)
        self.heads = int(heads)
        self.layers = int(layers)
        self.out_dim = int(out_dim)
        self.attn = attn
        self.final_layernorm = bool(final_layernorm)
        self.distill_chunks = int(distill_chunks)
        self.ln_eps = float(ln_eps)
        self.temperature = float(temperature)
        self.contrastive_logit_scale = float(contrastive_logit_scale)
        self.distill_logit_scale = float(distill_logit_scale)
        self.distill_beta = float(distill_beta)
        if self.attn not in ("causal", "bi"):
            raise ValueError("attn must be 'causal' or 'bi'")
        if self.d_model % self.heads:
            raise ValueError("d_model must be divisible by heads")
        if self.out_dim % self.distill_chunks:
            raise ValueError("out_dim must be divisible by distill_chunks")

    @property
    def seq_len(self):
        return self.dims * self.max_digits

    @property
    def axis_range(self):
        return 10 ** self.max_digits

    @classmethod
    def from_json(cls, text):
        c = json.loads(text)
        return cls(
            dims=c["dims"], max_digits=c["max_digits"], d_model=c["d_model"], heads=c["heads"],
            layers=c["layers"], out_dim=c["out_dim"], attn=c.get("attn", "causal"),
            final_layernorm=c.get("final_layernorm", True), distill_chunks=c.get("distill_chunks", 1),
            ln_eps=c.get("ln_eps", 1e-5), temperature=c.get("seqpe_temperature", 1.0),
            contrastive_logit_scale=c.get("contrastive_logit_scale", 1.0),
            distill_logit_scale=c.get("distill_logit_scale", 1.0),
            distill_beta=c.get("distill_beta", 1.0),
        )


def weight_spec(cfg):
    """Ordered list of (key, shape, kind) with kind in {w, b, ln_w, ln_b}, using the reference names."""
    d, L = cfg.d_model, cfg.seq_len
    spec = [
        ("token_of_seqpe_embed.weight", (10, d), "w"),
        ("pos_of_seqpe_embed.weight", (L, d), "w"),
    ]
    if cfg.dims > 1:
        spec.append(("dim_token_embed", (cfg.dims, 1, d), "w"))
    spec.append(("cls_token_embed", (1, 1, d), "w"))
    for i in range(cfg.layers):
        p = f"transformers.{i}."
        spec += [
            (p + "layernorm_1.weight", (d,), "ln_w"),
            (p + "layernorm_1.bias", (d,), "ln_b"),
            (p + "attn.c_attn.weight", (d, 3 * d), "w"),
            (p + "attn.c_attn.bias", (3 * d,), "b"),
            (p + "attn.c_proj.weight", (d, d), "w"),
            (p + "attn.c_proj.bias", (d,), "b"),
            (p + "layernorm_2.weight", (d,), "ln_w"),
            (p + "layernorm_2.bias", (d,), "ln_b"),
            (p + "mlp.c_fc.weight", (d, 4 * d), "w"),
            (p + "mlp.c_fc.bias", (4 * d,), "b"),
            (p + "mlp.c_proj.weight", (4 * d, d), "w"),
            (p + "mlp.c_proj.bias", (d,), "b"),
        ]
    if cfg.final_layernorm:
        spec += [("layernorm.weight", (d,), "ln_w"), ("layernorm.bias", (d,), "ln_b")]
    spec += [("out_proj.weight", (cfg.out_dim, d), "w"), ("out_proj.bias", (cfg.out_dim,), "b")]
    return spec


def init_weights(cfg, rng, std=0.02, noise=0.05):
    """Reference-style init (normal std 0.02, zero bias, LN 1/0) plus N(0, noise) on every tensor.
    Returned as float32 (what is stored)."""
    out = {}
    for key, shape, kind in weight_spec(cfg):
        if kind == "w":
            base = rng.normal(0.0, std, size=shape)
        elif kind == "ln_w":
            base = np.ones(shape)
        else:
            base = np.zeros(shape)
        out[key] = (base + rng.normal(0.0, noise, size=shape)).astype(np.float32)
    return out


def check_weight_layout(cfg, weights):
    """Keys and shapes in `weights` must be exactly the reference set for `cfg`."""
    spec = {k: tuple(s) for k, s, _ in weight_spec(cfg)}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    problems = []
    for k, s in spec.items():
        if k not in got:
            problems.append(f"missing {k}")
        elif got[k] != s:
            problems.append(f"{k}: shape {got[k]} != {s}")
    for k in got:
        if k not in spec:
            problems.append(f"unexpected {k}")
    return problems


# --------------------------------------------------------------------------------------------------
# Digits and the encoder forward (float64)
# --------------------------------------------------------------------------------------------------


def encode_digits(positions, max_digits):
    """positions [M, dims] int -> digits [M, dims*max_digits]: each coordinate as max_digits decimal
    digits, most significant first, left-padded with 0; coordinates concatenated in order."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.ndim == 1:
        positions = positions[:, None]
    if (positions < 0).any() or (positions >= 10 ** max_digits).any():
        raise ValueError(f"positions must lie in [0, 10^{max_digits})")
    m, dims = positions.shape
    out = np.zeros((m, dims * max_digits), dtype=np.int64)
    for k in range(dims):
        v = positions[:, k].copy()
        for j in range(max_digits - 1, -1, -1):
            out[:, k * max_digits + j] = v % 10
            v //= 10
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax_last(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax_last(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def forward(cfg, weights, digits):
    """digits [M, L] -> embeddings [M, out_dim] (float64)."""
    W = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    d, L, H = cfg.d_model, cfg.seq_len, cfg.heads
    dh = d // H
    digits = np.asarray(digits, dtype=np.int64)
    m = digits.shape[0]
    h = W["token_of_seqpe_embed.weight"][digits] + W["pos_of_seqpe_embed.weight"][None, :, :]
    if cfg.dims > 1:
        dim_rows = W["dim_token_embed"][:, 0, :]                       # [dims, d]
        coord = np.arange(L) // cfg.max_digits                          # slot -> coordinate
        h = h + dim_rows[coord][None, :, :]
    cls = np.broadcast_to(W["cls_token_embed"].reshape(1, 1, d), (m, 1, d))
    h = np.concatenate([h, cls], axis=1)                               # [M, L+1, d], CLS last
    T = L + 1
    if cfg.attn == "causal":
        allowed = np.tril(np.ones((T, T), dtype=bool))
    else:
        allowed = np.ones((T, T), dtype=bool)
    for i in range(cfg.layers):
        p = f"transformers.{i}."
        x = layer_norm(h, W[p + "layernorm_1.weight"], W[p + "layernorm_1.bias"], cfg.ln_eps)
        qkv = x @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]   # Conv1D: [in, out]
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        q = q.reshape(m, T, H, dh).transpose(0, 2, 1, 3)
        k = k.reshape(m, T, H, dh).transpose(0, 2, 1, 3)
        v = v.reshape(m, T, H, dh).transpose(0, 2, 1, 3)
        s = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(dh)
        s = np.where(allowed[None, None], s, -np.inf)
        a = softmax_last(s) @ v                                         # [M, H, T, dh]
        a = a.transpose(0, 2, 1, 3).reshape(m, T, d)
        h = h + a @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        x = layer_norm(h, W[p + "layernorm_2.weight"], W[p + "layernorm_2.bias"], cfg.ln_eps)
        x = gelu_new(x @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        h = h + x @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    if cfg.final_layernorm:
        h = layer_norm(h, W["layernorm.weight"], W["layernorm.bias"], cfg.ln_eps)
    cls_out = h[:, L, :]
    z = cls_out @ W["out_proj.weight"].T + W["out_proj.bias"]          # nn.Linear: [out, in]
    return z / cfg.temperature


def encode_positions(cfg, weights, positions):
    pos = np.asarray(positions, dtype=np.int64).reshape(-1, cfg.dims)
    return forward(cfg, weights, encode_digits(pos, cfg.max_digits))


# --------------------------------------------------------------------------------------------------
# Losses (float64)
# --------------------------------------------------------------------------------------------------


def nearest_labels(pivots, candidates):
    """argmin_c ||cand_c - pivot||^2 over raw position vectors, first index on ties."""
    p = np.asarray(pivots, dtype=np.int64)
    c = np.asarray(candidates, dtype=np.int64)
    d2 = ((c - p[:, None, :]) ** 2).sum(axis=-1)
    return np.argmin(d2, axis=1).astype(np.int64)  # np.argmin returns the first minimum


def contrastive_loss(cfg, weights, pivots, candidates, labels):
    P, C, dims = candidates.shape
    scale = math.sqrt(cfg.contrastive_logit_scale)
    zp = encode_positions(cfg, weights, pivots) * scale                 # [P, D]
    zc = encode_positions(cfg, weights, candidates.reshape(-1, dims)).reshape(P, C, -1) * scale
    logits = np.einsum("pd,pcd->pc", zp, zc)
    mx = logits.max(axis=1)
    lse = mx + np.log(np.exp(logits - mx[:, None]).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(P), labels]))


def distill_loss(cfg, weights, teacher, student):
    W_, n, dims = teacher.shape
    scale = math.sqrt(cfg.distill_logit_scale)
    zt = encode_positions(cfg, weights, teacher.reshape(-1, dims)).reshape(W_, n, -1) * scale
    zs = encode_positions(cfg, weights, student.reshape(-1, dims)).reshape(W_, n, -1) * scale
    H = cfg.distill_chunks
    dc = cfg.out_dim // H
    zt = zt.reshape(W_, n, H, dc).transpose(0, 2, 1, 3)                 # [W, H, n, dc]
    zs = zs.reshape(W_, n, H, dc).transpose(0, 2, 1, 3)
    T = log_softmax_last(zt @ zt.transpose(0, 1, 3, 2))
    S = log_softmax_last(zs @ zs.transpose(0, 1, 3, 2))
    N = W_ * H * n * n
    kl_ts = float(np.sum(np.exp(T) * (T - S)) / N)    # kl_div(input=S, target=T, log_target, mean)
    kl_st = float(np.sum(np.exp(S) * (S - T)) / N)    # kl_div(input=T, target=S, log_target, mean)
    # beta * [KL(T.detach||S) + KL(S||T.detach)] + (1-beta) * [same terms, other side detached]:
    # the value is the same for any beta.
    return kl_ts + kl_st


# --------------------------------------------------------------------------------------------------
# Verification against an existing fixture
# --------------------------------------------------------------------------------------------------


def verify(path, tol=1e-5):
    tensors, meta = read_safetensors(path)
    cfg = Cfg.from_json(meta["config"])
    weights = {k: v for k, v in tensors.items()
               if not k.startswith(("input.", "expected.", "contrastive.", "distill."))}
    ok = True
    problems = check_weight_layout(cfg, weights)
    if problems:
        ok = False
        print(f"  weight layout differs from this script's spec: {problems}")
    positions = tensors["input.positions"]
    digits_ok = np.array_equal(encode_digits(positions, cfg.max_digits), tensors["input.digits"])
    emb = encode_positions(cfg, weights, positions)
    exp_emb = tensors["expected.embeddings"].astype(np.float64)
    max_abs = float(np.max(np.abs(emb - exp_emb)))
    piv, cand = tensors["contrastive.pivots"], tensors["contrastive.candidates"]
    labels = nearest_labels(piv, cand)
    labels_ok = np.array_equal(labels, tensors["contrastive.labels"])
    ties = count_ties(piv, cand)
    ct = contrastive_loss(cfg, weights, piv, cand, tensors["contrastive.labels"])
    kd = distill_loss(cfg, weights, tensors["distill.teacher"], tensors["distill.student"])
    exp_ct = float(tensors["expected.contrastive_loss"][0])
    exp_kd = float(tensors["expected.distill_loss"][0])
    rel_ct = abs(ct - exp_ct) / max(abs(exp_ct), 1e-12)
    rel_kd = abs(kd - exp_kd) / max(abs(exp_kd), 1e-12)
    ok = ok and digits_ok and labels_ok and max_abs < tol and rel_ct < tol and rel_kd < tol
    print(f"{path}")
    print(f"  config: dims={cfg.dims} max_digits={cfg.max_digits} d_model={cfg.d_model} heads={cfg.heads} "
          f"layers={cfg.layers} out_dim={cfg.out_dim} attn={cfg.attn} final_ln={cfg.final_layernorm} "
          f"chunks={cfg.distill_chunks}")
    print(f"  digits match: {digits_ok}   labels match: {labels_ok}   pivots with tied nearest: {ties}")
    print(f"  embeddings: max abs error {max_abs:.3e} (max |value| {np.max(np.abs(exp_emb)):.3f})")
    print(f"  contrastive: ours {ct:.9f} stored {exp_ct:.9f} rel error {rel_ct:.3e}")
    print(f"  distill:     ours {kd:.9f} stored {exp_kd:.9f} rel error {rel_kd:.3e}")
    print(f"  {'PASS' if ok else 'FAIL'} (tolerance {tol:g})")
    return ok


def count_ties(pivots, candidates):
    d2 = ((np.asarray(candidates) - np.asarray(pivots)[:, None, :]) ** 2).sum(axis=-1)
    return int(((d2 == d2.min(axis=1, keepdims=True)).sum(axis=1) > 1).sum())


# --------------------------------------------------------------------------------------------------
# Input generation
# --------------------------------------------------------------------------------------------------


def probe_positions(cfg, m, rng):
    """0, the largest representable value per axis, small values, powers of two, internal zeros,
    then random values; no duplicates."""
    K, R, dims = cfg.max_digits, cfg.axis_range, cfg.dims
    top = R - 1
    special = [0, 1, 2, 7, 9, 10, 11, 42, 99, 100, 101, 255, 256, 511, 512, 999, 1000, 1001, 1024,
               4096, 9999, 10000, 10001, 12345, 16384, 32768, 65536, 99999]
    special = sorted({v for v in special if v < R} | {top, R // 2, 10 ** (K - 1) + 1 if K > 1 else 1})
    rows = []
    seen = set()

    def add(t):
        t = tuple(int(x) for x in t)
        if t not in seen and len(rows) < m:
            seen.add(t)
            rows.append(t)

    add([0] * dims)
    add([top] * dims)
    if dims == 1:
        for v in special:
            if len(rows) >= max(2, m - m // 3):
                break
            add([v])
    else:
        for k in range(dims):          # one axis at the maximum, the others at 0 (and reverse)
            e = [0] * dims
            e[k] = top
            add(e)
            e = [top] * dims
            e[k] = 0
            add(e)
        while len(rows) < max(2, m - m // 3):
            add(rng.choice(special, size=dims))
    while len(rows) < m:
        add(rng.integers(0, R, size=dims))
    return np.array(rows[:m], dtype=np.int64).reshape(m, dims)


def contrastive_batch(cfg, n_pivots, n_cands, rng):
    """Random pivots; n_cands distinct candidates (never the pivot), half near the pivot and half
    anywhere. Pivot 0 (and 1) get two equidistant nearest candidates to exercise first-on-ties."""
    R, dims = cfg.axis_range, cfg.dims
    if n_cands < 3:
        raise ValueError("need at least 3 candidates per pivot")
    radius = max(2, min(16, R // 8))
    pivots = np.zeros((n_pivots, dims), dtype=np.int64)
    cands = np.zeros((n_pivots, n_cands, dims), dtype=np.int64)
    for p in range(n_pivots):
        tie = p < 2 and R >= 8
        lo = 3 if tie else 0
        piv = rng.integers(lo, R - lo, size=dims)
        pivots[p] = piv
        used = {tuple(piv)}
        chosen = []
        if tie:
            # two candidates at distance 1 along one axis, in opposite directions
            axis = p % dims
            a = piv.copy(); a[axis] += 1
            b = piv.copy(); b[axis] -= 1
            if p == 1:
                a, b = b, a  # pivot 1: the smaller position comes first
            slots = rng.choice(n_cands, size=2, replace=False)
            slots.sort()
            tie_at = {int(slots[0]): a, int(slots[1]): b}
            used |= {tuple(a), tuple(b)}
        else:
            tie_at = {}
        while len(chosen) < n_cands - len(tie_at):
            if rng.random() < 0.5:
                c = np.clip(piv + rng.integers(-radius, radius + 1, size=dims), 0, R - 1)
            else:
                c = rng.integers(0, R, size=dims)
            if tie:
                # keep every other candidate strictly farther than the tied pair (squared dist 1)
                if int(((c - piv) ** 2).sum()) <= 1:
                    continue
            t = tuple(int(x) for x in c)
            if t in used:
                continue
            used.add(t)
            chosen.append(c)
        it = iter(chosen)
        for j in range(n_cands):
            cands[p, j] = tie_at[j] if j in tie_at else next(it)
    labels = nearest_labels(pivots, cands)
    return pivots, cands, labels


def default_teacher_window(cfg):
    R = cfg.axis_range
    if cfg.dims == 1:
        return [512 if R >= 1024 else max(1, R // 2)]
    return [14 if R >= 28 else max(1, R // 2)] * cfg.dims


def distill_batch(cfg, n_windows, n_per, window, rng):
    """Teacher = n_per distinct positions of the unshifted window (from the origin, row-major);
    student = teacher + one random offset per window, staying < 10^K on every axis."""
    R, dims = cfg.axis_range, cfg.dims
    window = list(window)
    size = int(np.prod(window))
    if n_per > size:
        raise ValueError("per-window count exceeds the teacher window size")
    teacher = np.zeros((n_windows, n_per, dims), dtype=np.int64)
    student = np.zeros_like(teacher)
    for w in range(n_windows):
        idx = rng.choice(size, size=n_per, replace=False)
        coords = np.stack(np.unravel_index(idx, window), axis=-1).astype(np.int64)
        offset = np.array([rng.integers(1, R - window[k] + 1) for k in range(dims)], dtype=np.int64)
        teacher[w] = coords
        student[w] = coords + offset
    assert (student < R).all()
    return teacher, student


def generate(args):
    cfg = Cfg(args.dims, args.max_digits, args.d_model, args.heads, args.layers, args.out_dim,
              attn=args.attn, final_layernorm=not args.no_final_layernorm,
              distill_chunks=args.distill_chunks)
    rng = np.random.default_rng(args.seed)
    weights = init_weights(cfg, rng, std=args.init_std, noise=args.noise)
    positions = probe_positions(cfg, args.positions, rng)
    digits = encode_digits(positions, cfg.max_digits)
    pivots, cands, labels = contrastive_batch(cfg, args.pivots, args.candidates, rng)
    window = args.teacher_window or default_teacher_window(cfg)
    if len(window) == 1 and cfg.dims > 1:
        window = window * cfg.dims
    teacher, student = distill_batch(cfg, args.windows, args.per_window, window, rng)

    emb = encode_positions(cfg, weights, positions)
    ct = contrastive_loss(cfg, weights, pivots, cands, labels)
    kd = distill_loss(cfg, weights, teacher, student)
    emb32 = emb.astype(np.float32)

    tensors = dict(weights)
    tensors.update({
        "input.positions": positions,
        "input.digits": digits,
        "expected.embeddings": emb32,
        "contrastive.pivots": pivots,
        "contrastive.candidates": cands,
        "contrastive.labels": labels,
        "expected.contrastive_loss": np.array([ct], dtype=np.float32),
        "distill.teacher": teacher,
        "distill.student": student,
        "expected.distill_loss": np.array([kd], dtype=np.float32),
    })
    config = {
        "dims": cfg.dims, "max_digits": cfg.max_digits, "d_model": cfg.d_model, "heads": cfg.heads,
        "layers": cfg.layers, "out_dim": cfg.out_dim, "ln_eps": cfg.ln_eps,
        "final_layernorm": cfg.final_layernorm, "attn": cfg.attn, "mask_padding": False,
        "distill_chunks": cfg.distill_chunks, "seq_len": cfg.seq_len, "vocab": 10,
        "activation": "gelu_new (tanh approximation)", "seqpe_temperature": cfg.temperature,
        "contrastive_logit_scale": cfg.contrastive_logit_scale, "contrastive_label_smoothing": 0.0,
        "distill_beta": cfg.distill_beta, "distill_metric": "kl_div",
        "distill_logit_scale": cfg.distill_logit_scale, "distill_teacher_window": [int(x) for x in window],
        "position_range_per_axis": cfg.axis_range, "seed": args.seed,
        "init_std": args.init_std, "init_noise": args.noise,
        "init": f"normal std {args.init_std} for weights/embeddings/cls/dim, zero biases, LayerNorm weight 1 "
                f"bias 0, then + N(0, {args.noise}) added to every tensor (numpy default_rng(seed))",
        "dtype": "float32", "mode": "eval (no dropout)",
    }
    n_ties = count_ties(pivots, cands)
    meta = {
        "config": json.dumps(config),
        "description": (
            f"SeqPE encoder parity fixture '{Path(args.out).stem}' generated by scripts/make_parity_fixture.py, "
            "an independent float64 numpy implementation (not the reference code) that reproduces the shared "
            "reference fixtures shared/parity/seqpe_{1d,2d}.safetensors to < 1e-5 (see --verify). Same layout as "
            "those files: reference weight names, probe positions with digits and expected embeddings, one "
            "contrastive and one distillation batch with expected losses; values computed in float64, stored "
            "as float32."),
        "digits_layout": (
            f"input.digits[m] = concat over coordinates k=0..dims-1 of the max_digits={cfg.max_digits} decimal "
            "digits of positions[m, k], most significant first, left-padded with digit 0; slot t uses "
            "pos_of_seqpe_embed row t, coordinate t // max_digits."),
        "attention_note": (
            "causal: lower-triangular mask over the L+1 tokens (CLS last)" if cfg.attn == "causal"
            else "bi: full (unmasked) attention over all L+1 tokens (CLS last)"),
        "contrastive_note": (
            "logits[p, c] = <z(pivot p), z(candidate p,c)> (raw dot products, full out_dim), loss = mean over "
            "pivots of cross-entropy with labels = argmin of squared Euclidean distance between raw position "
            f"vectors (first index on ties; {n_ties} pivot(s) here have a tied nearest candidate). Candidates "
            "are distinct and never contain the pivot."),
        "distill_note": (
            "For each window w and chunk h (contiguous out_dim/distill_chunks slice): T = log_softmax(Zt Zt^T), "
            "S = log_softmax(Zs Zs^T) row-wise over the n x n Gram matrix (diagonal included); loss = "
            "sum(exp(T)(T-S))/N + sum(exp(S)(S-T))/N, N = W*chunks*n*n (beta = 1). Teacher = positions inside "
            "the window distill_teacher_window from the origin (encoded directly), student = teacher + one "
            "random offset per window."),
        "expected_float64": json.dumps({
            "contrastive_loss": ct, "distill_loss": kd,
            "max_abs_emb_f32_rounding": float(np.max(np.abs(emb32.astype(np.float64) - emb))),
            "max_abs_embedding_value": float(np.max(np.abs(emb))),
        }),
    }
    write_safetensors(args.out, tensors, meta)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out} ({size} bytes): contrastive {ct:.6f}, distill {kd:.6f}, "
          f"labels {labels.tolist()}, tied pivots {n_ties}, max |emb| {np.max(np.abs(emb)):.3f}")
    # Round trip: the written file must reproduce itself from its stored float32 weights.
    if not verify(args.out):
        print("round-trip verification FAILED", file=sys.stderr)
        return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", action="append", default=[], metavar="FILE",
                    help="recompute an existing fixture and compare (repeatable); no file is written")
    ap.add_argument("--dims", type=int, default=1)
    ap.add_argument("--max-digits", type=int, default=5)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out-dim", type=int, default=96)
    ap.add_argument("--attn", choices=["causal", "bi"], default="causal")
    ap.add_argument("--no-final-layernorm", action="store_true")
    ap.add_argument("--distill-chunks", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--positions", type=int, default=40)
    ap.add_argument("--pivots", type=int, default=8)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--per-window", type=int, default=12)
    ap.add_argument("--teacher-window", type=int, nargs="+", default=None,
                    help="teacher window size per axis (default: 512 for 1D, 14 per axis otherwise, "
                         "halved range if that does not fit)")
    ap.add_argument("--init-std", type=float, default=0.02,
                    help="std of the reference-style normal init of weights and embeddings (default 0.02)")
    ap.add_argument("--noise", type=float, default=0.05,
                    help="std of the N(0, noise) perturbation added to every tensor (default 0.05)")
    ap.add_argument("--out", type=str, default=None)
    args = ap.parse_args(argv)

    if args.verify:
        ok = all([verify(f) for f in args.verify])
        return 0 if ok else 1
    if not args.out:
        ap.error("--out is required unless --verify is given")
    return 0 if generate(args) else 1


if __name__ == "__main__":
    sys.exit(main())
