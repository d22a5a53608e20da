"""Acquisition scores for per-pixel Bernoulli predictions: entropies, BALD and the masked argmax click.

Every function here is pure, typed and batch-first, with no I/O and no randomness:

- ``probs`` of shape ``(S, B, H, W)`` holds ``S`` Monte Carlo samples of the foreground probability
  (any trailing shape ``(S, *batch)`` works; the sample axis is always axis 0);
- a mean probability map ``p`` has shape ``(B, H, W)``.

All entropies are in nats. BALD (Houlsby et al., 2011) is the mutual information between the pixel's
label and the model parameters, ``I = H[E p] - E H[p]``: high where the samples disagree, zero where they
all agree, whatever the common value.

:func:`gaussian_logit_uncertainty_maps` computes the same four maps without sampling when the logit of each
pixel is Gaussian (as it is under a last-layer Laplace posterior), by Gauss-Hermite quadrature: a
noise-free BALD map, so that its argmax does not depend on a random seed.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage

__all__ = [
    "binary_entropy",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "uncertainty_maps",
    "gaussian_logit_uncertainty_maps",
    "masked_argmax",
    "neighbourhood_mean",
    "best_click",
    "best_region_click",
    "exclude_squares",
    "UNCERTAINTY_KEYS",
]

UNCERTAINTY_KEYS: tuple[str, ...] = ("mean_probability", "predictive_entropy", "expected_entropy", "mutual_information")
"""The keys of the dictionaries returned by :func:`uncertainty_maps` and :func:`gaussian_logit_uncertainty_maps`."""


def _check_samples(probs: torch.Tensor) -> None:
    if not isinstance(probs, torch.Tensor):
        raise ValueError(f"probs must be a torch.Tensor of shape (S, B, H, W), got {type(probs).__name__}")
    if probs.ndim < 2 or probs.shape[0] < 1:
        raise ValueError(
            f"probs must have a leading sample axis and at least one batch axis, (S, B, H, W); got shape "
            f"{tuple(probs.shape)} (add the sample axis with probs.unsqueeze(0) for a single sample)"
        )
    if not probs.is_floating_point():
        raise ValueError(f"probs must be a floating-point tensor of probabilities, got dtype {probs.dtype}")


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of Bernoulli(``p``), elementwise: ``-p log p - (1 - p) log(1 - p)``.

    Exactly 0 at ``p`` in {0, 1} (``0 log 0 = 0``), maximal (``log 2``) at ``p = 0.5``. Values are clamped to
    ``[0, 1]`` first, so float round-off just outside the interval gives 0 rather than NaN.
    """
    if not isinstance(p, torch.Tensor) or not p.is_floating_point():
        raise ValueError(f"p must be a floating-point torch.Tensor of probabilities, got {type(p).__name__}")
    p = p.clamp(0.0, 1.0)
    q = 1.0 - p
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(q, q))


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """``H[E_s p_s]``: entropy of the sample-mean probability; ``(S, B, H, W) -> (B, H, W)``."""
    _check_samples(probs)
    return binary_entropy(probs.mean(dim=0))


def expected_entropy(probs: torch.Tensor) -> torch.Tensor:
    """``E_s H[p_s]``: mean entropy of the samples (aleatoric part); ``(S, B, H, W) -> (B, H, W)``."""
    _check_samples(probs)
    return binary_entropy(probs).mean(dim=0)


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """BALD score ``H[E p] - E H[p]`` (epistemic part), clamped at 0 against round-off; ``(S, B, H, W) -> (B, H, W)``.

    Never exceeds :func:`predictive_entropy` (the expected entropy is non-negative).
    """
    _check_samples(probs)
    return (binary_entropy(probs.mean(dim=0)) - binary_entropy(probs).mean(dim=0)).clamp_min(0.0)


def uncertainty_maps(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """All four maps of ``probs (S, B, H, W)`` at once, each ``(B, H, W)``, keyed by :data:`UNCERTAINTY_KEYS`.

    ``mean_probability`` is the Monte Carlo predictive ``E_s p_s``; the entropies follow from it.
    """
    _check_samples(probs)
    mean = probs.mean(dim=0)
    predictive = binary_entropy(mean)
    expected = binary_entropy(probs).mean(dim=0)
    return {
        "mean_probability": mean,
        "predictive_entropy": predictive,
        "expected_entropy": expected,
        "mutual_information": (predictive - expected).clamp_min(0.0),
    }


@lru_cache(maxsize=8)
def _hermgauss(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite.hermgauss(n_points)
    return nodes, weights / math.sqrt(math.pi)


def gaussian_logit_uncertainty_maps(
    logit_mean: torch.Tensor, logit_variance: torch.Tensor, n_points: int = 32
) -> dict[str, torch.Tensor]:
    """The maps of :func:`uncertainty_maps` for a Gaussian logit ``f ~ N(logit_mean, logit_variance)`` per pixel.

    The expectations ``E sigmoid(f)`` and ``E H[sigmoid(f)]`` are computed by ``n_points``-node Gauss-Hermite
    quadrature instead of sampling, so the result is deterministic. It equals the limit of
    ``uncertainty_maps(probs)`` for ``probs = sigmoid(f_s)`` with infinitely many samples of the same marginals
    (BALD per pixel depends only on the pixel's marginal predictive distribution).

    Args:
        logit_mean: ``(B, H, W)`` (any shape) mean of the logit.
        logit_variance: same shape, non-negative variance of the logit.
        n_points: number of quadrature nodes (32 is accurate to ~1e-6 for variances up to ~100).

    Returns:
        dict with the keys of :data:`UNCERTAINTY_KEYS`, each of the input's shape.
    """
    if not isinstance(logit_mean, torch.Tensor) or not isinstance(logit_variance, torch.Tensor):
        raise ValueError("logit_mean and logit_variance must be torch.Tensors")
    if logit_mean.shape != logit_variance.shape:
        raise ValueError(
            f"logit_mean and logit_variance must have the same shape, got {tuple(logit_mean.shape)} and "
            f"{tuple(logit_variance.shape)}"
        )
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    if bool((logit_variance < 0).any()):
        raise ValueError("logit_variance must be non-negative")
    nodes_np, weights_np = _hermgauss(int(n_points))
    nodes = torch.as_tensor(nodes_np, dtype=logit_mean.dtype, device=logit_mean.device)
    weights = torch.as_tensor(weights_np, dtype=logit_mean.dtype, device=logit_mean.device)
    shape = (-1,) + (1,) * logit_mean.ndim
    logits = logit_mean.unsqueeze(0) + torch.sqrt(2.0 * logit_variance).unsqueeze(0) * nodes.view(shape)
    weights = weights.view(shape)
    mean = (weights * torch.sigmoid(logits)).sum(dim=0).clamp(0.0, 1.0)
    predictive = binary_entropy(mean)
    expected = (weights * binary_entropy(torch.sigmoid(logits))).sum(dim=0)
    return {
        "mean_probability": mean,
        "predictive_entropy": predictive,
        "expected_entropy": expected,
        "mutual_information": (predictive - expected).clamp_min(0.0),
    }


def _window_sum(x: torch.Tensor, radius: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over ``[i - radius, i + radius]`` (clipped) along ``dim``, and the window lengths."""
    n = x.shape[dim]
    cumulative = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x.cumsum(dim)], dim)
    index = torch.arange(n, device=x.device)
    high, low = (index + radius + 1).clamp_max(n), (index - radius).clamp_min(0)
    return cumulative.index_select(dim, high) - cumulative.index_select(dim, low), high - low


def neighbourhood_mean(score: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``score`` over the ``(2 radius + 1)``-pixel square around each pixel (clipped at the border).

    A click changes the prediction over a neighbourhood, not at one pixel, so the information a click brings is
    better measured by the uncertainty around it than by the single most uncertain pixel, which tends to sit on
    the predicted boundary. Separable running sums: the cost does not grow with ``radius``.

    Args:
        score: ``(..., H, W)`` floating-point map (batch dimensions first).
        radius: half-width in pixels; 0 returns ``score`` unchanged.

    Returns:
        The neighbourhood means, same shape and dtype as ``score``.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels, got {radius}")
    if radius == 0:
        return score
    if score.ndim < 2:
        raise ValueError(f"score must have at least 2 dimensions (..., H, W), got shape {tuple(score.shape)}")
    rows, row_count = _window_sum(score, radius, score.ndim - 2)
    both, col_count = _window_sum(rows, radius, score.ndim - 1)
    return both / (row_count[:, None] * col_count[None, :]).to(score.dtype)


def best_click(score: np.ndarray, valid: np.ndarray, radius: int = 0, gate: float = 0.0
               ) -> tuple[tuple[int, ...], float] | None:
    """The click that a neighbourhood-pooled uncertainty map ranks first, over a stack of slices.

    Candidates are the ``valid`` pixels whose own score reaches ``gate`` times the highest valid score (so the
    click lands where the label itself is uncertain, not in the confident middle of a ring of boundary uncertainty);
    among them the one with the highest :func:`neighbourhood_mean` (in-plane, ``radius`` pixels) wins. Ties go to the
    first in C order. Only the crop around the candidates is pooled, so a BALD click stays cheap at full resolution.

    Args:
        score: ``(..., H, W)`` non-negative map (a BALD or entropy map; leading axes are slices).
        valid: bool, same shape: where a click may go.
        radius: neighbourhood half-width in pixels (0: the pixel itself).
        gate: in ``[0, 1]``.

    Returns:
        ``(index, pooled score)`` with ``index`` a tuple into ``score``, or ``None`` when no pixel is valid.
    """
    score = np.asarray(score)
    valid = np.asarray(valid, dtype=bool)
    if score.shape != valid.shape or score.ndim < 2:
        raise ValueError(f"score and valid must have one shape (..., H, W), got {score.shape} and {valid.shape}")
    if not 0.0 <= gate <= 1.0:
        raise ValueError(f"gate is a fraction of the highest score in [0, 1], got {gate}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels, got {radius}")
    if not valid.any():
        return None
    candidates = valid & (score >= gate * score[valid].max()) if gate > 0.0 else valid
    flat = np.flatnonzero(candidates)  # ascending: argmax keeps the first in C order
    if radius == 0:
        pooled = score.reshape(-1)[flat].astype(np.float64)
    else:
        height, width = score.shape[-2:]
        s, y, x = np.unravel_index(flat, (score.size // (height * width), height, width))
        # pool only the crop that holds the candidates' windows (the gate keeps them few and close together); a
        # window clipped by the crop is clipped by the image there, so the means equal those over the whole image
        top, left = max(int(y.min()) - radius, 0), max(int(x.min()) - radius, 0)
        bottom, right = min(int(y.max()) + radius + 1, height), min(int(x.max()) + radius + 1, width)
        crop = score.reshape(-1, height, width)[:, top:bottom, left:right].astype(np.float64)
        pooled = neighbourhood_mean(torch.from_numpy(crop), radius).numpy()[s, y - top, x - left]
    best = int(np.argmax(pooled))
    index = tuple(int(v) for v in np.unravel_index(int(flat[best]), score.shape))
    return index, float(pooled[best])


def exclude_squares(valid: np.ndarray, centres: np.ndarray, radius: int) -> np.ndarray:
    """``valid`` ``(..., H, W)`` without the squares of half-width ``radius`` around ``centres`` ``(K, valid.ndim)``
    (full indices: leading axes select the plane, the last two are the square's centre).

    Earlier clicks answered their neighbourhood, so a click policy should not ask about it again. Returns ``valid``
    itself when ``radius`` is 0, there is no centre, or the squares would leave no pixel at all (the exclusion is
    then dropped rather than leaving nothing to click); otherwise a new array.
    """
    valid = np.asarray(valid, dtype=bool)
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, valid.ndim)
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels, got {radius}")
    if radius == 0 or len(centres) == 0:
        return valid
    allowed = valid.copy()
    for *plane, row, col in centres:
        allowed[(*plane, slice(max(0, row - radius), row + radius + 1), slice(max(0, col - radius), col + radius + 1))] \
            = False
    return allowed if allowed.any() else valid


def best_region_click(score: np.ndarray, valid: np.ndarray, mask: np.ndarray, gate: float = 0.5
                      ) -> tuple[tuple[int, ...], float] | None:
    """The centre of the uncertain region with the most uncertainty mass, on one side of the predicted boundary.

    The uncertain pixels are the ``valid`` ones whose score reaches ``gate`` times the highest valid score. They are
    split by the current prediction ``mask`` (inside / outside: one click corrects one side of the boundary) and
    into in-plane 8-connected regions; the region with the largest summed score wins, and the click goes to its
    pixel farthest from the region's edge (the RITM oracle's rule, applied to where the model is uncertain rather
    than to where it is wrong). The predicted boundary itself, where the score peaks and the answer is a coin flip,
    is thereby avoided unless the uncertain band is one pixel wide. Ties go to the first in C order.

    Args:
        score: ``(..., H, W)`` non-negative map (BALD, entropy; leading axes are slices, regions stay in-plane).
        valid: bool, same shape: where a click may go.
        mask: bool, same shape: the current prediction.
        gate: in ``(0, 1]``.

    Returns:
        ``(index, region mass)`` with ``index`` a tuple into ``score``, or ``None`` when no pixel is valid.
    """
    score = np.asarray(score, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if score.shape != valid.shape or score.shape != mask.shape or score.ndim < 2:
        raise ValueError(f"score, valid and mask must have one shape (..., H, W), got {score.shape}, {valid.shape} "
                         f"and {mask.shape}")
    if not 0.0 < gate <= 1.0:
        raise ValueError(f"gate is a fraction of the highest score in (0, 1], got {gate}")
    if not valid.any():
        return None
    uncertain = valid & (score >= gate * score[valid].max())
    height, width = score.shape[-2:]
    flat_shape = (-1, height, width)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # 8-connected in-plane, never across slices
    best: tuple[float, np.ndarray, int] | None = None
    for side in (uncertain & mask, uncertain & ~mask):
        labels, count = ndimage.label(side.reshape(flat_shape), structure=structure)
        if count == 0:
            continue
        mass = ndimage.sum_labels(score.reshape(flat_shape), labels, index=np.arange(1, count + 1))
        top = int(np.argmax(mass))
        if best is None or mass[top] > best[0]:
            best = (float(mass[top]), labels, top + 1)
    if best is None:  # every valid score is 0 and gate > 0 leaves them all: fall back to the first valid pixel
        index = tuple(int(v) for v in np.unravel_index(int(np.flatnonzero(valid)[0]), score.shape))
        return index, 0.0
    mass, labels, label = best
    region = labels == label
    s, rows, cols = np.nonzero(region)
    plane = int(s[0])
    top, left = int(rows.min()), int(cols.min())
    crop = np.pad(region[plane, top:rows.max() + 1, left:cols.max() + 1], 1)
    depth = ndimage.distance_transform_edt(crop)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    index = tuple(int(v) for v in np.unravel_index(plane * height * width + (top + y) * width + left + x,
                                                   score.shape))
    return index, mass


def masked_argmax(score: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per batch item, the pixel with the highest ``score`` among the ``valid`` pixels.

    Ties are broken deterministically: the first maximal pixel in row-major order (smallest ``y``, then
    smallest ``x``), on every device.

    Args:
        score: ``(B, H, W)`` floating-point scores (e.g. a BALD map); NaN is not allowed at valid pixels.
        valid: ``(B, H, W)`` bool, the candidate pixels.

    Returns:
        ``(B, 2)`` int64 tensor of ``(x, y)`` pixel coordinates in the score map's frame (``x`` = column,
        ``y`` = row), on ``score``'s device.

    Raises:
        ValueError: on mismatched shapes, a non-bool mask, NaN at a valid pixel, or a batch item without
            any valid pixel.
    """
    if not isinstance(score, torch.Tensor) or score.ndim != 3:
        raise ValueError(f"score must be a (B, H, W) tensor, got shape {tuple(getattr(score, 'shape', ()))}")
    if not isinstance(valid, torch.Tensor) or valid.shape != score.shape:
        raise ValueError(
            f"valid must be a (B, H, W) tensor with the shape of score {tuple(score.shape)}, got "
            f"{tuple(getattr(valid, 'shape', ()))}"
        )
    if valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool mask, got dtype {valid.dtype} (use valid.bool() or valid > 0)")
    batch, height, width = score.shape
    valid = valid.to(score.device)
    has_valid = valid.flatten(1).any(dim=1)
    if not bool(has_valid.all()):
        empty = torch.nonzero(~has_valid).flatten().tolist()
        raise ValueError(f"batch items {empty} have no valid pixel: widen the candidate mask or skip these items")
    if bool(torch.isnan(score[valid]).any()):
        raise ValueError("score has NaN at valid pixels; mask them out or replace them before taking the argmax")
    flat_score = score.flatten(1)
    flat_valid = valid.flatten(1)
    lowest = -math.inf if score.is_floating_point() else torch.iinfo(score.dtype).min
    masked = flat_score.masked_fill(~flat_valid, lowest)
    best = masked.max(dim=1, keepdim=True).values
    is_best = flat_valid & (masked == best)
    order = torch.arange(height * width, device=score.device).expand(batch, -1)
    index = torch.where(is_best, order, height * width).min(dim=1).values
    return torch.stack((index % width, index // width), dim=1)
