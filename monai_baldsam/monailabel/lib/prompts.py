"""3D Slicer's MONAI Label request keys -> :class:`~monai_baldsam.segmentation.UserPrompts`.

What Slicer's MONAI Label module sends with ``POST /infer/<model>`` (field ``params``, JSON):

* ``foreground`` / ``background``: lists of voxel points ``[i, j, k]`` of the image as Slicer loaded it (Slicer's
  IJK, the same indices as MONAI's ``LoadImage`` and :func:`monai_baldsam.io.load_image`); for a 2D picture
  ``[x, y, 0]``. For a 2D model Slicer sends only the points of the current slice.
* ``roi``: a box as ``[i0, i1, j0, j1, k0, k1]`` (min/max pairs per axis, Slicer's ``getROIPointsXYZ``), or
  ``[i0, i1, j0, j1]`` for a picture. ``box`` ``[x0, y0, x1, y1]`` (corner order, as ``baldsam segment --box``) is
  accepted as well.
* ``slice``: the slice index ``k`` a 2D model works on; ``label``: the segment name; ``reset_state``: start over.

Functions here are pure: they validate and convert, and raise ``ValueError`` with what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from monai_baldsam.transforms.prompts import UserPrompts
from monai_baldsam.transforms.slicing import slice_axes

__all__ = ["MAX_POINTS", "SlicerPrompts", "fit_to_image", "parse_request", "prompts_2d", "prompts_3d",
           "slice_of_request", "truthy"]

#: most points (foreground + background) one request may hold; a user places a few dozen at most.
MAX_POINTS = 1000


def truthy(value: Any) -> bool:
    """A request flag: ``True``/``"true"``/``"1"``/``1`` (Slicer sends booleans or strings)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value.strip()[:1] in "[{" else value


def _points(value: Any, key: str) -> np.ndarray:
    """``(N, 3)`` integer voxel points; 2-value points get ``k = 0``."""
    value = _decoded(value)
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return np.zeros((0, 3), dtype=np.int64)
    if isinstance(value, (list, tuple)) and len(value) > MAX_POINTS:
        raise ValueError(f"request key {key!r} holds {len(value)} points: at most {MAX_POINTS} per request")
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ValueError(f"request key {key!r} must be a list of [i, j, k] voxel points (or [x, y] pixels), got "
                         f"{value!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"request key {key!r} holds a non-finite coordinate: {value!r}")
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.zeros((arr.shape[0], 1))], axis=1)
    return np.rint(arr).astype(np.int64)


def _roi(request: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(lo_ijk, hi_ijk)`` inclusive corners of the request's ``roi`` (Slicer order) or ``box`` (xyxy)."""
    roi = _decoded(request.get("roi"))
    box = _decoded(request.get("box"))
    if roi is not None and len(roi):
        values = np.asarray(roi, dtype=np.float64).reshape(-1)
        if values.size not in (4, 6):
            raise ValueError(f"'roi' must be [i0, i1, j0, j1, k0, k1] (3D Slicer) or [i0, i1, j0, j1], got {roi!r}")
        pairs = values.reshape(-1, 2)
    elif box is not None and len(box):
        values = np.asarray(box, dtype=np.float64).reshape(-1)
        if values.size != 4:
            raise ValueError(f"'box' must be [x0, y0, x1, y1] pixels, got {box!r}")
        pairs = np.array([[values[0], values[2]], [values[1], values[3]]])
    else:
        return None
    if not np.isfinite(pairs).all():
        raise ValueError(f"the roi/box holds a non-finite coordinate: {roi if roi is not None else box!r}")
    if pairs.shape[0] == 2:
        pairs = np.concatenate([pairs, np.zeros((1, 2))])
    pairs = np.sort(np.rint(pairs).astype(np.int64), axis=1)
    return pairs[:, 0], pairs[:, 1]


@dataclass(frozen=True)
class SlicerPrompts:
    """One request's prompts in voxel coordinates ``ijk`` (a 2D picture's pixel ``(x, y)`` is ``(x, y, 0)``).

    Attributes:
        foreground_ijk, background_ijk: ``(N, 3)`` int64 points.
        roi_ijk: inclusive corners ``(lo, hi)`` of the box, each ``(3,)``; ``None`` without one.
        slice_index: the request's ``slice`` (2D models), ``None`` when not sent.
        label: the segment name; reset: ``reset_state``.
    """

    foreground_ijk: np.ndarray
    background_ijk: np.ndarray
    roi_ijk: tuple[np.ndarray, np.ndarray] | None
    slice_index: int | None
    label: str | None
    reset: bool

    def is_empty(self) -> bool:
        return self.roi_ijk is None and not len(self.foreground_ijk) and not len(self.background_ijk)


def parse_request(request: Mapping[str, Any]) -> SlicerPrompts:
    """Read the prompt keys of a MONAI Label infer request (see the module docstring)."""
    slice_value = request.get("slice")
    slice_index = None
    if slice_value is not None and str(slice_value).strip() not in ("", "None", "null"):
        try:
            slice_index = int(slice_value)
        except (TypeError, ValueError):
            raise ValueError(f"'slice' must be a slice index k, got {slice_value!r}") from None
    label = request.get("label")
    prompts = SlicerPrompts(
        foreground_ijk=_points(request.get("foreground"), "foreground"),
        background_ijk=_points(request.get("background"), "background"),
        roi_ijk=_roi(request),
        slice_index=slice_index,
        label=str(label) if label is not None else None,
        reset=truthy(request.get("reset_state", False)),
    )
    total = len(prompts.foreground_ijk) + len(prompts.background_ijk)
    if total > MAX_POINTS:
        raise ValueError(f"the request holds {total} points: at most {MAX_POINTS} per request")
    return prompts


def fit_to_image(prompts: SlicerPrompts, spatial_shape: tuple[int, ...]) -> SlicerPrompts:
    """Check the prompts against the image's voxel grid ``spatial_shape`` (``(X, Y)`` of a picture, ``(I, J, K)`` of
    a volume): every point must lie on it (a picture's points have ``k = 0``); an ROI reaching past the border is
    clipped to it (Slicer lets a box hang over the edge), one wholly outside is an error."""
    shape = np.array(list(spatial_shape) + [1] * (3 - len(spatial_shape)), dtype=np.int64)
    for key, points in (("foreground", prompts.foreground_ijk), ("background", prompts.background_ijk)):
        outside = points[((points < 0) | (points >= shape[None])).any(axis=1)]
        if len(outside):
            raise ValueError(f"{key} point {outside[0].tolist()} is outside the image: its voxels run from [0, 0, 0] "
                             f"to {(shape - 1).tolist()} (i, j, k)")
    if prompts.roi_ijk is None:
        return prompts
    lo, hi = prompts.roi_ijk
    if ((hi < 0) | (lo >= shape)).any():
        raise ValueError(f"the roi {lo.tolist()}..{hi.tolist()} lies outside the image, whose voxels run from "
                         f"[0, 0, 0] to {(shape - 1).tolist()} (i, j, k)")
    return replace(prompts, roi_ijk=(np.clip(lo, 0, shape - 1), np.clip(hi, 0, shape - 1)))


def slice_of_request(prompts: SlicerPrompts, num_slices: int) -> int:
    """The slice a 2D model segments in a volume: ``slice``, else the last click's ``k``, else the roi's middle."""
    if prompts.slice_index is not None and prompts.slice_index >= 0:
        index = prompts.slice_index
    elif len(prompts.foreground_ijk) or len(prompts.background_ijk):
        last = prompts.foreground_ijk if len(prompts.foreground_ijk) else prompts.background_ijk
        index = int(last[-1, 2])
    elif prompts.roi_ijk is not None:
        index = int((prompts.roi_ijk[0][2] + prompts.roi_ijk[1][2]) // 2)
    else:
        raise ValueError("no prompt given: place a foreground click or an ROI, then run the model")
    if not 0 <= index < num_slices:
        raise ValueError(f"slice {index} is outside the volume: it has slices 0..{num_slices - 1} along k")
    return index


def prompts_2d(prompts: SlicerPrompts, slice_index: int = 0) -> UserPrompts:
    """The prompts on slice ``k = slice_index`` as 2D pixel prompts ``(x, y) = (i, j)``.

    Points on other slices are left out (Slicer sends a 2D model the points of its slice only, but all of them when
    the slice index is 0); a request with nothing on the slice is an error.
    """
    fg = prompts.foreground_ijk[prompts.foreground_ijk[:, 2] == slice_index][:, :2]
    bg = prompts.background_ijk[prompts.background_ijk[:, 2] == slice_index][:, :2]
    box = None
    if prompts.roi_ijk is not None:
        lo, hi = prompts.roi_ijk
        box = [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]
    result = UserPrompts(box=box, foreground=fg.astype(float).tolist(), background=bg.astype(float).tolist())
    if result.is_empty():
        raise ValueError(f"no click or ROI on slice {slice_index}: place a foreground click (or an ROI) there")
    return result


def prompts_3d(prompts: SlicerPrompts, axis: int, foreground: Sequence[Sequence[int]] | None = None,
               background: Sequence[Sequence[int]] | None = None, with_roi: bool = True) -> UserPrompts:
    """Volume prompts for a :class:`~monai_baldsam.volume.VolumeSession` slicing along ``axis``.

    The roi becomes a box ``(a0, b0, index, a1, b1)`` on its middle slice along ``axis`` (on a flat roi, its one
    slice). ``foreground``/``background`` replace the request's points (e.g. only the new ones); ``with_roi=False``
    leaves the box out.
    """
    fg = prompts.foreground_ijk if foreground is None else np.asarray(foreground, dtype=np.int64).reshape(-1, 3)
    bg = prompts.background_ijk if background is None else np.asarray(background, dtype=np.int64).reshape(-1, 3)
    box = None
    if with_roi and prompts.roi_ijk is not None:
        lo, hi = prompts.roi_ijk
        a, b = slice_axes(axis)
        index = int((lo[axis] + hi[axis]) // 2)
        box = [float(lo[a]), float(lo[b]), float(index), float(hi[a]), float(hi[b])]
    return UserPrompts(box=box, foreground=fg.astype(float).tolist(), background=bg.astype(float).tolist())
