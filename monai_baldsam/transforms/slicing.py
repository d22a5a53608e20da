"""Extract a 2D slice ``(C, a, b)`` from a channel-first volume ``(C, I, J, K)``, and put it back.

A slice along spatial ``axis`` (0, 1 or 2) keeps the other two spatial axes in increasing order,
``(a, b) = slice_axes(axis)``; a slice pixel ``slice_xy = (x, y)`` is ``(index along a, index along b)``.
The affine of a ``MetaTensor`` output maps slice pixels ``(x, y, 0)`` to the same world points as the volume's
voxels, so the slice stays registered to the volume.
"""

from __future__ import annotations

from typing import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.data.meta_obj import get_track_meta
from monai.utils import TraceKeys, TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_baldsam.transforms._affine import compose_index_map

__all__ = ["slice_axes", "check_slice", "extract_slice", "ExtractSlice", "ExtractSliced"]


def slice_axes(axis: int) -> tuple[int, int]:
    """The spatial axes ``(a, b)`` kept by a slice along ``axis``: ``0 -> (1, 2)``, ``1 -> (0, 2)``, ``2 -> (0, 1)``."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or int(axis) not in (0, 1, 2):
        raise ValueError(f"slice axis must be a spatial axis 0, 1 or 2 of a (C, I, J, K) volume, got {axis!r}")
    a, b = (d for d in range(3) if d != int(axis))
    return a, b


def check_slice(spatial_shape: tuple[int, ...], axis: int, index: int) -> None:
    """Raise ``ValueError`` unless ``spatial_shape`` is 3D and ``0 <= index < spatial_shape[axis]``."""
    if len(spatial_shape) != 3:
        raise ValueError(
            f"slice extraction needs a channel-first 3D volume (C, I, J, K); got spatial shape "
            f"{tuple(spatial_shape)} ({len(spatial_shape)}D). 2D images are already slices."
        )
    slice_axes(axis)
    size = int(spatial_shape[axis])
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= int(index) < size:
        raise ValueError(
            f"slice index {index!r} is outside the volume: spatial shape {tuple(int(s) for s in spatial_shape)} "
            f"has {size} slices along axis {axis}, valid indices are 0..{size - 1}"
        )


def extract_slice(volume: NdarrayOrTensor, axis: int, index: int) -> NdarrayOrTensor:
    """The slice ``(C, a, b)`` at ``index`` along spatial ``axis`` of ``volume (C, I, J, K)``, as a copy."""
    check_slice(tuple(volume.shape[1:]), axis, index)
    sel = [slice(None)] * 4
    sel[1 + axis] = int(index)
    out = volume[tuple(sel)]
    return out.clone() if isinstance(out, torch.Tensor) else np.array(out, copy=True)


def _index_map(axis: int, index: int) -> np.ndarray:
    """Homogeneous 4x4 map from slice indices ``(x, y, z)`` to volume indices: ``a=x, b=y, axis=z+index``."""
    a, b = slice_axes(axis)
    mat = np.zeros((4, 4), dtype=np.float64)
    mat[a, 0] = mat[b, 1] = mat[axis, 2] = mat[3, 3] = 1.0
    mat[axis, 3] = float(index)
    return mat


class ExtractSlice(InvertibleTransform):
    """Take the 2D slice at ``index`` along spatial ``axis``: ``(C, I, J, K) -> (C, a, b)``.

    The inverse takes any ``(C', a, b)`` array (for example a label predicted on the slice) and returns a
    zero volume ``(C', I, J, K)`` of the original spatial shape with the slice written at ``index``; axis and
    index are read from the pushed transform info, so overriding them in ``__call__`` is safe.

    Args:
        axis: spatial axis (0, 1 or 2) across which to slice.
        index: slice position along ``axis``, ``0 <= index < size``.

    Raises:
        ValueError: for a non-3D input, an axis not in 0..2 or an index outside the volume.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, axis: int = 2, index: int = 0) -> None:
        slice_axes(axis)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"slice index must be a non-negative integer, got {index!r}")
        self.axis, self.index = int(axis), int(index)

    def __call__(self, img: NdarrayOrTensor, axis: int | None = None, index: int | None = None) -> NdarrayOrTensor:
        """Slice ``img (C, I, J, K)``; ``axis``/``index`` override the constructor's values for this call."""
        axis = self.axis if axis is None else int(axis)
        index = self.index if index is None else int(index)
        if isinstance(img, np.ndarray):
            return extract_slice(img, axis, index)
        img = convert_to_tensor(img, track_meta=get_track_meta())
        spatial_shape = tuple(int(s) for s in img.shape[1:])
        values = img.as_tensor() if isinstance(img, MetaTensor) else img
        out, *_ = convert_to_dst_type(extract_slice(values, axis, index), img)
        return self.push_transform(
            out,
            orig_size=spatial_shape,
            extra_info={"axis": axis, "index": index},
            affine=_index_map(axis, index),
        )

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Write ``data (C', a, b)`` into a zero volume ``(C', I, J, K)`` at the recorded slice."""
        transform = self.pop_transform(data)
        axis, index = int(transform[TraceKeys.EXTRA_INFO]["axis"]), int(transform[TraceKeys.EXTRA_INFO]["index"])
        spatial_shape = tuple(int(s) for s in transform[TraceKeys.ORIG_SIZE])
        a, b = slice_axes(axis)
        expected = (spatial_shape[a], spatial_shape[b])
        if data.ndim != 3 or tuple(data.shape[1:]) != expected:
            raise ValueError(
                f"ExtractSlice.inverse needs a (C, {expected[0]}, {expected[1]}) slice of the original volume "
                f"{spatial_shape} (axis {axis}); got shape {tuple(data.shape)}"
            )
        values = data.as_tensor() if isinstance(data, MetaTensor) else torch.as_tensor(data)
        volume = values.new_zeros((values.shape[0], *spatial_shape))
        sel = [slice(None)] * 4
        sel[1 + axis] = index
        volume[tuple(sel)] = values
        out, *_ = convert_to_dst_type(volume, data)
        return compose_index_map(out, np.linalg.inv(_index_map(axis, index)))


class ExtractSliced(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`ExtractSlice`: the same slice is taken from every key.

    Args:
        keys: keys of the volumes ``(C, I, J, K)`` to slice.
        axis: spatial axis (0, 1 or 2) across which to slice.
        index: slice position along ``axis``.
        allow_missing_keys: skip keys absent from the dictionary instead of raising ``KeyError``.
    """

    backend = ExtractSlice.backend

    def __init__(self, keys: KeysCollection, axis: int = 2, index: int = 0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slicer = ExtractSlice(axis=axis, index=index)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.slicer(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.slicer.inverse(d[key])
        return d
