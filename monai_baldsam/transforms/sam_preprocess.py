"""Turn a MONAI slice ``(C, X, Y)`` into SAM's square input ``(3, S, S)``, and map SAM-frame outputs back.

Frames: a MONAI slice is indexed ``[c, x, y]`` (``x`` the picture column, ``y`` the row); SAM's image is
``(rows=H, cols=W) = (Y, X)``, the transpose: ``sam_image[:, y', x'] ~ slice[:, x, y]`` with
``x' = x * W'/X`` and ``y' = y * H'/Y`` where ``(H', W') = sam_resized_hw((X, Y), S)`` uses SAM's rounding.

The forward step repeats a grey channel to RGB (an alpha channel is dropped), transposes, resizes the longest
side to ``S`` (bilinear, antialiased, :func:`monai_baldsam.sam.geometry.resize_longest_side`) and pads
bottom-right to ``S x S``. It does not normalise: per-backbone mean/std belongs to the predictor.
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys, TransformBackends, convert_to_dst_type, convert_to_tensor

from monai_baldsam.sam.geometry import pad_bottom_right, preprocess_shape, resize_longest_side, unpad_and_resize
from monai_baldsam.transforms._affine import compose_index_map

__all__ = [
    "INVERSE_MODES",
    "sam_resized_hw",
    "to_rgb",
    "slice_to_sam_hw",
    "sam_hw_to_slice",
    "slice_to_sam_input",
    "sam_input_to_slice",
    "SamResizePad",
    "SamResizePadd",
]

INVERSE_MODES = ("bilinear", "nearest")
"""Interpolation modes accepted for mapping SAM-frame tensors back to the slice."""


def sam_resized_hw(slice_shape_xy: Sequence[int], long_side: int) -> tuple[int, int]:
    """SAM-frame size ``(H', W')`` (before padding) of a slice with spatial shape ``(X, Y)``; SAM's rounding."""
    if len(slice_shape_xy) != 2:
        raise ValueError(f"slice_shape_xy must be the (X, Y) spatial shape of a 2D slice, got {tuple(slice_shape_xy)}")
    size_x, size_y = (int(s) for s in slice_shape_xy)
    return preprocess_shape(size_y, size_x, int(long_side))


def to_rgb(slice_cxy: torch.Tensor) -> torch.Tensor:
    """Three channels from a ``(C, ...)`` slice: grey repeated, RGB kept, RGBA's alpha dropped."""
    channels = int(slice_cxy.shape[0])
    if channels == 1:
        return slice_cxy.expand(3, -1, -1)
    if channels == 3:
        return slice_cxy
    if channels == 4:
        return slice_cxy[:3]  # RGBA: drop alpha
    raise ValueError(
        f"SAM input needs 1 (grey), 3 (RGB) or 4 (RGBA) channels in a (C, X, Y) slice, got {channels} channels "
        f"(shape {tuple(slice_cxy.shape)}); pick or merge channels first (choose one channel of a multi-channel "
        "volume)"
    )


def slice_to_sam_hw(slice_cxy: torch.Tensor) -> torch.Tensor:
    """A slice ``(C, X, Y)`` (or a batch ``(B, C, X, Y)``) as SAM's unresized image ``(3, H=Y, W=X)``: three channels
    (:func:`to_rgb`) and the one transpose between the slice frame and SAM's rows/columns."""
    if slice_cxy.ndim == 4:
        return torch.stack([slice_to_sam_hw(s) for s in slice_cxy])
    return to_rgb(slice_cxy).to(torch.float32).transpose(-1, -2)


def sam_hw_to_slice(sam_hw: torch.Tensor) -> torch.Tensor:
    """SAM's ``(..., H, W)`` back to the slice frame ``(..., X, Y)`` (the inverse transpose of
    :func:`slice_to_sam_hw`)."""
    return sam_hw.transpose(-1, -2)


def slice_to_sam_input(slice_cxy: torch.Tensor, long_side: int, pad_value: float = 0.0) -> torch.Tensor:
    """SAM input ``(3, S, S)`` float32 from a slice ``(C, X, Y)`` (``C`` in 1, 3, 4); no normalisation."""
    if slice_cxy.ndim != 3:
        raise ValueError(
            f"expected a channel-first 2D slice (C, X, Y), got shape {tuple(slice_cxy.shape)}; "
            "extract a slice from a volume first (ExtractSlice)"
        )
    if long_side <= 0:
        raise ValueError(f"long_side must be positive, got {long_side}")
    rgb_hw = slice_to_sam_hw(slice_cxy)  # (3, H=Y, W=X)
    resized = resize_longest_side(rgb_hw.unsqueeze(0).contiguous(), int(long_side))
    return pad_bottom_right(resized, int(long_side), value=float(pad_value))[0]


def sam_input_to_slice(sam_chw: torch.Tensor, slice_shape_xy: Sequence[int], mode: str = "bilinear") -> torch.Tensor:
    """Map ``(C', S, S)`` at SAM input resolution back to the slice ``(C', X, Y)``: crop padding, resize, transpose.

    ``mode`` is ``"bilinear"`` (probabilities, logits) or ``"nearest"`` (labels; the input dtype is kept).
    """
    if mode not in INVERSE_MODES:
        raise ValueError(f"mode must be one of {INVERSE_MODES}, got {mode!r}")
    if sam_chw.ndim != 3 or sam_chw.shape[-1] != sam_chw.shape[-2]:
        raise ValueError(f"expected a square SAM-frame tensor (C, S, S), got shape {tuple(sam_chw.shape)}")
    long_side = int(sam_chw.shape[-1])
    size_x, size_y = (int(s) for s in slice_shape_xy)
    resized_hw = sam_resized_hw((size_x, size_y), long_side)
    dtype = sam_chw.dtype
    values = sam_chw.to(torch.float32) if not torch.is_floating_point(sam_chw) else sam_chw
    out_hw = unpad_and_resize(values.unsqueeze(0), resized_hw, (size_y, size_x), mode=mode)[0]
    out = out_hw.transpose(-1, -2).contiguous()  # (C', X, Y)
    return out.to(dtype) if mode == "nearest" else out


def _index_map(slice_shape_xy: Sequence[int], resized_hw: Sequence[int]) -> np.ndarray:
    """Homogeneous 3x3 map from SAM-frame pixel indices ``(row, col)`` to slice indices ``(x, y)`` (pixel centres)."""
    size_x, size_y = (float(s) for s in slice_shape_xy)
    new_h, new_w = (float(s) for s in resized_hw)
    step_x, step_y = size_x / new_w, size_y / new_h
    return np.array(
        [[0.0, step_x, 0.5 * step_x - 0.5], [step_y, 0.0, 0.5 * step_y - 0.5], [0.0, 0.0, 1.0]], dtype=np.float64
    )


class SamResizePad(InvertibleTransform):
    """Slice ``(C, X, Y)`` -> SAM input ``(3, long_side, long_side)`` float32, invertible.

    See the module docstring for the steps and frames. The pushed transform info records the slice shape
    ``(X, Y)``, the resized size ``(H', W')``, ``long_side`` and the inverse interpolation ``mode``.
    ``inverse`` takes any ``(C', long_side, long_side)`` tensor in the SAM frame (mask logits, labels) and
    returns ``(C', X, Y)``; ``monai.transforms.Invertd(nearest_interp=True)`` switches the recorded mode to
    ``"nearest"``.

    Args:
        long_side: SAM's input size ``S`` (1024 for SAM ViT backbones, 256 for MedSAM-lite style models).
        pad_value: value of the bottom/right padding (0 suits inputs windowed to ``[0, 1]``).
        inverse_mode: ``"bilinear"`` (default, for logits/probabilities) or ``"nearest"`` (for labels).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, long_side: int = 1024, pad_value: float = 0.0, inverse_mode: str = "bilinear") -> None:
        if isinstance(long_side, bool) or int(long_side) != long_side or long_side <= 0:
            raise ValueError(f"long_side must be a positive integer, got {long_side!r}")
        if inverse_mode not in INVERSE_MODES:
            raise ValueError(f"inverse_mode must be one of {INVERSE_MODES}, got {inverse_mode!r}")
        self.long_side, self.pad_value, self.inverse_mode = int(long_side), float(pad_value), inverse_mode

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        """Resize and pad ``img (C, X, Y)``; returns a tensor (``MetaTensor`` when meta is tracked)."""
        img = convert_to_tensor(img, track_meta=get_track_meta())
        values = img.as_tensor() if isinstance(img, MetaTensor) else img
        slice_shape_xy = tuple(int(s) for s in img.shape[1:])
        out_t = slice_to_sam_input(values, self.long_side, self.pad_value)
        resized_hw = sam_resized_hw(slice_shape_xy, self.long_side)
        out, *_ = convert_to_dst_type(out_t, img, dtype=torch.float32)
        return self.push_transform(
            out,
            orig_size=slice_shape_xy,
            extra_info={
                "slice_shape_xy": slice_shape_xy,
                "resized_hw": resized_hw,
                "long_side": self.long_side,
                "mode": self.inverse_mode,
            },
            affine=_index_map(slice_shape_xy, resized_hw),
        )

    def inverse(self, data: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        """Map ``data (C', long_side, long_side)`` back to the slice ``(C', X, Y)``.

        ``mode`` overrides the recorded interpolation (``"bilinear"`` or ``"nearest"``).
        """
        info = self.pop_transform(data)[TraceKeys.EXTRA_INFO]
        long_side = int(info["long_side"])
        if data.ndim != 3 or tuple(data.shape[1:]) != (long_side, long_side):
            raise ValueError(
                f"SamResizePad.inverse needs a (C, {long_side}, {long_side}) tensor in the SAM input frame, "
                f"got shape {tuple(data.shape)}"
            )
        slice_shape_xy = tuple(int(s) for s in info["slice_shape_xy"])
        values = data.as_tensor() if isinstance(data, MetaTensor) else torch.as_tensor(data)
        out_t = sam_input_to_slice(values, slice_shape_xy, mode=mode or str(info["mode"]))
        out, *_ = convert_to_dst_type(out_t, data, dtype=out_t.dtype)
        return compose_index_map(out, np.linalg.inv(_index_map(slice_shape_xy, info["resized_hw"])))


class SamResizePadd(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`SamResizePad`, applied to each key's slice.

    Args:
        keys: keys of the slices ``(C, X, Y)`` to convert.
        long_side: SAM's input size.
        pad_value: padding value.
        inverse_mode: interpolation of the inverse, ``"bilinear"`` or ``"nearest"``.
        allow_missing_keys: skip keys absent from the dictionary instead of raising ``KeyError``.
    """

    backend = SamResizePad.backend

    def __init__(
        self,
        keys: KeysCollection,
        long_side: int = 1024,
        pad_value: float = 0.0,
        inverse_mode: str = "bilinear",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.resizer = SamResizePad(long_side=long_side, pad_value=pad_value, inverse_mode=inverse_mode)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer.inverse(d[key])
        return d
