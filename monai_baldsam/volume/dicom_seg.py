"""DICOM SEG output for masks of DICOM series volumes (written with highdicom), and reading one back.

A volume loaded from a DICOM series folder (:func:`monai_baldsam.io.load_image`) is ``(1, I, J, K)`` with ``I`` the
column, ``J`` the row and ``K`` the slice in InstanceNumber order. The SEG written here is a binary Segmentation with
one segment and one frame per source slice (empty frames kept); highdicom orders the frames by plane position, and
every frame references its source image's SOPInstanceUID and carries its ImagePositionPatient, so readers place
frames by reference, never by frame number. The SEG shares the series' study, patient and frame of reference. The source
files are re-read and checked against the volume's shape and affine before anything is written; the file is written
atomically and never into the input series folder.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from monai.data import MetaTensor

from monai_baldsam import __version__
from monai_baldsam.io.atomic import atomic_path, check_output_path
from monai_baldsam.io.dicom import scan_dicom_series
from monai_baldsam.io.formats import InputFormat, full_suffix
from monai_baldsam.io.readers import FORMAT_KEY
from monai_baldsam.io.writers import reference_inputs

__all__ = ["SEG_SOP_CLASS_UID", "SEG_SUFFIXES", "require_dicom_series", "series_sources", "write_dicom_seg", "read_dicom_seg"]

PathLike = str | os.PathLike

#: Segmentation Storage.
SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"
SEG_SUFFIXES: tuple[str, ...] = (".dcm",)

# Slice positions of the loaded volume and of the files agree to this fraction of the slice spacing.
_POSITION_RTOL = 0.1
_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def _is_series(reference: Any) -> bool:
    meta = getattr(reference, "meta", None) or {}
    return meta.get(FORMAT_KEY) == InputFormat.DICOM_SERIES.value


def require_dicom_series(reference: Any, what: str = "a DICOM SEG") -> Path:
    """The series folder of a volume loaded from a DICOM series; ``ValueError`` for any other input."""
    meta = getattr(reference, "meta", None) or {}
    if not _is_series(reference) or getattr(reference, "ndim", 0) != 4:
        fmt = meta.get(FORMAT_KEY, "unknown")
        raise ValueError(
            f"{what} can only be written for a 3D volume loaded from a DICOM series folder; this input is "
            f"{fmt!r} ({meta.get('filename_or_obj', 'no file name')}). Write a NIfTI mask (.nii.gz) instead."
        )
    return Path(str(meta["filename_or_obj"]))


def series_sources(reference: MetaTensor) -> list[Any]:
    """The pydicom datasets of a DICOM-series volume in the volume's slice order ``k``, checked against it.

    Raises:
        ValueError: the input is not a DICOM series volume, or the files no longer match the volume (count, size,
            slice positions or orientation).
    """
    import pydicom

    folder = require_dicom_series(reference)
    info = scan_dicom_series(folder)
    datasets = sorted((pydicom.dcmread(str(f)) for f in info.files), key=lambda ds: int(ds.InstanceNumber))
    size_i, size_j, size_k = (int(s) for s in reference.shape[1:])
    if len(datasets) != size_k or any((int(ds.Columns), int(ds.Rows)) != (size_i, size_j) for ds in datasets):
        raise ValueError(
            f"the series in {folder} ({len(datasets)} slices of {datasets[0].Columns}x{datasets[0].Rows}) does not "
            f"match the volume (I, J, K) = ({size_i}, {size_j}, {size_k}): reload the image from that folder."
        )
    affine = np.asarray(reference.affine.detach().cpu() if isinstance(reference.affine, torch.Tensor)
                        else reference.affine, dtype=np.float64)
    step = float(np.linalg.norm(affine[:3, 2])) if size_k > 1 else 1.0
    for k, ds in enumerate(datasets):
        expected = _LPS_FROM_RAS @ (affine[:3, :3] @ np.array([0.0, 0.0, float(k)]) + affine[:3, 3])
        found = np.asarray(ds.ImagePositionPatient, dtype=np.float64)
        if np.max(np.abs(found - expected)) > _POSITION_RTOL * step:
            raise ValueError(
                f"slice {k} of the volume lies at {np.round(expected, 3).tolist()} (LPS) but {ds.filename} is at "
                f"{np.round(found, 3).tolist()}: the files in {folder} changed since the volume was loaded. Reload it."
            )
    row_dir = _LPS_FROM_RAS @ affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    if not np.allclose(row_dir, np.asarray(datasets[0].ImageOrientationPatient[:3], np.float64), atol=1e-3):
        raise ValueError(f"the volume's i axis does not follow the columns of the files in {folder}: reload the image")
    return datasets


def _binary_volume(mask: np.ndarray | torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    data = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if tuple(data.shape) != shape:
        raise ValueError(f"mask has shape {tuple(data.shape)} but the volume is (I, J, K) = {shape}: pass its label")
    if data.dtype != np.bool_ and data.size and not np.all(np.isin(data, (0, 1))):
        raise ValueError("mask is not binary: pass 0/1 or bool values (e.g. label > 0)")
    return data.astype(bool)


def write_dicom_seg(mask: np.ndarray | torch.Tensor, reference: MetaTensor, out_path: PathLike,
                    overwrite: bool = False, protected: Sequence[PathLike] = (), segment_label: str = "segmentation",
                    property_category: Any = None, property_type: Any = None, series_description: str = "monai_baldsam SAM",
                    model_name: str = "SAM") -> Path:
    """Write ``mask`` as a binary DICOM SEG that references the slices of ``reference``'s DICOM series.

    Args:
        mask: ``(1, I, J, K)`` or ``(I, J, K)`` 0/1 or bool, in the volume's voxel order.
        reference: the volume as loaded from its DICOM series folder by :func:`monai_baldsam.io.load_image`.
        out_path: a ``.dcm`` file outside the series folder.
        overwrite: replace an existing file.
        protected: further paths never to write onto.
        segment_label: the segment's label.
        property_category, property_type: segmented property codes (pydicom ``Code``); default SCT "Tissue".
        series_description: the SEG series' description.
        model_name: recorded as the manufacturer's model name (e.g. the backbone signature).

    Returns:
        The absolute path written.

    Raises:
        ValueError: a non-DICOM-series reference, a mask of the wrong shape or not binary, a suffix other than
            ``.dcm``, the output inside the input folder, source files that no longer match the volume.
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    require_dicom_series(reference)
    shape = tuple(int(s) for s in reference.shape[1:])
    data = _binary_volume(mask, shape)
    out = check_output_path(out_path, reference_inputs(reference), protected, overwrite)
    if full_suffix(out) not in SEG_SUFFIXES:
        raise ValueError(f"a DICOM SEG is written to a .dcm file, got {out.name!r}: use e.g. {out.with_suffix('.dcm').name}")
    sources = series_sources(reference)
    frames = np.ascontiguousarray(np.stack([data[:, :, k].T for k in range(shape[2])]).astype(np.uint8))
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=segment_label,
        segmented_property_category=property_category or codes.SCT.Tissue,
        segmented_property_type=property_type or codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="monai_baldsam", family=codes.cid7162.ArtificialIntelligence, version=__version__),
    )
    with warnings.catch_warnings():  # highdicom warns about the source's one-component PatientName (e.g. "PGBM-001")
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg = _segmentation(hd, sources, frames, description, model_name, series_description)
    with atomic_path(out, overwrite=overwrite) as tmp:
        seg.save_as(str(tmp))
    return out


def _segmentation(hd: Any, sources: list[Any], frames: np.ndarray, description: Any, model_name: str,
                  series_description: str) -> Any:
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="monai_baldsam",
        manufacturer_model_name=str(model_name)[:64], software_versions=__version__, device_serial_number="none",
        omit_empty_frames=False, series_description=series_description[:64],
    )


def read_dicom_seg(path: PathLike, reference: MetaTensor, segment_number: int = 1) -> MetaTensor:
    """Read one segment of a DICOM SEG onto the volume of its source series, by each frame's source SOPInstanceUID.

    Returns:
        uint8 ``(1, I, J, K)`` 0/1 with ``reference``'s affine.

    Raises:
        ValueError: not a SEG; a frame that references an image outside ``reference``'s series; frames of the
            wrong size.
    """
    import pydicom

    ds = pydicom.dcmread(str(path))
    if str(getattr(ds, "SOPClassUID", "")) != SEG_SOP_CLASS_UID:
        raise ValueError(f"{path} is not a DICOM SEG (SOPClassUID {getattr(ds, 'SOPClassUID', 'missing')})")
    sources = series_sources(reference)
    slice_of = {str(src.SOPInstanceUID): k for k, src in enumerate(sources)}
    pixels = ds.pixel_array
    pixels = pixels[None] if pixels.ndim == 2 else pixels
    shape = tuple(int(s) for s in reference.shape[1:])
    volume = np.zeros(shape, dtype=np.uint8)
    for frame, item in zip(pixels, ds.PerFrameFunctionalGroupsSequence):
        if int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber) != segment_number:
            continue
        uid = str(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        if uid not in slice_of:
            raise ValueError(f"{path}: a frame references SOPInstanceUID {uid}, which is not in the series of the volume")
        if frame.shape != (shape[1], shape[0]):
            raise ValueError(f"{path}: frame of size {frame.shape} but the series' slices are {(shape[1], shape[0])}")
        volume[:, :, slice_of[uid]] |= (frame.T > 0).astype(np.uint8)
    meta = {k: v for k, v in reference.meta.items() if k != "affine"}
    return MetaTensor(torch.from_numpy(volume)[None], affine=reference.affine.clone(), meta=meta)
