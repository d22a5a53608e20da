"""Are BALD's suggestions worth answering? BALD against every other click policy on the full dev folders, with paired
bootstrap intervals over images (issue 17, section 1).

For each domain, every dev image (sorted; ``--limit`` for a smoke run) runs every policy after both kinds of first
prompt for ``--clicks`` interactions with the evaluation's own simulator (each image encoded once, the same first
prompt for every policy, seed 0). The policies: ``oracle``, ``random_error``, ``random``, ``entropy``, ``bald``,
``bald_pixel`` and the one-shot baseline ``one_shot`` (the first prompt plus k - 1 points drawn at once from the
ground-truth interior, no feedback; :mod:`monai_baldsam.interaction.one_shot`). For every pair (bald, other) the mean
IoU difference after interactions 5 and 10 gets a 95 % paired bootstrap interval over the domain's images, and over
all domains' images pooled (images paired by ``domain/name``); ``beyond_noise`` marks an interval that excludes 0.
Each policy's share of clicks on an error pixel of the mask before them is recorded too.

Writes ``benchmarks/results/bald_paired_dev_<variant>_<device>.json`` (variant: the head's name unless given) and
``.png`` (the intervals, one panel per first prompt). The images are encoded with the CLI's default runtime
(``--encoder auto``), as ``baldsam evaluate`` does.

    python -m benchmarks.bald_paired_dev --config configs/benchmarks/bald_paired_dev_general_v2.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.paired import error_click_shares, paired_comparisons
from monai_baldsam.evaluation.report import comparison_rows, error_click_counts, run_summary
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.head.click_model import load_head_click_model
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.interaction.metrics import summarize_curves
from monai_baldsam.io.cases import discover_cases

DOMAINS = ("busi", "busbra", "kvasir", "clinicdb", "ph2", "isic2017")
POLICIES = ("oracle", "random_error", "random", "entropy", "bald", "bald_pixel", "one_shot")
FIRSTS = ("box", "click")
AT = (5, 10)


def pooled(by_domain: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The summaries of each policy over every domain's images, case names prefixed by the domain (lists of the same
    runs per domain, in the same order): the IoU table (mIoU, NoC, failures, AUC) recomputed from the pooled
    images' curves, the clicks on error summed."""
    out = []
    for runs in zip(*by_domain.values()):
        per_image = [{**item, "name": f"{domain}/{item['name']}"} for domain, s in zip(by_domain, runs)
                     for item in s["per_image"]]
        table = summarize_curves(np.array([item["iou"] for item in per_image], dtype=np.float64))
        out.append({**runs[0], **table, "data": "all", "per_image": per_image,
                    "clicks_on_error": error_click_counts(per_image)})
    return out


def _plot(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*record["domains"], "all"]
    fig, axes = plt.subplots(1, len(FIRSTS), figsize=(6.2 * len(FIRSTS), 0.5 + 0.42 * len(groups) * 6), squeeze=False)
    for ax, first in zip(axes.flat, FIRSTS):
        labels, y = [], 0
        for group in groups:
            rows = [r for r in record["paired"][group] if r["first"] == first]
            for other in dict.fromkeys(r["other_policy"] for r in rows):
                for n, k in enumerate(AT):
                    found = [r for r in rows if r["other_policy"] == other and r["at"] == k]
                    if not found:
                        continue
                    r = found[0]
                    ax.errorbar(r["mean"], y + 0.2 * n, xerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                                fmt="o", mfc=f"C{n}" if r["beyond_noise"] else "white",
                                color=f"C{n}", ms=4, lw=1.2, label=f"mIoU@{k}" if y == 0 else None)
                labels.append((y + 0.1, f"{group}: {other}"))
                y += 1
            y += 0.5
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_yticks([p for p, _ in labels], [t for _, t in labels], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("bald - other, IoU (95 % paired bootstrap; filled = excludes 0)")
        ax.set_title(f"{first} first", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="general", help="shipped head name or head file")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS))
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="first K images per domain (smoke runs only)")
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the click model's device)")
    parser.add_argument("--encoder", default="auto", help="the image encoder's runtime (default: the CLI's, auto)")
    add_common_arguments(parser)
    args = parse_args(parser)
    if "bald" not in args.policies:
        raise ValueError("the comparison is bald against the others: keep bald among --policies")
    torch.set_num_threads(args.threads)
    started = time.time()
    found = resolve_head(args.head)
    model = load_head_click_model(found.path, head_sha256=found.sha256, device=args.device, encoder=args.encoder)
    summaries: dict[str, list[dict[str, Any]]] = {}
    for domain in args.domains:
        cases = discover_cases(domain_dir(domain), limit=args.limit)
        runs = evaluate(cases, model, list(args.policies), list(FIRSTS), args.clicks, seed=0, progress=True)
        summaries[domain] = [run_summary(run, {"data": domain}) for run in runs.values()]
    record: dict[str, Any] = {
        "benchmark": "bald_paired_dev", "head": {"name": found.name, "file": found.path.name, "sha256": found.sha256},
        "encoder": model.predictor.encoder.tag, "domains": list(args.domains), "limit": args.limit, "clicks": args.clicks, "policies": list(args.policies),
        "seed": 0, "bootstrap": {"resamples": args.resamples, "confidence": 0.95, "seed": 0, "at": list(AT)},
        "protocol": "every dev image per domain (sorted by name) unless limit; interaction 1 = the ground-truth box or "
                    "the click farthest from the mask boundary, shared by every policy; then the policy's clicks with "
                    "mask feedback, or for one_shot the first prompt plus k-1 interior points decoded without it",
        "table": {}, "clicks_on_error": {}, "paired": {}}
    for group, runs in [*summaries.items(), ("all", pooled(summaries))]:
        labels = [f"{s['first']} + {s['policy']}" for s in runs]
        record["table"][group] = comparison_rows(runs, labels)
        record["clicks_on_error"][group] = error_click_shares(runs, labels)
        record["paired"][group] = paired_comparisons(runs, labels, "bald", AT, args.resamples, 0.95, seed=0)
        marked = [f"{r['first']} {r['other_policy']}@{r['at']} {r['mean']:+.3f}{'*' if r['beyond_noise'] else ''}"
                  for r in record["paired"][group]]
        print(group, "; ".join(marked), flush=True)
    record.update(seconds=round(time.time() - started, 1), **provenance(args.device))
    path = result_path("bald_paired_dev", args.device, args.variant or found.name)
    write_json(path, record, args.allow_dirty)
    _plot(record, path)


if __name__ == "__main__":
    main()
