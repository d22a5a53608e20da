"""Which on-disk format a path holds, decided from its name (and, for extension-less files, the DICOM preamble)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

__all__ = [
    "InputFormat",
    "PICTURE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "DICOM_SUFFIXES",
    "MASK_OUTPUT_SUFFIXES",
    "SUPPORTED_INPUTS_TEXT",
    "full_suffix",
    "detect_format",
]

PathLike = str | os.PathLike

#: 2D pictures read with PIL (MONAI ``PILReader``).
PICTURE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: 3D (or 4D) volumes read with nibabel (MONAI ``NibabelReader``).
NIFTI_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz")
#: Single DICOM files (extension-less files with the ``DICM`` preamble are accepted too).
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
#: What :func:`monai_baldsam.io.write_mask` can write.
MASK_OUTPUT_SUFFIXES: tuple[str, ...] = (".png", ".nii", ".nii.gz")

SUPPORTED_INPUTS_TEXT = (
    f"2D pictures {', '.join(PICTURE_SUFFIXES)}; NIfTI volumes {', '.join(NIFTI_SUFFIXES)}; "
    f"a single DICOM file ({', '.join(DICOM_SUFFIXES)}); or a folder holding the DICOM files of one series"
)


class InputFormat(str, Enum):
    """The kinds of input :func:`monai_baldsam.io.load_image` understands."""

    PICTURE = "picture"
    NIFTI = "nifti"
    DICOM_FILE = "dicom_file"
    DICOM_SERIES = "dicom_series"


def full_suffix(path: PathLike) -> str:
    """The lower-case suffix, with ``.nii.gz`` kept whole (``Path.suffix`` would give ``.gz``)."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def _has_dicom_preamble(path: Path) -> bool:
    """True when ``path`` has the 128-byte preamble followed by ``DICM`` (pydicom's own test, without importing it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def detect_format(path: PathLike) -> InputFormat:
    """Decide the format of an existing ``path``.

    Args:
        path: a file or a folder that exists.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the extension is not one we read; the message lists the supported formats.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist: check the path. Supported inputs: {SUPPORTED_INPUTS_TEXT}.")
    if p.is_dir():
        return InputFormat.DICOM_SERIES
    suffix = full_suffix(p)
    if suffix in PICTURE_SUFFIXES:
        return InputFormat.PICTURE
    if suffix in NIFTI_SUFFIXES:
        return InputFormat.NIFTI
    if suffix in DICOM_SUFFIXES or _has_dicom_preamble(p):
        return InputFormat.DICOM_FILE
    raise ValueError(
        f"{p}: unknown file type {suffix or '(no extension)'!r}. Supported inputs: {SUPPORTED_INPUTS_TEXT}. "
        "Convert the file to one of these (e.g. NIfTI for volumes, PNG for 2D pictures)."
    )
