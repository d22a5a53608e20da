"""Does a propagated mask still cover the prompted object? A test on SAM's own image embeddings.

On the prompted (anchor) slice, the mean embedding under the mask is the object's *prototype* and the mean embedding
of a ring around the mask (``ring_mm`` wide) is its *surroundings'* prototype. A mask on another slice is scored by
its *appearance margin*: cosine similarity of its own mean embedding to the object prototype minus that to the
surroundings prototype. Past the end of the object SAM still returns something inside the box it is given, usually
a piece of neighbouring tissue: its margin turns clearly negative (README, "Volumes", for the measurements).

Frames: slice masks are indexed ``[x, y]`` (``slice_xy``); SAM sees their transpose (rows = ``y``), resized so the
longest side is the encoder's input size and padded at the bottom/right; the embedding grid covers that padded
square. All functions are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from monai_baldsam.sam.geometry import pad_bottom_right, resize_longest_side

__all__ = ["AppearanceModel", "mask_to_embedding_grid", "ring_around", "masked_prototype", "appearance_margin"]

_MIN_WEIGHT = 1e-3


def mask_to_embedding_grid(mask_ab: np.ndarray, img_size: int, grid_hw: Sequence[int]) -> torch.Tensor:
    """The fraction of each embedding cell ``(h, w)`` covered by a slice mask ``[x, y]``, through SAM's resize+pad."""
    mask = np.asarray(mask_ab)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D slice mask indexed [x, y], got shape {mask.shape}")
    sam_hw = torch.from_numpy(np.ascontiguousarray(mask.T, dtype=np.float32))[None, None]
    padded = pad_bottom_right(resize_longest_side(sam_hw, int(img_size)), int(img_size))
    return F.interpolate(padded, size=(int(grid_hw[0]), int(grid_hw[1])), mode="area")[0, 0].clamp_(0.0, 1.0)


def ring_around(mask_ab: np.ndarray, ring_mm: float, spacing_xy: Sequence[float]) -> np.ndarray:
    """Pixels within ``ring_mm`` (Euclidean, in mm on anisotropic pixels) outside the mask ``[x, y]``."""

    mask = np.asarray(mask_ab).astype(bool)
    if not mask.any():
        return np.zeros_like(mask)
    distance = ndimage.distance_transform_edt(~mask, sampling=[float(s) for s in spacing_xy])
    return (distance <= float(ring_mm)) & ~mask


def masked_prototype(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor | None:
    """Unit-norm mean of ``features`` ``(1, D, h, w)`` (or ``(D, h, w)``) weighted by ``weights`` ``(h, w)``.

    ``None`` when the weights cover (almost) nothing.
    """
    feats = features[0] if features.ndim == 4 else features
    if feats.ndim != 3 or tuple(feats.shape[-2:]) != tuple(weights.shape):
        raise ValueError(f"features (D, h, w) {tuple(feats.shape)} and weights (h, w) {tuple(weights.shape)} differ")
    w = weights.to(feats.device, feats.dtype)
    total = float(w.sum())
    if total < _MIN_WEIGHT:
        return None
    mean = (feats * w).sum(dim=(1, 2)) / total
    norm = float(mean.norm())
    return None if norm == 0.0 else (mean / norm).detach().cpu()


def appearance_margin(prototype: torch.Tensor | None, foreground: torch.Tensor,
                      background: torch.Tensor | None) -> float:
    """``cos(prototype, foreground) - cos(prototype, background)`` (the second term is 0 without a background);
    ``-inf`` for a missing prototype (an empty mask)."""
    if prototype is None:
        return float("-inf")
    score = float(prototype @ foreground)
    return score - float(prototype @ background) if background is not None else score


@dataclass(frozen=True)
class AppearanceModel:
    """The object's and its surroundings' prototypes on an anchor slice (unit vectors of the embedding's size)."""

    foreground: torch.Tensor
    background: torch.Tensor | None

    @classmethod
    def from_slice(cls, features: torch.Tensor, mask_ab: np.ndarray, img_size: int, ring_mm: float,
                   spacing_xy: Sequence[float]) -> AppearanceModel | None:
        """Prototypes from an anchor slice's embedding ``(1, D, h, w)`` and mask; ``None`` for an empty mask."""
        grid = tuple(features.shape[-2:])
        foreground = masked_prototype(features, mask_to_embedding_grid(mask_ab, img_size, grid))
        if foreground is None:
            return None
        ring = ring_around(mask_ab, ring_mm, spacing_xy)
        background = masked_prototype(features, mask_to_embedding_grid(ring, img_size, grid))
        return cls(foreground, background)

    def margin(self, features: torch.Tensor, mask_ab: np.ndarray, img_size: int) -> float:
        """The appearance margin of ``mask_ab`` on a slice with embedding ``features`` (see module docstring)."""
        grid = tuple(features.shape[-2:])
        return appearance_margin(masked_prototype(features, mask_to_embedding_grid(mask_ab, img_size, grid)),
                                 self.foreground, self.background)
