"""MONAI inferers that run SAM over 2D images and 3D volumes."""

from monai_baldsam.inferers.slicewise import SlicePrompt, SliceWiseSamInferer

__all__ = ["SlicePrompt", "SliceWiseSamInferer"]
