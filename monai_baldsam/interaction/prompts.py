"""A user's prompts in the image's own coordinates, checked once and grouped by slice.

Coordinates are those of the loaded array (see :mod:`monai_baldsam.io.readers`): a 2D picture's pixel ``(x, y)``
(x = column, y = row), a volume's voxel ``(i, j, k)``. A 3D box is given on one slice along ``axis`` as
``(a0, b0, index, a1, b1)``; for the default ``axis=2`` that is ``(i0, j0, k, i1, j1)``. :func:`to_slice_prompts`
turns them into the slice frame of :class:`~monai_baldsam.inferers.slicewise.SlicePrompt` (``slice_xy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from monai_baldsam.inferers.slicewise import SlicePrompt
from monai_baldsam.sam.prompt_checks import check_box, check_points_inside
from monai_baldsam.transforms.prompts import ijk_box_to_slice_box, ijk_to_slice_xy
from monai_baldsam.transforms.slicing import slice_axes

__all__ = ["UserPrompts", "to_slice_prompts"]


@dataclass
class UserPrompts:
    """Prompts in image coordinates.

    Attributes:
        box: 2D ``(x0, y0, x1, y1)``; 3D ``(a0, b0, index, a1, b1)`` on slice ``index`` along the axis.
        foreground: clicks inside the object, ``(x, y)`` or ``(i, j, k)`` each.
        background: clicks outside the object.
    """

    box: Sequence[float] | None = None
    foreground: Sequence[Sequence[float]] = field(default_factory=list)
    background: Sequence[Sequence[float]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return self.box is None and not len(self.foreground) and not len(self.background)


def _points(clicks: Sequence[Sequence[float]], dims: int, what: str) -> np.ndarray:
    arr = np.asarray(clicks, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, dims))
    if arr.ndim != 2 or arr.shape[1] != dims:
        frame = "(x, y) pixels" if dims == 2 else "(i, j, k) voxels"
        raise ValueError(f"{what} clicks must be {frame} for this {dims}D image, got shape {arr.shape}")
    return arr


def to_slice_prompts(prompts: UserPrompts, spatial_shape: Sequence[int], axis: int = 2) -> dict[int, SlicePrompt]:
    """Validate ``prompts`` against the image and group them by slice (index 0 for a 2D image).

    Raises ``ValueError`` for clicks outside the image, an empty box or one outside the image, and a 3D box whose
    slice index is outside the volume.
    """
    if prompts.is_empty():
        raise ValueError("no prompt given: pass a box and/or foreground/background clicks")
    shape = tuple(int(s) for s in spatial_shape)
    dims = len(shape)
    fg = check_points_inside(_points(prompts.foreground, dims, "foreground"), shape, what="foreground click")
    bg = check_points_inside(_points(prompts.background, dims, "background"), shape, what="background click")
    points = np.concatenate([fg, bg])
    labels = np.concatenate([np.ones(len(fg), np.int64), np.zeros(len(bg), np.int64)])
    if dims == 2:
        box = None if prompts.box is None else check_box(np.asarray(prompts.box, np.float64).reshape(-1), shape)[0]
        return {0: SlicePrompt(points if len(points) else None, labels if len(points) else None, box)}
    a, b = slice_axes(axis)
    grouped: dict[int, SlicePrompt] = {}
    if prompts.box is not None:
        box5 = np.asarray(prompts.box, np.float64).reshape(-1)
        if box5.size != 5:
            raise ValueError(
                f"a 3D box is (a0, b0, index, a1, b1) on one slice along axis {axis} - for axis 2 (i0, j0, k, i1, j1) - "
                f"got {box5.size} values"
            )
        corners = np.zeros((2, 3))
        corners[0, [a, axis, b]] = box5[0], box5[2], box5[1]
        corners[1, [a, axis, b]] = box5[3], box5[2], box5[4]
        index, boxes = ijk_box_to_slice_box(corners, axis)
        if not 0 <= index[0] < shape[axis] or index[0] != int(index[0]):
            raise ValueError(f"box slice index {index[0]} is outside the volume: axis {axis} has slices 0..{shape[axis] - 1}")
        grouped[int(index[0])] = SlicePrompt(box_xyxy=check_box(boxes[0], (shape[a], shape[b]))[0])
    if len(points):
        slice_index, slice_xy = ijk_to_slice_xy(points, axis)
        for index in np.unique(np.rint(slice_index)).astype(int):
            on = np.rint(slice_index) == index
            prompt = grouped.setdefault(int(index), SlicePrompt())
            prompt.points_xy, prompt.labels = slice_xy[on], labels[on]
    return grouped
