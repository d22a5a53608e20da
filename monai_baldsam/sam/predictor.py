"""Encode a slice once, prompt it many times: a predictor in the spirit of ``segment_anything.SamPredictor``.

Frames: images handed to the predictor are in SAM's orientation, ``H x W (x C)`` (rows, columns). Prompts for
:meth:`SamPredictor.predict` are in slice pixels ``slice_xy`` = ``(x, y)`` = (column, row); the batched
:meth:`SamPredictor.predict_torch` takes them already mapped to ``sam_xy`` (see
:func:`monai_baldsam.sam.geometry.slice_xy_to_sam_xy`). Intensities are float in [0, 1] (window first, see
:mod:`monai_baldsam.transforms.intensity`) or uint8 (divided by 255).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from monai_baldsam.sam.embedding_cache import EmbeddingCache, EmbeddingKey, content_hash
from monai_baldsam.sam.encoder_runtime import ImageEncoderRunner, TorchEncoder
from monai_baldsam.sam.geometry import (
    pad_bottom_right,
    postprocess_low_res_logits,
    resize_longest_side,
    slice_boxes_to_sam_boxes,
    slice_xy_to_sam_xy,
)
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.prompt_checks import check_box, check_points_inside

__all__ = ["SliceEmbedding", "Prediction", "SamPredictor", "to_sam_image"]


@dataclass(frozen=True)
class SliceEmbedding:
    """An encoded slice: ``features`` ``(1, D, h, w)`` and the slice size ``original_hw`` = (H, W)."""

    features: torch.Tensor
    original_hw: tuple[int, int]


@dataclass(frozen=True)
class Prediction:
    """Decoder output for ``B`` prompts: ``logits`` ``(B, M, H, W)`` at slice size, ``iou`` ``(B, M)`` (SAM's
    predicted IoU) and ``low_res_logits`` ``(B, M, h, w)`` to feed back as the next ``mask_input``."""

    logits: torch.Tensor
    iou: torch.Tensor
    low_res_logits: torch.Tensor

    @property
    def masks(self) -> torch.Tensor:
        return self.logits > 0.0


def to_sam_image(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``H x W``, ``H x W x C`` (numpy convention) -> float ``1 x 3 x H x W`` in [0, 1].

    uint8 is divided by 255; float input must already be in [0, 1] (window it first). One channel is repeated
    to three; an alpha channel is dropped.
    """
    tensor = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if tensor.ndim == 2:
        tensor = tensor[..., None]
    if tensor.ndim != 3:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {tuple(tensor.shape)}")
    channels = tensor.shape[-1]
    if channels == 4:
        tensor = tensor[..., :3]
    elif channels == 1:
        tensor = tensor.expand(-1, -1, 3)
    elif channels != 3:
        raise ValueError(f"expected 1, 3 or 4 channels in the last dimension, got {channels} (shape {tuple(tensor.shape)})")
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    else:
        tensor = tensor.float()
        lo, hi = float(tensor.min()), float(tensor.max())
        if lo < -1e-4 or hi > 1.0 + 1e-4:
            raise ValueError(
                f"float image intensities must be in [0, 1], got [{lo:.3g}, {hi:.3g}]: window the image first "
                "(monai_baldsam.transforms.WindowIntensity) or pass uint8"
            )
    return tensor.permute(2, 0, 1)[None].contiguous()


class SamPredictor:
    """Encodes slices with a frozen :class:`SamBackbone` and decodes prompts against the stored embedding.

    Args:
        backbone: the loaded backbone (see :func:`monai_baldsam.sam.backbones.load_backbone`).
        cache: optional :class:`EmbeddingCache`; with it, :meth:`encode_cached` never re-encodes a known slice.
        encoder: how the image encoder runs (:func:`~monai_baldsam.sam.encoder_runtime.make_encoder`); default the
            backbone's own eager PyTorch encoder.
    """

    def __init__(self, backbone: SamBackbone, cache: EmbeddingCache | None = None,
                 encoder: ImageEncoderRunner | None = None) -> None:
        self.backbone = backbone
        self.cache = cache
        self.encoder: ImageEncoderRunner = encoder if encoder is not None else TorchEncoder(backbone)
        self.embedding: SliceEmbedding | None = None
        #: images the encoder ran on and the seconds it took, since the predictor was made (what a caller's wait
        #: is made of: reports and benchmarks read them)
        self.encoded_images = 0
        self.encode_seconds = 0.0

    @property
    def model_name(self) -> str:
        """The backbone's name, with the encoder runtime when it is not the reference (cache keys use it: the
        embeddings of two runtimes differ slightly)."""
        tag = self.encoder.tag
        return self.backbone.name if tag == TorchEncoder.tag else f"{self.backbone.name}+{tag}"

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def img_size(self) -> int:
        return self.backbone.img_size

    # ----------------------------------------------------------------- encoding (expensive, once per slice)
    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` in [0, 1] -> the encoder's ``B x 3 x S x S`` input: resize, normalise, pad."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        images = images.to(self.device, torch.float32)
        resized = resize_longest_side(images, self.img_size)
        normalised = (resized * 255.0 - self.backbone.pixel_mean) / self.backbone.pixel_std
        return pad_bottom_right(normalised, self.img_size)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        """Encode ``B x 3 x H x W`` images (all of one size) in [0, 1] to ``B x D x h x w`` features, in batches."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        start_time = time.perf_counter()
        outputs = [self.encoder(self.prepare(images[start:start + batch_size]))
                   for start in range(0, images.shape[0], batch_size)]
        self.encode_seconds += time.perf_counter() - start_time
        self.encoded_images += int(images.shape[0])
        return torch.cat(outputs, dim=0)

    def encode_cached(self, images: torch.Tensor, keys: Sequence[EmbeddingKey], batch_size: int = 8) -> torch.Tensor:
        """Like :meth:`encode`, but looks each slice up in the cache first and encodes only the missing ones."""
        if len(keys) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(keys)} cache keys")
        if self.cache is None:
            return self.encode(images, batch_size)
        found = [self.cache.get(key) for key in keys]
        missing = [n for n, value in enumerate(found) if value is None]
        if missing:
            fresh = self.encode(images[missing], batch_size)
            for n, feature in zip(missing, fresh):
                feature = feature[None]
                self.cache.put(keys[n], feature)
                found[n] = feature
        return torch.cat([f.to(self.device) for f in found], dim=0)  # type: ignore[union-attr]

    def encode_image(self, image: torch.Tensor) -> SliceEmbedding:
        """Encode one SAM image ``1 x 3 x H x W`` in [0, 1] through the cache, keyed by its content hash.

        The same pixels are never encoded twice while the cache holds them (e.g. one picture per structure).
        """
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"expected one SAM image of shape (1, 3, H, W), got {tuple(image.shape)}")
        key = EmbeddingKey(content_hash(image), -1, 0, self.model_name, self.backbone.checkpoint_sha256 or "random")
        return SliceEmbedding(self.encode_cached(image, [key]), (int(image.shape[-2]), int(image.shape[-1])))

    def set_image(self, image: np.ndarray | torch.Tensor, cache_key: EmbeddingKey | None = None) -> SliceEmbedding:
        """Encode one ``H x W (x C)`` image (uint8, or float in [0, 1]) and keep it for :meth:`predict`."""
        batch = to_sam_image(image)
        if cache_key is not None:
            features = self.encode_cached(batch, [cache_key])
        else:
            features = self.encode(batch)
        self.embedding = SliceEmbedding(features, (int(batch.shape[-2]), int(batch.shape[-1])))
        return self.embedding

    def set_embedding(self, embedding: SliceEmbedding) -> None:
        """Use an embedding computed elsewhere (e.g. by batched volume encoding)."""
        self.embedding = embedding

    # ----------------------------------------------------------------- decoding (cheap, many times per slice)
    @torch.no_grad()
    def predict_torch(self, point_coords: torch.Tensor | None = None, point_labels: torch.Tensor | None = None,
                      boxes: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
                      multimask_output: bool = False, embedding: SliceEmbedding | None = None) -> Prediction:
        """Decode ``B`` prompts against one embedding (the stored one unless ``embedding`` is given); prompts with
        clicks go to the backbone's click decoder when one is loaded (:meth:`SamBackbone.decoder_modules`).

        Args:
            point_coords: ``B x N x 2`` points in ``sam_xy`` (SAM's resized input frame).
            point_labels: ``B x N``: 1 foreground, 0 background, -1 padding (ignored).
            boxes: ``B x 4`` boxes ``(x0, y0, x1, y1)`` in ``sam_xy``.
            mask_input: ``B x 1 x h x w`` low-resolution logits from a previous prediction.
            multimask_output: three masks per prompt instead of one.
        """
        embedding = embedding or self.embedding
        if embedding is None:
            raise RuntimeError("no image is set: call set_image() or pass an embedding first")
        if (point_coords is None) != (point_labels is None):
            raise ValueError("point_coords and point_labels must be given together")
        points = None
        if point_coords is not None:
            points = (point_coords.to(self.device, torch.float32), point_labels.to(self.device, torch.int64))
        if boxes is not None:
            boxes = boxes.to(self.device, torch.float32)
        if mask_input is not None:
            mask_input = mask_input.to(self.device, torch.float32)
        clicks = points is not None and bool((points[1] >= 0).any())
        pe, decoder = self.backbone.decoder_modules(clicks)
        if clicks and self.backbone.click_mask_decoder is not None and not self.backbone.click_mask_feedback:
            mask_input = None  # this click decoder does better without the previous logits (its card says so)
        sparse, dense = pe(points=points, boxes=boxes, masks=mask_input)
        low_res, iou = decoder(
            image_embeddings=embedding.features.to(self.device), image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask_output,
        )
        logits = postprocess_low_res_logits(low_res, self.img_size, embedding.original_hw)
        return Prediction(logits=logits, iou=iou, low_res_logits=low_res)

    def prompts_to_torch(self, point_coords: np.ndarray | None, point_labels: np.ndarray | None,
                         box: np.ndarray | None, original_hw: tuple[int, int]
                         ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Validate ``slice_xy`` prompts against the slice size and map them to batched ``sam_xy`` tensors."""
        height, width = original_hw
        coords_t = labels_t = box_t = None
        if point_coords is not None:
            coords = check_points_inside(point_coords, (width, height), what="click (x, y)")
            labels = np.asarray(point_labels if point_labels is not None else np.ones(len(coords)), dtype=np.int64)
            if labels.shape != (len(coords),):
                raise ValueError(f"got {len(coords)} points but point_labels of shape {labels.shape}")
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(f"point labels must be 1 (foreground) or 0 (background), got {sorted(set(labels.tolist()))}")
            coords_t = torch.as_tensor(slice_xy_to_sam_xy(coords, original_hw, self.img_size), dtype=torch.float32)[None]
            labels_t = torch.as_tensor(labels)[None]
        if box is not None:
            box_arr = check_box(np.asarray(box, dtype=np.float64).reshape(4), (width, height))
            box_t = torch.as_tensor(slice_boxes_to_sam_boxes(box_arr, original_hw, self.img_size), dtype=torch.float32)
        return coords_t, labels_t, box_t

    def predict(self, point_coords: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None, multimask_output: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """numpy convenience for one prompt on the stored image.

        Args:
            point_coords: ``N x 2`` array of ``(x, y)`` in slice pixels.
            point_labels: ``N`` labels, 1 foreground, 0 background.
            box: ``(x0, y0, x1, y1)`` in slice pixels.
            mask_input: ``1 x h x w`` low-resolution logits from a previous call.
        Returns:
            ``(masks M x H x W bool, iou M, low_res_logits M x h x w)``.
        """
        if self.embedding is None:
            raise RuntimeError("no image is set: call set_image() first")
        if point_coords is None and box is None and mask_input is None:
            raise ValueError("give at least one prompt: points, a box or a mask")
        coords_t, labels_t, box_t = self.prompts_to_torch(point_coords, point_labels, box, self.embedding.original_hw)
        mask_t = None if mask_input is None else torch.as_tensor(np.asarray(mask_input), dtype=torch.float32)[None]
        out = self.predict_torch(coords_t, labels_t, box_t, mask_t, multimask_output)
        return (out.masks[0].cpu().numpy(), out.iou[0].cpu().numpy(), out.low_res_logits[0].cpu().numpy())
