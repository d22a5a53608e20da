"""Pure geometry of slice-wise propagation: voxel spacing, the slicing axis, and boxes from masks in millimetres.

Frames: ``ijk`` are voxel indices of a ``(C, I, J, K)`` volume; a slice along ``axis`` keeps the other two axes in
increasing order ``(a, b)`` (:func:`monai_baldsam.transforms.slicing.slice_axes`), and its pixel ``slice_xy = (x, y)``
is (index along ``a``, index along ``b``). A slice mask here is indexed ``mask_ab[x, y]``. Boxes are
``(x0, y0, x1, y1)`` in ``slice_xy`` with inclusive pixel corners, as the rest of the package uses them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from monai_baldsam.transforms.slicing import slice_axes

__all__ = [
    "voxel_spacing",
    "through_plane_axis",
    "resolve_axis",
    "slice_spacing_xy",
    "mask_box_slice_xy",
    "expand_box_mm",
    "mask_area_mm2",
]

#: Spacings within this relative tolerance count as equal when choosing the through-plane axis.
SPACING_RTOL = 1e-3


def voxel_spacing(affine: np.ndarray | torch.Tensor | Sequence[Sequence[float]]) -> np.ndarray:
    """Voxel size ``(3,)`` in mm along ``i, j, k``: the column norms of the affine's 3x3 part.

    Raises ``ValueError`` for an affine that is not 4x4 (or 3x3 linear part) or whose columns are zero or not finite.
    """
    arr = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if arr.shape not in ((4, 4), (3, 3)):
        raise ValueError(f"expected a 4x4 affine (or its 3x3 linear part) of a 3D volume, got shape {arr.shape}")
    spacing = np.linalg.norm(arr[:3, :3], axis=0)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ValueError(
            f"the affine gives voxel sizes {spacing.tolist()} mm: every axis needs a finite, positive size. "
            "Fix the image header (pixdim / PixelSpacing) or pass the slicing axis explicitly."
        )
    return spacing


def through_plane_axis(spacing_ijk: Sequence[float], rtol: float = SPACING_RTOL) -> int:
    """The acquisition's through-plane axis: the one with the largest voxel size.

    Ties (sizes within ``rtol`` of the largest) go to axis 2 when it is among them, else to the higher index, so an
    isotropic volume is sliced along ``k`` as viewers show it.
    """
    spacing = np.asarray(spacing_ijk, dtype=np.float64).reshape(-1)
    if spacing.shape != (3,):
        raise ValueError(f"expected three voxel sizes (i, j, k), got {spacing.tolist()}")
    largest = float(spacing.max())
    tied = [axis for axis in range(3) if spacing[axis] >= largest * (1.0 - rtol)]
    return 2 if 2 in tied else max(tied)


def resolve_axis(axis: int | None, affine: np.ndarray | torch.Tensor) -> int:
    """``axis`` checked (0, 1 or 2), or the through-plane axis of ``affine`` when ``axis`` is ``None``."""
    if axis is None:
        return through_plane_axis(voxel_spacing(affine))
    slice_axes(axis)
    return int(axis)


def slice_spacing_xy(spacing_ijk: Sequence[float], axis: int) -> np.ndarray:
    """Pixel size ``(2,)`` in mm of a slice along ``axis``: (size along ``a``, size along ``b``)."""
    a, b = slice_axes(axis)
    spacing = np.asarray(spacing_ijk, dtype=np.float64).reshape(-1)
    return np.array([spacing[a], spacing[b]])


def mask_box_slice_xy(mask_ab: np.ndarray) -> np.ndarray | None:
    """The tight box ``(x0, y0, x1, y1)`` of a slice mask ``mask_ab[x, y]`` (inclusive corners), ``None`` if empty."""
    mask = np.asarray(mask_ab).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D slice mask indexed [x, y], got shape {mask.shape}")
    xs = np.nonzero(mask.any(axis=1))[0]
    if xs.size == 0:
        return None
    ys = np.nonzero(mask.any(axis=0))[0]
    return np.array([xs[0], ys[0], xs[-1], ys[-1]], dtype=np.float64)


def expand_box_mm(box_xyxy: np.ndarray, margin_mm: float, spacing_xy: Sequence[float],
                  slice_shape_xy: Sequence[int]) -> np.ndarray:
    """Grow a ``slice_xy`` box by ``margin_mm`` on every side, converted to pixels per axis, clipped to the slice.

    ``spacing_xy`` is the pixel size (mm) along ``x`` and ``y``; on anisotropic pixels the margin in pixels differs
    between the axes. The grown corners are rounded outward to whole pixels; a box one pixel wide (or tall) gets
    ``x1 = x0 + 1`` so that SAM's prompt check sees a non-empty box.
    """
    if margin_mm < 0:
        raise ValueError(f"box margin must be >= 0 mm, got {margin_mm}")
    box = np.asarray(box_xyxy, dtype=np.float64).reshape(4)
    spacing = np.asarray(spacing_xy, dtype=np.float64).reshape(2)
    if np.any(spacing <= 0):
        raise ValueError(f"pixel sizes must be positive, got {spacing.tolist()} mm")
    pad = np.ceil(margin_mm / spacing - 1e-9)
    grown = np.array([box[0] - pad[0], box[1] - pad[1], box[2] + pad[0], box[3] + pad[1]])
    upper = np.array([slice_shape_xy[0] - 1, slice_shape_xy[1] - 1, slice_shape_xy[0] - 1, slice_shape_xy[1] - 1])
    grown = np.clip(grown, 0.0, upper.astype(np.float64))
    grown[2] = max(grown[2], grown[0] + 1.0)
    grown[3] = max(grown[3], grown[1] + 1.0)
    return grown


def mask_area_mm2(mask_ab: np.ndarray | torch.Tensor, spacing_xy: Sequence[float]) -> float:
    """Area of a slice mask in mm² (pixel count times pixel area)."""
    count = int(mask_ab.sum()) if isinstance(mask_ab, torch.Tensor) else int(np.count_nonzero(mask_ab))
    return float(count * float(spacing_xy[0]) * float(spacing_xy[1]))
