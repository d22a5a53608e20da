"""3D volumes: slice-wise SAM with propagation through the object, corrections, and DICOM SEG output.

* :mod:`~monai_baldsam.transforms.volume_geometry` - voxel spacing, the through-plane axis, boxes from masks in mm (pure).
* :mod:`~monai_baldsam.volume.stopping` - the rule that ends propagation (pure).
* :mod:`~monai_baldsam.volume.propagation` - settings and the prompt one slice gives the next.
* :mod:`~monai_baldsam.volume.session` - :class:`VolumeSession`: prompt, propagate, correct, re-propagate.
* :mod:`~monai_baldsam.volume.dicom_seg` - DICOM SEG for masks of DICOM series (highdicom).
* :mod:`~monai_baldsam.volume.uncertainty_cache` - per-slice uncertainty maps cached by the slice's prompt.

Importing the package loads no model and no data.
"""

from __future__ import annotations

from monai_baldsam.transforms.volume_geometry import (
    expand_box_mm,
    mask_area_mm2,
    mask_box_slice_xy,
    resolve_axis,
    slice_spacing_xy,
    through_plane_axis,
    voxel_spacing,
)
from monai_baldsam.volume.propagation import PropagationConfig, PropagationPrompt, propagation_prompt
from monai_baldsam.volume.session import PropagationRun, SliceResult, VolumeSession
from monai_baldsam.volume.stopping import StopReason, StopRule, accepted_run

__all__ = [
    "VolumeSession",
    "SliceResult",
    "PropagationRun",
    "PropagationConfig",
    "PropagationPrompt",
    "propagation_prompt",
    "StopRule",
    "StopReason",
    "accepted_run",
    "voxel_spacing",
    "through_plane_axis",
    "resolve_axis",
    "slice_spacing_xy",
    "mask_box_slice_xy",
    "expand_box_mm",
    "mask_area_mm2",
]
