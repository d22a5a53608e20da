"""The simulated interactive session: a first prompt, then clicks 2..N placed by a policy, scored after each.

Protocol (one image, one policy):

1. Interaction 1 is the first prompt, identical for every policy: ``box`` (the ground truth's bounding box,
   optionally jittered by a seeded fraction of its size) or ``click`` (the standard first click: the interior point
   farthest from the mask boundary, positive).
2. Interactions ``2..N``: the policy places one click (:class:`~monai_baldsam.interaction.policies.ClickPolicy`);
   a click whose polarity the policy leaves open is answered from the ground truth at that pixel. The model is
   prompted with the first box (if any), every click so far and the previous low-resolution logits as
   ``mask_input``.
3. IoU and Dice are measured after every interaction, and every policy click is marked on an error pixel or not:
   whether the mask it corrects (the prediction after the previous interaction) is wrong at the clicked pixel.

Ending early: when the prediction equals the ground truth (no error pixel left), or the policy places no click,
the session stops and keeps its last IoU and Dice for the remaining interactions (``stopped_at`` records the first
interaction not run). Clicked pixels can never be clicked again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import numpy as np

from monai_baldsam.interaction.geometry import farthest_points, jitter_boxes, mask_boxes
from monai_baldsam.interaction.metrics import dice_score, iou_score
from monai_baldsam.interaction.model import ClickModel, ModelOutput
from monai_baldsam.interaction.policies import ClickContext, ClickPolicy, Prompt, accumulate_prompt
from monai_baldsam.sam.predictor import SliceEmbedding

__all__ = ["FirstPrompt", "FirstInteraction", "SessionResult", "make_first_prompt", "run_first_interaction",
           "run_session"]


class FirstPrompt(str, Enum):
    """How a session starts."""

    BOX = "box"
    CLICK = "click"


def make_first_prompt(truth: np.ndarray, kind: FirstPrompt | str, rng: np.random.Generator,
                      box_jitter: float = 0.0) -> Prompt:
    """The first prompt for ground truth ``truth`` ``(H, W)`` (SAM orientation).

    ``box``: the mask's bounding box, each side moved by up to ``box_jitter`` times the box size (drawn from
    ``rng``; no draw when 0). ``click``: one positive click at the interior point farthest from the boundary
    (distance transform of the mask padded by 1; ties to the first pixel in row-major order).
    """
    kind = FirstPrompt(kind)
    mask = np.asarray(truth, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"the ground truth must be one (H, W) mask, got shape {mask.shape}")
    if not mask.any():
        raise ValueError("the ground-truth mask is empty: an interactive session needs an object to segment")
    no_points = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    if kind is FirstPrompt.BOX:
        box = jitter_boxes(mask_boxes(mask[None]), mask.shape, box_jitter, rng)[0]
        return accumulate_prompt(box, *no_points, None)
    if box_jitter:
        raise ValueError("box jitter applies to a box first prompt (--first box), not to a first click")
    points, _ = farthest_points(mask[None])
    return accumulate_prompt(None, points, np.ones(1, dtype=np.int64), None)


@dataclass(frozen=True)
class FirstInteraction:
    """The first prompt and the model's answer to it, computed once per image and shared by every policy."""

    prompt: Prompt
    output: ModelOutput
    seconds: float


def run_first_interaction(model: ClickModel, embedding: SliceEmbedding, prompt: Prompt) -> FirstInteraction:
    """Decode the first prompt (timed)."""
    start = time.perf_counter()
    output = model.predict(embedding, prompt.points_xy, prompt.labels, prompt.box_xy, prompt.mask_input)
    return FirstInteraction(prompt, output, time.perf_counter() - start)


@dataclass(frozen=True)
class SessionResult:
    """One image's session.

    Attributes:
        iou, dice: ``(N,)`` after each interaction (kept constant after an early stop).
        clicks_xy: ``(K, 2)`` int64 every click, the first click included; ``click_labels`` ``(K,)``;
            ``click_interaction`` ``(K,)`` the interaction each click belongs to.
        seconds: ``(N,)`` wall time of each interaction (policy + model; the first is the first prompt's decode),
            NaN for interactions not run; ``policy_seconds`` and ``model_seconds`` split it.
        stopped_at: the first interaction not run, or None; ``stop_reason`` ``"perfect"`` or ``"no_click"``.
        click_on_error: ``(K,)`` float, aligned with ``clicks_xy``: 1.0 where the click landed on a pixel the
            mask before it had wrong (an error pixel), 0.0 where the mask was right there, NaN for the first
            prompt's click (no mask before it). None only for results made without it.
    """

    iou: np.ndarray
    dice: np.ndarray
    clicks_xy: np.ndarray
    click_labels: np.ndarray
    click_interaction: np.ndarray
    seconds: np.ndarray
    policy_seconds: np.ndarray
    model_seconds: np.ndarray
    stopped_at: int | None = None
    stop_reason: str | None = None
    click_on_error: np.ndarray | None = None

    @property
    def n_interactions(self) -> int:
        return int(len(self.iou))


def _score(output: ModelOutput, truth: np.ndarray) -> tuple[float, float]:
    if output.mask.shape != truth.shape:
        raise RuntimeError(f"the model returned a mask of shape {output.mask.shape} for an image of shape "
                           f"{truth.shape}: predictions must be at slice size (H, W)")
    return float(iou_score(output.mask[None], truth[None])[0]), float(dice_score(output.mask[None], truth[None])[0])


def run_session(model: ClickModel, embedding: SliceEmbedding, truth: np.ndarray, policy: ClickPolicy,
                first: FirstInteraction, n_interactions: int, rng: np.random.Generator) -> SessionResult:
    """Run interactions ``2..n_interactions`` of one image with ``policy`` after the shared ``first`` interaction.

    Args:
        model: the click model (see :class:`~monai_baldsam.interaction.model.ClickModel`).
        embedding: the image's embedding from ``model.encode``.
        truth: ``(H, W)`` bool ground truth (SAM orientation).
        policy: the click policy; it sees ``truth`` only if ``policy.uses_ground_truth``.
        first: the first interaction (:func:`run_first_interaction`), shared by every policy.
        n_interactions: the budget ``N`` (>= 1), the first prompt included.
        rng: this session's generator.
    """
    if n_interactions < 1:
        raise ValueError(f"the number of interactions must be at least 1, got {n_interactions}")
    truth = np.asarray(truth, dtype=bool)
    n = int(n_interactions)
    iou, dice = np.zeros(n), np.zeros(n)
    seconds, policy_s, model_s = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    iou[0], dice[0] = _score(first.output, truth)
    seconds[0], policy_s[0], model_s[0] = first.seconds, 0.0, first.seconds
    missing = [name for name in policy.requires_extras if name not in first.output.extras]
    if missing and n > 1:
        raise ValueError(f"policy {policy.name!r} needs the model's {', '.join(missing)} map(s), which this model "
                         f"does not return (it gives {sorted(first.output.extras) or 'none'}): use a model that "
                         "does, e.g. a Bayesian prediction head")
    clicks = first.prompt.points_xy.astype(np.int64).reshape(-1, 2)
    labels = first.prompt.labels.astype(np.int64).reshape(-1)
    interaction_of = np.ones(len(clicks), dtype=np.int64)
    on_error = np.full(len(clicks), np.nan)
    clicked = np.zeros(truth.shape, dtype=bool)
    clicked[clicks[:, 1], clicks[:, 0]] = True
    output, prompt = first.output, first.prompt
    stopped_at: int | None = None
    reason: str | None = None

    def answer(xy: tuple[int, int]) -> int:
        return int(truth[xy[1], xy[0]])

    for k in range(2, n + 1):
        if np.array_equal(output.mask, truth):
            stopped_at, reason = k, "perfect"
            break
        context = ClickContext(prediction=output, clicks_xy=clicks, click_labels=labels, box_xy=first.prompt.box_xy,
                               valid=~clicked, rng=rng, interaction=k,
                               ground_truth=truth if policy.uses_ground_truth else None, prompt=prompt,
                               model=model, embedding=embedding)
        start = time.perf_counter()
        next_prompt = policy.next_prompt(context, answer)
        chosen = time.perf_counter()
        if next_prompt is None:
            stopped_at, reason = k, "no_click"
            break
        prompt = next_prompt
        x, y = (int(v) for v in prompt.points_xy[-1])
        on_error = np.append(on_error, float(output.mask[y, x] != truth[y, x]))
        output = model.predict(embedding, prompt.points_xy, prompt.labels, prompt.box_xy, prompt.mask_input)
        done = time.perf_counter()
        clicks, labels = prompt.points_xy.astype(np.int64), prompt.labels.astype(np.int64)
        interaction_of = np.append(interaction_of, k)
        clicked[clicks[-1, 1], clicks[-1, 0]] = True
        iou[k - 1], dice[k - 1] = _score(output, truth)
        seconds[k - 1], policy_s[k - 1], model_s[k - 1] = done - start, chosen - start, done - chosen
    if stopped_at is not None:
        iou[stopped_at - 1:] = iou[stopped_at - 2]
        dice[stopped_at - 1:] = dice[stopped_at - 2]
    return SessionResult(iou=iou, dice=dice, clicks_xy=clicks, click_labels=labels, click_interaction=interaction_of,
                         seconds=seconds, policy_seconds=policy_s, model_seconds=model_s, stopped_at=stopped_at,
                         stop_reason=reason, click_on_error=on_error)
