"""Private helper: compose a ``MetaTensor``'s affine with an index map, for the inverses of spatial transforms.

An *index map* is a homogeneous ``(r + 1) x (r + 1)`` matrix taking voxel indices of the transformed array to
voxel indices of the array before the transform. The forward transforms pass it to ``push_transform(affine=...)``;
the inverses call :func:`compose_index_map` with the inverse matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd

__all__ = ["compose_index_map"]


def compose_index_map(img: torch.Tensor, index_map: np.ndarray) -> torch.Tensor:
    """Set ``img.affine = img.affine @ index_map`` (lifted to the affine's rank) in place; no-op for plain tensors."""
    if not isinstance(img, MetaTensor):
        return img
    affine = img.affine
    lifted = to_affine_nd(int(affine.shape[-1]) - 1, index_map)
    img.affine = affine.to(torch.float64) @ torch.as_tensor(lifted, dtype=torch.float64, device=affine.device)
    return img
