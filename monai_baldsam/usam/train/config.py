"""Reading an UncertainSAM training configuration (``configs/usam_*.json``): the data, click-state head and
settings that produced the shipped heads, so that ``baldsam train-usam --config FILE`` reproduces them (options
given on the command line win).

Keys (all optional but ``data_dirs`` for a run): ``backbone``; ``large_backbone`` (a registry name, or null);
``data_dirs`` (relative to the data root); ``seed``; ``val_fraction``; ``max_per_folder``; ``head`` (the Bayesian
head whose sessions make the click states: ``{"file": ..., "sha256": ...}`` as the card records it, a shipped name,
or null for plain-decoder states only); ``states`` (fields of :class:`~monai_baldsam.usam.train.data.StateConfig`);
``usam_options`` (``hidden``, ``depth``, ``dropout`` of :class:`~monai_baldsam.usam.model.UsamConfig`); ``train``
(fields of :class:`~monai_baldsam.usam.train.trainer.UsamTrainConfig`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_baldsam.head.registry import WEIGHTS_DIR
from monai_baldsam.head.train.config_file import (
    data_folders,
    dataclass_from,
    max_per_folder_from,
    read_config,
    recorded_file,
)
from monai_baldsam.usam.train.data import StateConfig
from monai_baldsam.usam.train.trainer import UsamTrainConfig

__all__ = ["USAM_CONFIG_KEYS", "USAM_OPTIONS", "UsamTrainSettings", "load_usam_config"]

USAM_CONFIG_KEYS = ("backbone", "large_backbone", "data_dirs", "seed", "val_fraction", "max_per_folder", "head",
                    "states", "usam_options", "train")
#: the fields of UsamConfig a configuration may set (the others follow from the backbone)
USAM_OPTIONS = ("hidden", "depth", "dropout")


@dataclass(frozen=True)
class UsamTrainSettings:
    """The arguments of :func:`~monai_baldsam.usam.train.trainer.train_usam` a configuration gives (defaults: the
    trainer's); ``data_dirs`` are absolute, ``head`` a shipped name, a verified file or None."""

    backbone: str = "lite_medsam"
    large_backbone: str | None = None
    data_dirs: tuple[str, ...] = ()
    seed: int = 0
    val_fraction: float = 0.15
    max_per_folder: int | dict[str, int] | None = None
    head: str | Path | None = "general"
    states: StateConfig = field(default_factory=StateConfig)
    usam_options: dict[str, Any] | None = None
    train: UsamTrainConfig = field(default_factory=UsamTrainConfig)


def load_usam_config(path: str | os.PathLike[str]) -> UsamTrainSettings:
    """The settings in ``path``; an unknown key (also inside ``states``, ``usam_options``, ``train``) is a
    ``ValueError`` naming it."""
    raw = read_config(path, USAM_CONFIG_KEYS, "UncertainSAM training")
    where = f"UncertainSAM training config {path}"
    options = dict(raw.get("usam_options") or {})
    unknown = sorted(set(options) - set(USAM_OPTIONS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in 'usam_options' of {where}; known: {list(USAM_OPTIONS)}")
    head = raw.get("head", "general")
    return UsamTrainSettings(
        backbone=str(raw.get("backbone", "lite_medsam")),
        large_backbone=raw.get("large_backbone"),
        data_dirs=data_folders(raw.get("data_dirs", ())),
        seed=int(raw.get("seed", 0)),
        val_fraction=float(raw.get("val_fraction", 0.15)),
        max_per_folder=max_per_folder_from(raw.get("max_per_folder"), where),
        head=None if head is None else recorded_file(head, WEIGHTS_DIR, f"'head' of {where}"),
        states=dataclass_from(StateConfig, raw.get("states"), f"'states' of {where}"),
        usam_options=options or None,
        train=dataclass_from(UsamTrainConfig, raw.get("train"), f"'train' of {where}"),
    )
