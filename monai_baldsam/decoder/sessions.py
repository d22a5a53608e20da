"""Simulated interactive sessions through a trainable prompt encoder + mask decoder (SAM's interactive recipe).

One batch of sessions shares its first prompt's kind: a jittered ground-truth box, or one to three positive clicks
(the first drawn among the deepest interior points, the others uniformly inside the object). Each later round adds
one error-driven click (:func:`~monai_baldsam.head.train.simulation.add_error_clicks`: the RITM user, in the larger
error
region) and feeds the previous low-resolution logits back as the mask prompt; one round of a session may add no
click (the mask prompt alone), as SAM trains. A single click alone is ambiguous: that round asks for SAM's three
masks and the loss takes the best one (SAM's multimask rule); the session goes on with the mask of highest predicted
IoU, as :class:`~monai_baldsam.interaction.model.SamClickModel` picks it at inference.

Everything here runs on the decoder's low-resolution grid (``L x L``, 256 for LiteMedSAM), on cached image
embeddings: the image encoder is never called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from monai_baldsam.head.clicks import low_uv_to_sam_xy
from monai_baldsam.head.train.data import TrainItem
from monai_baldsam.head.train.simulation import FirstKind, SessionBatch, start_sessions

__all__ = ["DecoderOutput", "decode", "predict_masks", "has_clicks", "start_decoder_sessions", "add_random_positive_clicks", "is_single_click"]


@dataclass
class DecoderOutput:
    """``logits (B, M, L, L)`` and predicted IoU ``(B, M)``; ``M`` is 3 for multimask rounds, else 1."""

    logits: torch.Tensor
    iou: torch.Tensor

    def best(self) -> torch.Tensor:
        """``(B, 1, L, L)``: each session's mask of highest predicted IoU."""
        index = self.iou.argmax(dim=1)
        return self.logits[torch.arange(self.logits.shape[0]), index][:, None]


def has_clicks(state: SessionBatch) -> bool:
    """Whether the batch's prompts hold a click (then the click decoder answers them; a box alone goes to the
    backbone's own decoder)."""
    return any(label >= 0 for labels in state.labels for label in labels)


def is_single_click(state: SessionBatch) -> bool:
    """Whether every session of the batch holds exactly one click and nothing else (SAM's ambiguous prompt)."""
    return (not state.has_box.any() and state.prev_logits is None
            and all(sum(1 for label in labels if label >= 0) == 1 for labels in state.labels))


def decode(prompt_encoder: nn.Module, mask_decoder: nn.Module, embeddings: torch.Tensor, state: SessionBatch,
           multimask: bool) -> DecoderOutput:
    """One decoder call for every session of ``state`` (one embedding each), as ``SamPredictor.predict_torch``
    does it for one, with autograd as the caller sets it."""
    prompts = state.prompts()
    device = embeddings.device
    points = None
    if prompts.points_sam_xy.shape[1] > 0:
        points = (prompts.points_sam_xy.to(device), prompts.labels.to(device))
    boxes = prompts.boxes_sam_xy.to(device) if bool(prompts.has_box.all()) else None
    if boxes is None and bool(prompts.has_box.any()):
        raise ValueError("a batch of sessions must all have a box or all have none")
    masks = None if state.prev_logits is None else state.prev_logits.to(device)
    sparse, dense = prompt_encoder(points=points, boxes=boxes, masks=masks)
    masks_all, iou_all = predict_masks(mask_decoder, embeddings, prompt_encoder.get_dense_pe(), sparse, dense)
    picked = slice(1, None) if multimask else slice(0, 1)
    return DecoderOutput(masks_all[:, picked], iou_all[:, picked])


def predict_masks(decoder: nn.Module, embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                  dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's ``MaskDecoder.predict_masks`` for one image per prompt (``embeddings (B, D, h, w)``, ``B`` prompts):
    the same weights and operations, without SAM's repetition of every image for every prompt. Returns all mask
    tokens' ``(B, T, L, L)`` logits and ``(B, T)`` predicted IoUs."""
    if embeddings.shape[0] != sparse.shape[0]:
        raise ValueError(f"got {embeddings.shape[0]} image embeddings for {sparse.shape[0]} prompts")
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse), dim=1)
    src = embeddings + dense
    pos_src = image_pe.expand(src.shape[0], -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos_src, tokens)
    iou_token_out = hs[:, 0, :]
    mask_tokens_out = hs[:, 1:1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
                        dim=1)
    b, c, h, w = upscaled.shape
    masks = (hyper @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
    return masks, decoder.iou_prediction_head(iou_token_out)


def add_random_positive_clicks(state: SessionBatch, counts: Sequence[int], rng: np.random.Generator,
                               img_size: int) -> None:
    """Add ``counts[b]`` positive clicks drawn uniformly among session ``b``'s unclicked object pixels."""
    for b, (item, count) in enumerate(zip(state.items, counts)):
        low_res = item.target.shape[-1]
        free = np.flatnonzero((item.target & item.valid & ~state.clicked[b]).ravel())
        for index in rng.choice(free, size=min(int(count), free.size), replace=False):
            v, u = divmod(int(index), low_res)
            state.points_sam_xy[b].append(tuple(low_uv_to_sam_xy(np.array([u, v]), img_size, low_res).tolist()))
            state.labels[b].append(1)
            state.clicked[b, v, u] = True


def start_decoder_sessions(items: Sequence[TrainItem], kind: FirstKind, rng: np.random.Generator | None,
                           img_size: int, low_res: int, box_jitter: float, click_spread: float,
                           max_first_clicks: int = 3) -> SessionBatch:
    """First prompts: with ``rng`` None the evaluation's deterministic ones (exact box, deepest click); otherwise a
    box jittered by up to ``box_jitter``, or one to ``max_first_clicks`` positive clicks."""
    state = start_sessions(items, kind, rng, img_size, low_res, box_jitter, click_spread)
    if kind is FirstKind.CLICK and rng is not None and max_first_clicks > 1:
        extra = int(rng.integers(0, max_first_clicks))  # one count for the batch: the prompts keep one length
        if extra:
            add_random_positive_clicks(state, [extra] * len(items), rng, img_size)
    return state
