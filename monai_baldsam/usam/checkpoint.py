"""One file per trained set of UncertainSAM heads, and the shipped ones by name.

The file is a ``torch.save`` of plain dicts and tensors (loads with ``weights_only=True``, ``map_location="cpu"``),
written atomically. :func:`load_usam_file` verifies the SHA-256 when one is given (a shipped head's card always gives
it) and refuses heads trained on another backbone (name, checkpoint hash, input size) or another decoder width.
Shipped heads live in ``monai_baldsam/usam/weights/`` with a JSON card beside each (``usam_sha256`` = the file's hash).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from monai_baldsam.head.checkpoint import backbone_signature
from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.sam.checkpoints import (
    CheckpointError,
    WeightsFile,
    load_checkpoint_payload,
    resolve_weights_file,
)
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.usam.model import UsamConfig, UsamHeads

__all__ = ["USAM_FORMAT", "WEIGHTS_DIR", "SHIPPED_USAM", "DEFAULT_USAM", "UsamFile", "TrainedUsam", "save_usam",
           "load_usam_file", "resolve_usam"]

USAM_FORMAT = "monai_baldsam.usam/1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: name -> file stem in ``weights/``.
SHIPPED_USAM: dict[str, str] = {"general": "usam_general_v1"}
DEFAULT_USAM = "general"


#: a heads file and the SHA-256 it must have (None for a user's file without a card)
UsamFile = WeightsFile


@dataclass
class TrainedUsam:
    """Loaded heads, the backbone they belong to and the file's hash and metadata."""

    heads: UsamHeads
    backbone_signature: dict[str, Any]
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def save_usam(path: str | os.PathLike[str], heads: UsamHeads, backbone: SamBackbone,
              meta: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write ``heads`` (weights, normalisation, config) for ``backbone`` atomically to ``path``."""
    payload = {"format": USAM_FORMAT, "config": heads.config.to_dict(),
               "state": {k: v.detach().cpu().clone() for k, v in heads.state_dict().items()},
               "backbone_signature": backbone_signature(backbone), "meta": dict(meta or {})}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def load_usam_file(path: str | os.PathLike[str], backbone: SamBackbone, sha256: str | None = None) -> TrainedUsam:
    """Load heads saved by :func:`save_usam` for ``backbone`` (on the backbone's device, eval mode).

    Raises:
        CheckpointError: missing file, hash mismatch, or not a heads file of this format.
        ValueError: the heads were trained on another backbone or decoder.
    """
    path = Path(path).expanduser()
    payload, actual = load_checkpoint_payload(path, sha256, USAM_FORMAT, "UncertainSAM heads",
                                              "an UncertainSAM heads file")
    stored = dict(payload["backbone_signature"])
    expected = backbone_signature(backbone)
    if stored != expected:
        raise ValueError(f"UncertainSAM heads {path} were trained on backbone {stored} but the loaded backbone is "
                         f"{expected}: load that backbone, or train heads for this one (baldsam train-usam)")
    try:
        config = UsamConfig.from_dict(payload["config"])
        decoder = backbone.mask_decoder
        if (config.token_dim, config.n_mask_tokens) != (int(decoder.transformer_dim), int(decoder.num_mask_tokens)):
            raise ValueError(f"UncertainSAM heads {path} expect a decoder of width {config.token_dim} with "
                             f"{config.n_mask_tokens} mask tokens, this backbone's has {decoder.transformer_dim} and "
                             f"{decoder.num_mask_tokens}")
        heads = UsamHeads(config)
        heads.load_state_dict(payload["state"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"UncertainSAM heads {path} do not fit this version ({err})") from None
    heads = heads.to(backbone.device).eval().requires_grad_(False)
    return TrainedUsam(heads=heads, backbone_signature=stored, sha256=actual, meta=dict(payload.get("meta", {})))


def resolve_usam(name_or_path: str | os.PathLike[str]) -> UsamFile:
    """A shipped heads name (``general``) or a path to a heads file; a path's card (same stem, ``.json``) supplies
    the expected hash when it exists."""
    return resolve_weights_file(name_or_path, SHIPPED_USAM, WEIGHTS_DIR, "usam_sha256", "UncertainSAM heads",
                                "UncertainSAM heads {text} are neither shipped ({known}) nor an existing file")
