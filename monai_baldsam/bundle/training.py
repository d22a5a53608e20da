"""Head training as a bundle workflow (``train.json``; ``multi_gpu_train.json`` under ``torchrun``).

A thin wrapper of :func:`monai_baldsam.head.train.trainer.train_head`: it fine-tunes the bundle's head (``init``) on the
user's labelled images, fits the Laplace posterior and writes ``<output_dir>/head.pt`` and its card. The starting
head is the bundle's shipped one (``init_head``, a registry name, checked against ``init_head_sha256``), which is
never overwritten: run the new file with ``--head <output_dir>/head.pt --head_sha256 card`` (its card is checked).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from monai_baldsam import distributed
from monai_baldsam.bundle.heads import resolve_bundle_head
from monai_baldsam.head.train.trainer import TrainConfig, train_head

__all__ = ["HeadTraining"]

PathLike = str | os.PathLike


def _folders(dataset_dir: PathLike | Sequence[PathLike]) -> list[Path]:
    """One folder with ``images/`` + ``masks/``, a folder of such folders, or a list of folders."""
    if isinstance(dataset_dir, (str, os.PathLike)):
        if not str(dataset_dir):
            raise ValueError("give the training data: --dataset_dir DIR (a folder with images/ and masks/, or a folder "
                             "of such folders)")
        root = Path(dataset_dir).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"training data folder {root} does not exist")
        if (root / "images").is_dir():
            return [root]
        found = sorted(p for p in root.iterdir() if (p / "images").is_dir() and (p / "masks").is_dir())
        if not found:
            raise ValueError(f"{root} holds neither images/ + masks/ nor folders that do")
        return found
    return [Path(p).expanduser() for p in dataset_dir]


class HeadTraining:
    """Fine-tune (``init``) or train a head on ``dataset_dir`` and write ``output_dir/head.pt`` + ``head.json``.

    Args mirror ``baldsam train-head``: ``epochs``, ``max_per_folder`` (images per folder, seeded draw),
    ``max_minutes`` (training-time budget), ``val_fraction``, ``seed``, ``backbone``, ``device``, ``overwrite``,
    ``store_dir`` (embedding store; default ``$BALDSAM_CACHE/embeddings``). ``init`` is a shipped head's registry
    name or a head file, ``init_sha256`` the SHA-256 it must have (``None`` or ``"card"``: its card's).
    """

    def __init__(self, dataset_dir: PathLike | Sequence[PathLike], output_dir: PathLike, init: PathLike | None = None,
                 epochs: int = 20, max_per_folder: int | None = None, max_minutes: float | None = None,
                 val_fraction: float = 0.15, seed: int = 0, backbone: str = "lite_medsam", device: Any = "cpu",
                 overwrite: bool = False, store_dir: PathLike | None = None, progress: bool = True,
                 init_sha256: str | None = None) -> None:
        self.folders = _folders(dataset_dir)
        if not str(output_dir):
            raise ValueError("give the output folder: --output_dir DIR")
        self.output_dir = Path(output_dir).expanduser()
        self.init = resolve_bundle_head(init, init_sha256).path if init else None
        self.epochs, self.max_per_folder, self.max_minutes = int(epochs), max_per_folder, max_minutes
        self.val_fraction, self.seed = float(val_fraction), int(seed)
        self.backbone, self.device, self.overwrite = backbone, device, overwrite
        self.store_dir, self.progress = store_dir, progress

    def run(self) -> dict[str, Any] | None:
        """Train; returns the card on rank 0 (``None`` on other ranks)."""
        init = self.init
        config = TrainConfig()
        if self.max_minutes is not None:
            config = replace(config, max_train_seconds=float(self.max_minutes) * 60.0)
        if distributed.rank() == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        result = train_head(self.folders, self.output_dir / "head.pt", backbone=self.backbone, epochs=self.epochs,
                            device=str(self.device), seed=self.seed, val_fraction=self.val_fraction,
                            store_dir=self.store_dir, max_per_folder=self.max_per_folder, config=config,
                            overwrite=self.overwrite, progress=self.progress, init=init)
        return result.card if distributed.rank() == 0 else None
