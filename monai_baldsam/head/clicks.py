"""Click encodings and training-time click simulation: pure, typed, batch-first functions (no model, no I/O).

Frames (see :mod:`monai_baldsam.sam.geometry`):

* ``sam_xy``: a point in SAM's resized input frame (``img_size x img_size`` after padding).
* ``low_xy``: a *continuous* point in the decoder's low-resolution grid (``L x L``, e.g. 256 x 256 for LiteMedSAM,
  16 x 16 for the tiny test ViT), where low-resolution pixel ``u`` spans ``[u, u + 1)`` and its centre is
  ``u + 0.5``. The grid covers SAM's padded input, so with ``s = img_size / L``::

      low_xy = (sam_xy + 0.5) / s          # SAM's prompt encoder also shifts points by 0.5 (pixel centre)

  and the centre of low-resolution pixel ``u`` is ``sam_xy = (u + 0.5) * s - 0.5``.
* ``low_uv``: an integer low-resolution pixel ``(column, row)``.

Click maps follow RITM: a positive and a negative disk map, plus the clipped distance to the nearest positive and
negative click (1 where there is no click), all on the low-resolution grid. Sizes are fractions of the grid side so
the same settings work for every backbone.
"""

from __future__ import annotations

import numpy as np
import torch

from monai_baldsam.interaction.geometry import padded_distance_transform

__all__ = [
    "CLICK_MAP_CHANNELS",
    "sam_xy_to_low_xy",
    "low_uv_to_sam_xy",
    "click_maps",
    "box_map",
    "first_click",
    "error_click",
]

#: Channels of :func:`click_maps`, in order.
CLICK_MAP_CHANNELS: tuple[str, ...] = ("positive_disk", "negative_disk", "positive_distance", "negative_distance")


def sam_xy_to_low_xy(sam_xy: torch.Tensor, img_size: int, low_res: int) -> torch.Tensor:
    """``(..., 2)`` points in ``sam_xy`` -> continuous ``low_xy`` of the ``low_res x low_res`` grid."""
    return (sam_xy.to(torch.float32) + 0.5) * (float(low_res) / float(img_size))


def low_uv_to_sam_xy(low_uv: np.ndarray, img_size: int, low_res: int) -> np.ndarray:
    """Integer low-resolution pixels ``(..., 2)`` ``(u, v)`` -> the ``sam_xy`` of their centres (float64)."""
    scale = float(img_size) / float(low_res)
    return (np.asarray(low_uv, dtype=np.float64) + 0.5) * scale - 0.5


def click_maps(low_xy: torch.Tensor, labels: torch.Tensor, size: int, radius: float, distance_clip: float
               ) -> torch.Tensor:
    """RITM-style click encodings on a ``size x size`` grid.

    Args:
        low_xy: ``(B, N, 2)`` continuous ``low_xy`` points (``N`` may be 0).
        labels: ``(B, N)`` 1 positive, 0 negative, -1 padding (ignored).
        size: the grid side ``L``.
        radius: disk radius in grid pixels (pixel centres within ``radius`` of a click are 1).
        distance_clip: distances are divided by this (grid pixels) and clipped at 1.

    Returns:
        ``(B, 4, L, L)`` float32: positive disk, negative disk, positive distance, negative distance
        (:data:`CLICK_MAP_CHANNELS`); a distance map is 1 everywhere when there is no click of its sign.
    """
    if low_xy.ndim != 3 or low_xy.shape[-1] != 2 or labels.shape != low_xy.shape[:2]:
        raise ValueError(f"expected low_xy (B, N, 2) and labels (B, N), got {tuple(low_xy.shape)} and "
                         f"{tuple(labels.shape)}")
    if radius <= 0 or distance_clip <= 0:
        raise ValueError(f"radius and distance_clip must be positive, got {radius} and {distance_clip}")
    batch = low_xy.shape[0]
    device = low_xy.device
    out = torch.ones((batch, 4, size, size), dtype=torch.float32, device=device)
    out[:, :2] = 0.0
    if low_xy.shape[1] == 0:
        return out
    centres = torch.arange(size, dtype=torch.float32, device=device) + 0.5
    dx = centres.view(1, 1, 1, size) - low_xy[..., 0].to(torch.float32)[..., None, None]
    dy = centres.view(1, 1, size, 1) - low_xy[..., 1].to(torch.float32)[..., None, None]
    dist = torch.sqrt(dx.square() + dy.square())  # (B, N, L, L)
    for channel, label in ((0, 1), (1, 0)):
        chosen = (labels == label).to(device)[..., None, None]
        nearest = torch.where(chosen, dist, torch.full_like(dist, float("inf"))).amin(dim=1)
        out[:, channel] = (nearest <= radius).float()
        out[:, channel + 2] = (nearest / distance_clip).clamp(max=1.0)
    return out


def box_map(boxes_sam_xy: torch.Tensor, has_box: torch.Tensor, img_size: int, size: int) -> torch.Tensor:
    """``(B, 1, L, L)`` indicator of the low-resolution pixels whose centre lies in each box (0 where no box).

    Args:
        boxes_sam_xy: ``(B, 4)`` ``(x0, y0, x1, y1)`` in ``sam_xy``.
        has_box: ``(B,)`` bool.
    """
    low = sam_xy_to_low_xy(boxes_sam_xy.reshape(-1, 2, 2), img_size, size).reshape(-1, 4)
    centres = torch.arange(size, dtype=torch.float32, device=boxes_sam_xy.device) + 0.5
    inside_x = (centres[None] >= low[:, 0:1] - 0.5) & (centres[None] <= low[:, 2:3] + 0.5)
    inside_y = (centres[None] >= low[:, 1:2] - 0.5) & (centres[None] <= low[:, 3:4] + 0.5)
    inside = inside_y[:, :, None] & inside_x[:, None, :] & has_box.to(boxes_sam_xy.device).view(-1, 1, 1)
    return inside.float()[:, None]


def _pick(score: np.ndarray, rng: np.random.Generator | None, spread: float) -> tuple[int, int]:
    """``(x, y)`` of the maximum of ``score`` (row-major first), or, with ``rng``, a uniform draw among the pixels
    scoring at least ``(1 - spread)`` times the maximum."""
    best = float(score.max())
    if rng is None or spread <= 0:
        index = int(np.argmax(score))
    else:
        candidates = np.flatnonzero(score >= best * (1.0 - spread))
        index = int(candidates[rng.integers(candidates.size)])
    width = score.shape[1]
    return index % width, index // width


def first_click(truth: np.ndarray, rng: np.random.Generator | None = None, spread: float = 0.0
                ) -> tuple[int, int]:
    """The first positive click in ``truth`` ``(H, W)`` bool: the interior point farthest from the boundary
    (padded distance transform, as the evaluation's first click), or with ``rng`` a uniform draw among points at
    least ``(1 - spread)`` of that distance deep. Returns ``(x, y)``."""
    mask = np.asarray(truth, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"first_click needs a non-empty (H, W) mask, got shape {mask.shape} with "
                         f"{int(mask.sum())} foreground pixels")
    return _pick(padded_distance_transform(mask[None])[0], rng, spread)


def error_click(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray, rng: np.random.Generator | None = None,
                spread: float = 0.0) -> tuple[int, int, int] | None:
    """The next corrective click on ``(H, W)`` bool maps, as the RITM/f-BRS simulated user.

    The false-negative and false-positive regions (restricted to ``valid``: inside the image, not yet clicked) are
    distance-transformed (padded by 1); the click goes into the region with the larger maximum (positive in the
    false negatives, negative in the false positives; a tie is negative), at its farthest pixel, or with ``rng``
    at a uniform draw among its pixels at least ``(1 - spread)`` of that distance deep.

    Returns:
        ``(x, y, label)``, or None when no valid error pixel is left.
    """
    p, t, ok = (np.asarray(a, dtype=bool) for a in (pred, truth, valid))
    if not p.shape == t.shape == ok.shape or p.ndim != 2:
        raise ValueError(f"pred, truth and valid must be (H, W) of one shape, got {p.shape}, {t.shape}, {ok.shape}")
    fn = padded_distance_transform((t & ~p)[None])[0] * ok
    fp = padded_distance_transform((p & ~t)[None])[0] * ok
    fn_max, fp_max = float(fn.max()), float(fp.max())
    if max(fn_max, fp_max) <= 0:
        return None
    positive = fn_max > fp_max
    x, y = _pick(fn if positive else fp, rng, spread)
    return x, y, int(positive)
