"""Reading a head training configuration (``configs/head_*.json``): the data, start and settings that produced a
shipped head, so that ``baldsam train-head --config FILE`` reproduces it (options given on the command line win).

Keys (all optional but ``data_dirs`` for a run): ``backbone``; ``decoder`` (the prompt encoder and mask decoder
the head trains on: ``original`` or a shipped decoder such as ``clicks_v1``); ``data_dirs`` (relative to the data root);
``seed``; ``val_fraction``; ``max_per_folder`` (a number or folder name -> number); ``init`` (the head to fine-tune,
``{"file": ..., "sha256": ...}`` as the card records it, or a shipped name); ``head_options`` (fields of
:class:`~monai_baldsam.head.model.HeadConfig` for a head trained from scratch; with ``init`` only ``features``, the
decoder inputs' settings); ``train`` (fields of
:class:`~monai_baldsam.head.train.trainer.TrainConfig`).
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
from monai_baldsam.head.train.trainer import TrainConfig

__all__ = ["HEAD_CONFIG_KEYS", "HeadTrainSettings", "load_head_config"]

HEAD_CONFIG_KEYS = ("backbone", "decoder", "data_dirs", "seed", "val_fraction", "max_per_folder", "init", "head_options",
                    "train")


@dataclass(frozen=True)
class HeadTrainSettings:
    """The arguments of :func:`~monai_baldsam.head.train.trainer.train_head` a configuration gives (defaults: the
    trainer's); ``data_dirs`` are absolute, ``init`` a shipped name or a verified file."""

    backbone: str = "lite_medsam"
    decoder: str = "original"
    data_dirs: tuple[str, ...] = ()
    seed: int = 0
    val_fraction: float = 0.15
    max_per_folder: int | dict[str, int] | None = None
    init: str | Path | None = None
    head_options: dict[str, Any] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)


def load_head_config(path: str | os.PathLike[str]) -> HeadTrainSettings:
    """The settings in ``path``; an unknown key (also inside ``train``) is a ``ValueError`` naming it."""
    raw = read_config(path, HEAD_CONFIG_KEYS, "head training")
    where = f"head training config {path}"
    init = raw.get("init")
    return HeadTrainSettings(
        backbone=str(raw.get("backbone", "lite_medsam")),
        decoder=str(raw.get("decoder", "original")),
        data_dirs=data_folders(raw.get("data_dirs", ())),
        seed=int(raw.get("seed", 0)),
        val_fraction=float(raw.get("val_fraction", 0.15)),
        max_per_folder=max_per_folder_from(raw.get("max_per_folder"), where),
        init=None if init is None else recorded_file(init, WEIGHTS_DIR, f"'init' of {where}"),
        head_options=dict(raw["head_options"]) if raw.get("head_options") else None,
        train=dataclass_from(TrainConfig, raw.get("train"), f"'train' of {where}"),
    )
