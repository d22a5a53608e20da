"""The bundle's inference pipeline as MONAI dictionary transforms, so that a user can read and change it in
``inference.json``.

``preprocessing`` is a ``Compose``:

1. :class:`LoadPromptedImaged` loads the image as ``baldsam segment`` does (a ``MetaTensor`` with its affine) and
   keeps it as ``original``;
2. :class:`~monai_baldsam.transforms.world_prompts.PromptsToWorldd` turns the prompts into world points;
3. any spatial transforms the user adds (``Spacingd``, ``Orientationd``, ``Flipd``, ``Rotate90d`` ... on
   ``image``; none by default);
4. :class:`~monai_baldsam.transforms.world_prompts.PromptsToImaged` turns the world points into indices of the
   transformed image, checked once.

``postprocessing`` starts with :class:`InvertBaldSamOutputs`: MONAI's ``Invertd`` takes the label and the maps back
through ``preprocessing`` to the loaded image's grid, and the next click follows through world coordinates; then
:class:`~monai_baldsam.bundle.inference.SaveBaldSamOutputs` writes them beside the loaded image's geometry.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, MapTransform

from monai_baldsam.io import load_image
from monai_baldsam.transforms.volume_geometry import resolve_axis
from monai_baldsam.transforms.world_prompts import map_points

__all__ = ["ORIGINAL_KEY", "INVERTED_MAPS", "LoadPromptedImaged", "InvertBaldSamOutputs"]

#: where :class:`LoadPromptedImaged` keeps the image as loaded (the geometry the outputs are written in)
ORIGINAL_KEY = "original"
#: the network's per-voxel outputs taken back to the loaded image's grid (the label by nearest neighbour)
INVERTED_MAPS = ("mask", "mutual_information", "probability")


class LoadPromptedImaged(MapTransform):
    """``{"image": path, "prompts": UserPrompts}`` -> the image loaded as ``baldsam segment`` loads it
    (channel ``channel`` of a multi-channel volume), also kept unchanged as ``original``."""

    def __init__(self, keys: Hashable = "image", channel: int | None = None) -> None:
        super().__init__(keys)
        self.channel = channel

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = load_image(d[key], channel=self.channel)
        d[ORIGINAL_KEY] = d[self.keys[0]]
        return d


def _traced(image: MetaTensor) -> bool:
    return bool(getattr(image, "applied_operations", None))


class InvertBaldSamOutputs:
    """Postprocessing: the network's label and maps (on the transformed image) back on the loaded image's grid
    through ``preprocessing``'s inverse (MONAI's ``Invertd``: nearest neighbour for the label, linear for the maps),
    and the next click mapped through world coordinates. Without spatial transforms nothing changes.

    Args:
        preprocessing: the bundle's preprocessing ``Compose`` (``@preprocessing``).
        image_key: the key of the transformed image in the batch.
    """

    def __init__(self, preprocessing: Compose, image_key: str = "image") -> None:
        self.preprocessing = preprocessing
        self.image_key = image_key

    def __call__(self, output: dict[str, Any]) -> dict[str, Any]:
        images, preds = output[self.image_key], output["pred"]
        originals = [pred.get(ORIGINAL_KEY, image) for image, pred in zip(images, preds)]
        output["pred"] = [self._invert(image, original, pred)
                          for image, original, pred in zip(images, originals, preds)]
        output[self.image_key] = originals  # the outputs are written in the loaded image's geometry
        return output

    def _invert(self, image: MetaTensor, original: MetaTensor, pred: Mapping[str, Any]) -> dict[str, Any]:
        if not _traced(image):
            return dict(pred)
        inverted = dict(pred)
        for name in INVERTED_MAPS:
            values = MetaTensor(torch.as_tensor(np.asarray(pred[name], dtype=np.float32))[None],
                                affine=image.affine.clone(), meta=dict(image.meta))
            values.applied_operations = list(image.applied_operations)
            item = {self.image_key: image, name: values}
            back = Invertd(keys=name, transform=self.preprocessing, orig_keys=self.image_key,
                           nearest_interp=name == "mask")(item)[name]
            array = back[0].detach().cpu().numpy()
            inverted[name] = (array > 0.5).astype(np.uint8) if name == "mask" else array
            if tuple(array.shape) != tuple(original.shape[1:]):
                raise ValueError(f"the inverse of the preprocessing gave {name} of shape {array.shape}, the loaded "
                                 f"image has {tuple(original.shape[1:])}: use invertible MONAI transforms")
        inverted["next_click"] = _click_back(pred["next_click"], image, original)
        return inverted


def _click_back(click: Mapping[str, Any], image: MetaTensor, original: MetaTensor) -> dict[str, Any]:
    """The suggested click (indices of the transformed image) as indices of the loaded image; on a volume its
    slice along the loaded image's through-plane axis."""
    point = click.get("point")
    if not isinstance(point, Mapping):
        return dict(click)
    names: Sequence[str] = ("x", "y") if image.ndim == 3 else ("i", "j", "k")
    moved = map_points([[point[n] for n in names]], image, original)[0]
    moved = np.clip(np.rint(moved), 0, np.asarray(original.shape[1:]) - 1).astype(int)
    back = {**click, "point": {n: int(v) for n, v in zip(names, moved)}}
    if "axis" in click:
        axis = resolve_axis(None, original.affine)
        back.update({"axis": int(axis), "slice": int(moved[axis])})
    return back
