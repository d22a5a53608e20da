"""Prompts (clicks and boxes) in each frame, and the converters between frames: the one prompt module.

* :class:`UserPrompts`: what a user gives, in the image's own coordinates (``ijk`` on a volume, pixel ``(x, y)``
  on a 2D image); :func:`check_prompts` checks them against the image once, at the boundary (clicks inside, a box
  on the image, its slice inside the volume), as :class:`CheckedPrompts`; :func:`to_slice_prompts` groups them by
  slice (checking only prompts that were not checked for that image);
* :class:`SlicePrompt`: one slice's prompts in ``slice_xy`` (what the inferer and the click models take);
* :class:`SamPrompts`: one slice's prompts in ``sam_xy`` (:func:`to_sam_prompts`, the :class:`SamPromptsd`
  transform).

Frames:

* ``ijk`` - voxel indices ``(i, j, k)`` of a channel-first volume ``(C, I, J, K)``.
* ``slice_xy`` - pixel ``(x, y)`` of a slice along ``axis``: ``(index along a, index along b)`` with
  ``(a, b) = slice_axes(axis)``. For a 2D image ``(C, X, Y)``, ``slice_xy = (i, j)``. A slice's spatial shape is
  written ``slice_shape_xy = (X, Y)``; SAM's ``(H, W)`` for it is ``(Y, X)``.
* ``sam_xy`` - the point in SAM's resized input frame (``geometry.slice_xy_to_sam_xy``, SAM's arithmetic).

Functions are pure and batch-first (``(N, 3)`` points, ``(N, 2, 3)`` box corners). :class:`SamPromptsd`
gathers a dictionary's clicks and box into the arrays SAM's predictor takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Hashable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import TraceKeys

from monai_baldsam.sam.geometry import slice_boxes_to_sam_boxes, slice_xy_to_sam_xy
from monai_baldsam.sam.prompt_checks import as_points, check_box, check_points_inside
from monai_baldsam.transforms.slicing import slice_axes

__all__ = [
    "UserPrompts",
    "CheckedPrompts",
    "SlicePrompt",
    "check_prompts",
    "to_slice_prompts",
    "ijk_to_slice_xy",
    "slice_xy_to_ijk",
    "ijk_box_to_slice_box",
    "SamPrompts",
    "to_sam_prompts",
    "SamPromptsd",
]


def ijk_to_slice_xy(points_ijk: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Split voxel points ``(N, 3)`` into their slice index along ``axis`` ``(N,)`` and ``slice_xy`` ``(N, 2)``."""
    a, b = slice_axes(axis)
    pts = as_points(points_ijk, 3, "points_ijk")
    return pts[:, axis].copy(), pts[:, [a, b]].copy()


def slice_xy_to_ijk(slice_xy: Any, axis: int, index: float) -> np.ndarray:
    """Voxel points ``(N, 3)`` of slice pixels ``slice_xy (N, 2)`` on slice ``index`` along ``axis``."""
    a, b = slice_axes(axis)
    pts = as_points(slice_xy, 2, "slice_xy")
    out = np.empty((pts.shape[0], 3), dtype=np.float64)
    out[:, a], out[:, b], out[:, axis] = pts[:, 0], pts[:, 1], index
    return out


def ijk_box_to_slice_box(corners_ijk: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes given as two voxel corners on one slice, ``(N, 2, 3)`` (or ``(2, 3)``), to ``slice_xy`` boxes.

    For ``axis=2`` the corners ``[[i0, j0, k], [i1, j1, k]]`` give the box ``(x0, y0, x1, y1) = (i0, j0, i1, j1)``
    on slice ``k``. Returns the slice index ``(N,)`` and the boxes ``(N, 4)``; raises ``ValueError`` when the two
    corners of a box are on different slices.
    """
    a, b = slice_axes(axis)
    arr = np.asarray(corners_ijk, dtype=np.float64)
    if arr.shape == (2, 3):
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (2, 3):
        raise ValueError(f"box corners must have shape (N, 2, 3): two (i, j, k) corners per box, got {arr.shape}")
    off = np.nonzero(arr[:, 0, axis] != arr[:, 1, axis])[0]
    if off.size:
        n = int(off[0])
        raise ValueError(
            f"box {n} has its corners {arr[n, 0].tolist()} and {arr[n, 1].tolist()} on different slices along "
            f"axis {axis}: a SAM box lies on one slice, give both corners the same index {'ijk'[axis]}"
        )
    boxes = np.stack([arr[:, 0, a], arr[:, 0, b], arr[:, 1, a], arr[:, 1, b]], axis=-1)
    return arr[:, 0, axis].copy(), boxes


@dataclass
class SlicePrompt:
    """Prompts for one slice, in ``slice_xy`` pixels.

    Attributes:
        points_xy: ``N x 2`` clicks ``(x, y)``; ``labels`` ``N``: 1 foreground, 0 background.
        box_xyxy: ``(x0, y0, x1, y1)``.
        mask_logits: ``1 x h x w`` low-resolution logits of an earlier prediction on this slice.
    """

    points_xy: np.ndarray | None = None
    labels: np.ndarray | None = None
    box_xyxy: np.ndarray | None = None
    mask_logits: torch.Tensor | None = None

    def is_empty(self) -> bool:
        return self.points_xy is None and self.box_xyxy is None and self.mask_logits is None


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


@dataclass
class CheckedPrompts(UserPrompts):
    """:class:`UserPrompts` checked once against one image (``spatial_shape``, slicing ``axis``), with their slice
    grouping: made at the boundary (command line, bundle, MONAI Label request) by :func:`check_prompts` and passed
    down typed, so that :func:`to_slice_prompts` below does not check them again."""

    spatial_shape: tuple[int, ...] = ()
    axis: int = 2
    slices: Mapping[int, SlicePrompt] = field(default_factory=dict)

    def fits(self, spatial_shape: Sequence[int], axis: int) -> bool:
        """Whether these prompts were checked for this image shape and (on a volume) this axis."""
        shape = tuple(int(s) for s in spatial_shape)
        return shape == self.spatial_shape and (len(shape) == 2 or int(axis) == self.axis)


def check_prompts(prompts: UserPrompts, spatial_shape: Sequence[int], axis: int = 2) -> CheckedPrompts:
    """``prompts`` checked against the image (see :func:`to_slice_prompts` for what is refused), as
    :class:`CheckedPrompts`."""
    if isinstance(prompts, CheckedPrompts) and prompts.fits(spatial_shape, axis):
        return prompts
    slices = _checked_slice_prompts(prompts, spatial_shape, axis)
    return CheckedPrompts(box=prompts.box, foreground=prompts.foreground, background=prompts.background,
                          spatial_shape=tuple(int(s) for s in spatial_shape), axis=int(axis), slices=slices)


def to_slice_prompts(prompts: UserPrompts, spatial_shape: Sequence[int], axis: int = 2) -> dict[int, SlicePrompt]:
    """Validate ``prompts`` against the image and group them by slice (index 0 for a 2D image). Prompts already
    checked for this image (:class:`CheckedPrompts`) are not checked again: their grouping is returned (copied).

    Raises ``ValueError`` for clicks outside the image, an empty box or one outside the image, and a 3D box whose
    slice index is outside the volume.
    """
    if isinstance(prompts, CheckedPrompts) and prompts.fits(spatial_shape, axis):
        return {index: replace(prompt) for index, prompt in prompts.slices.items()}
    return _checked_slice_prompts(prompts, spatial_shape, axis)


def _checked_slice_prompts(prompts: UserPrompts, spatial_shape: Sequence[int], axis: int) -> dict[int, SlicePrompt]:
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


class SamPrompts(NamedTuple):
    """Prompts in SAM's input frame, as ``SamPredictor.predict`` takes them after ``apply_coords``."""

    sam_point_coords: np.ndarray
    """``(N, 2)`` float32 ``sam_xy`` points."""
    sam_point_labels: np.ndarray
    """``(N,)`` int64 labels: 1 foreground, 0 background."""
    sam_box: np.ndarray | None
    """``(4,)`` float32 ``(x0, y0, x1, y1)`` in ``sam_xy``, or ``None``."""


def _clicks_to_slice_xy(clicks: Any, axis: int | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Clicks ``(N, 2)`` slice_xy or ``(N, 3)`` ijk -> (slice_xy (N, 2), slice index per click or empty)."""
    arr = np.asarray(clicks if clicks is not None else [], dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2)), np.zeros((0,))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ValueError(
            f"{name} clicks must be a list of [x, y] slice pixels or [i, j, k] voxels, got shape {arr.shape}"
        )
    if arr.shape[1] == 2:
        return arr, np.zeros((0,))
    if axis is None:
        raise ValueError(f"{name} clicks are 3D [i, j, k] but the image is 2D: give [x, y] pixels")
    slice_index, slice_xy = ijk_to_slice_xy(arr, axis)
    return slice_xy, slice_index


def _check_one_slice(indices: np.ndarray, index: int | None, axis: int | None) -> None:
    if indices.size == 0:
        return
    wanted = np.unique(indices) if index is None else np.asarray([index])
    off = np.nonzero(~np.isin(indices, wanted))[0]
    if wanted.size > 1 or off.size:
        raise ValueError(
            f"prompts lie on slices {sorted(set(np.unique(indices).tolist()))} along axis {axis}, "
            f"but SAM prompts must all be on one slice{'' if index is None else f' (slice {index})'}"
        )


def to_sam_prompts(
    foreground: Any = None,
    background: Any = None,
    box: Any = None,
    *,
    slice_shape_xy: Sequence[int],
    long_side: int,
    axis: int | None = None,
    index: int | None = None,
) -> SamPrompts:
    """Convert clicks and a box on one slice to SAM's input frame.

    Args:
        foreground: foreground clicks, ``(N, 2)`` ``slice_xy`` or ``(N, 3)`` ``ijk`` (needs ``axis``), or None.
        background: background clicks, same forms.
        box: ``(4,)`` ``slice_xy`` box ``(x0, y0, x1, y1)``, or two ``ijk`` corners ``(2, 3)``, or None.
        slice_shape_xy: the slice's spatial shape ``(X, Y)``; SAM's ``(H, W)`` is ``(Y, X)``.
        long_side: SAM's input size (1024 for SAM).
        axis: slice axis of the volume, needed for ``ijk`` prompts (``None`` for a 2D image).
        index: the slice the prompts must lie on; ``None`` accepts any single slice shared by all ``ijk`` prompts.

    Raises:
        ValueError: no prompt at all, a click or box outside the slice, an empty box, or prompts on other slices.
    """
    fg_xy, fg_idx = _clicks_to_slice_xy(foreground, axis, "foreground")
    bg_xy, bg_idx = _clicks_to_slice_xy(background, axis, "background")
    box_xy: np.ndarray | None = None
    box_idx = np.zeros((0,))
    if box is not None:
        box_arr = np.asarray(box, dtype=np.float64)
        if box_arr.size == 6:
            if axis is None:
                raise ValueError("an (i, j, k) corner box needs a 3D volume and its slice axis")
            box_idx, box_xy = ijk_box_to_slice_box(box_arr.reshape(2, 3), axis)
        elif box_arr.size == 4:
            box_xy = box_arr.reshape(1, 4)
        else:
            raise ValueError(
                f"box must be (x0, y0, x1, y1) slice pixels or two (i, j, k) corners, got shape {box_arr.shape}"
            )
    _check_one_slice(np.concatenate([fg_idx, bg_idx, box_idx]), index, axis)
    coords_xy = np.concatenate([fg_xy, bg_xy], axis=0)
    if coords_xy.shape[0] == 0 and box_xy is None:
        raise ValueError("no prompt given: SAM needs at least one foreground/background click or a box")
    check_points_inside(coords_xy, slice_shape_xy, what="click")
    size_x, size_y = (int(s) for s in slice_shape_xy)
    original_hw = (size_y, size_x)
    labels = np.concatenate([np.ones(len(fg_xy), dtype=np.int64), np.zeros(len(bg_xy), dtype=np.int64)])
    sam_box = None
    if box_xy is not None:
        check_box(box_xy, slice_shape_xy)
        sam_box = slice_boxes_to_sam_boxes(box_xy, original_hw, long_side).reshape(4).astype(np.float32)
    sam_coords = slice_xy_to_sam_xy(coords_xy, original_hw, long_side).astype(np.float32).reshape(-1, 2)
    return SamPrompts(sam_coords, labels, sam_box)


def _last_op(img: Any, class_name: str) -> dict | None:
    """The extra info of the most recent ``class_name`` transform traced on ``img``, if any."""
    if not isinstance(img, MetaTensor):
        return None
    for op in reversed(img.applied_operations):
        if op.get(TraceKeys.CLASS_NAME) == class_name:
            return dict(op.get(TraceKeys.EXTRA_INFO, {}))
    return None


def _clicks(d: Mapping[Hashable, Any], key: Hashable) -> np.ndarray:
    value = d.get(key)
    return np.asarray([] if value is None else value, dtype=np.float64)


class SamPromptsd(Transform):
    """Read click/box keys of a dictionary for one slice and write SAM-frame prompt arrays.

    Reads ``foreground``/``background`` (lists of ``[x, y]`` slice pixels or ``[i, j, k]`` voxels; a missing
    key means no clicks) and an optional ``box`` (``(x0, y0, x1, y1)`` slice pixels or two ``ijk`` corners), and
    writes ``sam_point_coords`` ``(N, 2)`` float32, ``sam_point_labels`` ``(N,)`` int64 (1 fg, 0 bg) and
    ``sam_box`` ``(4,)`` float32 or ``None``; see :func:`to_sam_prompts`.

    The geometry comes from ``data[image_key]``, which may be the volume, the slice or the SAM input:

    * slice size ``(X, Y)``: recorded by a previous ``SamResizePad`` on the image, else the image's spatial
      shape (for a 3D volume ``(C, I, J, K)``, the ``(a, b)`` sizes of a slice along ``axis``);
    * slice ``axis``/``index`` for ``ijk`` prompts: recorded by a previous ``ExtractSlice``, else the arguments.
      ``ijk`` clicks on a 3D volume are also checked against the volume's shape.

    Args:
        image_key: key of the volume, the slice, or the SAM input made by ``SamResizePadd``.
        long_side: SAM's input size; must match the one recorded by ``SamResizePad`` when present.
        axis: slice axis for ``ijk`` prompts when no ``ExtractSlice`` is traced (default 2 for a volume);
            leave ``None`` for 2D images, whose clicks are ``[x, y]``.
        index: the slice the prompts must lie on; ``None`` takes the traced ``ExtractSlice`` index, or accepts
            the one slice all ``ijk`` prompts share.
        foreground_key, background_key, box_key: input keys.
        point_coords_key, point_labels_key, sam_box_key: output keys.
    """

    def __init__(
        self,
        image_key: Hashable = "image",
        long_side: int = 1024,
        axis: int | None = None,
        index: int | None = None,
        foreground_key: Hashable = "foreground",
        background_key: Hashable = "background",
        box_key: Hashable = "box",
        point_coords_key: Hashable = "sam_point_coords",
        point_labels_key: Hashable = "sam_point_labels",
        sam_box_key: Hashable = "sam_box",
    ) -> None:
        if axis is not None:
            slice_axes(axis)
        if isinstance(long_side, bool) or int(long_side) != long_side or long_side <= 0:
            raise ValueError(f"long_side must be a positive integer, got {long_side!r}")
        self.image_key, self.long_side, self.axis, self.index = image_key, int(long_side), axis, index
        self.foreground_key, self.background_key, self.box_key = foreground_key, background_key, box_key
        self.point_coords_key, self.point_labels_key, self.sam_box_key = point_coords_key, point_labels_key, sam_box_key

    def _geometry(self, img: Any) -> tuple[tuple[int, int], int | None, int | None, tuple[int, ...] | None]:
        """``(slice_shape_xy, axis, index, volume_shape_ijk or None)`` for the image under ``image_key``."""
        spatial_shape = tuple(int(s) for s in img.shape[1:])
        axis, index = self.axis, self.index
        sliced = _last_op(img, "ExtractSlice")
        if sliced is not None:
            traced_axis, traced_index = int(sliced["axis"]), int(sliced["index"])
            if (axis is not None and axis != traced_axis) or (index is not None and index != traced_index):
                raise ValueError(
                    f"SamPromptsd(axis={axis}, index={index}) disagrees with the traced slice "
                    f"(axis={traced_axis}, index={traced_index}) of {self.image_key!r}: leave axis/index as None"
                )
            axis, index = traced_axis, traced_index
        resized = _last_op(img, "SamResizePad")
        if resized is not None:
            if int(resized["long_side"]) != self.long_side:
                raise ValueError(
                    f"SamPromptsd(long_side={self.long_side}) but {self.image_key!r} was resized by SamResizePad to "
                    f"{int(resized['long_side'])}: use the same long_side"
                )
            size_x, size_y = (int(s) for s in resized["slice_shape_xy"])
            return (size_x, size_y), axis, index, None
        if len(spatial_shape) == 3:
            axis = 2 if axis is None else axis
            a, b = slice_axes(axis)
            return (spatial_shape[a], spatial_shape[b]), axis, index, spatial_shape
        if len(spatial_shape) == 2:
            return (spatial_shape[0], spatial_shape[1]), axis, index, None
        raise ValueError(
            f"image {self.image_key!r} must be a slice (C, X, Y) or a volume (C, I, J, K), got shape {tuple(img.shape)}"
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.image_key not in d:
            raise KeyError(f"SamPromptsd needs the image under key {self.image_key!r} to know the slice size")
        slice_shape_xy, axis, index, volume_shape = self._geometry(d[self.image_key])
        if volume_shape is not None:
            for key in (self.foreground_key, self.background_key):
                clicks = _clicks(d, key)
                if clicks.ndim == 2 and clicks.shape[1] == 3:
                    check_points_inside(clicks, volume_shape, what=f"{key} click (i, j, k)")
        prompts = to_sam_prompts(
            d.get(self.foreground_key),
            d.get(self.background_key),
            d.get(self.box_key),
            slice_shape_xy=slice_shape_xy,
            long_side=self.long_side,
            axis=axis,
            index=index,
        )
        d[self.point_coords_key], d[self.point_labels_key], d[self.sam_box_key] = prompts
        return d
