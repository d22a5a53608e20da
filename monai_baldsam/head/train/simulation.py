"""Simulated interactive sessions on the low-resolution grid, batched: the training and validation loop's data.

As SAM and RITM train: a first prompt (the ground-truth box, jittered by a seeded fraction of its size, or a
positive click deep inside the object), then rounds of error-driven clicks, some of them (training only) placed where
the prediction is least certain, as an uncertainty policy would place them (:func:`~monai_baldsam.head.clicks.
error_click`) with the previous prediction fed back as mask input. :func:`run_session_rounds` yields every round's
head output so the caller decides which rounds carry a loss (SAM computes one at every round; the previous logits
are always detached, so no gradient flows across rounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from monai_baldsam.bayes.acquisition import best_click, binary_entropy
from monai_baldsam.head.clicks import error_click, first_click, low_uv_to_sam_xy
from monai_baldsam.head.features import FeatureExtractor, HeadInputs, HeadPrompts
from monai_baldsam.head.model import HeadOutput, PredictionHead
from monai_baldsam.head.train.data import TrainItem, gt_box_sam_xy
from monai_baldsam.interaction.geometry import jitter_boxes
from monai_baldsam.interaction.policies import BaldPolicy

__all__ = ["FirstKind", "SessionBatch", "start_sessions", "uncertain_click", "add_error_clicks", "run_session_rounds"]


class FirstKind(str, Enum):
    """First prompt of a simulated session."""

    BOX = "box"
    CLICK = "click"


@dataclass
class SessionBatch:
    """The state of ``B`` simulated sessions (one image each)."""

    items: list[TrainItem]
    points_sam_xy: list[list[tuple[float, float]]]
    labels: list[list[int]]
    boxes_sam_xy: np.ndarray
    has_box: np.ndarray
    clicked: np.ndarray
    prev_logits: torch.Tensor | None = None

    def prompts(self) -> HeadPrompts:
        """The batch's prompts, click lists padded with label -1 to one length."""
        batch = len(self.items)
        n = max((len(p) for p in self.points_sam_xy), default=0)
        points = torch.zeros((batch, n, 2), dtype=torch.float32)
        labels = torch.full((batch, n), -1, dtype=torch.int64)
        for b, (pts, lab) in enumerate(zip(self.points_sam_xy, self.labels)):
            if pts:
                points[b, :len(pts)] = torch.as_tensor(pts, dtype=torch.float32)
                labels[b, :len(lab)] = torch.as_tensor(lab, dtype=torch.int64)
        return HeadPrompts(points, labels, torch.as_tensor(self.boxes_sam_xy, dtype=torch.float32),
                           torch.as_tensor(self.has_box), self.prev_logits)

    def embeddings(self, device: torch.device) -> torch.Tensor:
        return torch.cat([item.embedding for item in self.items]).to(device)


def start_sessions(items: Sequence[TrainItem], kind: FirstKind | str, rng: np.random.Generator | None,
                   img_size: int, low_res: int, box_jitter: float = 0.0, click_spread: float = 0.0) -> SessionBatch:
    """First prompts for ``items``: with ``rng`` None everything is deterministic (the evaluation's first prompts:
    exact box, deepest click); otherwise boxes are jittered by up to ``box_jitter`` and first clicks drawn among
    points at least ``1 - click_spread`` as deep as the deepest. An empty volume slice (no object) always starts
    from its box (its neighbour's: see :class:`~monai_baldsam.head.train.data.TrainItem`)."""
    kind = FirstKind(kind)
    batch = len(items)
    boxes = np.zeros((batch, 4))
    has_box = np.zeros(batch, dtype=bool)
    points: list[list[tuple[float, float]]] = [[] for _ in range(batch)]
    labels: list[list[int]] = [[] for _ in range(batch)]
    clicked = np.zeros((batch, low_res, low_res), dtype=bool)
    for b, item in enumerate(items):
        # a volume slice without the object is only ever prompted by the box propagated from its neighbour
        if kind is FirstKind.BOX or item.is_empty:
            box = item.box_xy[None]
            if rng is not None and box_jitter > 0:
                box = jitter_boxes(box, item.original_hw, float(rng.uniform(0, box_jitter)), rng)
            boxes[b] = gt_box_sam_xy(item, img_size, box[0])
            has_box[b] = True
        else:
            u, v = first_click(item.target & item.valid, rng, click_spread if rng is not None else 0.0)
            points[b].append(tuple(low_uv_to_sam_xy(np.array([u, v]), img_size, low_res).tolist()))
            labels[b].append(1)
            clicked[b, v, u] = True
    return SessionBatch(list(items), points, labels, boxes, has_box, clicked)


def uncertain_click(logits: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[int, int, int] | None:
    """``(u, v, label)``: where the prediction ``logits (L, L)`` is least certain (the binary entropy, pooled and
    gated as the ``bald`` policy pools its map), answered from ``truth``; the clicks an uncertainty policy gives."""
    entropy = binary_entropy(torch.sigmoid(torch.from_numpy(logits).double())).numpy()
    policy = BaldPolicy()
    found = best_click(entropy, valid, policy.radius_px(entropy.shape), policy.gate)
    if found is None:
        return None
    (v, u), _ = found
    return u, v, int(truth[v, u])


def add_error_clicks(state: SessionBatch, logits: torch.Tensor, rng: np.random.Generator | None, img_size: int,
                     spread: float = 0.0, uncertain_fraction: float = 0.0) -> None:
    """One corrective click per session from the prediction ``logits (B, 1, L, L)`` (padding where none is left);
    the logits become the next round's mask input. With ``rng``, a fraction ``uncertain_fraction`` of the clicks go
    where the prediction is least certain (:func:`uncertain_click`), so that the head learns to use the clicks an
    uncertainty policy (BALD) will ask for; the others are error-driven."""
    low_res = logits.shape[-1]
    raw = logits.detach()[:, 0].float().cpu().numpy()
    preds = raw > 0
    for b, item in enumerate(state.items):
        allowed = item.valid & ~state.clicked[b]
        if rng is not None and uncertain_fraction > 0 and rng.random() < uncertain_fraction:
            click = uncertain_click(raw[b], item.target, allowed)
        else:
            click = error_click(preds[b] & item.valid, item.target, allowed, rng, spread if rng is not None else 0.0)
        if click is None:
            state.points_sam_xy[b].append((0.0, 0.0))
            state.labels[b].append(-1)
            continue
        u, v, label = click
        state.points_sam_xy[b].append(tuple(low_uv_to_sam_xy(np.array([u, v]), img_size, low_res).tolist()))
        state.labels[b].append(label)
        state.clicked[b, v, u] = True
    state.prev_logits = logits.detach()


def run_session_rounds(extractor: FeatureExtractor, head: PredictionHead, state: SessionBatch, n_rounds: int,
                       rng: np.random.Generator | None, with_grad: Callable[[int], bool] = lambda r: False,
                       click_spread: float = 0.0, uncertain_fraction: float = 0.0
                       ) -> Iterator[tuple[int, HeadInputs, HeadOutput]]:
    """Run ``n_rounds`` interactions (the first prompt is round 0) and yield ``(round, inputs, output)`` after each.

    ``with_grad(round)`` says whether the head runs with autograd in that round; the caller computes the loss and
    calls ``backward`` before asking for the next round. After each round a corrective click is added.
    """
    device = extractor.backbone.device
    embeddings = state.embeddings(device)
    for round_index in range(n_rounds):
        inputs = extractor(embeddings, state.prompts())
        with torch.set_grad_enabled(with_grad(round_index)):
            output = head(inputs)
        yield round_index, inputs, output
        if round_index + 1 < n_rounds:
            add_error_clicks(state, output.logits, rng, extractor.img_size, click_spread, uncertain_fraction)
