"""What the prediction head sees: the frozen decoder's answer to the current prompt plus click and mask encodings.

Computed from a stored image embedding, never by running the image encoder again:

* the frozen prompt encoder and mask decoder run on the prompt (box if any; clicks too, see
  :class:`DecoderClicks`), with SAM's own ``predict_masks`` re-implemented on the same weights so that the decoder's
  *upscaled embedding* (``MaskDecoder.output_upscaling``'s output, ``transformer_dim / 8`` channels on the
  ``L x L`` low-resolution grid: 32 x 256 x 256 for LiteMedSAM) comes out together with SAM's mask logits (first
  mask token, as ``multimask_output=False``); one decoder call for a whole batch of prompts;
* the previous mask logits (mask feedback; zeros and ``has_previous = False`` at the first interaction);
* RITM click maps on the low-resolution grid (:func:`monai_baldsam.head.clicks.click_maps`) and the box used;
* the image embedding itself (the head reduces it with a learned 1x1 conv).

Box from the previous mask (``box_from_mask``, on by default): LiteMedSAM follows boxes well and ignores clicks,
so when the user gave no box but there is a previous mask, the decoder is prompted with the bounding box of the
previous mask and the positive clicks. A click-only session then turns into a box session from its second
interaction on, and the head only has to correct it.

Sizes are read from the backbone (``img_size``, ``low_res_hw``, decoder width), never hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn

from monai_baldsam.head.clicks import box_map, click_maps, sam_xy_to_low_xy
from monai_baldsam.sam.model import SamBackbone

__all__ = ["DecoderClicks", "FeatureConfig", "HeadPrompts", "HeadInputs", "run_mask_decoder", "decoder_channels",
           "FeatureExtractor"]


class DecoderClicks(str, Enum):
    """Which clicks the frozen decoder is given (the head always sees every click as click maps)."""

    ALWAYS = "always"
    WITHOUT_BOX = "without_box"  # only when there is no (user or mask-derived) box: LiteMedSAM follows boxes, not clicks


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of :class:`FeatureExtractor` (saved in the head's checkpoint).

    Attributes:
        click_radius: disk radius of the click maps, as a fraction of the low-resolution side (5 px of 256).
        click_distance_clip: distance maps saturate at this fraction of the low-resolution side.
        box_from_mask: prompt the decoder with the previous mask's box when the user gave none.
        decoder_clicks: see :class:`DecoderClicks`.
    """

    click_radius: float = 5.0 / 256.0
    click_distance_clip: float = 0.25
    box_from_mask: bool = True
    decoder_clicks: DecoderClicks = DecoderClicks.WITHOUT_BOX

    def __post_init__(self) -> None:
        if not 0 < self.click_radius < 1 or not 0 < self.click_distance_clip <= 2:
            raise ValueError(f"click_radius must be in (0, 1) and click_distance_clip in (0, 2] (fractions of the "
                             f"grid side), got {self.click_radius} and {self.click_distance_clip}")
        object.__setattr__(self, "decoder_clicks", DecoderClicks(self.decoder_clicks))

    def to_dict(self) -> dict[str, float | bool | str]:
        return {"click_radius": float(self.click_radius), "click_distance_clip": float(self.click_distance_clip),
                "box_from_mask": bool(self.box_from_mask), "decoder_clicks": self.decoder_clicks.value}


@dataclass(frozen=True)
class HeadPrompts:
    """``B`` prompts in ``sam_xy``.

    Attributes:
        points_sam_xy: ``(B, N, 2)`` float clicks (``N`` may be 0).
        labels: ``(B, N)`` int64: 1 positive, 0 negative, -1 padding (ignored everywhere).
        boxes_sam_xy: ``(B, 4)`` float ``(x0, y0, x1, y1)``; rows without a box are ignored.
        has_box: ``(B,)`` bool, which rows have a user box.
        prev_logits: ``(B, 1, L, L)`` previous low-resolution logits, or None at the first interaction.
    """

    points_sam_xy: torch.Tensor
    labels: torch.Tensor
    boxes_sam_xy: torch.Tensor
    has_box: torch.Tensor
    prev_logits: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def single(cls, points_sam_xy: torch.Tensor | None, labels: torch.Tensor | None, box_sam_xy: torch.Tensor | None,
               prev_logits: torch.Tensor | None = None) -> HeadPrompts:
        """One prompt: ``points (1, N, 2)`` or None, ``labels (1, N)``, ``box (1, 4)`` or None, ``prev (1, 1, L, L)``."""
        if points_sam_xy is None:
            points_sam_xy, labels = torch.zeros((1, 0, 2)), torch.zeros((1, 0), dtype=torch.int64)
        if labels is None:
            raise ValueError("points need labels (1 positive, 0 negative)")
        has_box = torch.tensor([box_sam_xy is not None])
        boxes = torch.zeros((1, 4)) if box_sam_xy is None else box_sam_xy.reshape(1, 4).float()
        return cls(points_sam_xy.float().reshape(1, -1, 2), labels.long().reshape(1, -1), boxes, has_box, prev_logits)


@dataclass(frozen=True)
class HeadInputs:
    """The head's inputs for ``B`` prompts (``L x L`` the low-resolution grid, ``h x w`` the embedding).

    Attributes:
        decoder_embedding: ``(B, Cd, L, L)`` the decoder's upscaled embedding.
        sam_logits: ``(B, 1, L, L)`` SAM's mask logits for the prompt.
        prev_logits: ``(B, 1, L, L)`` previous logits (zeros where ``has_previous`` is False).
        has_previous: ``(B,)`` bool.
        click_maps: ``(B, 4, L, L)`` (:data:`~monai_baldsam.head.clicks.CLICK_MAP_CHANNELS`).
        box_map: ``(B, 1, L, L)`` indicator of the box given to the decoder (user's or the previous mask's).
        image_embedding: ``(B, D, h, w)``.
        boxes_sam_xy, has_box: the boxes given to the decoder.
    """

    decoder_embedding: torch.Tensor
    sam_logits: torch.Tensor
    prev_logits: torch.Tensor
    has_previous: torch.Tensor
    click_maps: torch.Tensor
    box_map: torch.Tensor
    image_embedding: torch.Tensor
    boxes_sam_xy: torch.Tensor
    has_box: torch.Tensor


def decoder_channels(backbone: SamBackbone) -> int:
    """Channels of the decoder's upscaled embedding (``transformer_dim // 8`` in SAM)."""
    return int(backbone.mask_decoder.output_hypernetworks_mlps[0].layers[-1].out_features)


def run_mask_decoder(decoder: nn.Module, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                     sparse: torch.Tensor, dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's ``MaskDecoder.predict_masks`` for the first mask token, also returning the upscaled embedding.

    Same weights and operations as ``decoder(..., multimask_output=False)`` (the IoU head and the other mask
    tokens' hypernetworks are skipped). ``image_embeddings`` is ``(1, D, h, w)`` (shared by every prompt) or
    ``(B, D, h, w)`` (one image per prompt).

    Returns:
        ``(logits (B, 1, L, L), upscaled_embedding (B, Cd, L, L))``.
    """
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    output_tokens = output_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1)
    tokens = torch.cat((output_tokens, sparse), dim=1)
    if image_embeddings.shape[0] != tokens.shape[0]:
        if image_embeddings.shape[0] != 1:
            raise ValueError(f"got {image_embeddings.shape[0]} image embeddings for {tokens.shape[0]} prompts: give "
                             "one embedding per prompt or one shared embedding")
        src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)
    else:
        src = image_embeddings
    src = src + dense
    pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos_src, tokens)
    src = src.transpose(1, 2).reshape(b, c, h, w)
    upscaled = decoder.output_upscaling(src)
    hyper = decoder.output_hypernetworks_mlps[0](hs[:, 1, :])
    logits = torch.einsum("bc,bchw->bhw", hyper, upscaled)[:, None]
    return logits, upscaled


def _boxes_from_masks(masks: torch.Tensor, img_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding boxes in ``sam_xy`` of ``(B, L, L)`` bool masks (pixel centres of the first and last row and
    column, as the evaluation's ground-truth box) and ``(B,)`` which masks are non-empty."""
    size = masks.shape[-1]
    idx = torch.arange(size, device=masks.device)
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    found = rows.any(dim=1)
    y0 = torch.where(rows, idx, size).amin(dim=1)
    y1 = torch.where(rows, idx, -1).amax(dim=1)
    x0 = torch.where(cols, idx, size).amin(dim=1)
    x1 = torch.where(cols, idx, -1).amax(dim=1)
    low = torch.stack([x0, y0, x1, y1], dim=1).float()
    scale = float(img_size) / float(size)
    return (low + 0.5) * scale - 0.5, found


class FeatureExtractor:
    """Turns ``(image embedding, prompts)`` into :class:`HeadInputs` with the frozen backbone (no gradient).

    Args:
        backbone: the frozen :class:`SamBackbone`.
        config: :class:`FeatureConfig`.
    """

    def __init__(self, backbone: SamBackbone, config: FeatureConfig | None = None) -> None:
        self.backbone = backbone
        self.config = config or FeatureConfig()
        self.low_res = int(backbone.low_res_hw[0])
        self.img_size = int(backbone.img_size)

    def decoder_boxes(self, prompts: HeadPrompts) -> tuple[torch.Tensor, torch.Tensor]:
        """The boxes given to the decoder: the user's, else (with ``box_from_mask``) the bounding box of the
        previous mask (``logits > 0``) and the positive clicks; ``(B, 4)`` sam_xy and ``(B,)`` bool."""
        boxes, has_box = prompts.boxes_sam_xy.float(), prompts.has_box.bool()
        if not self.config.box_from_mask or prompts.prev_logits is None or bool(has_box.all()):
            return boxes, has_box
        masks = prompts.prev_logits[:, 0] > 0
        if not bool(masks.any()):
            return boxes, has_box
        masks = masks.clone()
        low_xy = sam_xy_to_low_xy(prompts.points_sam_xy, self.img_size, self.low_res).to(masks.device)
        uv = low_xy.floor().long().clamp(0, self.low_res - 1)
        positive = (prompts.labels == 1).to(masks.device)
        b_idx = torch.arange(masks.shape[0], device=masks.device)[:, None].expand_as(positive)
        had_mask = masks.flatten(1).any(dim=1)
        keep = positive & had_mask[:, None]
        masks[b_idx[keep], uv[..., 1][keep], uv[..., 0][keep]] = True
        derived, found = _boxes_from_masks(masks, self.img_size)
        use = ~has_box & found.to(has_box.device) & had_mask.to(has_box.device)
        return torch.where(use[:, None], derived.to(boxes.device), boxes), has_box | use

    @torch.no_grad()
    def decode(self, image_embeddings: torch.Tensor, prompts: HeadPrompts, boxes: torch.Tensor, has_box: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM logits and upscaled embeddings for every prompt: prompts with the same number of decoder tokens
        share one batched decoder call. A group whose prompts give the decoder clicks is decoded by the backbone's
        click decoder when one is loaded, as the predictor routes it (:meth:`~monai_baldsam.sam.model.SamBackbone.
        decoder_modules`), so the head reads the logits of the decoder it runs on. Returns
        ``((B, 1, L, L), (B, Cd, L, L))``."""
        device = self.backbone.device
        image_embeddings = image_embeddings.to(device)
        boxes, has_box = boxes.to(device, torch.float32), has_box.to(device)
        labels = prompts.labels.to(device)
        points = prompts.points_sam_xy.to(device, torch.float32)
        with_clicks = torch.ones_like(has_box, dtype=torch.bool) if self.config.decoder_clicks is DecoderClicks.ALWAYS \
            else ~has_box
        groups: dict[tuple[int, bool], list[int]] = {}
        for b in range(prompts.batch_size):
            n_points = int((labels[b] >= 0).sum()) if bool(with_clicks[b]) else 0
            groups.setdefault((n_points, bool(has_box[b])), []).append(b)
        logits = torch.empty((prompts.batch_size, 1, self.low_res, self.low_res), device=device)
        upscaled: torch.Tensor | None = None
        for (n_points, boxed), members in groups.items():
            index = torch.tensor(members, device=device)
            point_arg = None
            if n_points:
                kept = labels[index] >= 0
                pts = torch.stack([points[i][kept[k]] for k, i in enumerate(members)])
                lab = torch.stack([labels[i][kept[k]] for k, i in enumerate(members)])
                point_arg = (pts, lab)
            box_arg = boxes[index] if boxed else None
            pe, mask_decoder = self.backbone.decoder_modules(n_points > 0)
            sparse, dense = pe(points=point_arg, boxes=box_arg, masks=None)
            if sparse.shape[0] != len(members):  # no prompt at all: the encoder returns a batch of one
                sparse = sparse.expand(len(members), -1, -1)
                dense = dense.expand(len(members), -1, -1, -1)
            embeds = image_embeddings if image_embeddings.shape[0] == 1 else image_embeddings[index]
            group_logits, group_up = run_mask_decoder(mask_decoder, embeds, pe.get_dense_pe(), sparse, dense)
            if upscaled is None:
                upscaled = torch.empty((prompts.batch_size, *group_up.shape[1:]), device=device)
            logits[index] = group_logits
            upscaled[index] = group_up
        if upscaled is None:
            raise RuntimeError("no prompt was decoded: the batch is empty")
        return logits, upscaled

    @torch.no_grad()
    def __call__(self, image_embeddings: torch.Tensor, prompts: HeadPrompts) -> HeadInputs:
        """:class:`HeadInputs` for ``prompts`` against ``image_embeddings`` (``(1, D, h, w)`` shared or one per prompt)."""
        if prompts.batch_size < 1:
            raise ValueError("no prompt given: the batch is empty")
        if image_embeddings.ndim != 4 or image_embeddings.shape[0] not in (1, prompts.batch_size):
            raise ValueError(f"image_embeddings must be (1 or B={prompts.batch_size}, D, h, w), got "
                             f"{tuple(image_embeddings.shape)}")
        device = self.backbone.device
        size = self.low_res
        if prompts.prev_logits is not None and tuple(prompts.prev_logits.shape[-2:]) != (size, size):
            raise ValueError(f"prev_logits must be (B, 1, {size}, {size}) for this backbone, got "
                             f"{tuple(prompts.prev_logits.shape)}")
        boxes, has_box = self.decoder_boxes(prompts)
        sam_logits, upscaled = self.decode(image_embeddings, prompts, boxes, has_box)
        low_xy = sam_xy_to_low_xy(prompts.points_sam_xy.to(device), self.img_size, size)
        maps = click_maps(low_xy, prompts.labels.to(device), size, self.config.click_radius * size,
                          self.config.click_distance_clip * size)
        batch = prompts.batch_size
        if prompts.prev_logits is None:
            prev = torch.zeros((batch, 1, size, size), device=device)
            has_prev = torch.zeros(batch, dtype=torch.bool, device=device)
        else:
            prev = prompts.prev_logits.to(device, torch.float32).reshape(batch, 1, size, size)
            has_prev = torch.ones(batch, dtype=torch.bool, device=device)
        embeds = image_embeddings.to(device)
        if embeds.shape[0] != batch:
            embeds = embeds.expand(batch, -1, -1, -1)
        return HeadInputs(decoder_embedding=upscaled, sam_logits=sam_logits, prev_logits=prev, has_previous=has_prev,
                          click_maps=maps, box_map=box_map(boxes.to(device), has_box.to(device), self.img_size, size),
                          image_embedding=embeds, boxes_sam_xy=boxes.to(device), has_box=has_box.to(device))
