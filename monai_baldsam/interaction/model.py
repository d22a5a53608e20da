"""The model seen by the click simulator: prompts in, a prediction (and optional uncertainty maps) out.

:class:`ClickModel` is a small protocol with two steps, as SAM's own split: :meth:`ClickModel.encode` once per
image, :meth:`ClickModel.predict` once per interaction against the stored embedding. :class:`SamClickModel`, the
default, wraps :class:`~monai_baldsam.sam.predictor.SamPredictor` (the plain SAM decoder). A Bayesian prediction
head implements the same protocol and returns per-pixel uncertainty maps in :attr:`ModelOutput.extras`
(e.g. ``"mutual_information"``, ``"predictive_entropy"``), which model-driven click policies read.

Frames: images are SAM images ``1 x 3 x H x W`` in [0, 1]; clicks are ``slice_xy`` ``(x, y)`` pixels and boxes
``(x0, y0, x1, y1)`` in the same frame; maps are ``(H, W)`` at slice size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable

import numpy as np
import torch

from monai_baldsam.sam.backbones import DEFAULT_BACKBONE, load_backbone
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.encoder_runtime import EncoderRuntime, make_encoder
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding

__all__ = ["ModelOutput", "ClickModel", "prompt_tensors", "SamClickModel", "load_click_model"]


@dataclass(frozen=True)
class ModelOutput:
    """One prediction for one image.

    Attributes:
        probability: ``(H, W)`` float32 foreground probability at slice size.
        mask: ``(H, W)`` bool, the predicted segmentation (the model's own threshold).
        low_res_logits: ``(1, 1, h, w)`` logits to feed back as the next ``mask_input`` (SAM's 256 x 256).
        extras: name -> ``(H, W)`` float map the model adds (uncertainty maps of a Bayesian head); may be empty.
    """

    probability: np.ndarray
    mask: np.ndarray
    low_res_logits: torch.Tensor
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class ClickModel(Protocol):
    """What the simulator needs from a model. ``signature`` names the model and its weights for reports."""

    @property
    def signature(self) -> str: ...

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        """Encode one SAM image ``1 x 3 x H x W`` in [0, 1] (the expensive step, once per image)."""
        ...

    def predict(self, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None, point_labels: np.ndarray | None,
                box_xy: np.ndarray | None, mask_input: torch.Tensor | None) -> ModelOutput:
        """Decode one prompt against ``embedding``.

        Args:
            embedding: from :meth:`encode`.
            point_coords_xy: ``N x 2`` clicks ``(x, y)`` in slice pixels, or None.
            point_labels: ``N`` labels, 1 foreground, 0 background.
            box_xy: ``(x0, y0, x1, y1)`` in slice pixels, or None.
            mask_input: ``1 x 1 x h x w`` low-resolution logits of the previous prediction, or None.
        """
        ...


def prompt_tensors(predictor: SamPredictor, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None,
                   point_labels: np.ndarray | None, box_xy: np.ndarray | None
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """A click model's prompt, validated against the slice and mapped to batched ``sam_xy`` tensors.

    An empty click list counts as no clicks; a prompt without clicks and box is a ``ValueError``.
    """
    if point_coords_xy is not None and len(point_coords_xy) == 0:
        point_coords_xy = point_labels = None
    if point_coords_xy is None and box_xy is None:
        raise ValueError("a prompt needs at least a click or a box")
    return predictor.prompts_to_torch(point_coords_xy, point_labels, box_xy, embedding.original_hw)


class SamClickModel:
    """The plain SAM decoder as a :class:`ClickModel`: one mask per prompt, no extra maps.

    Args:
        predictor: a :class:`SamPredictor`; embeddings go through its cache (keyed by the image's content hash),
            so an image that appears twice in a data set (one picture per structure) is encoded once.
        multimask_first_click: for a prompt of one click and nothing else, ask SAM for three masks and keep the one
            with the highest predicted IoU (SAM's advice for ambiguous prompts). Off by default: the protocol
            then decodes every interaction the same way.
    """

    def __init__(self, predictor: SamPredictor, multimask_first_click: bool = False) -> None:
        self.predictor = predictor
        self.multimask_first_click = multimask_first_click

    @property
    def signature(self) -> str:
        return self.predictor.backbone.signature

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        return self.predictor.encode_image(image)

    def predict(self, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None, point_labels: np.ndarray | None,
                box_xy: np.ndarray | None, mask_input: torch.Tensor | None) -> ModelOutput:
        coords, labels, box = prompt_tensors(self.predictor, embedding, point_coords_xy, point_labels, box_xy)
        multimask = self.multimask_first_click and box is None and mask_input is None and coords is not None \
            and coords.shape[1] == 1
        out = self.predictor.predict_torch(coords, labels, box, mask_input, multimask, embedding=embedding)
        best = int(torch.argmax(out.iou[0])) if multimask else 0
        logits = out.logits[0, best].float().cpu()
        return ModelOutput(probability=torch.sigmoid(logits).numpy(), mask=(logits > 0).numpy(),
                           low_res_logits=out.low_res_logits[:, best:best + 1].detach())


def load_click_model(backbone: str = DEFAULT_BACKBONE, checkpoint: str | None = None,
                     checkpoint_sha256: str | None = None, device: str | torch.device = "cpu",
                     cache_items: int = 64, decoder: str = "original",
                     encoder: EncoderRuntime | str = EncoderRuntime.TORCH) -> SamClickModel:
    """The plain click model: backbone ``backbone`` (verified checkpoint) with decoder ``decoder`` (``original``,
    ``default`` or a shipped name or file, see :mod:`monai_baldsam.sam.decoders`), its image encoder run by
    ``encoder``. A decoder trained for clicks answers a single click with SAM's three masks and keeps the one of
    highest predicted IoU, as it was trained.

    ``cache_items`` bounds the embedding cache (a LiteMedSAM embedding is 4 MiB).
    """
    model = load_backbone(backbone, checkpoint=checkpoint, device=device, checkpoint_sha256=checkpoint_sha256,
                          decoder=decoder)
    predictor = SamPredictor(model, EmbeddingCache(max_items=cache_items), encoder=make_encoder(model, encoder))
    return SamClickModel(predictor, multimask_first_click=model.decoder_name != "original")
