"""Which training images the click-trained decoder sees, and how they are loaded (encoded once, on disk).

Every 2D training folder and slices of the training volumes (through-plane axis, windowed once per volume, as the
head's training data: :mod:`monai_baldsam.head.train.data`). Per folder at most ``max_images`` images (or
volumes) are drawn with the seed and a fraction held out for validation (split by image, or by volume for volume
folders); training volumes then keep at most ``slices_per_volume`` of their slices (object slices and the empty
slices next to the object), drawn with the seed, because neighbouring slices are near duplicates and each costs an
encoder pass.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from monai_baldsam.head.train.data import split_cases
from monai_baldsam.head.train.volume_slices import VolumeSliceCase
from monai_baldsam.io.cases import EvalCase

__all__ = ["DecoderDataConfig", "select_cases"]


@dataclass(frozen=True)
class DecoderDataConfig:
    """The training data's selection.

    Attributes:
        folders: training folders (``images/`` + ``masks/``; 2D pictures or volumes).
        max_images: folder name -> at most this many images (volumes for a volume folder) drawn with the seed;
            a folder not named takes all.
        slices_per_volume: folder name -> at most this many slices per training volume (default 8).
        val_fraction: share of each folder's images (volumes) held out for validation.
        seed: seed of every draw.
    """

    folders: tuple[str, ...]
    max_images: Mapping[str, int] = field(default_factory=dict)
    slices_per_volume: Mapping[str, int] = field(default_factory=dict)
    val_fraction: float = 0.08
    seed: int = 0

    def to_dict(self) -> dict:
        return {"folders": [Path(f).name for f in self.folders], "max_images": dict(self.max_images),
                "slices_per_volume": dict(self.slices_per_volume), "val_fraction": self.val_fraction,
                "seed": self.seed}


def _thin_volume_slices(cases: Sequence[tuple[str, EvalCase]], per_volume: int, rng: np.random.Generator
                        ) -> list[tuple[str, EvalCase]]:
    """At most ``per_volume`` slices of each volume (drawn with ``rng``), in the input's order."""
    by_volume: dict[str, list[int]] = defaultdict(list)
    for n, (_, case) in enumerate(cases):
        if isinstance(case, VolumeSliceCase):
            by_volume[case.volume].append(n)
    keep = {n for n, (_, case) in enumerate(cases) if not isinstance(case, VolumeSliceCase)}
    for volume in sorted(by_volume):
        rows = by_volume[volume]
        chosen = rng.choice(len(rows), size=min(per_volume, len(rows)), replace=False)
        keep.update(rows[int(i)] for i in chosen)
    return [cases[n] for n in sorted(keep)]


def select_cases(config: DecoderDataConfig) -> tuple[list[tuple[str, EvalCase]], list[tuple[str, EvalCase]]]:
    """``(train, val)`` lists of ``(domain, case)`` for ``config`` (see the module docstring)."""
    if not config.folders:
        raise ValueError("give at least one training folder")
    rng = np.random.default_rng(config.seed)
    train: list[tuple[str, EvalCase]] = []
    val: list[tuple[str, EvalCase]] = []
    for folder in config.folders:
        path = Path(os.fspath(folder)).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"training folder {path} does not exist (expected images/ and masks/ inside)")
        limit = config.max_images.get(path.name)
        folder_train, folder_val = split_cases([path], config.val_fraction, config.seed,
                                               None if limit is None else {path.name: int(limit)})
        per_volume = int(config.slices_per_volume.get(path.name, 8))
        train += _thin_volume_slices(folder_train, per_volume, rng)
        val += _thin_volume_slices(folder_val, max(1, per_volume // 2), rng)
    return train, val
