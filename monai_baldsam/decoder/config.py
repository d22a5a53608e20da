"""Reading a decoder training configuration file (``configs/decoder_*.json``): the data selection and settings
that produced a shipped decoder, so that ``baldsam train-decoder --config FILE`` reproduces it."""

from __future__ import annotations

import os
from pathlib import Path

from monai_baldsam.decoder.data import DecoderDataConfig
from monai_baldsam.decoder.training import DecoderTrainConfig
from monai_baldsam.head.train.config_file import data_folders, dataclass_from, read_config

__all__ = ["load_decoder_config"]


def load_decoder_config(path: str | os.PathLike[str]) -> tuple[str, DecoderDataConfig, DecoderTrainConfig]:
    """``(backbone, data, train)`` from a JSON configuration; folders are relative to the data root
    (:func:`~monai_baldsam.data_paths.data_root`) unless absolute. An unknown key is a ``ValueError`` naming it."""
    raw = read_config(path, ("backbone", "data", "train"), "decoder")
    path = Path(path).expanduser()
    if "data" not in raw:
        raise ValueError(f"decoder config {path} needs a 'data' section (and optionally 'train', 'backbone')")
    data = dict(raw["data"])
    data["folders"] = data_folders(data.get("folders", ()))
    return (str(raw.get("backbone", "lite_medsam")), dataclass_from(DecoderDataConfig, data, f"{path} 'data'"),
            dataclass_from(DecoderTrainConfig, raw.get("train"), f"{path} 'train'"))
