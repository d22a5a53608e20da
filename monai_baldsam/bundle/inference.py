"""The pieces a bundle's ``inference.json`` wires into MONAI's ``SupervisedEvaluator`` through ``_target_``.

One inference item is an image with the user's prompts: ``{"image": path, "box": [...], "foreground": [[...]],
"background": [[...]]}`` (pixel ``(x, y)`` for 2D, voxel ``(i, j, k)`` for 3D, as ``baldsam segment`` takes them).
Images differ in size, so a batch is kept as lists (:func:`prompted_collate`, :class:`PreparePromptedBatch`)
instead of stacked tensors. :class:`BaldSamNetwork` segments an image and proposes the next click by BALD;
:class:`PromptedInferer` runs it on every item of a batch; :class:`SaveBaldSamOutputs` writes the label, the
mutual-information map and a JSON report per image, atomically and without overwriting.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.inferers import Inferer

from monai_baldsam.bundle.heads import resolve_bundle_head
from monai_baldsam.bundle.pipeline import ORIGINAL_KEY
from monai_baldsam.io import write_mask, write_probability_map
from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.io.formats import full_suffix
from monai_baldsam.segmentation import Segmenter
from monai_baldsam.suggestion import BITS_PER_NAT, suggest_2d, suggest_session
from monai_baldsam.transforms.prompts import UserPrompts

__all__ = ["inference_items", "prompted_collate", "PreparePromptedBatch", "BaldSamNetwork",
           "PromptedInferer", "SaveBaldSamOutputs"]

PathLike = str | os.PathLike


def _resolve(path: str, dataset_dir: PathLike | None) -> Path:
    found = Path(path).expanduser()
    if not found.is_absolute() and dataset_dir:
        found = Path(dataset_dir).expanduser() / found
    if not found.exists():
        raise FileNotFoundError(f"input image {found} does not exist: check --image / the datalist and --dataset_dir")
    return found


def _points(value: Any, what: str) -> list[list[float]]:
    if value in (None, ""):
        return []
    points = json.loads(value) if isinstance(value, str) else value
    if not isinstance(points, (list, tuple)) or any(not isinstance(p, (list, tuple)) for p in points):
        raise ValueError(f"{what} must be a list of points such as [[x, y]] or [[i, j, k]], got {value!r}")
    return [list(p) for p in points]


def _prompts(entry: Mapping[str, Any]) -> UserPrompts:
    box = entry.get("box")
    box = json.loads(box) if isinstance(box, str) and box else (box or None)
    prompts = UserPrompts(box=box, foreground=_points(entry.get("foreground"), "foreground"),
                          background=_points(entry.get("background"), "background"))
    if prompts.is_empty():
        raise ValueError(f"image {entry.get('image')!r} has no prompt: give a box and/or foreground clicks")
    return prompts


def inference_items(dataset_dir: PathLike | None = None, datalist: PathLike | None = None, image: str | None = None,
                    box: Any = None, foreground: Any = None, background: Any = None,
                    datalist_key: str = "testing") -> list[dict[str, Any]]:
    """The items to segment: one ``image`` with ``box``/``foreground``/``background`` given on the command line, or
    the ``datalist_key`` list of a datalist JSON whose entries carry the same keys. Relative paths are relative to
    ``dataset_dir``. Each item is ``{"image": Path, "prompts": UserPrompts}``."""
    if bool(image) == bool(datalist):
        raise ValueError("give either --image PATH (with --box/--foreground/--background) or --datalist JSON")
    if image:
        entries = [{"image": image, "box": box, "foreground": foreground, "background": background}]
    else:
        path = Path(datalist).expanduser()  # type: ignore[arg-type]
        if not path.is_absolute() and dataset_dir and not path.exists():
            path = Path(dataset_dir).expanduser() / path
        try:
            content = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read the datalist {path}: {err}") from None
        entries = content.get(datalist_key) if isinstance(content, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"datalist {path} needs a non-empty {datalist_key!r} list of "
                             "{'image': ..., 'box': [...], 'foreground': [...]} entries")
    items = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            raise ValueError(f"each inference entry needs an 'image' path, got {entry!r}")
        items.append({"image": _resolve(entry["image"], dataset_dir), "prompts": _prompts(entry)})
    return items


def prompted_collate(batch: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """A batch as lists per key (images of different sizes are not stacked)."""
    return {key: [item[key] for item in batch] for key in batch[0]}


class PreparePromptedBatch:
    """``prepare_batch`` of the evaluator: the image list as inputs, no target, the prompts as keyword argument."""

    def __call__(self, batchdata: Mapping[str, Any], device: str | torch.device | None = None,
                 non_blocking: bool = False, **kwargs: Any) -> tuple[Any, None, tuple, dict[str, Any]]:
        originals = batchdata.get(ORIGINAL_KEY, batchdata["image"])
        return batchdata["image"], None, (), {"prompts": batchdata["prompts"], "originals": originals}


class BaldSamNetwork(torch.nn.Module):
    """SAM (frozen backbone) + the bundle's Bayesian head: image and prompts -> label, BALD maps, next click.

    Args:
        backbone: registry name of the backbone (``lite_medsam``).
        head: a shipped head's registry name (the bundle's, e.g. ``polyp``) or a head file.
        head_sha256: the SHA-256 the head file must have (the bundle pins its head's); ``None`` or ``"card"``: the card's.
        device: where the models run.
        footprint, gate: the BALD click rule (defaults: the package's tuned values).
        axis: slicing axis of volumes (``None``: the through-plane axis).
        usam: UncertainSAM heads (name or file) whose predicted IoU and gaps of the prompted slices' masks go into
            the output; ``None``: none.
    """

    def __init__(self, backbone: str = "lite_medsam", head: str | None = None, device: str | torch.device = "cpu",
                 footprint: float | None = None, gate: float | None = None, axis: int | None = None,
                 usam: str | None = "general", head_sha256: str | None = None) -> None:
        super().__init__()
        found = resolve_bundle_head(head, head_sha256)
        self.segmenter = Segmenter(backbone, device=device, head=str(head), head_sha256=found.sha256, axis=axis)
        self.footprint, self.gate = footprint, gate
        self.usam = usam

    def forward(self, image: MetaTensor, prompts: UserPrompts) -> dict[str, Any]:
        start = time.perf_counter()
        quality: dict[str, Any] | None = None
        if image.ndim == 4:  # the session judges each prompted slice from the decode that segments it
            session = self.segmenter.session(image, usam=self.usam or None)
            session.update(prompts, propagate=True)
            found = suggest_session(session, self.footprint, self.gate)
            if self.usam:
                quality = {str(k): q.to_dict() for k, q in session.anchor_quality().items()}
        elif self.usam:  # one decoder call gives the head's prediction and, from its tokens, the mask's quality
            assessed = self.segmenter.assess(image, prompts, self.usam)[0]
            found = suggest_2d(self.segmenter, image, prompts, self.footprint, self.gate, output=assessed.output)
            quality = assessed.quality.to_dict()
        else:
            found = suggest_2d(self.segmenter, image, prompts, self.footprint, self.gate)
        return {"mask": found.maps["mask"], "mutual_information": found.maps["mutual_information"],
                "probability": found.maps["probability"], "next_click": found.to_dict(), "quality": quality,
                "seconds": round(time.perf_counter() - start, 3)}


class PromptedInferer(Inferer):
    """Runs the network on every image of a batch with its own prompts."""

    def __call__(self, inputs: Sequence[MetaTensor], network: Any, prompts: Sequence[UserPrompts],
                 *args: Any, originals: Sequence[MetaTensor] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Each image's outputs, with the image as loaded (``originals``, before any spatial transform of the
        preprocessing) under ``original`` for the postprocessing."""
        if len(inputs) != len(prompts):
            raise ValueError(f"{len(inputs)} images but {len(prompts)} prompt sets in the batch")
        originals = list(inputs) if originals is None else list(originals)
        return [{**network(image, prompt), ORIGINAL_KEY: original}
                for image, prompt, original in zip(inputs, prompts, originals)]


def _stem(image: MetaTensor, index: int) -> str:
    name = Path(str(image.meta.get("filename_or_obj", f"image_{index}"))).name
    suffix = full_suffix(name)
    return name[: -len(suffix)] if suffix else name


class SaveBaldSamOutputs:
    """Postprocessing: writes ``<output_dir>/<image stem>/label.png|.nii.gz`` (the input's geometry),
    ``uncertainty.png|.nii.gz`` (mutual information in bits, clipped to [0, 1]) and ``result.json`` (the next click,
    the prompts, timings). Existing files are refused unless ``overwrite``; every write is atomic."""

    def __init__(self, output_dir: PathLike, overwrite: bool = False, write_uncertainty: bool = True) -> None:
        if not str(output_dir):
            raise ValueError("give the output folder: --output_dir DIR")
        self.output_dir = Path(output_dir).expanduser()
        self.overwrite = overwrite
        self.write_uncertainty = write_uncertainty

    def __call__(self, output: dict[str, Any]) -> dict[str, Any]:
        images, preds = output["image"], output["pred"]
        written = []
        for index, (image, pred) in enumerate(zip(images, preds)):
            folder = self.output_dir / _stem(image, index)
            folder.mkdir(parents=True, exist_ok=True)
            suffix = ".png" if image.ndim == 3 else ".nii.gz"
            files = {"label": str(write_mask(np.asarray(pred["mask"])[None], image, folder / f"label{suffix}",
                                             overwrite=self.overwrite))}
            if self.write_uncertainty:
                bits = (np.asarray(pred["mutual_information"]) * BITS_PER_NAT).clip(0.0, 1.0)
                files["uncertainty"] = str(write_probability_map(bits[None], image, folder / f"uncertainty{suffix}",
                                                                 overwrite=self.overwrite))
            report = {"image": str(image.meta.get("filename_or_obj")), "shape": list(image.shape[1:]),
                      "next_click": pred["next_click"], "quality": pred.get("quality"), "files": files,
                      "seconds": pred["seconds"]}
            atomic_write_text(folder / "result.json", json.dumps(report, indent=1) + "\n", overwrite=self.overwrite)
            written.append(report)
        output["written"] = written
        return output
