"""Evaluation runs compared image by image: the reference policy (``bald``) against every other policy run on the
same data after the same kind of first prompt, with a paired bootstrap interval of the mean IoU difference at fixed
budgets.

Works on the summaries of ``metrics.json`` (:func:`~monai_baldsam.evaluation.report.load_run`). Runs are grouped by
first prompt and data folder (``first`` and ``data``; runs without ``data`` form one group per first prompt), so
one ``baldsam compare`` can hold several data sets. Within a group with a reference run, images are paired by case
name (``per_image[i]["name"]``) and every run must hold the same images, or the comparison is refused (a missing
image would silently change both means). Each interval has its own generator,
``np.random.default_rng(np.random.SeedSequence([seed, crc32(first), crc32(reference policy), crc32(other policy),
k]))`` (``zlib.crc32`` of the UTF-8 names), so it does not depend on which other runs are compared.
"""

from __future__ import annotations

import zlib
from typing import Any, Mapping, Sequence

import numpy as np

from monai_baldsam.evaluation.report import error_click_counts, run_label
from monai_baldsam.evaluation.statistics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, paired_bootstrap

__all__ = ["PAIRED_AT", "DEFAULT_REFERENCE", "per_image_at", "check_same_images", "paired_comparisons",
           "error_click_shares", "paired_table", "error_click_table"]

#: Budgets (interactions, first prompt included) of the paired intervals by default: mIoU@5 and mIoU@10.
PAIRED_AT: tuple[int, ...] = (5, 10)
#: The policy every other one is compared against by default.
DEFAULT_REFERENCE = "bald"


def per_image_at(summary: Mapping[str, Any], interaction: int) -> dict[str, float]:
    """Case name -> IoU after ``interaction`` (1-based) of one run's ``per_image`` entries."""
    values: dict[str, float] = {}
    source = summary.get("_source", run_label(summary))
    for item in summary["per_image"]:
        name, curve = str(item["name"]), item["iou"]
        if name in values:
            raise ValueError(f"run {source} lists image {name!r} twice: case names must be unique to pair images")
        if not 1 <= interaction <= len(curve):
            raise ValueError(f"run {source} has {len(curve)} interactions for image {name!r}, fewer than "
                             f"{interaction}: evaluate with --clicks {interaction} or more")
        values[name] = float(curve[interaction - 1])
    return values


def check_same_images(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[str]:
    """The sorted case names shared by every run; ValueError naming the runs and images when the sets differ."""
    sets = [{str(item["name"]) for item in s["per_image"]} for s in summaries]
    if not sets:
        raise ValueError("no runs to pair")
    for label, names in zip(labels[1:], sets[1:]):
        if names != sets[0]:
            only_first, only_other = sorted(sets[0] - names), sorted(names - sets[0])
            raise ValueError(
                f"runs {labels[0]!r} and {label!r} hold different images ({len(sets[0])} and {len(names)}; only in "
                f"the first: {only_first[:5]}{' ...' if len(only_first) > 5 else ''}, only in the second: "
                f"{only_other[:5]}{' ...' if len(only_other) > 5 else ''}): paired intervals need the same images in "
                "every run; evaluate them on the same data and --limit, or compare with --no-stats")
    return sorted(sets[0])


def _rng(seed: int, first: str, reference: str, other: str, interaction: int) -> np.random.Generator:
    words = [zlib.crc32(w.encode()) for w in (first, reference, other)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words, int(interaction)]))


def paired_comparisons(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str],
                       reference: str = DEFAULT_REFERENCE, at: Sequence[int] = PAIRED_AT,
                       n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                       seed: int = 0) -> list[dict[str, Any]]:
    """Every (reference run, other run) pair on the same data after the same kind of first prompt, at every budget of
    ``at`` that both runs reach.

    Args:
        summaries: run summaries (``metrics.json`` content); ``labels``: one display label per run.
        reference: the policy compared against the others (each of its runs against every other run of its group;
            two runs of the reference policy are compared once).
        at: budgets ``k`` of the differences of IoU after interaction ``k``.
        n_resamples, confidence, seed: the bootstrap's (see
            :func:`~monai_baldsam.evaluation.statistics.paired_bootstrap`).
    Returns:
        One JSON-ready dict per pair and budget: ``first``, ``data``, ``reference``/``other`` (labels), their
        policies, ``at``, ``reference_miou``, ``other_miou``, and the fields of
        :class:`~monai_baldsam.evaluation.statistics.PairedDifference` (``mean`` = reference minus other).
        Empty when no run has the reference policy.
    Raises:
        ValueError: runs of a group with a reference run hold different images.
    """
    if len(labels) != len(summaries):
        raise ValueError(f"got {len(labels)} labels for {len(summaries)} runs: give one label per run")
    if seed < 0:
        raise ValueError(f"the bootstrap seed must be a non-negative integer, got {seed}")
    rows: list[dict[str, Any]] = []
    keys = [(str(s["first"]), s.get("data")) for s in summaries]
    for first, data in dict.fromkeys(keys):
        group = [n for n, key in enumerate(keys) if key == (first, data)]
        refs = [n for n in group if summaries[n]["policy"] == reference]
        if not refs:
            continue
        names = check_same_images([summaries[n] for n in group], [labels[n] for n in group])
        for r in refs:
            for o in group:
                if o == r or (o in refs and o < r):
                    continue
                budget = min(len(summaries[r]["miou_curve"]), len(summaries[o]["miou_curve"]))
                for k in (k for k in at if 1 <= k <= budget):
                    a_by_name, b_by_name = per_image_at(summaries[r], k), per_image_at(summaries[o], k)
                    a = np.array([a_by_name[name] for name in names])
                    b = np.array([b_by_name[name] for name in names])
                    policy_r, policy_o = str(summaries[r]["policy"]), str(summaries[o]["policy"])
                    diff = paired_bootstrap(a, b, n_resamples, confidence, _rng(seed, first, policy_r, policy_o, k))
                    rows.append({"first": first, "data": data, "reference": labels[r], "other": labels[o],
                                 "reference_policy": policy_r, "other_policy": policy_o, "at": int(k),
                                 "reference_miou": float(a.mean()), "other_miou": float(b.mean()),
                                 **diff.to_dict()})
    return rows


def error_click_shares(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per run: ``run``, ``policy``, ``first``, and ``clicks``/``on_error``/``share`` of its policy clicks on an error
    pixel (from ``clicks_on_error``; all None for runs written before it was recorded)."""
    rows = []
    for label, s in zip(labels, summaries):
        if any("clicks_on_error" in item for item in s["per_image"]):
            counts: dict[str, Any] = error_click_counts(s["per_image"])
        else:
            counts = {"clicks": None, "on_error": None, "share": None}
        rows.append({"run": label, "policy": s["policy"], "first": s["first"], **counts})
    return rows


def _fmt(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def paired_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`paired_comparisons` (``*`` marks a difference beyond noise)."""
    if not rows:
        return ""
    level = round(100 * float(rows[0]["confidence"]))
    head = ["first", "reference", "other", "k", "n", "mIoU@k ref", "mIoU@k other", "ref - other", f"{level} % interval",
            "beyond noise"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["first"], r["reference"], r["other"], r["at"], r["n_images"], _fmt(r["reference_miou"]),
                 _fmt(r["other_miou"]), _fmt(r["mean"], sign=True),
                 f"[{_fmt(r['low'], sign=True)}, {_fmt(r['high'], sign=True)}]", "*" if r["beyond_noise"] else ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def error_click_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`error_click_shares`."""
    head = ["run", "policy", "first", "policy clicks", "on an error pixel", "share"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["run"], r["policy"], r["first"], "-" if r["clicks"] is None else r["clicks"],
                 "-" if r["on_error"] is None else r["on_error"], _fmt(r["share"])]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)
