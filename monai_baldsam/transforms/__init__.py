"""MONAI transforms for SAM: per-volume intensity windowing, slice extraction, SAM resize/pad and prompt frames.

Array transforms hold the logic; their ``...d`` dictionary versions loop over keys. Spatial transforms
(:class:`ExtractSlice`, :class:`SamResizePad`) are invertible, so ``monai.transforms.Invertd`` maps a
prediction in the SAM frame back to the slice and the volume.
"""

from __future__ import annotations

from monai_baldsam.transforms.intensity import (
    CT_PRESETS,
    MODALITY_META_KEY,
    WINDOW_META_KEY,
    WINDOW_MODE_META_KEY,
    CTPreset,
    WindowIntensity,
    WindowIntensityd,
    WindowMode,
    apply_window,
    compute_window,
    window_for_modality,
)
from monai_baldsam.transforms.prompts import (
    SamPrompts,
    SamPromptsd,
    ijk_box_to_slice_box,
    ijk_to_slice_xy,
    slice_xy_to_ijk,
    to_sam_prompts,
)
from monai_baldsam.transforms.sam_preprocess import (
    SamResizePad,
    SamResizePadd,
    sam_input_to_slice,
    sam_resized_hw,
    slice_to_sam_input,
)
from monai_baldsam.transforms.slicing import ExtractSlice, ExtractSliced, check_slice, extract_slice, slice_axes

__all__ = [
    "CT_PRESETS",
    "MODALITY_META_KEY",
    "WINDOW_META_KEY",
    "WINDOW_MODE_META_KEY",
    "CTPreset",
    "WindowIntensity",
    "WindowIntensityd",
    "WindowMode",
    "apply_window",
    "compute_window",
    "window_for_modality",
    "SamPrompts",
    "SamPromptsd",
    "ijk_box_to_slice_box",
    "ijk_to_slice_xy",
    "slice_xy_to_ijk",
    "to_sam_prompts",
    "SamResizePad",
    "SamResizePadd",
    "sam_input_to_slice",
    "sam_resized_hw",
    "slice_to_sam_input",
    "ExtractSlice",
    "ExtractSliced",
    "check_slice",
    "extract_slice",
    "slice_axes",
]
