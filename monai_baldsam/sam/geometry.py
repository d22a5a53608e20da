"""SAM input geometry as pure functions: resize-longest-side, padding, coordinate maps and mask post-processing.

Frames used in names:

* ``hw`` - an image size as ``(height, width)`` in pixels of the slice handed to SAM.
* ``slice_xy`` - a point ``(x, y)`` in pixels of that slice (``x`` is the column, ``y`` the row).
* ``sam_xy`` - the same point in SAM's resized input frame (before padding, which only adds to the
  bottom and the right, so padding does not move points).

Rounding follows ``segment_anything.utils.transforms.ResizeLongestSide`` exactly: the resized size is
``int(side * scale + 0.5)`` with ``scale = long_side / max(h, w)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "preprocess_shape",
    "slice_xy_to_sam_xy",
    "sam_xy_to_slice_xy",
    "slice_boxes_to_sam_boxes",
    "resize_longest_side",
    "pad_bottom_right",
    "unpad_and_resize",
    "postprocess_low_res_logits",
]

ArrayLike = np.ndarray | torch.Tensor


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Size ``(new_h, new_w)`` of an ``height x width`` image resized so its longest side is ``long_side``.

    Uses SAM's rounding ``int(x * scale + 0.5)``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    if long_side <= 0:
        raise ValueError(f"long_side must be positive, got {long_side}")
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def _scale_factors(original_hw: Sequence[int], long_side: int) -> tuple[float, float]:
    old_h, old_w = int(original_hw[0]), int(original_hw[1])
    new_h, new_w = preprocess_shape(old_h, old_w, long_side)
    return new_w / old_w, new_h / old_h


def slice_xy_to_sam_xy(slice_xy: ArrayLike, original_hw: Sequence[int], long_side: int) -> ArrayLike:
    """Map points ``(..., 2)`` of ``(x, y)`` slice pixels to SAM's resized input frame.

    Same arithmetic as ``ResizeLongestSide.apply_coords``; returns float64 for numpy, float32 for torch.
    """
    sx, sy = _scale_factors(original_hw, long_side)
    if isinstance(slice_xy, torch.Tensor):
        out = slice_xy.to(torch.float32).clone()
    else:
        out = np.array(slice_xy, dtype=np.float64, copy=True)
    out[..., 0] = out[..., 0] * sx
    out[..., 1] = out[..., 1] * sy
    return out


def sam_xy_to_slice_xy(sam_xy: ArrayLike, original_hw: Sequence[int], long_side: int) -> ArrayLike:
    """Inverse of :func:`slice_xy_to_sam_xy`: points ``(..., 2)`` in SAM's frame back to slice pixels."""
    sx, sy = _scale_factors(original_hw, long_side)
    if isinstance(sam_xy, torch.Tensor):
        out = sam_xy.to(torch.float32).clone()
    else:
        out = np.array(sam_xy, dtype=np.float64, copy=True)
    out[..., 0] = out[..., 0] / sx
    out[..., 1] = out[..., 1] / sy
    return out


def slice_boxes_to_sam_boxes(boxes_xyxy: ArrayLike, original_hw: Sequence[int], long_side: int) -> ArrayLike:
    """Map boxes ``(..., 4)`` given as ``(x0, y0, x1, y1)`` slice pixels to SAM's frame."""
    shape = tuple(boxes_xyxy.shape)
    if shape[-1] != 4:
        raise ValueError(f"boxes must have 4 values (x0, y0, x1, y1) in the last dimension, got shape {shape}")
    pts = boxes_xyxy.reshape(*shape[:-1], 2, 2)
    return slice_xy_to_sam_xy(pts, original_hw, long_side).reshape(shape)


def resize_longest_side(images: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize ``B x C x H x W`` float images so the longest side is ``long_side`` (bilinear, antialiased).

    This is the torch path of SAM's transform (``apply_image_torch``), with the size computed from
    ``H, W`` (SAM's own helper reads the wrong dimensions for batched input).
    """
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    new_hw = preprocess_shape(images.shape[-2], images.shape[-1], long_side)
    if new_hw == tuple(images.shape[-2:]):
        return images
    return F.interpolate(images, new_hw, mode="bilinear", align_corners=False, antialias=True)


def pad_bottom_right(images: torch.Tensor, size: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``... x H x W`` to ``size x size`` by adding rows at the bottom and columns at the right."""
    h, w = images.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"cannot pad an image of {h}x{w} to {size}x{size}: it is larger")
    return F.pad(images, (0, size - w, 0, size - h), value=value)


def unpad_and_resize(padded: torch.Tensor, resized_hw: Sequence[int], original_hw: Sequence[int],
                     mode: str = "bilinear") -> torch.Tensor:
    """Crop the padding off ``B x C x S x S`` and resize to ``original_hw``: the inverse of resize + pad."""
    cropped = padded[..., : int(resized_hw[0]), : int(resized_hw[1])]
    size = (int(original_hw[0]), int(original_hw[1]))
    if tuple(cropped.shape[-2:]) == size:
        return cropped
    if mode == "nearest":
        return F.interpolate(cropped, size, mode="nearest-exact")
    return F.interpolate(cropped, size, mode=mode, align_corners=False)


def postprocess_low_res_logits(low_res_logits: torch.Tensor, img_size: int, original_hw: Sequence[int]) -> torch.Tensor:
    """Upscale SAM's low-resolution mask logits ``B x C x h x w`` to the slice: same steps as ``Sam.postprocess_masks``.

    The logits are upsampled to the padded ``img_size`` square, the padding is cropped, and the result is
    resized to ``original_hw``.
    """
    resized_hw = preprocess_shape(int(original_hw[0]), int(original_hw[1]), img_size)
    up = F.interpolate(low_res_logits, (img_size, img_size), mode="bilinear", align_corners=False)
    return unpad_and_resize(up, resized_hw, original_hw, mode="bilinear")
