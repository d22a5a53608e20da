"""Reading images/masks (PNG/JPG, NIfTI, DICOM) as channel-first MetaTensors, and writing masks, probability maps
and overlays safely (atomic, never onto an input).

Importing this package loads no data and changes no global state (no matplotlib backend switch, no logging setup).
"""

from __future__ import annotations

from monai_baldsam.io.atomic import TEMP_PREFIX, atomic_path, atomic_write_bytes, atomic_write_text, check_output_path
from monai_baldsam.io.dicom import DicomInfo, scan_dicom_file, scan_dicom_series
from monai_baldsam.io.formats import (
    DICOM_SUFFIXES,
    MASK_OUTPUT_SUFFIXES,
    NIFTI_SUFFIXES,
    PICTURE_SUFFIXES,
    InputFormat,
    detect_format,
)
from monai_baldsam.io.overlay import render_overlay, save_overlay_png
from monai_baldsam.io.readers import FORMAT_KEY, KIND_KEY, MODALITY_KEY, UNKNOWN_MODALITY, load_image, load_mask
from monai_baldsam.io.writers import write_mask, write_probability_map

__all__ = [
    "load_image",
    "load_mask",
    "write_mask",
    "write_probability_map",
    "save_overlay_png",
    "render_overlay",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "detect_format",
    "InputFormat",
    "DicomInfo",
    "scan_dicom_file",
    "scan_dicom_series",
    "KIND_KEY",
    "FORMAT_KEY",
    "MODALITY_KEY",
    "UNKNOWN_MODALITY",
    "TEMP_PREFIX",
    "PICTURE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "DICOM_SUFFIXES",
    "MASK_OUTPUT_SUFFIXES",
]
