"""``baldsam compare``: plot several evaluation runs on one chart and print their table."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run", "expand_run_dirs"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="plot mIoU vs interactions of several 'baldsam evaluate' runs and print a table",
        description="Each RUN is the output folder of 'baldsam evaluate' (or its metrics.json); a folder written "
                    "for several policies stands for all of its policy sub-folders.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="output folders of 'baldsam evaluate'")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--labels", default=None, help="comma-separated legend labels, one per run (after expansion)")
    parser.add_argument("--title", default=None, help="chart title")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
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


def run(args: argparse.Namespace) -> int:
    from monai_baldsam.evaluation.report import comparison_table, load_run, plot_comparison
    from monai_baldsam.io.atomic import check_output_path

    if not args.out.lower().endswith(".png"):
        raise ValueError(f"--out must be a .png file, got {args.out}")
    summaries = [load_run(p) for p in expand_run_dirs(args.runs)]
    labels = None if args.labels is None else [s.strip() for s in args.labels.split(",")]
    out = check_output_path(args.out, [], [], args.overwrite)
    print(comparison_table(summaries, labels))
    written = plot_comparison(summaries, out, labels, args.title, overwrite=args.overwrite)
    print(f"\nwrote {written}")
    return 0
