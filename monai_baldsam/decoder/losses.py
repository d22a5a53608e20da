"""SAM's training losses on the low-resolution grid: focal + Dice per mask, and the IoU head's MSE."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mask_losses", "mask_ious", "decoder_loss"]


def mask_losses(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, focal_weight: float = 20.0,
                gamma: float = 2.0, alpha: float = 0.25) -> torch.Tensor:
    """``(B, M)`` loss of each of ``M`` masks: ``focal_weight`` x focal loss (mean over valid pixels) + soft Dice.

    Args:
        logits: ``(B, M, L, L)`` mask logits.
        target: ``(B, L, L)`` float ground truth in {0, 1}.
        valid: ``(B, L, L)`` bool, the unpadded pixels (only these count).
    """
    if logits.ndim != 4 or logits.shape[0] != target.shape[0] or logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"logits (B, M, L, L) and target (B, L, L) must agree, got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    logits = logits.float()
    t = target[:, None].expand_as(logits)
    w = valid[:, None].float().expand_as(logits)
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p_t = prob * t + (1.0 - prob) * (1.0 - t)
    focal = ce * (1.0 - p_t) ** gamma * (alpha * t + (1.0 - alpha) * (1.0 - t))
    focal = (focal * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3)).clamp_min(1.0)
    inter = (prob * t * w).sum(dim=(2, 3))
    dice = 1.0 - (2.0 * inter + 1.0) / ((prob * w).sum(dim=(2, 3)) + (t * w).sum(dim=(2, 3)) + 1.0)
    return focal_weight * focal + dice


@torch.no_grad()
def mask_ious(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(B, M)`` IoU of each mask ``logits > 0`` with ``target`` over the valid pixels (1 when both are empty)."""
    pred = (logits > 0) & valid[:, None]
    truth = (target[:, None] > 0.5) & valid[:, None]
    inter = (pred & truth).sum(dim=(2, 3)).float()
    union = (pred | truth).sum(dim=(2, 3)).float()
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def decoder_loss(logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                 focal_weight: float = 20.0, iou_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, best mask index (B,))``: SAM's multimask rule (each image's mask of lowest loss carries the mask
    loss) plus ``iou_weight`` x MSE of the IoU head against every mask's actual IoU."""
    per_mask = mask_losses(logits, target, valid, focal_weight)
    best_loss, best = per_mask.min(dim=1)
    iou_loss = F.mse_loss(iou_pred.float(), mask_ious(logits.detach(), target, valid))
    return best_loss.mean() + iou_weight * iou_loss, best
