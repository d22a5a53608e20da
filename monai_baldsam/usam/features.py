"""What the UncertainSAM heads read: the decoder's IoU token and the single-mask token, concatenated, plus a few
numbers about the mask that is being judged.

UncertainSAM (Kaiser et al., ICML 2025) feeds the IoU token and the mask token to small MLPs. Here the mask being
judged is not always SAM's own: with a prediction head (``--head``, needed for clicks with LiteMedSAM) the head's
mask differs from the decoder's mask 0. So the token vector is extended by a short descriptor computed on the
``L x L`` low-resolution grid (inside the unpadded image only):

* SAM's own predicted IoUs of its ``M`` masks (``iou_prediction_head`` on the IoU token);
* the judged mask's area fraction, its mean binary entropy (bits) and that entropy per unit of mask area;
* the IoU between the judged mask and SAM's mask 0 (1 for the plain decoder) and a flag "mask from a head".

:data:`DESCRIPTOR_NAMES` lists the descriptor in order; :func:`feature_dim` gives the total width.
"""

from __future__ import annotations

import math

import torch

from monai_baldsam.sam.geometry import preprocess_shape
from monai_baldsam.usam.tokens import DecoderTokens, decoder_readout

__all__ = ["DESCRIPTOR_NAMES", "feature_dim", "valid_low_res", "mask_descriptor", "quality_features"]

#: The descriptor after the tokens and SAM's predicted IoUs.
DESCRIPTOR_NAMES: tuple[str, ...] = ("area_fraction", "mean_entropy_bits", "entropy_per_area", "agreement_iou",
                                     "from_head")


def feature_dim(token_dim: int, n_mask_tokens: int) -> int:
    """Width of :func:`quality_features`: IoU token + mask token 0 + ``M`` SAM IoUs + the descriptor."""
    return 2 * int(token_dim) + int(n_mask_tokens) + len(DESCRIPTOR_NAMES)


def valid_low_res(original_hw: tuple[int, int], img_size: int, low_res: int,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """``(L, L)`` bool: the low-resolution pixels covering the image (not SAM's bottom/right padding)."""
    resized = preprocess_shape(int(original_hw[0]), int(original_hw[1]), int(img_size))
    rows = max(1, min(low_res, math.ceil(resized[0] * low_res / img_size)))
    cols = max(1, min(low_res, math.ceil(resized[1] * low_res / img_size)))
    valid = torch.zeros((low_res, low_res), dtype=torch.bool, device=device)
    valid[:rows, :cols] = True
    return valid


def mask_descriptor(logits: torch.Tensor, sam_logits: torch.Tensor, valid: torch.Tensor,
                    from_head: torch.Tensor) -> torch.Tensor:
    """``(B, 5)`` :data:`DESCRIPTOR_NAMES` of the judged masks.

    Args:
        logits: ``(B, 1, L, L)`` low-resolution logits of the judged mask.
        sam_logits: ``(B, 1, L, L)`` SAM's mask-0 logits of the same decoder call.
        valid: ``(L, L)`` or ``(B, L, L)`` bool, the image's pixels on the grid.
        from_head: ``(B,)`` bool, the mask comes from a prediction head.
    """
    if logits.shape != sam_logits.shape or logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"logits and sam_logits must both be (B, 1, L, L), got {tuple(logits.shape)} and "
                         f"{tuple(sam_logits.shape)}")
    batch = logits.shape[0]
    weight = valid.to(logits.device, torch.float32).expand(batch, *logits.shape[-2:])
    n_valid = weight.sum(dim=(1, 2)).clamp_min(1.0)
    prob = torch.sigmoid(logits[:, 0].float())
    mask = (logits[:, 0] > 0).float() * weight
    sam_mask = (sam_logits[:, 0] > 0).float() * weight
    area = mask.sum(dim=(1, 2))
    p = prob.clamp(1e-6, 1 - 1e-6)
    entropy = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p)) * weight
    entropy_sum = entropy.sum(dim=(1, 2))
    inter = (mask * sam_mask).sum(dim=(1, 2))
    union = ((mask + sam_mask) > 0).float().sum(dim=(1, 2))
    agreement = torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))
    return torch.stack([area / n_valid, entropy_sum / n_valid, (entropy_sum / area.clamp_min(1.0)).clamp(max=10.0),
                        agreement, from_head.to(logits.device, torch.float32).reshape(batch)], dim=1)


@torch.no_grad()
def quality_features(decoder: torch.nn.Module, tokens: DecoderTokens, logits: torch.Tensor | None,
                     valid: torch.Tensor, from_head: bool | torch.Tensor = False) -> torch.Tensor:
    """``(B, F)`` inputs of the heads for the judged mask ``logits`` (``(B, 1, L, L)``; None: SAM's own mask 0).

    ``tokens`` come from the decoder call that answered the prompt (:class:`~monai_baldsam.usam.tokens.TokenCapture`).
    """
    sam_iou, sam_masks = decoder_readout(decoder, tokens)
    sam_logits = sam_masks[:, :1]
    judged = sam_logits if logits is None else logits.to(sam_logits.device, torch.float32)
    if judged.shape != sam_logits.shape:
        raise ValueError(f"the judged mask's logits must be {tuple(sam_logits.shape)} (the decoder's low-resolution "
                         f"grid), got {tuple(judged.shape)}")
    flag = torch.as_tensor(from_head, dtype=torch.bool).reshape(-1).expand(judged.shape[0])
    descriptor = mask_descriptor(judged, sam_logits, valid, flag)
    return torch.cat([tokens.iou_token.float(), tokens.mask_tokens[:, 0].float(), sam_iou.float(), descriptor], dim=1)
