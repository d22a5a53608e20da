"""Prompts through a MONAI pipeline: carried in world coordinates across the spatial transforms a user adds.

A user's clicks and box are given on the loaded image (:class:`~monai_baldsam.transforms.prompts.UserPrompts`,
voxel ``(i, j, k)`` or pixel ``(x, y)``). When a pipeline resamples, flips or reorients the image (``Spacingd``,
``Orientationd``, ``Flipd``, ``Rotate90d``...), those indices no longer point at the same place. The two dictionary
transforms here bracket such transforms in a ``Compose``:

* :class:`PromptsToWorldd`, right after loading: the prompts become world points (the image's affine: mm);
* :class:`PromptsToImaged`, after the spatial transforms: the world points become indices of the transformed
  image (its new affine), checked against it once (:func:`~monai_baldsam.transforms.prompts.check_prompts`).

The label predicted on the transformed image goes back to the loaded image's grid with MONAI's ``Invertd``. A box
stays a box only under axis-aligned transforms (its two corners must stay on one slice); anything else is refused
with a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd
from monai.transforms import MapTransform

from monai_baldsam.transforms.prompts import UserPrompts, check_prompts
from monai_baldsam.transforms.slicing import slice_axes
from monai_baldsam.transforms.volume_geometry import resolve_axis

__all__ = ["WorldPrompts", "to_world", "from_world", "map_points", "PromptsToWorldd", "PromptsToImaged"]

#: How far (in voxels) the two corners of a box may lie from one slice after the transforms.
SLICE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class WorldPrompts:
    """Clicks and a box as world points (rows are points, columns the image's spatial dimensions).

    Attributes:
        foreground, background: ``(N, D)`` world points of the clicks.
        box_corners: ``(2, D)`` world points of the box's two corners, or ``None``.
    """

    foreground: np.ndarray
    background: np.ndarray
    box_corners: np.ndarray | None


def _affine(image: torch.Tensor, dims: int) -> np.ndarray:
    if not isinstance(image, MetaTensor):
        raise ValueError("prompts move with the image through its affine: the image must be a MetaTensor (load it "
                         "with monai_baldsam.io.load_image or MONAI's LoadImaged)")
    affine = image.affine.detach().cpu().numpy().astype(np.float64)
    return np.asarray(to_affine_nd(dims, affine), dtype=np.float64)


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, affine.shape[0] - 1)
    return points @ affine[:-1, :-1].T + affine[:-1, -1]


def _box_corners(box: Any, dims: int, axis: int) -> np.ndarray:
    values = np.asarray(box, dtype=np.float64).reshape(-1)
    if dims == 2:
        if values.size != 4:
            raise ValueError(f"a 2D box is (x0, y0, x1, y1), got {values.size} values")
        return values.reshape(2, 2)
    if values.size != 5:
        raise ValueError(f"a 3D box is (a0, b0, index, a1, b1) on one slice along axis {axis}, got {values.size} values")
    a, b = slice_axes(axis)
    corners = np.zeros((2, 3))
    corners[:, axis] = values[2]
    corners[0, [a, b]] = values[0], values[1]
    corners[1, [a, b]] = values[3], values[4]
    return corners


def to_world(prompts: UserPrompts, image: torch.Tensor) -> WorldPrompts:
    """``prompts`` (indices of ``image``) as world points; a 3D box is read on ``image``'s through-plane axis (the
    axis :class:`~monai_baldsam.segmentation.Segmenter` slices along by default)."""
    dims = image.ndim - 1
    affine = _affine(image, dims)
    axis = resolve_axis(None, image.affine) if dims == 3 else 2
    points = {name: np.asarray(clicks, dtype=np.float64).reshape(-1, dims)
              for name, clicks in (("fg", prompts.foreground), ("bg", prompts.background))}
    corners = None if prompts.box is None else _apply(affine, _box_corners(prompts.box, dims, axis))
    return WorldPrompts(_apply(affine, points["fg"]), _apply(affine, points["bg"]), corners)


def from_world(world: WorldPrompts, image: torch.Tensor) -> UserPrompts:
    """``world`` as indices of ``image`` (through its affine's inverse). A 3D box must lie on one slice of
    ``image``'s through-plane axis after the transforms."""
    dims = image.ndim - 1
    inverse = np.linalg.inv(_affine(image, dims))
    foreground = _apply(inverse, world.foreground).tolist()
    background = _apply(inverse, world.background).tolist()
    box = None
    if world.box_corners is not None:
        corners = _apply(inverse, world.box_corners)
        low, high = corners.min(axis=0), corners.max(axis=0)
        if dims == 2:
            box = [low[0], low[1], high[0], high[1]]
        else:
            axis = resolve_axis(None, image.affine)
            if abs(corners[0, axis] - corners[1, axis]) > SLICE_TOLERANCE:
                raise ValueError(f"after the pipeline's spatial transforms the box's corners {corners.round(2).tolist()} "
                                 f"are not on one slice along axis {axis}, the axis the image is sliced along: use "
                                 "transforms that keep the slices (spacing, flips, 90 degree rotations in-plane)")
            a, b = slice_axes(axis)
            box = [low[a], low[b], float(np.rint(corners[0, axis])), high[a], high[b]]
    return UserPrompts(box=box, foreground=foreground, background=background)


def map_points(points: Any, source: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Indices ``(N, D)`` of ``source`` as indices of ``target``, through world coordinates (both affines)."""
    dims = source.ndim - 1
    world = _apply(_affine(source, dims), np.asarray(points, dtype=np.float64))
    return _apply(np.linalg.inv(_affine(target, dims)), world)


class PromptsToWorldd(MapTransform):
    """Replace ``data[prompts_key]`` (:class:`UserPrompts` on ``data[image_key]``) with :class:`WorldPrompts`.
    Put it right after loading, before any spatial transform."""

    def __init__(self, image_key: Hashable = "image", prompts_key: Hashable = "prompts") -> None:
        super().__init__([prompts_key])
        self.image_key, self.prompts_key = image_key, prompts_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        prompts = d[self.prompts_key]
        if not isinstance(prompts, UserPrompts):
            raise ValueError(f"{self.prompts_key!r} must hold UserPrompts (on the loaded image), got "
                             f"{type(prompts).__name__}: put PromptsToWorldd right after loading")
        d[self.prompts_key] = to_world(prompts, d[self.image_key])
        return d


class PromptsToImaged(MapTransform):
    """Replace ``data[prompts_key]`` (:class:`WorldPrompts`) with
    :class:`~monai_baldsam.transforms.prompts.CheckedPrompts` on ``data[image_key]``,
    the image as the spatial transforms before this one left it. Put it after the last spatial transform."""

    def __init__(self, image_key: Hashable = "image", prompts_key: Hashable = "prompts") -> None:
        super().__init__([prompts_key])
        self.image_key, self.prompts_key = image_key, prompts_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        world = d[self.prompts_key]
        if not isinstance(world, WorldPrompts):
            raise ValueError(f"{self.prompts_key!r} must hold WorldPrompts, got {type(world).__name__}: put "
                             "PromptsToWorldd before the spatial transforms")
        image = d[self.image_key]
        prompts = from_world(world, image)
        axis = resolve_axis(None, image.affine) if image.ndim == 4 else 2
        d[self.prompts_key] = check_prompts(prompts, tuple(image.shape[1:]), axis)
        return d

