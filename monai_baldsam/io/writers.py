"""Write masks and probability maps in the geometry of the image they were computed on.

* ``.png`` (2D only): the picture's orientation, rows x cols, i.e. the transpose of MONAI's ``(X, Y)``.
* ``.nii`` / ``.nii.gz``: the reference's affine (NIfTI references and DICOM series alike: a mask of a DICOM series
  gets the series' RAS affine), voxel order unchanged.

All writes are atomic and refuse to replace the input image, any ``protected`` path, or (without ``overwrite``) an
existing file; see :mod:`monai_baldsam.io.atomic`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data.utils import to_affine_nd
from PIL import Image

from monai_baldsam.io.atomic import atomic_path, check_output_path
from monai_baldsam.io.formats import MASK_OUTPUT_SUFFIXES, NIFTI_SUFFIXES, full_suffix

__all__ = ["write_mask", "write_probability_map", "reference_inputs"]

PathLike = str | os.PathLike
ArrayLike = np.ndarray | torch.Tensor


def reference_inputs(reference: Any) -> list[str]:
    """The input path(s) recorded in a reference ``MetaTensor`` (``meta["filename_or_obj"]``), for write guards."""
    meta = getattr(reference, "meta", None) or {}
    name = meta.get("filename_or_obj")
    if isinstance(name, (str, os.PathLike)) and str(name):
        return [str(name)]
    if isinstance(name, (list, tuple)):
        return [str(n) for n in name if isinstance(n, (str, os.PathLike))]
    return []


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _spatial(array: np.ndarray, reference: Any, what: str) -> np.ndarray:
    """Drop a leading channel of 1 and check the spatial shape against the reference's ``(C, ...)`` shape."""
    ref_shape = tuple(int(s) for s in reference.shape[1:])
    if array.ndim == len(ref_shape) + 1 and array.shape[0] == 1:
        array = array[0]
    if tuple(array.shape) != ref_shape:
        raise ValueError(
            f"{what} has shape {tuple(array.shape)} but the reference image has spatial shape {ref_shape} "
            f"(reference shape {tuple(reference.shape)}): pass a (1, ...) or (...) array in the reference's space."
        )
    return array


def _ref_affine(reference: Any) -> np.ndarray:
    affine = getattr(reference, "affine", None)
    if affine is None:
        return np.eye(4)
    a = _to_numpy(affine).astype(np.float64)
    return np.asarray(to_affine_nd(3, a), dtype=np.float64) if a.shape != (4, 4) else a


def _check_suffix(out: Path, ndim: int, what: str) -> str:
    suffix = full_suffix(out)
    if suffix not in MASK_OUTPUT_SUFFIXES:
        raise ValueError(
            f"cannot write {what} to {out}: unsupported extension {suffix or '(none)'!r}. Use one of "
            f"{', '.join(MASK_OUTPUT_SUFFIXES)} (.png for 2D only)."
        )
    if suffix == ".png" and ndim != 2:
        raise ValueError(f"cannot write a {ndim}D {what} to PNG ({out}): use .nii.gz for volumes")
    return suffix


def _nifti_codes(reference: Any) -> tuple[int, int]:
    """(qform_code, sform_code) of a NIfTI reference when it had any; else 1 ("scanner") for both."""
    meta = getattr(reference, "meta", None) or {}
    try:
        q = int(np.asarray(_to_numpy(meta.get("qform_code", 0))).reshape(-1)[0])
        s = int(np.asarray(_to_numpy(meta.get("sform_code", 0))).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        q, s = 0, 0
    if q <= 0 and s <= 0:
        return 1, 1
    return q, s


def _save_nifti(data: np.ndarray, reference: Any, tmp: Path) -> None:
    affine = _ref_affine(reference)
    img = nib.Nifti1Image(data, affine)
    qcode, scode = _nifti_codes(reference)
    img.header.set_qform(affine, code=qcode)
    img.header.set_sform(affine, code=scode)
    img.header.set_xyzt_units(xyz="mm")
    nib.save(img, str(tmp))


def _save_png(data_xy: np.ndarray, tmp: Path) -> None:
    Image.fromarray(np.ascontiguousarray(data_xy.T), mode="L").save(str(tmp), format="PNG")


def _binary(mask: np.ndarray) -> np.ndarray:
    if mask.dtype == np.bool_:
        return mask.astype(np.uint8)
    if mask.size and not np.all(np.isin(mask, (0, 1))):
        values = np.unique(mask)
        raise ValueError(
            f"mask is not binary (values {values[:6].tolist()}{' ...' if values.size > 6 else ''}): pass 0/1 or bool, "
            "e.g. (prob > 0.5); use write_probability_map for probabilities."
        )
    return mask.astype(np.uint8)


def write_mask(
    mask: ArrayLike,
    reference: Any,
    out_path: PathLike,
    overwrite: bool = False,
    protected: Sequence[PathLike] = (),
) -> Path:
    """Write a binary mask in the reference image's geometry.

    Args:
        mask: ``(1, ...)`` or ``(...)`` bool/0-1 array in the reference's MONAI order (``(X, Y)`` or ``(I, J, K)``).
        reference: the channel-first ``MetaTensor`` from :func:`monai_baldsam.io.load_image` (shape, affine and
            ``meta["filename_or_obj"]`` are used).
        out_path: ``.png`` (2D, written 0/255 as rows x cols), ``.nii`` or ``.nii.gz`` (uint8 0/1, reference affine).
        overwrite: replace an existing ``out_path``.
        protected: paths never to write onto, in addition to the reference's input file.

    Returns:
        The absolute path written.

    Raises:
        ValueError: shape mismatch, non-binary values, unsupported extension, 3D mask to PNG, or ``out_path`` is the
            input image / a protected path (even with ``overwrite``).
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
    """
    data = _binary(_spatial(_to_numpy(mask), reference, "mask"))
    out = check_output_path(out_path, reference_inputs(reference), protected, overwrite)
    suffix = _check_suffix(out, data.ndim, "mask")
    with atomic_path(out, overwrite=overwrite) as tmp:
        if suffix in NIFTI_SUFFIXES:
            _save_nifti(data, reference, tmp)
        else:
            _save_png(data * np.uint8(255), tmp)
    return out


def write_probability_map(
    prob: ArrayLike,
    reference: Any,
    out_path: PathLike,
    overwrite: bool = False,
    protected: Sequence[PathLike] = (),
) -> Path:
    """Write a foreground probability map (values in [0, 1]) in the reference image's geometry.

    ``.nii``/``.nii.gz`` store float32 probabilities with the reference affine; ``.png`` (2D) stores
    ``round(p * 255)`` as 8-bit grey, rows x cols. Same safety rules and errors as :func:`write_mask`; also a
    ``ValueError`` for values outside [0, 1] or not finite.
    """
    data = _spatial(_to_numpy(prob), reference, "probability map").astype(np.float32)
    if data.size and (not np.all(np.isfinite(data)) or data.min() < 0.0 or data.max() > 1.0):
        raise ValueError(
            f"probability map values must be finite and in [0, 1], got min {np.nanmin(data):.4g}, "
            f"max {np.nanmax(data):.4g}: apply a sigmoid/softmax first"
        )
    out = check_output_path(out_path, reference_inputs(reference), protected, overwrite)
    suffix = _check_suffix(out, data.ndim, "probability map")
    with atomic_path(out, overwrite=overwrite) as tmp:
        if suffix in NIFTI_SUFFIXES:
            _save_nifti(data, reference, tmp)
        else:
            _save_png(np.rint(data * 255.0).astype(np.uint8), tmp)
    return out
