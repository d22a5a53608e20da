"""Click policies with the shipped prediction heads on dev data: mIoU after every interaction, NoC, per domain.

For each ``--head`` and domain, the first ``--limit`` dev images (sorted) run every ``--policy`` after both kinds of
first prompt (the ground-truth box; the click farthest from the boundary) for ``--clicks`` interactions, with the
evaluation's own simulator (each image encoded once, the same first prompt for every policy, seed 0). A head named
after a domain (``busi``, ``kvasir``, ``ph2``) runs on that domain only; ``general`` on all of them.

Writes ``benchmarks/results/eval_heads_dev[_<variant>]_<device>.json`` and ``.png`` (mIoU vs interactions per
domain); the variant is ``--variant``, or the head's name when one head runs (``eval_heads_dev_busi_cpu``).

    python -m benchmarks.eval_heads_dev --heads general busi kvasir ph2 --limit 12 --clicks 10 --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.report import run_summary
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.head.click_model import load_head_click_model
from monai_baldsam.head.registry import resolve_head
from monai_baldsam.io.cases import discover_cases

DOMAINS = ("busi", "kvasir", "ph2")
POLICIES = ("oracle", "bald", "entropy", "random_error", "random", "bald_pixel")


def _plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(head, domain, first) for head, by_domain in table.items() for domain, by_first in by_domain.items()
            for first in by_first]
    cols = 2
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (head, domain, first) in zip(axes.flat, keys):
        for policy, row in table[head][domain][first].items():
            curve = row["miou_curve"]
            ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label=policy,
                    lw=2.2 if policy == "bald" else 1.2)
        ax.set_title(f"{head} head, {domain}, {first} first", fontsize=9)
        ax.set_xlabel("interaction")
        ax.set_ylabel("mIoU")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", default=["general", "busi", "kvasir", "ph2"])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the click model's device)")
    add_common_arguments(parser)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    started = time.time()
    table: dict[str, dict] = {}
    heads: dict[str, dict] = {}
    for name in args.heads:
        found = resolve_head(name)
        model = load_head_click_model(found.path, head_sha256=found.sha256, device=args.device)
        heads[found.name] = {"file": found.path.name, "sha256": found.sha256}
        domains = [name] if name in DOMAINS else list(DOMAINS)
        for domain in domains:
            cases = discover_cases(domain_dir(domain), limit=args.limit)
            runs = evaluate(cases, model, list(args.policies), ["box", "click"], args.clicks, seed=0, progress=True)
            for (first, policy), run in runs.items():
                summary = run_summary(run)
                table.setdefault(found.name, {}).setdefault(domain, {}).setdefault(first, {})[policy] = {
                    "n_images": summary["n_images"], "miou_curve": [round(v, 4) for v in summary["miou_curve"]],
                    "miou@5": round(summary["miou_at"]["5"], 4),
                    f"miou@{args.clicks}": round(summary["miou_at"][str(args.clicks)], 4),
                    "noc85": summary["noc85"], "noc90": summary["noc90"],
                    "seconds_per_click": round(summary["seconds_per_click"], 4)}
            print(found.name, domain, {f: {p: r["miou@5"] for p, r in by.items()}
                                       for f, by in table[found.name][domain].items()}, flush=True)
    record = {"benchmark": "eval_heads_dev", "heads": heads, "dev_images_per_domain": args.limit,
              "clicks": args.clicks, "policies": list(args.policies), "seed": 0,
              "protocol": "first --limit dev images per domain (sorted by name); interaction 1 = the ground-truth box "
                          "or the click farthest from the mask boundary; then the policy's clicks with mask feedback",
              "table": table, "seconds": round(time.time() - started, 1), **provenance(args.device)}
    variant = args.variant or (args.heads[0] if len(args.heads) == 1 else None)
    path = result_path("eval_heads_dev", args.device, variant)
    write_json(path, record, args.allow_dirty)
    _plot(table, path)


if __name__ == "__main__":
    main()
