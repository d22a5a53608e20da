"""A MONAI ``Inferer`` that runs a SAM backbone slice by slice over a 2D image or a 3D volume.

Input is a channel-first ``MetaTensor`` with intensities already windowed to [0, 1]: ``(C, X, Y)`` for a 2D
image or ``(C, I, J, K)`` for a volume. A slice along ``axis`` keeps the two other spatial axes in increasing
order, ``(a, b)``; its pixel ``slice_xy = (x, y)`` is (index along ``a``, index along ``b``), and SAM sees its
transpose (rows = ``b``, columns = ``a``). Slices are encoded in batches through the predictor's embedding
cache; prompts are decoded per slice; the label comes back with the input's shape, affine and meta.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from monai.data import MetaTensor
from monai.inferers import Inferer

from monai_baldsam.sam.embedding_cache import EmbeddingKey, content_hash
from monai_baldsam.sam.predictor import Prediction, SamPredictor, SliceEmbedding
from monai_baldsam.transforms.prompts import SlicePrompt
from monai_baldsam.transforms.sam_preprocess import sam_hw_to_slice, slice_to_sam_hw
from monai_baldsam.transforms.slicing import extract_slice

__all__ = ["SliceWiseSamInferer"]


class SliceWiseSamInferer(Inferer):
    """Slice-wise SAM inference.

    Args:
        axis: spatial axis (0, 1 or 2) along which a volume is sliced; ignored for 2D input.
        batch_size: slices per encoder batch.
        multimask_output: ask SAM for three masks and keep the one with the highest predicted IoU.
        threshold: logit threshold for the label (0 = probability 0.5).
    """

    def __init__(self, axis: int = 2, batch_size: int = 8, multimask_output: bool = False,
                 threshold: float = 0.0) -> None:
        super().__init__()
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2 (a spatial axis of the volume), got {axis}")
        self.axis = axis
        self.batch_size = batch_size
        self.multimask_output = multimask_output
        self.threshold = threshold

    # ----------------------------------------------------------------- geometry of slices
    @staticmethod
    def spatial_ndim(inputs: torch.Tensor) -> int:
        if inputs.ndim not in (3, 4):
            raise ValueError(
                f"expected a channel-first 2D image (C, X, Y) or 3D volume (C, I, J, K), got shape {tuple(inputs.shape)}"
            )
        return inputs.ndim - 1

    def num_slices(self, inputs: torch.Tensor) -> int:
        return 1 if self.spatial_ndim(inputs) == 2 else int(inputs.shape[1 + self.axis])

    def slice_hw(self, inputs: torch.Tensor) -> tuple[int, int]:
        """SAM's (H, W) of one slice: (size along ``b``, size along ``a``)."""
        spatial = list(inputs.shape[1:])
        if len(spatial) == 3:
            del spatial[self.axis]
        return int(spatial[1]), int(spatial[0])

    def sam_images(self, inputs: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
        """Slices ``indices`` as SAM images ``B x 3 x H x W`` (grey repeated to three channels), unresized: the
        slicing and frame change of :func:`~monai_baldsam.transforms.slicing.extract_slice` and
        :func:`~monai_baldsam.transforms.sam_preprocess.slice_to_sam_hw` (the predictor resizes and pads)."""
        data = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        if self.spatial_ndim(data) == 2:
            return slice_to_sam_hw(data)[None]
        return torch.stack([slice_to_sam_hw(extract_slice(data, self.axis, int(i))) for i in indices])

    # ----------------------------------------------------------------- encoding
    def encode(self, inputs: torch.Tensor, network: SamPredictor, indices: Sequence[int] | None = None,
               image_hash: str | None = None) -> dict[int, SliceEmbedding]:
        """Embeddings of slices ``indices`` (default: all), batched and looked up in the predictor's cache."""
        indices = list(range(self.num_slices(inputs))) if indices is None else [int(i) for i in indices]
        image_hash = image_hash or content_hash(inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs)
        backbone = network.backbone
        axis = self.axis if self.spatial_ndim(inputs) == 3 else -1
        keys = [EmbeddingKey(image_hash, axis, i, network.model_name, backbone.checkpoint_sha256 or "random")
                for i in indices]
        hw = self.slice_hw(inputs)
        out: dict[int, SliceEmbedding] = {}
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start:start + self.batch_size]
            feats = network.encode_cached(self.sam_images(inputs, chunk), keys[start:start + self.batch_size],
                                          self.batch_size)
            for i, feat in zip(chunk, feats):
                out[i] = SliceEmbedding(feat[None], hw)
        return out

    # ----------------------------------------------------------------- decoding
    def decode(self, network: SamPredictor, embedding: SliceEmbedding, prompt: SlicePrompt) -> Prediction:
        """Decode one slice's prompt; with ``multimask_output`` keeps the mask SAM rates best. A decoder trained for
        clicks (not the checkpoint's original one) answers a single click alone that way too, as it was trained
        (SAM's rule for an ambiguous prompt)."""
        coords, labels, box = network.prompts_to_torch(prompt.points_xy, prompt.labels, prompt.box_xyxy,
                                                        embedding.original_hw)
        mask = None if prompt.mask_logits is None else prompt.mask_logits.reshape(1, 1, *prompt.mask_logits.shape[-2:])
        single_click = (box is None and mask is None and coords is not None and coords.shape[1] == 1
                        and network.backbone.decoder_name != "original")
        multimask = self.multimask_output or single_click
        pred = network.predict_torch(coords, labels, box, mask, multimask, embedding=embedding)
        if multimask:
            best = int(torch.argmax(pred.iou[0]))
            pred = Prediction(pred.logits[:, best:best + 1], pred.iou[:, best:best + 1],
                              pred.low_res_logits[:, best:best + 1])
        return pred

    def __call__(self, inputs: torch.Tensor, network: SamPredictor, *args: Any,
                 prompts: Mapping[int, SlicePrompt] | SlicePrompt | None = None, return_logits: bool = False,
                 **kwargs: Any) -> MetaTensor:
        """Segment every prompted slice of ``inputs`` and return a ``(1, *spatial)`` label.

        Args:
            inputs: windowed image ``(C, X, Y)`` or volume ``(C, I, J, K)`` in [0, 1].
            network: the :class:`SamPredictor` to run.
            prompts: slice index -> :class:`SlicePrompt` (a single prompt for 2D input).
            return_logits: return float logits (``-inf`` on unprompted slices) instead of a uint8 label.
        """
        if prompts is None:
            raise ValueError("no prompts given: pass prompts={slice_index: SlicePrompt(...)} (or one SlicePrompt for 2D)")
        if isinstance(prompts, SlicePrompt):
            prompts = {0: prompts}
        prompts = {int(i): p for i, p in prompts.items() if not p.is_empty()}
        if not prompts:
            raise ValueError("every prompt is empty: give at least a box, a click or a mask")
        ndim = self.spatial_ndim(inputs)
        if ndim == 2 and set(prompts) != {0}:
            raise ValueError(f"a 2D image has one slice (index 0), got prompts for slices {sorted(prompts)}")
        embeddings = self.encode(inputs, network, sorted(prompts))
        spatial = tuple(inputs.shape[1:])
        logits = torch.full((1, *spatial), float("-inf"), dtype=torch.float32)
        for index, prompt in prompts.items():
            slice_logits = self.decode(network, embeddings[index], prompt).logits[0, 0].cpu()  # (H, W)
            slice_ab = sam_hw_to_slice(slice_logits)
            if ndim == 2:
                logits[0] = slice_ab
            else:
                torch.movedim(logits[0], self.axis, 0)[index] = slice_ab
        result = logits if return_logits else (logits > self.threshold).to(torch.uint8)
        if isinstance(inputs, MetaTensor):
            meta = {k: v for k, v in inputs.meta.items() if k != "affine"}
            return MetaTensor(result, affine=inputs.affine.clone(), meta=meta)
        return MetaTensor(result)
