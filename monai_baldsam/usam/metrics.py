"""How well a score predicts mask quality: Spearman correlation and ranking AUC (pure functions, no I/O).

* :func:`spearman`: the rank correlation between a score and the true IoU (average ranks for ties).
* :func:`ranking_auc`: the probability that of two masks with different true IoU the better one gets the higher
  score (ties in the score count one half): the AUC of the pairwise ranking, 0.5 for a random score, 1 for a
  perfect ranking (Harrell's concordance index).
* :func:`detection_auroc`: the AUROC of telling masks with true IoU below ``threshold`` from the others by a low
  score.

Uncertainty scores (entropy, BALD) rank the other way: pass ``-score``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["spearman", "ranking_auc", "detection_auroc"]


def _pair(score: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"score and true IoU must have the same length, got {s.size} and {t.size}")
    keep = np.isfinite(s) & np.isfinite(t)
    return s[keep], t[keep]


def spearman(score: np.ndarray, true: np.ndarray) -> float:
    """Spearman's rho between ``score`` and ``true`` (non-finite pairs dropped); NaN when either is constant."""
    s, t = _pair(score, true)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(stats.spearmanr(s, t).statistic)


def ranking_auc(score: np.ndarray, true: np.ndarray, min_difference: float = 0.0) -> float:
    """Fraction of pairs with ``|true_i - true_j| > min_difference`` that ``score`` orders like ``true`` (ties in
    the score count 1/2); NaN without such pairs."""
    s, t = _pair(score, true)
    ds = s[:, None] - s[None, :]
    dt = t[:, None] - t[None, :]
    pairs = dt > min_difference
    if not pairs.any():
        return float("nan")
    concordant = (ds[pairs] > 0).sum() + 0.5 * (ds[pairs] == 0).sum()
    return float(concordant / pairs.sum())


def detection_auroc(score: np.ndarray, true: np.ndarray, threshold: float = 0.8) -> float:
    """AUROC of flagging masks with ``true < threshold`` by a low ``score``; NaN when all masks fall on one side."""
    s, t = _pair(score, true)
    bad = t < threshold
    if bad.all() or not bad.any():
        return float("nan")
    ranks = stats.rankdata(-s)  # a low score ranks high as "bad"
    n_bad, n_good = int(bad.sum()), int((~bad).sum())
    return float((ranks[bad].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))
