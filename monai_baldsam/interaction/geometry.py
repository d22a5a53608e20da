"""Click geometry of the simulated user: pure, typed, batch-first functions of masks (no model, no I/O).

Masks are boolean ``(B, H, W)`` arrays in SAM's orientation (rows, columns); points come back in ``slice_xy``
``(x, y)`` = (column, row) pixels, boxes as ``(x0, y0, x1, y1)``.

* :func:`padded_distance_transform` is the distance of each pixel of a region to the region's boundary, the
  image border counting as boundary (the region is padded by one background pixel first, as in RITM/f-BRS).
* :func:`farthest_points` is the standard first click: the interior point farthest from the boundary.
* :func:`oracle_clicks` is the RITM/f-BRS simulated user; :func:`random_error_clicks` and :func:`random_clicks`
  are its seeded random counterparts.
* :func:`mask_boxes` / :func:`jitter_boxes` give the ground-truth box prompt.

Ties are broken by a fixed rule: the first pixel in row-major order (smallest row, then smallest column), which
is what ``np.argmax`` over the flattened ``(H, W)`` array returns.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

__all__ = [
    "NO_CLICK",
    "padded_distance_transform",
    "farthest_points",
    "oracle_clicks",
    "random_error_clicks",
    "random_clicks",
    "mask_boxes",
    "jitter_boxes",
]

#: Label of "no click" in the batch outputs of this module (a perfect prediction, or no valid pixel left).
NO_CLICK = -1


def _masks(masks: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim != 3:
        raise ValueError(f"{what} must be a batch of masks (B, H, W), got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def _same_shape(reference: np.ndarray, other: np.ndarray | None, what: str) -> np.ndarray:
    if other is None:
        return np.ones_like(reference, dtype=bool)
    arr = _masks(other, what)
    if arr.shape != reference.shape:
        raise ValueError(f"{what} has shape {arr.shape} but the masks have {reference.shape}")
    return arr


def padded_distance_transform(regions: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel of ``regions`` ``(B, H, W)`` to the nearest pixel outside it.

    Each region is padded by one background pixel on every side, so the image border counts as boundary: a pixel
    on the border has distance 1, like one next to a background pixel. Pixels outside the region get 0.
    """
    arr = _masks(regions, "regions")
    out = np.zeros(arr.shape, dtype=np.float64)
    for b, region in enumerate(arr):
        if region.any():
            out[b] = distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    return out


def _argmax_xy(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-major first argmax of each ``(H, W)`` score map -> ``(B, 2)`` int64 ``(x, y)`` and ``(B,)`` maxima."""
    batch, _, width = scores.shape
    flat = scores.reshape(batch, -1)
    index = np.argmax(flat, axis=1)
    best = flat[np.arange(batch), index]
    return np.stack([index % width, index // width], axis=1).astype(np.int64), best


def farthest_points(regions: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The point of each region farthest from its boundary (padded distance transform), among ``valid`` pixels.

    Args:
        regions: ``(B, H, W)`` bool.
        valid: ``(B, H, W)`` bool, pixels that may be chosen (default: all). The distance is computed on the
            whole region; invalid pixels are only excluded from the argmax.
    Returns:
        ``points_xy`` ``(B, 2)`` int64 and ``found`` ``(B,)`` bool (False, with point ``(-1, -1)``, where the
        region has no valid pixel). Ties: first in row-major order.
    """
    arr = _masks(regions, "regions")
    allowed = _same_shape(arr, valid, "valid")
    dist = np.where(allowed, padded_distance_transform(arr), 0.0)
    points, best = _argmax_xy(dist)
    found = best > 0
    points[~found] = NO_CLICK
    return points, found


def oracle_clicks(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The RITM/f-BRS simulated user's next click for each image.

    Distance transforms (padded by 1, :func:`padded_distance_transform`) of the false-negative region
    ``truth & ~pred`` and of the false-positive region ``pred & ~truth``; pixels outside ``valid`` (already
    clicked) get distance 0. The click goes to the farthest pixel of the region with the larger maximum: positive
    (label 1) in the false negatives, negative (label 0) in the false positives. When both maxima are equal the
    click is negative (RITM's ``is_positive = fn_max > fp_max``); within a region ties go to the first pixel in
    row-major order.

    Args:
        pred, truth: ``(B, H, W)`` bool, prediction and ground truth.
        valid: ``(B, H, W)`` bool, pixels that may be clicked (default: all).
    Returns:
        ``points_xy`` ``(B, 2)`` int64 and ``labels`` ``(B,)`` int64: 1, 0, or :data:`NO_CLICK` (with point
        ``(-1, -1)``) where no valid error pixel is left (e.g. a perfect prediction).
    """
    p, t = _masks(pred, "pred"), _masks(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but truth has {t.shape}")
    allowed = _same_shape(p, valid, "valid")
    fn_xy, fn_max = _argmax_xy(np.where(allowed, padded_distance_transform(t & ~p), 0.0))
    fp_xy, fp_max = _argmax_xy(np.where(allowed, padded_distance_transform(p & ~t), 0.0))
    positive = fn_max > fp_max
    points = np.where(positive[:, None], fn_xy, fp_xy)
    labels = positive.astype(np.int64)
    none = np.maximum(fn_max, fp_max) <= 0
    points[none], labels[none] = NO_CLICK, NO_CLICK
    return points, labels


def _uniform_choice(candidates: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One uniformly drawn ``True`` pixel per ``(H, W)`` map -> ``(B, 2)`` ``(x, y)`` and ``(B,)`` found."""
    batch, _, width = candidates.shape
    points = np.full((batch, 2), NO_CLICK, dtype=np.int64)
    found = np.zeros(batch, dtype=bool)
    for b in range(batch):
        flat = np.flatnonzero(candidates[b])
        if flat.size:
            index = int(flat[rng.integers(flat.size)])
            points[b] = (index % width, index // width)
            found[b] = True
    return points, found


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return rng


def random_error_clicks(pred: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
                        valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A click drawn uniformly from the valid error pixels ``(pred != truth) & valid`` of each image.

    Label 1 where the pixel is a false negative (it belongs to ``truth``), 0 for a false positive,
    :data:`NO_CLICK` where no valid error pixel is left. Same shapes as :func:`oracle_clicks`.
    """
    p, t = _masks(pred, "pred"), _masks(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but truth has {t.shape}")
    allowed = _same_shape(p, valid, "valid")
    points, found = _uniform_choice((p != t) & allowed, _check_rng(rng))
    labels = np.full(len(points), NO_CLICK, dtype=np.int64)
    for b in np.flatnonzero(found):
        labels[b] = int(t[b, points[b, 1], points[b, 0]])
    return points, labels


def random_clicks(truth: np.ndarray, rng: np.random.Generator, valid: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A click drawn uniformly from the valid pixels of each image; label from ``truth`` at that pixel."""
    t = _masks(truth, "truth")
    allowed = _same_shape(t, valid, "valid")
    points, found = _uniform_choice(allowed, _check_rng(rng))
    labels = np.full(len(points), NO_CLICK, dtype=np.int64)
    for b in np.flatnonzero(found):
        labels[b] = int(t[b, points[b, 1], points[b, 0]])
    return points, labels


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Bounding boxes ``(B, 4)`` float64 ``(x0, y0, x1, y1)`` of non-empty masks ``(B, H, W)``.

    MedSAM's convention: the smallest and largest column and row of the mask (inclusive pixel indices). A side one
    pixel thin is widened to one pixel (``x1 = x0 + 1``), so every box is non-empty and still inside the image.
    """
    arr = _masks(masks, "masks")
    boxes = np.zeros((arr.shape[0], 4), dtype=np.float64)
    for b, mask in enumerate(arr):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            raise ValueError(f"mask {b} is empty: a box prompt needs at least one foreground pixel")
        x0, x1, y0, y1 = cols[0], cols[-1], rows[0], rows[-1]
        boxes[b] = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
    return boxes


def jitter_boxes(boxes: np.ndarray, image_hw: tuple[int, int], fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Move each side of each box by a uniform amount in ``[-fraction, fraction]`` times the box's width (x sides)
    or height (y sides), then round and clip to the image ``[0, W - 1] x [0, H - 1]``.

    ``fraction = 0`` returns the boxes unchanged (no draw from ``rng``). A side pair that crosses after jitter is
    put back in order; a box squeezed to zero width or height is widened to one pixel inside the image.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must be (B, 4) (x0, y0, x1, y1), got shape {arr.shape}")
    if not np.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"box jitter must be a fraction of the box size in [0, 1], got {fraction}")
    if fraction == 0.0:
        return arr.copy()
    height, width = (int(s) for s in image_hw)
    if height < 2 or width < 2:
        raise ValueError(f"cannot jitter a box in an image of size (H, W) = {image_hw}: it needs at least 2 x 2")
    size = np.stack([arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]] * 2, axis=1)
    moved = np.rint(arr + _check_rng(rng).uniform(-fraction, fraction, size=arr.shape) * size)
    x = np.sort(np.clip(moved[:, [0, 2]], 0, width - 1), axis=1)
    y = np.sort(np.clip(moved[:, [1, 3]], 0, height - 1), axis=1)
    for pair, limit in ((x, width - 1), (y, height - 1)):
        flat = pair[:, 1] <= pair[:, 0]
        pair[flat, 1] = np.minimum(pair[flat, 0] + 1, limit)
        pair[flat, 0] = pair[flat, 1] - 1
    return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)
