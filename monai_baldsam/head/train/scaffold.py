"""What the package's three trainers share (the prediction head's :func:`~monai_baldsam.head.train.trainer.train_head`,
UncertainSAM's :func:`~monai_baldsam.usam.train.trainer.train_usam` and the click decoder's
:func:`~monai_baldsam.decoder.training.train_decoder`), written once.

* :func:`checked_outputs`: the weights file and its card, refused before any work when they exist.
* :func:`training_backbone`: a registry name or a loaded backbone, on the training device.
* :func:`cosine_factor`: the learning-rate factor of a linear warm-up then cosine decay, for ``LambdaLR``.
* :class:`TimeBudget`: training time against a budget (the cached encoding before it does not count).
* :class:`BestState`: the best score so far, its step and a copy of its weights, and how long it has stood.
* :func:`environment`, :func:`config_record`, :func:`display_data_dir`, :func:`write_card`: what a model card
  records about the run (software, device, the configuration file and its SHA-256, data folders without a machine's
  absolute paths), written atomically.

What differs stays with each trainer: the head steps per batch of sessions with early stopping by epochs, UncertainSAM
regresses on cached states with a per-epoch cosine, the decoder steps up to a step budget with a warm-up.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from monai_baldsam.data_paths import data_root
from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.model import SamBackbone

__all__ = ["TrainResult", "checked_outputs", "training_backbone", "cosine_factor", "TimeBudget", "BestState",
           "device_name", "environment", "config_record", "display_data_dir", "write_card"]


@dataclass
class TrainResult:
    """What a trainer wrote: the weights file, its card's path, and the card."""

    path: Path
    card_path: Path
    card: dict[str, Any] = field(default_factory=dict)


def checked_outputs(out: str | os.PathLike[str], overwrite: bool) -> tuple[Path, Path]:
    """``(weights file, card)`` (the card is the file with ``.json``), refused before any work when either exists
    and ``overwrite`` is not set."""
    out = Path(out).expanduser()
    card_path = out.with_suffix(".json")
    for path in (out, card_path):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists: choose another output path or pass overwrite=True")
    return out, card_path


def training_backbone(backbone: str | SamBackbone, device: str | torch.device, decoder: str = "original"
                      ) -> SamBackbone:
    """The frozen backbone a trainer works on: loaded by registry name with ``decoder`` (``original`` or a shipped
    decoder such as ``clicks_v1``), or the given one moved to ``device``."""
    if isinstance(backbone, str):
        return load_backbone(backbone, device=device, decoder=decoder)
    return backbone.to(device)


def cosine_factor(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Learning-rate factor at optimiser step ``step`` (from 0): ``(step + 1) / warmup_steps`` during the warm-up,
    then half a cosine from 1 to 0 over the remaining ``total_steps - warmup_steps`` steps (0 after them)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))


class TimeBudget:
    """Seconds since construction against a budget (``None``: no budget); monotonic clock."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> bool:
        """Whether the budget is used up."""
        return self.seconds is not None and self.elapsed > self.seconds


class BestState:
    """The best score offered so far, the step it came at and a deep copy of the state then.

    Args:
        higher_is_better: True for a validation score (mIoU), False for a loss.
        score: the score to beat (``None``: the first offer wins).
        state: the state kept until an offer beats ``score``; ``step``: its step.
    """

    def __init__(self, higher_is_better: bool = True, score: float | None = None, state: Any = None,
                 step: int = 0) -> None:
        self.higher_is_better = higher_is_better
        self.score = score
        self.state = state
        self.step = step
        #: offers since the best one that did not beat it (early stopping's patience counts these)
        self.stale = 0

    def offer(self, score: float, step: int, state: Any | Callable[[], Any]) -> bool:
        """Keep ``state`` (deep-copied; a callable is called first, only when kept) if ``score`` beats the best;
        returns whether it did."""
        better = self.score is None or (score > self.score if self.higher_is_better else score < self.score)
        if not better:
            self.stale += 1
            return False
        self.score, self.step, self.stale = score, step, 0
        self.state = copy.deepcopy(state() if callable(state) else state)
        return True


def device_name(device: str | torch.device) -> str:
    """``cpu`` on a CPU, the accelerator's product name on a GPU (what a card records to compare timings)."""
    device = torch.device(device)
    return str(device) if device.type != "cuda" else torch.cuda.get_device_name(device)


def environment(device: str | torch.device) -> dict[str, Any]:
    """Software and machine of a run: torch and Python versions, the device, the host's architecture and torch's
    CPU threads."""
    return {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
            "host": platform.machine(), "torch_threads": torch.get_num_threads()}


def config_record(config_file: str | os.PathLike[str] | None) -> dict[str, str | None]:
    """``{"config_file": name, "config_sha256": hash}`` of the configuration file a run's settings came from (both
    None without one): a card names the one file that reproduces it."""
    if config_file is None:
        return {"config_file": None, "config_sha256": None}
    return {"config_file": Path(config_file).name, "config_sha256": file_sha256(config_file)}


def display_data_dir(folder: str | os.PathLike[str]) -> str:
    """``folder`` relative to the data root (``train/busi``) when it lies under it, else its last two parts: cards
    never record a machine's absolute paths."""
    path = Path(folder).expanduser().resolve()
    try:
        return path.relative_to(data_root().resolve()).as_posix()
    except ValueError:
        return "/".join(path.parts[-2:])


def write_card(card_path: Path, card: Mapping[str, Any], overwrite: bool) -> None:
    """The card as indented JSON, written atomically (a reader never sees half a card)."""
    atomic_write_text(card_path, json.dumps(card, indent=1) + "\n", overwrite=overwrite)
