"""Load images and masks as channel-first MONAI ``MetaTensor``s with their geometry.

Conventions (what ``monai.transforms.LoadImage(image_only=True, ensure_channel_first=True)`` gives):

* 2D pictures (PNG/JPG/BMP/TIFF): ``(C, X, Y)``; ``[x, y]`` is the picture's column ``x``, row ``y``.
* NIfTI: ``(C, I, J, K)`` with nibabel's affine (no reorientation).
* DICOM series folder (MONAI ``PydicomReader``): ``(1, I, J, K)`` with ``I`` = column, ``J`` = row, ``K`` = slice in
  InstanceNumber order, and an affine converted from DICOM's LPS to RAS.
* A single DICOM file: ``(1, I, J)`` (a 2D slice) with the same column/row order and a 4x4 RAS affine.

Every result carries ``meta["baldsam_kind"]`` ("2d"/"3d"), ``meta["baldsam_format"]``, ``meta["filename_or_obj"]``
and ``meta["modality"]`` (DICOM Modality tag, else "unknown" unless given).
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor, NibabelReader, PILReader, PydicomReader
from monai.transforms import LoadImage

from monai_baldsam.io.dicom import DicomInfo, scan_dicom_file, scan_dicom_series, series_fname_regex
from monai_baldsam.io.formats import SUPPORTED_INPUTS_TEXT, InputFormat, detect_format

__all__ = ["KIND_KEY", "FORMAT_KEY", "MODALITY_KEY", "UNKNOWN_MODALITY", "load_image", "load_mask", "spatial_kind"]

PathLike = str | os.PathLike

KIND_KEY = "baldsam_kind"
FORMAT_KEY = "baldsam_format"
MODALITY_KEY = "modality"
UNKNOWN_MODALITY = "unknown"

# Formats whose affine is a real-world geometry (PNG/JPG affines are identity placeholders).
_GEOMETRIC_FORMATS = {InputFormat.NIFTI.value, InputFormat.DICOM_FILE.value, InputFormat.DICOM_SERIES.value}
_AFFINE_ATOL_MM = 1e-3

_FORMAT_TEXT = {
    InputFormat.PICTURE: "a 2D picture (PIL)",
    InputFormat.NIFTI: "a NIfTI volume (nibabel)",
    InputFormat.DICOM_FILE: "a DICOM file (pydicom)",
    InputFormat.DICOM_SERIES: "a DICOM series folder (pydicom)",
}


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


@contextmanager
def _quiet_nvimgcodec() -> Iterator[None]:
    """Silence the GPU-decoder notices MONAI emits for every ``LoadImage`` built without nvImageCodec/CuPy."""
    logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    drop = _DropMessage("nvImageCodec is not available")
    logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec decoder plugin did not register.*")
            yield
    finally:
        logger.removeFilter(drop)


@functools.lru_cache(maxsize=2)
def _loader(keep_dtype: bool) -> Any:
    """One ``LoadImage`` per dtype policy (building one instantiates every MONAI reader, so it is cached)."""

    with _quiet_nvimgcodec():
        return LoadImage(image_only=True, ensure_channel_first=True, dtype=None if keep_dtype else np.float32)


def _picture_for_image(img: Any) -> Any:
    """PIL modes to what an image should be: palette -> RGB, alpha dropped, 1-bit -> 8-bit."""
    mode = img.mode
    if mode in ("RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        return img.convert("RGB")
    if mode in ("LA", "La", "1"):
        return img.convert("L")
    return img


def _picture_for_mask(img: Any) -> Any:
    """PIL modes to what a mask should be: palette indices kept (index > 0 is foreground), alpha dropped."""
    mode = img.mode
    if mode in ("PA", "LA", "La", "1"):
        return img.convert("L") if mode != "PA" else img.convert("P")
    if mode in ("RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        return img.convert("RGB")
    return img


def _make_reader(fmt: InputFormat, info: DicomInfo | None, for_mask: bool) -> Any:
    if fmt is InputFormat.PICTURE:
        return PILReader(converter=_picture_for_mask if for_mask else _picture_for_image)
    if fmt is InputFormat.NIFTI:
        return NibabelReader()
    if fmt is InputFormat.DICOM_SERIES and info is not None:
        return PydicomReader(fname_regex=series_fname_regex(info))
    return PydicomReader()


def spatial_kind(img: torch.Tensor) -> str:
    """"2d" or "3d" from a channel-first tensor's number of spatial dims."""
    n_spatial = img.ndim - 1
    if n_spatial == 2:
        return "2d"
    if n_spatial == 3:
        return "3d"
    raise ValueError(f"expected a channel-first 2D (C, X, Y) or 3D (C, I, J, K) image, got shape {tuple(img.shape)}")


def _read(path: Path, keep_dtype: bool, for_mask: bool) -> tuple[MetaTensor, InputFormat, DicomInfo | None]:
    fmt = detect_format(path)
    info: DicomInfo | None = None
    if fmt is InputFormat.DICOM_SERIES:
        info = scan_dicom_series(path)
    elif fmt is InputFormat.DICOM_FILE:
        info = scan_dicom_file(path)
    reader = _make_reader(fmt, info, for_mask)
    try:
        img = _loader(keep_dtype)(str(path), reader=reader)
    except Exception as exc:  # readers raise many types (PIL, nibabel, zlib, pydicom): name the file and the cause
        raise ValueError(
            f"cannot read {path} as {_FORMAT_TEXT[fmt]}: {type(exc).__name__}: {exc}. The file may be corrupt or "
            f"not what its extension says. Supported inputs: {SUPPORTED_INPUTS_TEXT}."
        ) from exc
    if not isinstance(img, MetaTensor):  # LoadImage(image_only=True) always gives one; keep the type promise
        img = MetaTensor(img)
    n_spatial = img.ndim - 1
    if n_spatial not in (2, 3):
        raise ValueError(
            f"{path}: got an array of shape {tuple(img.shape)} (channel first), which is neither 2D nor 3D. "
            "Save one 2D picture or one 3D volume per file."
        )
    return img, fmt, info


def _annotate(img: MetaTensor, path: Path, fmt: InputFormat, info: DicomInfo | None, modality: str | None) -> None:
    img.meta[KIND_KEY] = spatial_kind(img)
    img.meta[FORMAT_KEY] = fmt.value
    img.meta["filename_or_obj"] = str(path)
    if modality is not None:
        img.meta[MODALITY_KEY] = str(modality)
    elif info is not None:
        img.meta[MODALITY_KEY] = info.modality
    else:
        img.meta[MODALITY_KEY] = UNKNOWN_MODALITY
    if info is not None and info.series_instance_uid:
        img.meta["series_instance_uid"] = info.series_instance_uid


def load_image(path: PathLike, channel: int | None = None, modality: str | None = None) -> MetaTensor:
    """Load a 2D picture, a NIfTI volume, a DICOM file or a DICOM series folder, channel first.

    Args:
        path: ``.png/.jpg/.jpeg/.bmp/.tif/.tiff`` (2D), ``.nii/.nii.gz`` (3D), ``.dcm`` (one slice) or a folder
            with the DICOM files of one series (3D).
        channel: pick this channel (returned as ``(1, ...)``). Required for 3D files with several channels
            (e.g. a 4D NIfTI ``(240, 240, 155, 4)``); optional for 2D pictures (RGB stays ``(3, X, Y)``).
        modality: stored as ``meta["modality"]``; default: the DICOM Modality tag, else "unknown".

    Returns:
        float32 ``MetaTensor`` ``(C, X, Y)`` or ``(C, I, J, K)`` with affine and the meta keys listed in the
        module docstring. Alpha channels of pictures are dropped; palette pictures become RGB.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension, unreadable or corrupt file, a DICOM folder without DICOM files or with
            several series, a multi-channel volume without ``channel``, or ``channel`` out of range.
    """
    p = Path(path).expanduser()
    img, fmt, info = _read(p, keep_dtype=False, for_mask=False)
    n_channels = int(img.shape[0])
    if channel is not None:
        if not -n_channels <= channel < n_channels:
            raise ValueError(
                f"{p} has {n_channels} channel(s) (0..{n_channels - 1}); channel={channel} is out of range"
            )
        idx = channel % n_channels
        img = img[idx : idx + 1]
    elif n_channels > 1 and img.ndim == 4:
        raise ValueError(
            f"{p} is a 4D volume with {n_channels} channels/time points (shape {tuple(img.shape[1:])} x "
            f"{n_channels}): pass channel=k (0..{n_channels - 1}) to pick one, e.g. load_image(path, channel=0)."
        )
    _annotate(img, p, fmt, info, modality)
    return img


def _binarize(data: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """Foreground: ``> threshold`` if given; else ``> 127`` for 8-bit masks that use values above 127 (0/255 PNGs,
    noisy JPEG masks), otherwise ``> 0`` (0/1 masks and label maps: every label is foreground)."""
    if threshold is not None:
        return data > threshold
    if data.dtype == torch.uint8 and int(data.max()) > 127:
        return data > 127
    return data > 0


def load_mask(
    path: PathLike,
    reference: MetaTensor | None = None,
    threshold: float | None = None,
    check_affine: bool = True,
) -> MetaTensor:
    """Load a binary mask as a uint8 ``(1, ...)`` ``MetaTensor`` of 0/1 in the same conventions as :func:`load_image`.

    Args:
        path: same formats as :func:`load_image` (a DICOM mask series folder is read like an image series).
        reference: the image the mask belongs to; its spatial shape must match, and (when both carry a real
            geometry: NIfTI/DICOM, 3D) so must its affine, to within 1e-3 mm.
        threshold: foreground is ``value > threshold``. Default: ``> 127`` for 8-bit masks with values above 127
            (0/255 PNG, JPEG noise), else ``> 0``. Colour masks: any channel counts.
        check_affine: set False to compare shapes only.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_image`; also a mask whose shape (or affine) does not match
            ``reference``, and a 3D mask with several channels.
    """
    p = Path(path).expanduser()
    img, fmt, info = _read(p, keep_dtype=True, for_mask=True)
    if img.ndim == 4 and img.shape[0] > 1:
        raise ValueError(
            f"mask {p} has {img.shape[0]} channels (shape {tuple(img.shape)}): save a single-label 3D volume "
            "(0 = background, >0 = foreground)."
        )
    data = torch.as_tensor(img.as_tensor() if isinstance(img, MetaTensor) else img)
    fg = _binarize(data, threshold).any(dim=0, keepdim=True).to(torch.uint8)
    mask = MetaTensor(fg, affine=img.affine, meta={k: v for k, v in img.meta.items() if k != "affine"})
    _annotate(mask, p, fmt, info, None)
    if reference is not None:
        _check_matches(mask, reference, p, check_affine)
    return mask


def _check_matches(mask: MetaTensor, reference: MetaTensor, path: Path, check_affine: bool) -> None:
    ref_meta = reference.meta if isinstance(reference, MetaTensor) else {}
    ref_name = ref_meta.get("filename_or_obj", "the reference image")
    if tuple(mask.shape[1:]) != tuple(reference.shape[1:]):
        raise ValueError(
            f"mask {path} has spatial shape {tuple(mask.shape[1:])} but image {ref_name} has "
            f"{tuple(reference.shape[1:])}: pair the mask with its own image (or resample it to the image first)."
        )
    if not (check_affine and isinstance(reference, MetaTensor) and mask.ndim == 4):
        return
    formats = {mask.meta.get(FORMAT_KEY), reference.meta.get(FORMAT_KEY)}
    if not formats <= _GEOMETRIC_FORMATS:
        return
    a = np.asarray(mask.affine, dtype=np.float64)
    b = np.asarray(reference.affine, dtype=np.float64)
    if a.shape != b.shape or not np.allclose(a, b, rtol=0.0, atol=_AFFINE_ATOL_MM):
        raise ValueError(
            f"mask {path} and image {ref_name} have the same shape but different affines (max difference "
            f"{np.max(np.abs(a - b)) if a.shape == b.shape else 'n/a'} mm): the mask is not in this image's space. "
            "Pair the mask with its own image, or pass check_affine=False if you know they align."
        )
