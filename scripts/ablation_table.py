#!/usr/bin/env python3
"""Markdown tables of the SeqPE ablations made by `scripts/ablation.sh` (validation split only).

    python3 scripts/ablation_table.py [runs/ablation]

Text: validation token perplexity at each evaluated length (the held-out novel), their mean (the
selection criterion: every length counts once; vision likewise the mean top-1 over the sizes), the change from 1× to the longest length, and, at the last validation, how distinct the SeqPE table is and the
contrastive ranking accuracy (mean of the last 100 steps). Vision: validation top-1 at each size
(the images held out of the training split). Baseline rows (`runs/report-*`) evaluated on the same
validation data are added when their `eval-*-valid.json` exists.
"""
import glob
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "runs/ablation"


def load(path):
    with open(path) as f:
        return json.load(f)


def metrics(run):
    lines = []
    try:
        with open(os.path.join(run, "metrics.jsonl")) as f:
            for line in f:
                lines.append(json.loads(line))
    except OSError:
        pass
    return lines


def last_stats(run):
    m = metrics(run)
    rank = next((v["pe_effective_rank"] for v in reversed(m) if "pe_effective_rank" in v), None)
    acc = [v["ranking_acc"] for v in m if v.get("ranking_acc") is not None][-100:]
    return rank, (sum(acc) / len(acc) if acc else None)


def overrides(run):
    cfg = load(os.path.join(run, "config.json"))
    m, t = cfg["model"], cfg["train"]
    parts = []
    if m.get("seqpe_init_width"):
        parts.append(f"init width {m['seqpe_init_width']}")
    if m.get("seqpe_qk_bias"):
        parts.append(f"q/k bias {m['seqpe_qk_bias']}")
    if m.get("seqpe_scalar_scale", 1) != 1:
        parts.append(f"scalar scale {m['seqpe_scalar_scale']}")
    if t.get("encoder_lr_scale", 1) != 1:
        parts.append(f"encoder lr ×{t['encoder_lr_scale']}")
    if m.get("seqpe_max_position") not in (None, 20000, 100):
        parts.append(f"trained range {m['seqpe_max_position']}")
    if t.get("shift_rate", 0.1) != 0.1:
        parts.append(f"shift rate {t['shift_rate']}")
    parts.append(f"ct/kd weights {t['contrastive_weight']}/{t['distill_weight']}")
    return ", ".join(parts)


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


# The report runs of the baselines, scored on the same validation data (`eval-text --split valid`,
# `eval-vit --split valid`): the yardstick for the variants.
BASELINES = {
    "text": os.path.join(os.path.dirname(root.rstrip("/")) or ".", "report-text-small-*"),
    "vision": os.path.join(os.path.dirname(root.rstrip("/")) or ".", "vision-small-native-*"),
}


def runs_of(kind):
    for run in sorted(glob.glob(os.path.join(root, f"{kind}-*"))):
        yield os.path.basename(run)[len(kind) + 1:], run, True
    prefix = os.path.basename(BASELINES[kind])[:-1]          # `report-text-small-`, …
    for run in sorted(glob.glob(BASELINES[kind])):
        pe = os.path.basename(run)[len(prefix):]
        # the SeqPE report run is one of the variants above (copied or trained with the same
        # settings), so only the other encodings are listed
        if pe != "seqpe":
            yield f"baseline: {pe}", run, False


def table(kind):
    rows = []
    header = None
    for name, run, is_variant in runs_of(kind):
        ev = glob.glob(os.path.join(run, "eval-*-valid.json"))
        if not ev:
            continue
        e = load(ev[0])
        rank, acc = last_stats(run)
        if kind == "text":
            res = e["results"]
            header = header or ["variant", "settings"] + [f"{r['length']}" for r in res] + \
                ["mean", "1× → last", "eff. rank", "rank-acc"]
            vals = [r["token_ppl"] for r in res]
            rows.append([name, overrides(run) if is_variant else ""] + [f"{v:.2f}" for v in vals] +
                        [f"{sum(vals) / len(vals):.2f}", f"{100 * (vals[-1] / vals[0] - 1):+.1f}%",
                         fmt(rank, ".2f"), fmt(acc, ".2f")])
        else:
            res = e["results"]
            header = header or ["variant", "settings"] + [f"{r['size']} px" for r in res] + \
                ["mean", "eff. rank", "rank-acc"]
            top1 = [100 * r["top1"] for r in res]
            rows.append([name, overrides(run) if is_variant else ""] +
                        [f"{v:.1f}" for v in top1] + [f"{sum(top1) / len(top1):.1f}"] +
                        [fmt(rank, ".2f"), fmt(acc, ".2f")])
    if not rows:
        return f"(no finished {kind} ablation runs under {root})\n"
    out = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    for r in rows:
        out += "| " + " | ".join(r) + " |\n"
    return out


print("### Text (validation token perplexity)\n")
print(table("text"))
print("### Vision (validation top-1 %)\n")
print(table("vision"))
