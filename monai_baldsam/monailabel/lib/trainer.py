"""Train task: fine-tune a model's head on the labels saved in the datastore, refit its posterior, publish it.

``POST /train/<model>`` (MONAI Label runs it in a subprocess) gathers every image with a ``final`` label of the
model's kind (pictures for 2D models, volumes for the 3D one), writes a training folder (``images/`` links to the
datastore's images, ``masks/`` the labels as 0/1 masks) in a staging folder, and calls
:func:`monai_baldsam.head.train.trainer.train_head` with ``init`` = the head in use (fine-tuning: same config, the
validation images held out, early stopping, the Laplace posterior refitted, a card written). The new head is then
published (:meth:`~monai_baldsam.monailabel.lib.heads.HeadStore.publish`, crash-safe); infer tasks pick it up on
their next request. The datastore is only read. What a training killed before its end left (staging folder,
temporary files) is deleted when the next training starts.

Request keys (Slicer's train options): ``max_epochs`` (default 5), ``max_minutes`` (training time budget, default
10), ``seed`` (0), ``val_fraction`` (0.15).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.train import TrainTask

from monai_baldsam.head.train.trainer import TrainConfig, train_head
from monai_baldsam.io import load_image, load_mask, write_mask
from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.io.formats import MASK_OUTPUT_SUFFIXES, NIFTI_SUFFIXES, PICTURE_SUFFIXES, full_suffix
from monai_baldsam.monailabel.lib.configs import ModelConfig
from monai_baldsam.monailabel.lib.durable import remove_stale_temps
from monai_baldsam.monailabel.lib.heads import HeadStore
from monai_baldsam.monailabel.lib.hub import ModelHub
from monai_baldsam.sam.checkpoints import verify_sha256

__all__ = ["label_mask", "HeadTrainer"]

logger = logging.getLogger(__name__)

STATS_FILE = "train_stats.json"


def label_mask(label_path: str | os.PathLike[str], image: MetaTensor) -> np.ndarray:
    """A datastore label as a 0/1 uint8 array of ``image``'s spatial shape (any label value > 0 is foreground).

    PNG / NIfTI labels go through :func:`monai_baldsam.io.load_mask`; other formats (Slicer's ``.nrrd``) through
    MONAI's ITK reader, with singleton dimensions dropped (Slicer saves a picture's label as one slice).
    """
    path = Path(label_path)
    spatial = tuple(int(s) for s in image.shape[1:])
    if full_suffix(path) in MASK_OUTPUT_SUFFIXES:
        return load_mask(path, reference=image, check_affine=False)[0].numpy().astype(np.uint8)

    data = np.asarray(LoadImage(image_only=True, reader="ITKReader")(str(path)))
    squeezed = data.reshape([s for s in data.shape if s != 1] or [1])
    if tuple(squeezed.shape) != tuple(s for s in spatial if s != 1):
        raise ValueError(f"label {path.name} has shape {data.shape} but its image has spatial shape {spatial}: "
                         "save the label on the image's own grid")
    return (squeezed > 0).reshape(spatial).astype(np.uint8)


class HeadTrainer(TrainTask):
    """Fine-tunes one model's head (see the module docstring).

    Args:
        config: the model; store: its head store (the staging folder lives beside it); hub: backbone and device.
    """

    def __init__(self, config: ModelConfig, store: HeadStore, hub: ModelHub) -> None:
        super().__init__(f"Fine-tune the {config.name} head on the datastore's labels and refit its posterior")
        self.model_config = config
        self.store = store
        self.hub = hub

    def config(self) -> dict[str, Any]:
        return {"max_epochs": 5, "max_minutes": 10, "seed": 0, "val_fraction": 0.15}

    def stats(self) -> dict[str, Any]:
        path = self.store.folder / STATS_FILE
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _training_folder(self, datastore: Datastore, root: Path) -> list[str]:
        """Write ``root/images`` + ``root/masks`` for the labeled images of this model's kind; returns their ids."""
        images_dir, masks_dir = root / "images", root / "masks"
        images_dir.mkdir(parents=True)
        masks_dir.mkdir()
        wanted = PICTURE_SUFFIXES if self.model_config.spatial_dims == 2 else NIFTI_SUFFIXES
        used = []
        for image_id in sorted(datastore.get_labeled_images()):
            image_path = Path(datastore.get_image_uri(image_id))
            suffix = full_suffix(image_path)
            if suffix not in wanted:
                continue
            label_path = datastore.get_label_uri(image_id, DefaultLabelTag.FINAL)
            image = load_image(image_path)
            mask = label_mask(label_path, image)
            if not mask.any():
                logger.info(f"{image_id}: its label is empty; left out of training")
                continue
            (images_dir / f"{image_id}{suffix}").symlink_to(image_path.resolve())
            write_mask(mask[None], image, masks_dir / f"{image_id}{'.png' if suffix in PICTURE_SUFFIXES else '.nii.gz'}")
            used.append(image_id)
        return used

    def _remove_stale_staging(self) -> None:
        """Delete what a training killed before its end left in the store folder (its staging folder, temporary
        files of a publish that did not finish). MONAI Label runs one training at a time, so none is in use."""
        if not self.store.folder.is_dir():
            return
        for path in self.store.folder.glob("staging-*"):
            logger.warning(f"removing {path}, left by a training that did not finish")
            shutil.rmtree(path, ignore_errors=True)
        remove_stale_temps(self.store.folder)

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        start = time.time()
        epochs = int(request.get("max_epochs", 5))
        minutes = float(request.get("max_minutes", 10))
        if epochs < 1 or minutes <= 0:
            raise ValueError(f"max_epochs must be >= 1 and max_minutes > 0, got {epochs} and {minutes}")
        current = self.store.current()
        verify_sha256(current.path, current.sha256, what=f"{self.model_config.name} head")
        self._remove_stale_staging()
        staging = self.store.folder / f"staging-{uuid.uuid4().hex[:8]}"
        try:
            used = self._training_folder(datastore, staging / "data")
            if not used:
                kind = "pictures" if self.model_config.spatial_dims == 2 else "NIfTI volumes"
                raise ValueError(f"no labeled {kind} in the datastore for {self.model_config.name}: save labels "
                                 "(final) first, then train")
            torch.manual_seed(int(request.get("seed", 0)))
            result = train_head([staging / "data"], staging / "head.pt", backbone=self.hub.backbone(),
                                device=str(self.hub.device), seed=int(request.get("seed", 0)),
                                val_fraction=float(request.get("val_fraction", 0.15)),
                                store_dir=self.store.folder / "embeddings",
                                config=TrainConfig(epochs=epochs, max_train_seconds=60.0 * minutes),
                                init=str(current.path), progress=True)
            version = self.store.publish(result.path, time.time())
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        stats = {"model": self.model_config.name, "head": version.to_dict(), "init": current.to_dict(),
                 "images": used, "best_epoch": result.card.get("best_epoch"),
                 "validation": result.card.get("validation_full_res_oracle", {}),
                 "duration_s": round(time.time() - start, 1), "ts": int(time.time())}
        atomic_write_text(self.store.folder / STATS_FILE, json.dumps(stats, indent=1) + "\n", overwrite=True)
        return stats
