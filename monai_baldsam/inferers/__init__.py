"""MONAI inferers that run SAM over 2D images and 3D volumes."""

from monai_baldsam.inferers.slicewise import SliceWiseSamInferer
from monai_baldsam.transforms.prompts import SlicePrompt

__all__ = ["SlicePrompt", "SliceWiseSamInferer"]
