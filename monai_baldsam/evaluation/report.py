"""Reports of evaluation runs: ``metrics.json``, ``curves.csv`` and PNG plots, written atomically; read back for
comparison tables and charts.

A run folder holds:

* ``metrics.json``: the run's settings (``policy``, ``first``, ``clicks``, ``seed``, ``backbone``, ``data``, ...), its
  table (``noc80``/``noc85``/``noc90``, ``failures_at_budget``, ``miou_at``, ``auc``, ``seconds_per_click``,
  ``clicks_on_error``: how many policy clicks landed on an error pixel of the mask before them) and ``per_image``
  (file, IoU and Dice curves, clicks, ``clicks_on_error`` aligned with the clicks, NoC);
* ``curves.csv``: one row per image and interaction (``name, interaction, iou, dice, click_x, click_y,
  click_label, seconds``);
* ``iou_vs_clicks.png``: the mIoU curve over the per-image curves.

Plots use matplotlib's object API (``Figure`` + Agg canvas): no global backend switch, no pyplot state.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from monai_baldsam import __version__
from monai_baldsam.evaluation.runner import RunResult
from monai_baldsam.interaction.metrics import NOC_THRESHOLDS, number_of_clicks, summarize_curves
from monai_baldsam.io.atomic import atomic_path, atomic_write_text

__all__ = [
    "METRICS_FILE",
    "CURVES_FILE",
    "PLOT_FILE",
    "REQUIRED_KEYS",
    "check_output_dir",
    "error_click_counts",
    "on_error_flags",
    "run_summary",
    "curves_csv",
    "write_run",
    "write_runs",
    "write_volume_report",
    "plot_curves",
    "load_run",
    "run_label",
    "comparison_rows",
    "comparison_table",
    "draw_comparison",
    "plot_comparison",
    "plot_run",
]

METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.csv"
PLOT_FILE = "iou_vs_clicks.png"
#: Keys every ``metrics.json`` has; :func:`load_run` checks them.
REQUIRED_KEYS: tuple[str, ...] = ("policy", "first", "n_images", "clicks", "noc80", "noc85", "noc90", "miou_at",
                                  "miou_curve", "auc", "seconds_per_click", "per_image")

PathLike = str | os.PathLike


def _number(value: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    value = float(value)
    return value if math.isfinite(value) else None


def _mean(values: Sequence[float] | np.ndarray) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


def on_error_flags(values: np.ndarray | None, n_clicks: int) -> list[bool | None]:
    """JSON flags of :attr:`SessionResult.click_on_error`: True/False per policy click, None for the first prompt's
    click (and for every click of a result made without the flags)."""
    if values is None:
        return [None] * n_clicks
    return [None if not math.isfinite(v) else bool(v) for v in np.asarray(values, dtype=np.float64)]


def error_click_counts(per_image: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"clicks", "on_error", "share"}`` over the ``clicks_on_error`` flags of ``per_image`` entries of a
    ``metrics.json`` (None flags, the first prompt's click, are not counted; ``share`` is None without clicks)."""
    flags = [f for item in per_image for f in item.get("clicks_on_error", []) if f is not None]
    hits = int(sum(bool(f) for f in flags))
    return {"clicks": len(flags), "on_error": hits, "share": hits / len(flags) if flags else None}


def check_output_dir(outdir: PathLike, overwrite: bool) -> Path:
    """``outdir`` absolute; refused when it is a file, or a non-empty folder without ``overwrite`` (results are never
    reused because a file exists)."""
    out = Path(outdir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file: give a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"output folder {out} is not empty: choose a new folder, or pass --overwrite to replace "
                              "the files of this run")
    return out


def run_summary(run: RunResult, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``metrics.json`` for ``run``; ``meta`` (``backbone``, ``data``, ``device``, ...) is added."""
    if not run.cases:
        raise ValueError(f"run {run.first}+{run.policy} has no images")
    ious, dices = run.iou_curves(), run.dice_curves()
    table = summarize_curves(ious)
    dice_table = summarize_curves(dices)
    sessions = [c.session for c in run.cases]
    clicks_s = np.concatenate([s.seconds[1:] for s in sessions])
    policy_s = np.concatenate([s.policy_seconds[1:] for s in sessions])
    model_s = np.concatenate([s.model_seconds[1:] for s in sessions])
    stops = [s.stop_reason for s in sessions if s.stop_reason]
    nocs = {f"noc{round(100 * t)}": number_of_clicks(ious, t) for t in NOC_THRESHOLDS}
    per_image = []
    for n, c in enumerate(run.cases):
        s = c.session
        per_image.append({
            "name": c.case.name, "file": str(c.case.image), "mask": str(c.case.mask), "image_hw": list(c.image_hw),
            "iou": [float(v) for v in s.iou], "dice": [float(v) for v in s.dice],
            **{k: int(v[n]) for k, v in nocs.items()}, "auc": float(s.iou.mean()),
            "clicks": [[int(x), int(y), int(lab), int(k)] for (x, y), lab, k in
                       zip(s.clicks_xy, s.click_labels, s.click_interaction)],
            "clicks_on_error": on_error_flags(s.click_on_error, len(s.clicks_xy)),
            "stopped_at": s.stopped_at, "stop_reason": s.stop_reason,
            "seconds": [_number(v) for v in s.seconds], "encode_seconds": c.encode_seconds,
        })
    summary: dict[str, Any] = {
        "policy": run.policy, "first": run.first, "box_jitter": run.box_jitter, "clicks": run.n_interactions,
        "seed": run.seed, "model": run.model, **dict(meta or {}),
        "n_images": table["n_images"], "noc80": table["noc80"], "noc85": table["noc85"], "noc90": table["noc90"],
        "failures_at_budget": table["failures_at_budget"], "miou_at": table["miou_at"], "auc": table["auc"],
        "miou_curve": table["miou_curve"], "mdice_at": dice_table["miou_at"], "mdice_curve": dice_table["miou_curve"],
        "seconds_per_click": _mean(clicks_s), "policy_seconds_per_click": _mean(policy_s),
        "model_seconds_per_click": _mean(model_s),
        "seconds_first_prompt": _mean([s.seconds[0] for s in sessions]),
        "encode_seconds_per_image": _mean([c.encode_seconds for c in run.cases]),
        "early_stops": {reason: stops.count(reason) for reason in sorted(set(stops))},
        "clicks_on_error": error_click_counts(per_image),
        "version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "definitions": {
            "interaction": "interaction 1 is the first prompt (box or first click); 2..N are policy clicks",
            "noc": "first interaction with IoU >= threshold; N (the budget) if never reached (see failures_at_budget)",
            "auc": "(1/N) * sum_{k=1..N} mIoU@k",
            "seconds_per_click": "mean wall time of one policy click (policy choice + model), interactions 2..N run",
            "early_stop": "a perfect prediction or no click from the policy ends a session; its last IoU is kept",
            "clicks_on_error": "policy clicks (interactions 2..N) on a pixel that the mask before the click has "
                               "wrong, over all policy clicks of all images",
        },
        "per_image": per_image,
    }
    return summary


def curves_csv(run: RunResult) -> str:
    """``curves.csv`` of ``run``: one row per image and interaction, the click placed at that interaction if any."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "interaction", "iou", "dice", "click_x", "click_y", "click_label", "seconds"])
    for c in run.cases:
        s = c.session
        placed = {int(k): (int(x), int(y), int(lab)) for (x, y), lab, k in
                  zip(s.clicks_xy, s.click_labels, s.click_interaction)}
        for k in range(1, s.n_interactions + 1):
            x, y, lab = placed.get(k, ("", "", ""))
            sec = s.seconds[k - 1]
            writer.writerow([c.case.name, k, f"{s.iou[k - 1]:.6f}", f"{s.dice[k - 1]:.6f}", x, y, lab,
                             f"{sec:.4f}" if math.isfinite(sec) else ""])
    return buffer.getvalue()


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save_png(figure: Any, path: PathLike, overwrite: bool) -> Path:
    final = Path(path).expanduser()
    with atomic_path(final, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png")
    return final


def plot_run(summary: Mapping[str, Any], path: PathLike, overwrite: bool = False) -> Path:
    """``iou_vs_clicks.png``: every image's IoU curve (thin) and the mIoU curve (bold) against interactions."""
    figure = _new_figure(6.0, 4.2)
    ax = figure.add_subplot(1, 1, 1)
    n = int(summary["clicks"])
    x = np.arange(1, n + 1)
    for item in summary["per_image"]:
        ax.plot(x, item["iou"], color="0.6", linewidth=0.6, alpha=0.5)
    ax.plot(x, summary["miou_curve"], color="C0", linewidth=2.2, marker="o", markersize=3, label="mIoU")
    for t in NOC_THRESHOLDS:
        ax.axhline(t, color="C3", linewidth=0.6, linestyle=":")
    ax.set(xlim=(0.8, n + 0.2), ylim=(0.0, 1.0), xlabel="interaction (1 = first prompt)", ylabel="IoU",
           title=f"{summary['policy']} after a first {summary['first']} - {summary['n_images']} images, "
                 f"AUC {summary['auc']:.3f}")
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save_png(figure, path, overwrite)


def plot_curves(curves: Mapping[str, Sequence[float]], path: PathLike, ylabel: str, title: str,
                overwrite: bool = False) -> Path:
    """One mean curve per label against interactions (1 = first prompt), e.g. mean Dice per volume policy."""
    figure = _new_figure(6.0, 4.2)
    ax = figure.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, linewidth=1.8, label=label)
    ax.set(ylim=(0.0, 1.0), xlabel="interaction (1 = first prompt)", ylabel=ylabel, title=title)
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save_png(figure, path, overwrite)


def write_run(run: RunResult, outdir: PathLike, meta: Mapping[str, Any] | None = None,
              overwrite: bool = False) -> dict[str, Any]:
    """Write ``metrics.json``, ``curves.csv`` and ``iou_vs_clicks.png`` of ``run`` into ``outdir`` (atomically) and
    return the summary."""
    out = Path(outdir)
    summary = run_summary(run, meta)
    atomic_write_text(out / CURVES_FILE, curves_csv(run), overwrite=overwrite)
    plot_run(summary, out / PLOT_FILE, overwrite=overwrite)
    atomic_write_text(out / METRICS_FILE, json.dumps(summary, indent=1) + "\n", overwrite=overwrite)
    return summary


#: The columns of a run that command-line reports print.
SUMMARY_KEYS = ("policy", "first", "n_images", "clicks", "noc80", "noc85", "noc90", "failures_at_budget", "miou_at",
                "auc", "seconds_per_click")


def write_runs(runs: Mapping[tuple[str, str], RunResult], outdir: PathLike, meta: Mapping[str, Any] | None = None,
               overwrite: bool = False) -> dict[str, Any]:
    """Write every run of :func:`~monai_baldsam.evaluation.runner.evaluate` (into ``outdir/<policy>/`` when there
    are several, plus ``compare.png``) and return the short report the CLI prints."""
    out = Path(outdir)
    several = len(runs) > 1
    summaries = [write_run(result, out / policy if several else out, meta, overwrite=overwrite)
                 for (_, policy), result in runs.items()]
    report: dict[str, Any] = {"out": str(out), "runs": [{k: s[k] for k in SUMMARY_KEYS} for s in summaries]}
    if several:
        report["compare_png"] = str(plot_comparison(summaries, out / "compare.png", overwrite=overwrite))
    return report


def write_volume_report(summary: Mapping[str, Mapping[str, Any]], outdir: PathLike, meta: Mapping[str, Any],
                        overwrite: bool = False) -> dict[str, Any]:
    """Write ``metrics.json`` (``meta`` + the per-policy ``summary`` of
    :func:`~monai_baldsam.evaluation.volumes.summarize_volume_results`) and ``dice_vs_clicks.png`` of a volume
    evaluation; return the short report the CLI prints."""
    out = Path(outdir)
    atomic_write_text(out / METRICS_FILE, json.dumps({**meta, "policies": summary}, indent=1) + "\n",
                      overwrite=overwrite)
    n_volumes = max((s["n_volumes"] for s in summary.values()), default=0)
    plot_curves({p: s["mdice_curve"] for p, s in summary.items()}, out / "dice_vs_clicks.png", "mean Dice",
                f"{n_volumes} volumes, box first", overwrite=overwrite)
    keys = ("n_volumes", "mdice_at", "noc85", "noc90", "within_one_slice_after_box")
    return {"out": str(out), "runs": {p: {k: s.get(k) for k in keys} for p, s in summary.items()}}


def load_run(path: PathLike) -> dict[str, Any]:
    """Read a run's ``metrics.json`` (``path`` is the run folder or the file itself) and check its keys."""
    p = Path(path).expanduser()
    file = p / METRICS_FILE if p.is_dir() else p
    if not file.is_file():
        raise FileNotFoundError(f"no {METRICS_FILE} in {p}: give the output folder of a 'baldsam evaluate' run")
    try:
        summary = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from None
    missing = [k for k in REQUIRED_KEYS if k not in summary] if isinstance(summary, dict) else list(REQUIRED_KEYS)
    if missing:
        raise ValueError(f"{file} is not a 'baldsam evaluate' result: it lacks {', '.join(missing)}")
    summary["_source"] = str(file.parent)
    return summary


def run_label(summary: Mapping[str, Any]) -> str:
    """``"<first> + <policy>"``, e.g. ``"box + oracle"``."""
    return f"{summary['first']} + {summary['policy']}"


def _unique_labels(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        if len(labels) != len(summaries):
            raise ValueError(f"got {len(labels)} labels for {len(summaries)} runs: give one label per run")
        return list(labels)
    out = [run_label(s) for s in summaries]
    if len(set(out)) < len(out):  # same settings twice: tell them apart by folder
        out = [f"{label} ({Path(s.get('_source', '?')).name})" for label, s in zip(out, summaries)]
    return out


def comparison_rows(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None
                    ) -> list[dict[str, Any]]:
    """One row per run: ``run``, ``policy``, ``first``, ``n``, ``miou@1``, ``miou@5``, ``miou@10`` (None above the
    budget), ``noc85``, ``failures85``, ``auc``."""
    rows = []
    for label, s in zip(_unique_labels(summaries, labels), summaries):
        at = s["miou_at"]
        curve = s["miou_curve"]
        rows.append({"run": label, "policy": s["policy"], "first": s["first"], "n": s["n_images"],
                     **{f"miou@{k}": at.get(str(k), curve[k - 1] if k <= len(curve) else None) for k in (1, 5, 10)},
                     "noc85": s["noc85"], "failures85": s.get("failures_at_budget", {}).get("85"), "auc": s["auc"]})
    return rows


def comparison_table(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None) -> str:
    """A Markdown table of :func:`comparison_rows`."""
    head = ["run", "policy", "first", "n", "mIoU@1", "mIoU@5", "mIoU@10", "NoC85", "fail@85", "AUC"]

    def fmt(v: Any, digits: int = 3) -> str:
        return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in comparison_rows(summaries, labels):
        cells = [r["run"], r["policy"], r["first"], r["n"], fmt(r["miou@1"]), fmt(r["miou@5"]), fmt(r["miou@10"]),
                 fmt(r["noc85"], 2), fmt(r["failures85"]), fmt(r["auc"])]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def draw_comparison(ax: Any, summaries: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None,
                    title: str | None = None) -> None:
    """Draw one mIoU-vs-interactions line per run on a matplotlib ``ax``."""
    for n, (label, s) in enumerate(zip(_unique_labels(summaries, labels), summaries)):
        curve = s["miou_curve"]
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, linewidth=1.6, color=f"C{n % 10}",
                label=f"{label} (n={s['n_images']}, AUC {s['auc']:.3f})")
    longest = max(len(s["miou_curve"]) for s in summaries)
    ax.set(xlim=(0.8, longest + 0.2), ylim=(0.0, 1.0), xlabel="interaction (1 = first prompt)", ylabel="mIoU")
    if title:
        ax.set_title(title)
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")


def plot_comparison(summaries: Sequence[Mapping[str, Any]], path: PathLike, labels: Sequence[str] | None = None,
                    title: str | None = None, overwrite: bool = False) -> Path:
    """A PNG with one mIoU curve per run (see :func:`draw_comparison`)."""
    if not summaries:
        raise ValueError("nothing to compare: give at least one run")
    figure = _new_figure(7.0, 4.6)
    draw_comparison(figure.add_subplot(1, 1, 1), summaries, labels, title or "mIoU vs interactions")
    return _save_png(figure, path, overwrite)
