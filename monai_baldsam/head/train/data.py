"""Training data for the head: (image, mask) pairs loaded as the evaluation loads them, encoded once (on-disk
store), with the ground truth brought to the decoder's low-resolution grid.

Images are read and windowed exactly as :func:`monai_baldsam.interaction.cases.load_case` does (per-image window from
:func:`monai_baldsam.transforms.intensity.default_window`, SAM orientation), so the head trains on the inputs it is
evaluated on. The split into training and validation images is seeded and made per folder.

A folder of 3D volumes (``images/`` of NIfTI files or DICOM series folders, e.g. ``train/brats_mri3d``) gives slices
along each volume's through-plane axis, windowed per volume (:mod:`monai_baldsam.head.train.volume_slices`): its
split is
made by volume, never by slice, and training volumes add empty slices next to the object, prompted by their
neighbour's box.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from monai_baldsam.data_paths import data_root
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.volume_slices import VolumeSliceCase, VolumeSliceLoader, volume_slice_cases
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import mask_boxes
from monai_baldsam.io.cases import EvalCase, discover_cases, discover_volume_cases, is_volume_folder
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.encoder_runtime import ImageEncoderRunner
from monai_baldsam.sam.geometry import pad_bottom_right, preprocess_shape, slice_boxes_to_sam_boxes
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.predictor import SamPredictor

__all__ = ["EMPTY_NEIGHBOURS", "VAL_SLICE_STRIDE", "TrainItem", "low_res_target", "split_cases", "card_cases",
           "load_items", "gt_box_sam_xy"]

#: empty slices next to the object, per side, that each training volume adds (validation volumes add none).
EMPTY_NEIGHBOURS = 2
#: validation volumes keep every third object slice: neighbouring slices are near duplicates, and every slice costs an
#: encoder pass and full-resolution sessions at every validation.
VAL_SLICE_STRIDE = 3


@dataclass
class TrainItem:
    """One training or validation image.

    Attributes:
        case: where it came from; ``domain`` its folder's name.
        embedding: ``(1, D, h, w)`` image embedding.
        original_hw: the slice size ``(H, W)``.
        truth: ``(H, W)`` bool ground truth (SAM orientation).
        target: ``(L, L)`` bool ground truth on the low-resolution grid; ``valid`` ``(L, L)`` the unpadded pixels.
        box_xy: ``(4,)`` the ground truth's box ``(x0, y0, x1, y1)`` in slice pixels (on an empty volume slice: the
            box of its neighbouring object slice, the prompt propagation gives it).
        image: ``(1, 3, H, W)`` SAM image, kept for validation items only (full-resolution evaluation).
        sha256: ``{"image": ..., "mask": ...}`` file hashes for the model card.
    """

    case: EvalCase
    domain: str
    embedding: torch.Tensor
    original_hw: tuple[int, int]
    truth: np.ndarray
    target: np.ndarray
    valid: np.ndarray
    box_xy: np.ndarray
    image: torch.Tensor | None
    sha256: dict[str, str]

    @property
    def is_empty(self) -> bool:
        """A volume slice without the object (prompted by its neighbour's box; trains an empty answer)."""
        return not self.target.any()


def low_res_target(truth: np.ndarray, img_size: int, low_res: int) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` bool mask -> ``(target (L, L) bool, valid (L, L) bool)`` on the decoder's grid.

    Same path as SAM's input: resize the longest side to ``img_size`` (SAM's rounding), pad bottom/right, then
    area-resize to ``L x L``; a pixel is foreground when at least half of it is.
    """
    height, width = truth.shape
    resized_hw = preprocess_shape(height, width, img_size)
    mask = torch.as_tensor(np.asarray(truth, dtype=np.float32))[None, None]
    mask = F.interpolate(mask, resized_hw, mode="bilinear", align_corners=False, antialias=True)
    valid = pad_bottom_right(torch.ones_like(mask), img_size)
    mask = pad_bottom_right(mask, img_size)
    if img_size != low_res:
        mask = F.interpolate(mask, (low_res, low_res), mode="area")
        valid = F.interpolate(valid, (low_res, low_res), mode="area")
    return (mask[0, 0] >= 0.5).numpy(), (valid[0, 0] >= 0.5).numpy()


def split_cases(folders: Sequence[str | os.PathLike[str]], val_fraction: float, seed: int,
                max_per_folder: int | Mapping[str, int] | None = None
                ) -> tuple[list[tuple[str, EvalCase]], list[tuple[str, EvalCase]]]:
    """``(train, val)`` lists of ``(domain, case)``: per folder, at most ``max_per_folder`` cases (one number, or
    folder name -> number) drawn with the seed, then ``ceil(val_fraction * n)`` of them (at least one when there are
    two or more) held out for validation.

    In a folder of volumes the cases drawn and split are the volumes; each is then listed as its slices
    (:func:`~monai_baldsam.head.train.volume_slices.volume_slice_cases`; training volumes with ``EMPTY_NEIGHBOURS``
    empty
    slices on each side of the object, validation volumes with every ``VAL_SLICE_STRIDE``-th object slice only)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train: list[tuple[str, EvalCase]] = []
    val: list[tuple[str, EvalCase]] = []
    for folder in folders:
        path = Path(folder).expanduser()
        volumes = is_volume_folder(path)
        cases = discover_volume_cases(path) if volumes else discover_cases(path)
        order = rng.permutation(len(cases))
        limit = max_per_folder.get(path.name) if isinstance(max_per_folder, Mapping) else max_per_folder
        if limit is not None:
            order = order[:int(limit)]
        chosen = [cases[i] for i in order]
        n_val = math.ceil(val_fraction * len(chosen)) if val_fraction > 0 and len(chosen) > 1 else 0
        n_val = min(n_val, len(chosen) - 1)
        if volumes:  # split by volume, then list each volume's slices
            val += [(path.name, s) for v in chosen[:n_val]
                    for s in volume_slice_cases(v.name, v.image, v.mask, 0)[::VAL_SLICE_STRIDE]]
            train += [(path.name, s) for v in chosen[n_val:]
                      for s in volume_slice_cases(v.name, v.image, v.mask, EMPTY_NEIGHBOURS)]
            continue
        val += [(path.name, c) for c in chosen[:n_val]]
        train += [(path.name, c) for c in chosen[n_val:]]
    if not train:
        raise ValueError(f"no training images found in {[str(f) for f in folders]}")
    return train, val


def card_cases(card: Mapping, split: str, limit: int | None = None) -> list[tuple[str, EvalCase]]:
    """``(domain, case)`` of a head card's ``split`` (``"train"`` or ``"val"``) images, found again under
    ``<data root>/train/<domain>`` (the first ``limit`` per domain when given), in the card's order."""
    wanted: dict[str, list[str]] = {}
    entries: dict[tuple[str, str], Mapping] = {}
    for entry in card["data"][split]:
        wanted.setdefault(entry["domain"], []).append(entry["name"])
        entries[(entry["domain"], entry["name"])] = entry
    cases: list[tuple[str, EvalCase]] = []
    for domain, names in sorted(wanted.items()):
        names = names[:limit] if limit else names
        folder = data_root() / "train" / domain
        if is_volume_folder(folder):
            by_volume = {v.name: v for v in discover_volume_cases(folder)}
            for name in names:
                entry = entries[(domain, name)]
                volume = by_volume.get(entry["volume"])
                if volume is None:
                    raise FileNotFoundError(f"volume {entry['volume']} of the card's {split} slices is missing under "
                                            f"{folder}")
                cases.append((domain, VolumeSliceCase(name, volume.image, volume.mask, volume=volume.name,
                                                      axis=int(entry["axis"]), index=int(entry["slice"]),
                                                      neighbour=entry.get("neighbour"))))
            continue
        by_name = {c.name: c for c in discover_cases(folder)}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise FileNotFoundError(f"{len(missing)} {split} images of {domain} are missing under {folder} "
                                    f"(e.g. {missing[0]})")
        cases += [(domain, by_name[n]) for n in names]
    return cases


def load_items(cases: Sequence[tuple[str, EvalCase]], backbone: SamBackbone, store: EmbeddingStore,
               keep_images: bool, desc: str = "loading", progress: bool = True,
               encoder: ImageEncoderRunner | None = None, dtype: torch.dtype = torch.float32) -> list[TrainItem]:
    """Load, window and encode ``cases`` (embeddings from/into ``store``, encoded by ``encoder``, default the
    eager reference), with a progress bar unless ``progress`` is False; embeddings are kept in ``dtype``."""
    predictor = SamPredictor(backbone, encoder=encoder)
    low_res = int(backbone.low_res_hw[0])
    volumes = VolumeSliceLoader()
    hashes: dict[Path, str] = {}
    items: list[TrainItem] = []
    for domain, case in tqdm(cases, desc=desc, unit="image", disable=not progress):
        prompt_truth = None
        if isinstance(case, VolumeSliceCase):
            loaded, prompt_truth = volumes.load(case)
        else:
            loaded = load_case(case)
        truth = loaded.truth
        target, valid = low_res_target(truth, backbone.img_size, low_res)
        if prompt_truth is None and not target.any():
            continue  # an object smaller than a low-resolution pixel: nothing to learn from
        if prompt_truth is not None and not low_res_target(prompt_truth, backbone.img_size, low_res)[0].any():
            continue  # an empty slice whose neighbour's object is a speck: no box to prompt it with
        embedding = store.get_or_compute(loaded.image, backbone, predictor.encode, predictor.encoder.tag)
        box_truth = truth if prompt_truth is None else prompt_truth
        for path in (case.image, case.mask):
            if path not in hashes:
                hashes[path] = _sha256(path)
        items.append(TrainItem(
            case=case, domain=domain, embedding=embedding.to(dtype), original_hw=tuple(truth.shape),
            truth=truth, target=target, valid=valid, box_xy=mask_boxes(box_truth[None])[0],
            image=loaded.image if keep_images else None,
            sha256={"image": hashes[case.image], "mask": hashes[case.mask]},
        ))
    volumes.clear()
    return items


def _sha256(path: Path) -> str:
    """A file's SHA-256, or for a DICOM series folder the SHA-256 of its files' names and hashes in order."""
    if not Path(path).is_dir():
        return file_sha256(path)

    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{file.name}:{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def gt_box_sam_xy(item: TrainItem, img_size: int, box_xy: np.ndarray | None = None) -> np.ndarray:
    """The (optionally jittered) ground-truth box of ``item`` in ``sam_xy``."""
    box = item.box_xy if box_xy is None else box_xy
    return np.asarray(slice_boxes_to_sam_boxes(np.asarray(box, dtype=np.float64), item.original_hw, img_size))
