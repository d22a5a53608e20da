"""One file per trained head: weights, Laplace posterior, config and the backbone it was trained on.

The file is a ``torch.save`` of plain dicts, tensors and numbers (loads with ``weights_only=True``), written
atomically. :func:`load_head` loads it with ``map_location``, verifies its SHA-256 when one is given, and refuses a
head trained on another backbone (name, checkpoint hash or input size).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from monai_baldsam.bayes import LastLayerLaplace
from monai_baldsam.head.model import HeadConfig, PredictionHead
from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.sam.checkpoints import CheckpointError, load_checkpoint_payload
from monai_baldsam.sam.model import SamBackbone

__all__ = ["HEAD_FORMAT", "TrainedHead", "backbone_signature", "save_head", "head_decoder", "load_head"]

HEAD_FORMAT = "monai_baldsam.head/1"


def backbone_signature(backbone: SamBackbone) -> dict[str, str | int]:
    """What a head depends on: backbone name, full checkpoint SHA-256 and input size. (A head reads the checkpoint's
    own decoder, never a click-trained one; :func:`head_decoder` says which decoder a head's clicks pair with.)"""
    return {"backbone": backbone.name, "checkpoint_sha256": backbone.checkpoint_sha256 or "random",
            "img_size": int(backbone.img_size)}


@dataclass
class TrainedHead:
    """A loaded head: the network, its last layer's posterior, the config and where it came from."""

    head: PredictionHead
    laplace: LastLayerLaplace
    config: HeadConfig
    backbone_signature: dict[str, Any]
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def save_head(path: str | os.PathLike[str], head: PredictionHead, laplace: LastLayerLaplace, backbone: SamBackbone,
              meta: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write the head, its fitted posterior and config atomically to ``path``; returns the path.

    ``meta``: plain values (str, numbers, lists, dicts) stored alongside (e.g. the training seed).
    """
    if not laplace.is_fitted:
        raise ValueError("the Laplace posterior is not fitted: call fit() and optimize_prior_precision() first")
    if laplace.n_channels != head.n_channels:
        raise ValueError(f"the posterior has {laplace.n_channels} inputs but the head's last layer has "
                         f"{head.n_channels}: they do not belong together")
    signature = backbone_signature(backbone)
    payload = {
        "format": HEAD_FORMAT,
        "config": head.config.to_dict(),
        "head_state": {k: v.detach().cpu().clone() for k, v in head.state_dict().items()},
        "laplace_state": laplace.state_dict(),
        "backbone_signature": signature,
        "meta": dict(meta or {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def head_decoder(path: str | os.PathLike[str]) -> str:
    """The decoder a head file was trained with (its ``meta["decoder"]``; ``original`` for the shipped heads, which
    predate click-trained decoders): a segmenter with the head loads that one."""
    payload, _ = load_checkpoint_payload(Path(path).expanduser(), None, HEAD_FORMAT, "head checkpoint",
                                         "a head checkpoint")
    meta = payload.get("meta", {})
    return str(meta.get("decoder", "original")) if isinstance(meta, dict) else "original"


def load_head(path: str | os.PathLike[str], backbone: SamBackbone, sha256: str | None = None,
              device: str | torch.device | None = None) -> TrainedHead:
    """Load a head saved by :func:`save_head` for ``backbone``.

    Args:
        path: the head file.
        backbone: the loaded backbone the head will run on; its signature must equal the stored one.
        sha256: expected SHA-256 of the file (checked before loading when given).
        device: where to put the head (default: the backbone's device).

    Raises:
        CheckpointError: missing file, hash mismatch, or a file that is not a head checkpoint.
        ValueError: the head was trained on another backbone.
    """
    path = Path(path).expanduser()
    payload, actual = load_checkpoint_payload(path, sha256, HEAD_FORMAT, "head checkpoint", "a head checkpoint")
    stored = payload["backbone_signature"]
    expected = backbone_signature(backbone)
    if dict(stored) != expected:
        raise ValueError(f"head {path} was trained on backbone {stored} but the loaded backbone is {expected}: load "
                         f"the backbone it was trained on, or train a head for this one")
    try:
        config = HeadConfig.from_dict(payload["config"])
        head = PredictionHead(config)
        head.load_state_dict(payload["head_state"])
        laplace = LastLayerLaplace.from_state_dict(payload["laplace_state"], expected_signature=expected)
    except (KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"head checkpoint {path} does not fit this version's head ({err})") from None
    target = torch.device(device) if device is not None else backbone.device
    head = head.to(target).eval().requires_grad_(False)
    laplace.to(target)
    return TrainedHead(head=head, laplace=laplace, config=config, backbone_signature=dict(stored), sha256=actual,
                       meta=dict(payload.get("meta", {})))
