"""Reading a decoder training configuration file (``configs/decoder_*.json``): the data selection and settings
that produced a shipped decoder, so that ``baldsam train-decoder --config FILE`` reproduces it."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from monai_baldsam.data_paths import data_root
from monai_baldsam.decoder.data import DecoderDataConfig
from monai_baldsam.decoder.training import DecoderTrainConfig

__all__ = ["load_decoder_config"]


def _known(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown settings {unknown} in {where}; known: {sorted(names)}")
    return values


def load_decoder_config(path: str | os.PathLike[str]) -> tuple[str, DecoderDataConfig, DecoderTrainConfig]:
    """``(backbone, data, train)`` from a JSON configuration; folders are relative to the data root
    (:func:`~monai_baldsam.data_paths.data_root`) unless absolute."""
    path = Path(path).expanduser()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"decoder config {path} does not exist") from None
    except ValueError as err:
        raise ValueError(f"decoder config {path} is not valid JSON ({err})") from None
    if not isinstance(raw, dict) or "data" not in raw:
        raise ValueError(f"decoder config {path} needs a 'data' section (and optionally 'train', 'backbone')")
    data = dict(_known(DecoderDataConfig, dict(raw["data"]), f"{path} 'data'"))
    root = data_root()
    data["folders"] = tuple(str(f) if Path(f).is_absolute() else str(root / f) for f in data.get("folders", ()))
    train = _known(DecoderTrainConfig, dict(raw.get("train", {})), f"{path} 'train'")
    return str(raw.get("backbone", "lite_medsam")), DecoderDataConfig(**data), DecoderTrainConfig(**train)
