"""The rules by which active learning picks the next image, free of any server: how a BALD map becomes one image score
(:func:`mi_summary`) and how scored images are ranked (:func:`rank_candidates`).

The MONAI Label app's ``bald`` scoring method and its ``bald`` / ``usam`` strategies
(:mod:`monai_baldsam.monailabel.lib.scoring`, :mod:`monai_baldsam.monailabel.lib.strategy`) apply them to the
datastore; the active-learning simulation (:mod:`monai_baldsam.evaluation.active_learning`) applies the same rules
to a training pool, so what it measures is what the app does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["SCORE_KEYS", "TIE_TOLERANCE", "whole_picture_box", "mi_summary", "Candidate", "rank_candidates"]

#: what the ``bald`` ``score`` (used by the ``bald`` strategy) is: the mean MI or the top-fraction mean MI.
SCORE_KEYS = ("mean_mi_bits", "topk_mean_mi_bits")

#: scores closer than this count as a tie.
TIE_TOLERANCE = 1e-9

_BITS_PER_NAT = 1.0 / math.log(2.0)


def whole_picture_box(hw: tuple[int, int]) -> np.ndarray:
    """The prompt an unlabelled image is scored with: a box over the whole picture (slice) of size ``(H, W)``,
    ``(x0, y0, x1, y1)`` in pixels."""
    height, width = hw
    return np.array([0.0, 0.0, width - 1.0, height - 1.0])


def mi_summary(mi_nats: Sequence[np.ndarray], top_fraction: float) -> tuple[float, float]:
    """Mean MI and mean of the highest ``top_fraction`` of pixels (at least one) over all maps, in bits."""
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    values = np.concatenate([np.asarray(m, dtype=np.float64).reshape(-1) for m in mi_nats]) * _BITS_PER_NAT
    if values.size == 0:
        raise ValueError("no MI values to summarise")
    k = max(1, int(math.ceil(top_fraction * values.size)))
    top = np.partition(values, values.size - k)[values.size - k:]
    return float(values.mean()), float(top.mean())


@dataclass(frozen=True)
class Candidate:
    """An unlabeled image: its id, score (``None`` when unscored) and when the strategy last served it."""

    image_id: str
    score: float | None
    served_ts: float


def rank_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Scored candidates, best first: highest score; within ``TIE_TOLERANCE``, least recently served, then id."""
    scored = [c for c in candidates if c.score is not None and np.isfinite(c.score)]
    if not scored:
        return []
    scored.sort(key=lambda c: c.image_id)
    scored.sort(key=lambda c: c.served_ts)
    scored.sort(key=lambda c: -float(c.score))  # stable: equal scores keep the served/id order
    ranked: list[Candidate] = []
    i = 0
    while i < len(scored):  # scores within the tolerance count as one tie group
        j = i + 1
        while j < len(scored) and abs(float(scored[i].score) - float(scored[j].score)) <= TIE_TOLERANCE:
            j += 1
        ranked += sorted(scored[i:j], key=lambda c: (c.served_ts, c.image_id))
        i = j
    return ranked
