"""Validation of clicks and boxes against an image's size, shared by the predictor, transforms and CLI.

Pure numpy functions with no dependency on the rest of the package, so every layer can use them.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["as_points", "check_points_inside", "check_box"]


def as_points(points: Any, dims: int, what: str) -> np.ndarray:
    """``points`` as a float64 ``(N, dims)`` array (one point may be given flat); ValueError for other shapes."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, dims)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dims:
        raise ValueError(f"{what} must be an (N, {dims}) array of points, got shape {arr.shape}")
    return arr


def check_points_inside(points: Any, spatial_shape: Sequence[int], what: str = "click") -> np.ndarray:
    """Raise ``ValueError`` for the first point of ``points (N, D)`` outside ``0 <= p[d] <= spatial_shape[d] - 1``.

    ``D = len(spatial_shape)``; the message names the point, the image size and the valid range. Returns the
    points as a float64 ``(N, D)`` array.
    """
    shape = tuple(int(s) for s in spatial_shape)
    pts = as_points(points, len(shape), f"{what} points")
    upper = np.asarray(shape, dtype=np.float64) - 1.0
    bad = np.nonzero(~np.all(np.isfinite(pts) & (pts >= 0) & (pts <= upper), axis=1))[0]
    if bad.size:
        n = int(bad[0])
        ranges = ", ".join(f"0..{s - 1}" for s in shape)
        raise ValueError(
            f"{what} {n} at {pts[n].tolist()} is outside the image of size {shape}: "
            f"valid coordinates are ({ranges})"
        )
    return pts


def check_box(box_xyxy: Any, slice_shape_xy: Sequence[int], what: str = "box") -> np.ndarray:
    """Raise ``ValueError`` for a ``slice_xy`` box ``(x0, y0, x1, y1)`` that is empty or leaves the slice.

    ``slice_shape_xy = (X, Y)``. A box needs ``0 <= x0 < x1 <= X`` and ``0 <= y0 < y1 <= Y`` (its far edge may
    lie on the border). Accepts ``(4,)`` or ``(N, 4)``; returns float64 ``(N, 4)``.
    """
    size_x, size_y = (int(s) for s in slice_shape_xy)
    boxes = as_points(box_xyxy, 4, f"{what} (x0, y0, x1, y1)")
    for n, (x0, y0, x1, y1) in enumerate(boxes):
        if not np.all(np.isfinite([x0, y0, x1, y1])):
            raise ValueError(f"{what} {n} {boxes[n].tolist()} has non-finite coordinates")
        if x1 <= x0 or y1 <= y0:
            raise ValueError(
                f"{what} {n} (x0, y0, x1, y1) = {boxes[n].tolist()} is empty: it needs x1 > x0 and y1 > y0"
            )
        if x0 < 0 or y0 < 0 or x1 > size_x or y1 > size_y:
            raise ValueError(
                f"{what} {n} (x0, y0, x1, y1) = {boxes[n].tolist()} is outside the slice of size (X, Y) = "
                f"({size_x}, {size_y}): valid coordinates are x in 0..{size_x}, y in 0..{size_y}"
            )
    return boxes
