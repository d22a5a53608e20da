"""Interactive-segmentation metrics: pure, typed, batch-first functions of masks and IoU curves.

Conventions:

* Masks are boolean arrays ``(..., H, W)``; scores reduce over the last two axes and keep the leading (batch) axes.
* An IoU curve is ``(B, N)``: ``curves[b, k - 1]`` is image ``b``'s IoU after interaction ``k`` (``k = 1..N``).
  Interactions are counted from the first prompt: with a box first, interaction 1 is the box alone and
  interaction 5 is the box plus four clicks.
* ``NoC@t`` (number of clicks to reach IoU ``t``) is the first interaction ``k`` with ``IoU_k >= t``; an image
  that never reaches ``t`` within the budget ``N`` counts as ``N`` (and is counted in :func:`failures_at_budget`).
* ``mIoU@k`` is the mean over images of ``IoU_k``.
* The area under the mIoU-vs-interactions curve is normalised by the number of interactions:
  ``AUC = (1 / N) * sum_{k=1..N} mIoU@k``, the area under the step curve on ``[0, N]`` divided by ``N``. It lies
  in ``[0, 1]``, equals the final IoU for a flat curve, and rewards reaching a high IoU early.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "NOC_THRESHOLDS",
    "MIOU_AT",
    "iou_score",
    "dice_score",
    "check_curves",
    "number_of_clicks",
    "failures_at_budget",
    "miou_at",
    "mean_curve",
    "area_under_curve",
    "summarize_curves",
]

#: IoU thresholds of the standard NoC@80/85/90.
NOC_THRESHOLDS: tuple[float, ...] = (0.80, 0.85, 0.90)
#: Interaction numbers of the standard mIoU@k table (those above the budget are left out).
MIOU_AT: tuple[int, ...] = (1, 3, 5, 10, 20)


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred).astype(bool, copy=False), np.asarray(truth).astype(bool, copy=False)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction of shape {pred.shape} and ground truth of shape {truth.shape} differ: "
                         "compare masks of the same (..., H, W) shape")
    if pred.ndim < 2:
        raise ValueError(f"masks must have at least two (H, W) axes, got shape {pred.shape}")
    return pred, truth


def iou_score(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Intersection over union of boolean masks ``(..., H, W)`` -> ``(...)`` float64.

    Two empty masks agree perfectly: their IoU is 1.
    """
    pred, truth = _pair(pred, truth)
    inter = np.logical_and(pred, truth).sum(axis=(-2, -1), dtype=np.int64)
    union = np.logical_or(pred, truth).sum(axis=(-2, -1), dtype=np.int64)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def dice_score(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice ``2|A & B| / (|A| + |B|)`` of boolean masks ``(..., H, W)`` -> ``(...)``; 1 for two empty masks."""
    pred, truth = _pair(pred, truth)
    inter = np.logical_and(pred, truth).sum(axis=(-2, -1), dtype=np.int64)
    total = pred.sum(axis=(-2, -1), dtype=np.int64) + truth.sum(axis=(-2, -1), dtype=np.int64)
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)


def check_curves(curves: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``(B, N)`` float64 IoU curves, validated: at least one image and one interaction, finite values in [0, 1]."""
    arr = np.asarray(curves, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"IoU curves must be (images, interactions) with at least one of each, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError("IoU curves must hold finite values in [0, 1]")
    return arr


def _check_threshold(threshold: float) -> float:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"an IoU threshold must be in (0, 1], got {threshold} (NoC@85 is threshold 0.85)")
    return float(threshold)


def number_of_clicks(curves: np.ndarray, threshold: float) -> np.ndarray:
    """NoC@threshold per image: ``(B, N)`` curves -> ``(B,)`` int64 in ``[1, N]``.

    The first interaction ``k`` (1-based) with ``IoU_k >= threshold``; ``N`` (the budget) when never reached.
    """
    arr = check_curves(curves)
    hit = arr >= _check_threshold(threshold)
    first = np.argmax(hit, axis=1) + 1
    return np.where(hit.any(axis=1), first, arr.shape[1]).astype(np.int64)


def failures_at_budget(curves: np.ndarray, threshold: float) -> int:
    """How many images never reach ``threshold`` within the ``N`` interactions of ``curves`` ``(B, N)``."""
    arr = check_curves(curves)
    return int((~(arr >= _check_threshold(threshold)).any(axis=1)).sum())


def miou_at(curves: np.ndarray, interaction: int) -> float:
    """Mean IoU over images after interaction ``interaction`` (1-based, ``1..N``)."""
    arr = check_curves(curves)
    if not 1 <= interaction <= arr.shape[1]:
        raise ValueError(f"interaction must be in 1..{arr.shape[1]} (the budget of these curves), got {interaction}")
    return float(arr[:, interaction - 1].mean())


def mean_curve(curves: np.ndarray) -> np.ndarray:
    """``(B, N)`` -> ``(N,)`` mIoU after each interaction."""
    return check_curves(curves).mean(axis=0)


def area_under_curve(curves: np.ndarray) -> np.ndarray:
    """Normalised area under each IoU curve: ``(B, N)`` -> ``(B,)``, ``(1 / N) * sum_k IoU_k`` in [0, 1].

    The mean of these per-image areas is the area under the mIoU curve (the formula is linear).
    """
    return check_curves(curves).mean(axis=1)


def summarize_curves(curves: np.ndarray, thresholds: Sequence[float] = NOC_THRESHOLDS,
                     at: Sequence[int] = MIOU_AT) -> dict[str, object]:
    """The standard table of one run from its IoU curves ``(B, N)``.

    Returns a JSON-ready dict: ``n_images``, ``clicks`` (= N), ``noc80``/``noc85``/``noc90`` (mean NoC),
    ``failures_at_budget`` (threshold label -> count), ``miou_at`` (str(k) -> mIoU@k for each ``k`` in ``at``
    that is ``<= N``, plus ``N`` itself), ``miou_curve`` (``N`` values) and ``auc``.
    """
    arr = check_curves(curves)
    n = arr.shape[1]
    out: dict[str, object] = {"n_images": int(arr.shape[0]), "clicks": int(n)}
    failures: dict[str, int] = {}
    for t in thresholds:
        label = f"{round(100 * t):d}"
        out[f"noc{label}"] = float(number_of_clicks(arr, t).mean())
        failures[label] = failures_at_budget(arr, t)
    out["failures_at_budget"] = failures
    ks = sorted({k for k in at if 1 <= k <= n} | {n})
    out["miou_at"] = {str(k): miou_at(arr, k) for k in ks}
    out["miou_curve"] = [float(v) for v in mean_curve(arr)]
    out["auc"] = float(area_under_curve(arr).mean())
    return out
