"""Baselines of the click-evaluation protocol with the default backbone on the shared dev data.

For each domain: box only (one shot, = mIoU@1 of the box runs), box + oracle clicks, and click only (the standard
first click, then oracle clicks), N interactions each. Every image is encoded once and shared by both runs.

Writes ``benchmarks/results/eval_baselines[_<variant>]_<device>.json`` (device and platform, git commit, exact command,
timestamps, per-domain tables and mean curves, per-image IoU curves) and a PNG with one panel per domain. The JSON
is rewritten (atomically) after each domain, with ``"complete": false`` until the last one, so a long run can be
followed.

    python -m benchmarks.eval_baselines                       # N = 20, all four domains, CPU
    python -m benchmarks.eval_baselines --clicks 5 --limit 3  # a quick look
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmarks.results_io import REPO, add_common_arguments, parse_args, provenance, result_path, write_json
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.evaluation.report import comparison_rows, draw_comparison, run_summary
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.interaction.model import load_click_model
from monai_baldsam.io.atomic import atomic_path
from monai_baldsam.io.cases import discover_cases

__all__ = ["main"]

DOMAINS = ("busi", "kvasir", "ph2", "ct2d")


def _domain_table(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows: box only (one shot), box + oracle, click + oracle."""
    box, click = summaries["box"], summaries["click"]
    rows = comparison_rows([box, click], ["box + oracle", "click + oracle"])
    one_shot = {"run": "box only", "policy": "-", "first": "box", "n": box["n_images"], "miou@1": box["miou_at"]["1"],
                "miou@5": None, "miou@10": None, "noc85": None, "failures85": None, "auc": None}
    for row, s in zip(rows, (box, click)):
        row.update({"noc80": s["noc80"], "noc90": s["noc90"], "failures_at_budget": s["failures_at_budget"],
                    "miou_at": s["miou_at"], "seconds_per_click": s["seconds_per_click"]})
    return [one_shot, *rows]


def _plot(results: dict[str, Any], path: Path, n_clicks: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    domains = list(results)
    cols = min(2, len(domains))
    rows = (len(domains) + cols - 1) // cols
    figure = Figure(figsize=(6.2 * cols, 4.4 * rows), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    for n, domain in enumerate(domains):
        ax = figure.add_subplot(rows, cols, n + 1)
        summaries = results[domain]["_summaries"]
        draw_comparison(ax, [summaries["box"], summaries["click"]], ["box + oracle", "click + oracle"],
                        f"{domain} (LiteMedSAM, N = {n_clicks})")
        ax.axhline(summaries["box"]["miou_at"]["1"], color="0.4", linestyle="--", linewidth=1.0)
        ax.text(n_clicks, summaries["box"]["miou_at"]["1"] + 0.015, "box only", ha="right", fontsize="small",
                color="0.3")
    with atomic_path(path, overwrite=True) as tmp:
        figure.savefig(tmp, format="png")


def _public(results: dict[str, Any]) -> dict[str, Any]:
    return {d: {k: v for k, v in r.items() if not k.startswith("_")} for d, r in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated dev domains")
    parser.add_argument("--clicks", type=int, default=20, help="interactions per image N (first prompt included)")
    parser.add_argument("--limit", type=int, default=None, help="first K images per domain only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest on a shared 2-core machine)")
    parser.add_argument("--seed", type=int, default=0)
    add_common_arguments(parser)
    args = parse_args(parser, argv)
    torch.set_num_threads(args.threads)
    out = result_path("eval_baselines", args.device, args.variant)
    png = out.with_suffix(".png")
    where = provenance(args.device)
    command = where["command"] if argv is None else shlex.join(["main", *argv])
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    model = load_click_model(device=args.device)
    report: dict[str, Any] = {
        "benchmark": "eval_baselines", "complete": False, "command": command, "git_commit": where["git_commit"],
        "started": started.isoformat(), "device": where["device_info"], "backbone": model.signature,
        "clicks": args.clicks, "seed": args.seed, "limit": args.limit, "policy": "oracle",
        "protocol": "interaction 1 = first prompt (GT box, or the interior point farthest from the boundary); "
                    "interactions 2..N = oracle clicks with the box (if any), all clicks and the previous low-res "
                    "logits as prompt; NoC = N when never reached; AUC = mean of the mIoU curve",
        "domains": {},
    }
    results: dict[str, Any] = {}
    for domain in [d.strip() for d in args.domains.split(",") if d.strip()]:
        t_domain = time.perf_counter()
        cases = discover_cases(domain_dir(domain), limit=args.limit)
        runs = evaluate(cases, model, ["oracle"], ["box", "click"], args.clicks, args.seed, progress=True)
        summaries = {first: run_summary(run, {"data": domain}) for (first, _), run in runs.items()}
        results[domain] = {
            "n_images": len(cases), "seconds": round(time.perf_counter() - t_domain, 1),
            "table": _domain_table(summaries),
            "miou_curve": {first: s["miou_curve"] for first, s in summaries.items()},
            "per_image": {first: {item["name"]: [round(v, 4) for v in item["iou"]] for item in s["per_image"]}
                          for first, s in summaries.items()},
            "_summaries": summaries,
        }
        report["domains"] = _public(results)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        write_json(out, report, args.allow_dirty)
        print(f"{domain}: {len(cases)} images in {results[domain]['seconds']} s", flush=True)
    report.update({"complete": True, "finished": datetime.now(timezone.utc).isoformat(),
                   "seconds": round(time.perf_counter() - t0, 1)})
    report["png"] = str(png.relative_to(REPO)) if png.is_relative_to(REPO) else str(png)
    write_json(out, report, args.allow_dirty)
    _plot(results, png, args.clicks)
    for domain, r in results.items():
        print(f"\n{domain} (n = {r['n_images']})")
        for row in r["table"]:
            print("  " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                   if k in ("run", "miou@1", "miou@5", "miou@10", "noc85", "auc")))
    print(f"\nwrote {out} and {png} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
