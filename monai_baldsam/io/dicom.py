"""Checks a DICOM file or series folder before MONAI's ``PydicomReader`` reads it.

``PydicomReader`` reads every file of a folder as one series, stacks the slices in InstanceNumber order and builds
the affine from the first and last slice positions. It does not notice a folder that mixes series, slices whose
InstanceNumber order is not their spatial order, or missing slices; all give a silently wrong volume. The scan here
reads only the headers and turns each of those cases into a ``ValueError`` that says what to fix.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DicomInfo", "scan_dicom_file", "scan_dicom_series", "series_fname_regex"]

PathLike = str | os.PathLike

# Relative tolerance on the slice-to-slice distance (DICOM positions carry rounding noise).
_SPACING_RTOL = 0.01
_ORIENTATION_ATOL = 1e-4


@dataclass(frozen=True)
class DicomInfo:
    """What the header scan found.

    Attributes:
        path: the file or series folder.
        files: the DICOM slice files that make up the image (one entry for a single file).
        series_instance_uid: the SeriesInstanceUID ("" when a single file has none).
        modality: the Modality tag, e.g. "CT" or "MR" ("unknown" when absent).
        description: the SeriesDescription (may be "").
    """

    path: Path
    files: tuple[Path, ...]
    series_instance_uid: str
    modality: str
    description: str


def _dcmread_header(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc}). Remove it or replace it with an "
            "intact copy."
        ) from exc


def _reject_unsupported(ds: Any, path: Path) -> None:
    """Multi-frame, segmentation and colour DICOM are outside what this reader handles."""
    if "SegmentSequence" in ds:
        raise ValueError(
            f"{path} is a DICOM SEG object, which is not supported: convert it to NIfTI (e.g. with dcmqi) "
            "and load that."
        )
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(
            f"{path} is a multi-frame DICOM ({frames} frames), which is not supported: convert it to NIfTI "
            "(e.g. with dcm2niix) or export it as a classic one-file-per-slice series."
        )
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise ValueError(
            f"{path} is a colour DICOM ({samples} samples per pixel), which is not supported: export the picture "
            "as PNG and load that."
        )
    if "Rows" not in ds or "Columns" not in ds:
        raise ValueError(
            f"{path} holds no image (no Rows/Columns; a DICOMDIR or a report?): remove it from the folder so that "
            "only the slices of one series remain."
        )


def _text(ds: Any, keyword: str, default: str) -> str:
    value = getattr(ds, keyword, None)
    return str(value).strip() if value not in (None, "") else default


def scan_dicom_file(path: PathLike) -> DicomInfo:
    """Header checks for one DICOM file (read as a single 2D slice)."""
    p = Path(path)
    ds = _dcmread_header(p)
    _reject_unsupported(ds, p)
    return DicomInfo(
        path=p,
        files=(p,),
        series_instance_uid=_text(ds, "SeriesInstanceUID", ""),
        modality=_text(ds, "Modality", "unknown"),
        description=_text(ds, "SeriesDescription", ""),
    )


def _candidate_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Visible files and sub-folders (``PydicomReader`` globs ``*``, which skips dot-files)."""
    files, dirs = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        (dirs if entry.is_dir() else files).append(entry)
    return files, dirs


def _is_dicom(path: Path) -> bool:
    from pydicom.misc import is_dicom

    try:
        return bool(is_dicom(str(path)))
    except OSError:
        return False


def _check_geometry(folder: Path, headers: list[tuple[Path, Any]]) -> None:
    """Orientation shared, positions present, InstanceNumber order = spatial order, even spacing."""
    first_path, first = headers[0]
    for path, ds in headers:
        for keyword in ("InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient"):
            if getattr(ds, keyword, None) in (None, ""):
                raise ValueError(
                    f"{path} has no {keyword}: the series in {folder} cannot be stacked into a volume with a known "
                    "geometry. Convert it with a tool that repairs the headers (e.g. dcm2niix) and load the NIfTI."
                )
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise ValueError(
                f"slices in {folder} differ in size: {first_path.name} is {first.Rows}x{first.Columns}, {path.name} "
                f"is {ds.Rows}x{ds.Columns}. Keep only the slices of one series in the folder."
            )
        if not np.allclose(
            np.asarray(ds.ImageOrientationPatient, float), np.asarray(first.ImageOrientationPatient, float),
            atol=_ORIENTATION_ATOL,
        ):
            raise ValueError(
                f"slices in {folder} have different ImageOrientationPatient ({first_path.name} vs {path.name}): "
                "this is not one stack of parallel slices. Convert it to NIfTI (e.g. with dcm2niix)."
            )
    ordered = sorted(headers, key=lambda item: int(item[1].InstanceNumber))
    numbers = [int(ds.InstanceNumber) for _, ds in ordered]
    if len(set(numbers)) != len(numbers):
        raise ValueError(
            f"slices in {folder} share InstanceNumbers ({sorted(n for n in set(numbers) if numbers.count(n) > 1)}): "
            "MONAI stacks slices by InstanceNumber, so the order would be ambiguous. Pass a folder with one series."
        )
    orientation = np.asarray(first.ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    depth = np.array([float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))) for _, ds in ordered])
    steps = np.diff(depth)
    if len(steps) == 0:
        return
    mean_step = float(np.mean(steps))
    if np.any(steps == 0) or not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError(
            f"the slices in {folder} are not in spatial order when sorted by InstanceNumber (or two share a "
            "position): MONAI's PydicomReader stacks by InstanceNumber and would build a wrong volume. Convert the "
            "series to NIfTI (e.g. with dcm2niix) and load that."
        )
    if np.max(np.abs(steps - mean_step)) > _SPACING_RTOL * abs(mean_step):
        raise ValueError(
            f"the slices in {folder} are unevenly spaced (steps {np.round(steps, 3).tolist()} mm): slices are "
            "missing or the series mixes stacks. Restore the missing slices or convert with dcm2niix."
        )


def scan_dicom_series(folder: PathLike) -> DicomInfo:
    """Header checks for a folder that should hold the slices of exactly one DICOM series.

    Raises:
        ValueError: no DICOM files; several SeriesInstanceUIDs (each is listed); unsupported DICOM kinds;
            missing geometry tags; slices out of spatial order, duplicated or unevenly spaced.
    """
    p = Path(folder)
    files, dirs = _candidate_files(p)
    dicom_files = [f for f in files if _is_dicom(f)]
    if not dicom_files:
        hint = (
            f" It has sub-folders ({', '.join(d.name for d in dirs[:5])}{', ...' if len(dirs) > 5 else ''}): "
            "pass the one that holds the slices of the series you want."
            if dirs
            else " Pass a folder that holds the .dcm files of one series."
        )
        raise ValueError(f"folder {p} holds no DICOM files (files with the 'DICM' preamble).{hint}")
    headers = [(f, _dcmread_header(f)) for f in dicom_files]
    by_series: dict[str, list[tuple[Path, Any]]] = defaultdict(list)
    for f, ds in headers:
        _reject_unsupported(ds, f)
        uid = _text(ds, "SeriesInstanceUID", "")
        if not uid:
            raise ValueError(f"{f} has no SeriesInstanceUID: cannot tell which series it belongs to. Remove it.")
        by_series[uid].append((f, ds))
    if len(by_series) > 1:
        listing = "; ".join(
            f"{uid} ({_text(items[0][1], 'SeriesDescription', 'no description')}, {len(items)} files, "
            f"e.g. {items[0][0].name})"
            for uid, items in sorted(by_series.items())
        )
        raise ValueError(
            f"folder {p} mixes {len(by_series)} DICOM series: {listing}. Pass one series folder: move each "
            "series' files into a folder of its own."
        )
    (uid, items), = by_series.items()
    if len(items) > 1:
        _check_geometry(p, items)
    first = items[0][1]
    return DicomInfo(
        path=p,
        files=tuple(f for f, _ in items),
        series_instance_uid=uid,
        modality=_text(first, "Modality", "unknown"),
        description=_text(first, "SeriesDescription", ""),
    )


def series_fname_regex(info: DicomInfo) -> str:
    """A ``PydicomReader(fname_regex=...)`` that admits exactly the scanned slice files of ``info``.

    ``PydicomReader`` matches the regex against ``os.path.join(folder, name)`` for every entry of the folder, so other
    files and sub-folders (on which ``pydicom.misc.is_dicom`` would raise) are left out.
    """
    names = "|".join(re.escape(f.name) for f in info.files)
    return rf"(?s).*[\\/](?:{names})\Z"
