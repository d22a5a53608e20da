"""Cases: find (image, mask) pairs in a folder or a MONAI datalist, and check their masks.

Two layouts:

* a folder with ``images/`` and ``masks/`` whose files share their stems (``images/case_01.png`` with
  ``masks/case_01.png``; any picture or DICOM suffix on either side);
* a MONAI datalist JSON ``{"testing": [{"image": ..., "label": ...}, ...]}`` (or ``"validation"`` /
  ``"training"``; the first present in that order unless a key is named), paths relative to the JSON's folder.

2D images only: volumes go through :mod:`monai_baldsam.evaluation.volumes` (a folder of volumes); a NIfTI file or a
DICOM series folder among 2D cases, or in a datalist, is refused with a clear message.
Loading a pair for SAM (windowed, in SAM's orientation) is :func:`monai_baldsam.interaction.cases.load_case`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monai_baldsam.io.formats import DICOM_SUFFIXES, NIFTI_SUFFIXES, PICTURE_SUFFIXES, full_suffix
from monai_baldsam.io.readers import load_mask

__all__ = ["DATALIST_KEYS", "NOT_YET_3D", "EvalCase", "VolumeCase", "checked_truth", "discover_cases",
           "discover_volume_cases", "is_volume_folder", "validate_masks"]

PathLike = str | os.PathLike

#: Datalist sections searched, in order, when no key is named.
DATALIST_KEYS: tuple[str, ...] = ("testing", "validation", "training")
_SUFFIXES_2D = PICTURE_SUFFIXES + DICOM_SUFFIXES
NOT_YET_3D = ("3D volumes are evaluated from a folder that holds only volumes (images/ and masks/ of NIfTI files or "
               "DICOM series folders; see monai_baldsam.evaluation.volumes), not here among 2D images: ")


@dataclass(frozen=True)
class EvalCase:
    """One (image, mask) pair; ``name`` identifies it in reports and seeds its random generators."""

    name: str
    image: Path
    mask: Path


def _stem(path: Path) -> str:
    """A file's name without its (possibly double) suffix; a folder (a DICOM series) keeps its whole name."""
    suffix = full_suffix(path)
    return path.name[: -len(suffix)] if suffix and not path.is_dir() else path.name


def _refuse_3d(path: Path) -> None:
    if path.is_dir() or full_suffix(path) in NIFTI_SUFFIXES:
        raise ValueError(f"{NOT_YET_3D}{path} is a {'DICOM series folder' if path.is_dir() else 'NIfTI volume'}")


def _listing(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        _refuse_3d(path)
        if full_suffix(path) not in _SUFFIXES_2D:
            continue
        stem = _stem(path)
        if stem in found:
            raise ValueError(f"{folder} holds two files with the stem {stem!r} ({found[stem].name}, {path.name}): "
                             "keep one file per case")
        found[stem] = path
    return found


def _from_folder(root: Path) -> list[EvalCase]:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise ValueError(f"{root} must hold images/ and masks/ with matching file stems, or be a MONAI datalist "
                         "JSON file")
    images, masks = _listing(images_dir), _listing(masks_dir)
    if not images:
        raise ValueError(f"no images found in {images_dir} (supported: {', '.join(_SUFFIXES_2D)})")
    orphans = sorted(set(images) - set(masks))
    if orphans:
        raise ValueError(f"{len(orphans)} image(s) in {images_dir} have no mask with the same stem in {masks_dir}, "
                         f"e.g. {orphans[:3]}: add the masks or remove the images")
    return [EvalCase(stem, images[stem], masks[stem]) for stem in sorted(images)]


def _from_datalist(path: Path, key: str | None, base_dir: Path | None = None) -> list[EvalCase]:
    try:
        content = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the datalist {path}: {err}") from None
    if not isinstance(content, dict):
        raise ValueError(f"datalist {path} must be a JSON object with a 'testing' (or 'validation'/'training') list")
    keys = (key,) if key else DATALIST_KEYS
    section = next((k for k in keys if k in content), None)
    if section is None:
        raise ValueError(f"datalist {path} has no {' / '.join(repr(k) for k in keys)} list (it has "
                         f"{sorted(content)}): name the section with --datalist-key")
    entries = content[section]
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"datalist {path}: {section!r} must be a non-empty list of {{'image': ..., 'label': ...}}")
    cases: list[EvalCase] = []
    names: set[str] = set()
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or \
                not isinstance(entry.get("label"), str):
            raise ValueError(f"datalist {path}: entry {n} of {section!r} needs string 'image' and 'label' paths, "
                             f"got {entry!r}")
        image, mask = (Path(entry[k]).expanduser() for k in ("image", "label"))
        base = path.parent if base_dir is None else base_dir
        image, mask = (p if p.is_absolute() else base / p for p in (image, mask))
        for p in (image, mask):
            _refuse_3d(p)
            if not p.exists():
                raise FileNotFoundError(f"datalist {path}: entry {n} names {p}, which does not exist")
        name = Path(entry["image"]).as_posix()
        name = name[: -len(full_suffix(name))] if full_suffix(name) else name
        if name in names:
            raise ValueError(f"datalist {path}: the image {entry['image']!r} is listed twice")
        names.add(name)
        cases.append(EvalCase(name, image, mask))
    return cases


def discover_cases(data: PathLike, datalist_key: str | None = None, limit: int | None = None,
                   base_dir: PathLike | None = None) -> list[EvalCase]:
    """The evaluation cases of ``data`` (a folder with images/ and masks/, or a datalist JSON), in a fixed order
    (sorted by stem for a folder, the list's order for a datalist), the first ``limit`` only when given. A datalist's
    relative paths are relative to ``base_dir`` (a bundle's ``dataset_dir``), else to the datalist's folder."""
    root = Path(data).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"evaluation data {root} does not exist")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    if root.is_file():
        if root.suffix.lower() != ".json":
            raise ValueError(f"{root} is a file but not a datalist JSON: give a folder with images/ and masks/, or a "
                             "MONAI datalist .json")
        cases = _from_datalist(root, datalist_key, Path(base_dir).expanduser() if base_dir else None)
    else:
        if datalist_key:
            raise ValueError("--datalist-key applies to a datalist JSON, not to a folder")
        cases = _from_folder(root)
    return cases[:limit] if limit is not None else cases


def checked_truth(case: EvalCase, mask: torch.Tensor) -> np.ndarray:
    """``mask`` (``1 x X x Y``) as ``(H = Y, W = X)`` bool, refusing a 3D or an empty mask."""
    if mask.ndim != 3:
        raise ValueError(f"{NOT_YET_3D}mask {case.mask} has shape {tuple(mask.shape[1:])}")
    truth = mask[0].cpu().numpy().astype(bool).T  # (X, Y) -> (H = Y, W = X)
    if not truth.any():
        raise ValueError(f"mask {case.mask} is empty: every evaluated image needs an object (remove the case or fix "
                         "its mask)")
    return np.ascontiguousarray(truth)


def validate_masks(cases: list[EvalCase]) -> None:
    """Read every mask once (cheap) so that a 3D or empty mask is reported before any model work."""
    for case in cases:
        checked_truth(case, load_mask(case.mask))


@dataclass(frozen=True)
class VolumeCase:
    """A volume (NIfTI file or DICOM series folder) and its mask (same layout), named by the image's stem."""

    name: str
    image: Path
    mask: Path


def is_volume_folder(folder: str | Path) -> bool:
    """Whether ``folder/images`` holds NIfTI volumes or DICOM series folders (rather than 2D pictures)."""
    images = Path(folder).expanduser() / "images"
    if not images.is_dir():
        return False
    entries = [p for p in images.iterdir() if not p.name.startswith(".")]
    return bool(entries) and all(p.is_dir() or full_suffix(p) in NIFTI_SUFFIXES for p in entries)


def discover_volume_cases(folder: str | Path, limit: int | None = None) -> list[VolumeCase]:
    """The volumes of ``folder`` (``images/`` and ``masks/`` with matching names), sorted by name."""
    root = Path(folder).expanduser()
    if not is_volume_folder(root):
        raise ValueError(f"{root} has no images/ folder of NIfTI volumes or DICOM series folders")
    masks = {_stem(p): p for p in (root / "masks").iterdir() if not p.name.startswith(".")} \
        if (root / "masks").is_dir() else {}
    cases = []
    for image in sorted(p for p in (root / "images").iterdir() if not p.name.startswith(".")):
        name = _stem(image)
        if name not in masks:
            raise FileNotFoundError(f"volume {image.name} has no mask in {root / 'masks'} (expected the same name)")
        cases.append(VolumeCase(name, image, masks[name]))
    return cases[:limit] if limit else cases
