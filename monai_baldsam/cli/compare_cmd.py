"""``baldsam compare``: plot several evaluation runs on one chart and print their table; with a ``bald`` run among them,
also the paired bootstrap interval of its mIoU difference to every other policy, and each run's share of clicks on
an error pixel (printed, and written as JSON next to the PNG)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["FEW_IMAGES", "add_parser", "run", "expand_run_dirs", "statistics_report"]

#: Below this many paired images compare prints a warning next to the intervals.
FEW_IMAGES = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="plot mIoU vs interactions of several 'baldsam evaluate' runs and print a table",
        description="Each RUN is the output folder of 'baldsam evaluate' (or its metrics.json); a folder written "
                    "for several policies stands for all of its policy sub-folders. When a run of the --reference "
                    "policy (bald) is among them, each other run on the same data after the same first prompt is "
                    "paired with it image by image (by case name; the runs must hold the same images) and the "
                    "mean IoU difference at interactions 5 and 10 is given with a paired bootstrap interval; '*' "
                    "marks an interval that "
                    "excludes 0. Also prints each run's share of policy clicks on an error pixel. Writes the PNG and, "
                    "next to it, the same numbers as JSON (OUT with .json).",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="output folders of 'baldsam evaluate'")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--labels", default=None, help="comma-separated legend labels, one per run (after expansion)")
    parser.add_argument("--title", default=None, help="chart title")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PNG (and its JSON)")
    parser.add_argument("--reference", default="bald",
                        help="policy compared against every other one, image by image (default bald)")
    parser.add_argument("--at", default="5,10",
                        help="comma-separated interactions k of the paired mIoU@k differences (default 5,10)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--confidence", type=float, default=0.95, help="coverage of the intervals (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--no-stats", action="store_true",
                        help="plot and tabulate only: no paired intervals (e.g. for runs on different images)")
    parser.set_defaults(func=run)


def expand_run_dirs(paths: list[str]) -> list[Path]:
    """Run folders: a folder with ``metrics.json`` (or the file) as is, else its sub-folders that hold one."""
    from monai_baldsam.evaluation.report import METRICS_FILE

    found: list[Path] = []
    for item in paths:
        p = Path(item).expanduser()
        if p.is_file() or (p / METRICS_FILE).is_file():
            found.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if (d / METRICS_FILE).is_file()) if p.is_dir() else []
        if not subs:
            raise FileNotFoundError(f"no {METRICS_FILE} in {p} or its sub-folders: give output folders of "
                                    "'baldsam evaluate'")
        found.extend(subs)
    return found


def _budgets(text: str) -> list[int]:
    try:
        budgets = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--at takes comma-separated interaction numbers, e.g. 5,10; got {text!r}") from None
    if not budgets or min(budgets) < 1:
        raise ValueError(f"--at takes interaction numbers >= 1, e.g. 5,10; got {text!r}")
    return budgets


def _check_stats_args(args: argparse.Namespace) -> list[int]:
    if args.resamples < 1:
        raise ValueError(f"--resamples must be at least 1 (10000 is the default), got {args.resamples}")
    if not 0.0 < args.confidence < 1.0:
        raise ValueError(f"--confidence is a coverage in (0, 1), e.g. 0.95; got {args.confidence}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    return _budgets(args.at)


def statistics_report(summaries: list[dict[str, Any]], labels: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """The JSON written next to the PNG: each run's table row and error-click share, and the paired intervals."""
    from monai_baldsam.evaluation.paired import error_click_shares, paired_comparisons
    from monai_baldsam.evaluation.report import comparison_rows

    budgets = _check_stats_args(args)
    shares = error_click_shares(summaries, labels)
    runs = [{**row, "source": s.get("_source"),
             "clicks_on_error": {k: share[k] for k in ("clicks", "on_error", "share")}}
            for row, s, share in zip(comparison_rows(summaries, labels), summaries, shares)]
    paired = [] if args.no_stats else paired_comparisons(summaries, labels, args.reference, budgets, args.resamples,
                                                         args.confidence, args.seed)
    return {"runs": runs, "reference": args.reference, "paired": paired,
            "bootstrap": None if args.no_stats else {
                "method": "percentile bootstrap of the mean per-image IoU difference (reference - other), images "
                          "paired by case name and resampled with replacement",
                "resamples": args.resamples, "confidence": args.confidence, "seed": args.seed, "at": budgets}}


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.evaluation.paired import error_click_table, paired_table
    from monai_baldsam.evaluation.report import comparison_rows, comparison_table, load_run, plot_comparison
    from monai_baldsam.io.atomic import atomic_write_text, check_output_path

    if not args.out.lower().endswith(".png"):
        raise ValueError(f"--out must be a .png file, got {args.out}")
    summaries = [load_run(p) for p in expand_run_dirs(args.runs)]
    labels = None if args.labels is None else [s.strip() for s in args.labels.split(",")]
    out = check_output_path(args.out, [], [], args.overwrite)
    out_json = check_output_path(out.with_suffix(".json"), [], [], args.overwrite)
    table = comparison_table(summaries, labels)  # checks the labels
    report = statistics_report(summaries, [row["run"] for row in comparison_rows(summaries, labels)], args)
    print(table)
    print("\nPolicy clicks (interactions 2..N) on a pixel the mask before them had wrong:\n")
    print(error_click_table([{**row, **row["clicks_on_error"]} for row in report["runs"]]))
    if report["paired"]:
        print(f"\nPaired differences to {args.reference} (bootstrap over images, {args.resamples} resamples, "
              f"seed {args.seed}; * = the interval excludes 0):\n")
        print(paired_table(report["paired"]))
        fewest = min(row["n_images"] for row in report["paired"])
        if fewest < FEW_IMAGES:
            print(f"\nNote: only {fewest} images; a bootstrap interval over fewer than {FEW_IMAGES} images is too "
                  "narrow to trust (it cannot see the spread it did not sample): evaluate more images.")
    elif not args.no_stats:
        print(f"\nNo paired intervals: no run of the reference policy {args.reference!r} (see --reference).")
    written = plot_comparison(summaries, out, labels, args.title, overwrite=args.overwrite)
    atomic_write_text(out_json, json.dumps({**report, "png": str(written)}, indent=1) + "\n", overwrite=args.overwrite)
    print(f"\nwrote {written} and {out_json}")
    return 0
