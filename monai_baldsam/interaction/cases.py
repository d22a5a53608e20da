"""One (image, mask) case loaded for the click simulator: windowed once and in SAM's orientation.

Images are windowed once per image with :func:`monai_baldsam.transforms.intensity.default_window` (whole-image
min-max for pictures) and turned into SAM's orientation (rows = ``y``, columns = ``x``). Finding the cases is
:mod:`monai_baldsam.io.cases`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monai_baldsam.inferers.slicewise import SliceWiseSamInferer
from monai_baldsam.io.cases import NOT_YET_3D, EvalCase, checked_truth
from monai_baldsam.io.readers import load_image, load_mask
from monai_baldsam.transforms.intensity import default_window

__all__ = ["LoadedCase", "load_case"]


@dataclass(frozen=True)
class LoadedCase:
    """A case ready for the simulator: ``image`` ``1 x 3 x H x W`` float in [0, 1] and ``truth`` ``(H, W)`` bool,
    both in SAM's orientation (rows = y, columns = x)."""

    case: EvalCase
    image: torch.Tensor
    truth: np.ndarray


def load_case(case: EvalCase) -> LoadedCase:
    """Load, check and window one case for the simulator (SAM orientation).

    Raises:
        ValueError: a 3D image, a mask whose shape differs from the image's, an empty mask, an image with other
            than 1, 3 or 4 channels.
    """
    image = load_image(case.image)
    if image.ndim != 3:
        raise ValueError(f"{NOT_YET_3D}{case.image} has shape {tuple(image.shape[1:])}")
    truth = checked_truth(case, load_mask(case.mask, reference=image))
    windowed = default_window(image)(image)
    sam_image = SliceWiseSamInferer().sam_images(windowed, [0])
    return LoadedCase(case, sam_image.contiguous(), truth)
