"""Stop suggesting clicks once the mask is predicted good enough: predicted IoU >= a target.

* :class:`StopRule`: the rule itself (target IoU, and the first interaction from which it may stop).
* :class:`StoppingPolicy`: any click policy behind the rule, for the evaluation harness: when the model's last
  prediction (a :class:`~monai_baldsam.usam.scorer.UsamModel`, whose ``last_quality`` belongs to the prediction the
  policy is looking at) is predicted good enough it places no click, which ends the session (``stop_reason``
  ``"no_click"``).
* :func:`stopping_outcomes`: the same rule applied to recorded curves of predicted and true IoU per interaction
  (sessions run to the budget without stopping): where it stops, how many clicks it saves, and how often it stops
  too early (true IoU below the target when it stops). The rule depends only on the predicted IoU at each
  interaction, so stopping online and truncating a recorded session give the same stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monai_baldsam.interaction.policies import Click, ClickContext, ClickPolicy

__all__ = ["StopRule", "StoppingPolicy", "stopping_outcomes"]


@dataclass(frozen=True)
class StopRule:
    """Stop when the predicted IoU is at least ``target_iou``, from interaction ``min_interaction`` on.

    Interactions are counted as in the evaluation (the first prompt is interaction 1).
    """

    target_iou: float = 0.9
    min_interaction: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.target_iou <= 1.0:
            raise ValueError(f"target_iou must be in (0, 1], got {self.target_iou}")
        if self.min_interaction < 1:
            raise ValueError(f"min_interaction must be at least 1 (the first prompt), got {self.min_interaction}")

    def should_stop(self, predicted_iou: float, interaction: int) -> bool:
        """Whether to stop after ``interaction`` whose mask has ``predicted_iou``."""
        return interaction >= self.min_interaction and float(predicted_iou) >= self.target_iou

    def stop_index(self, predicted_curve: np.ndarray) -> int | None:
        """The first interaction (1-based) at which the rule stops, or None when it never does."""
        for k, value in enumerate(np.asarray(predicted_curve, dtype=np.float64).reshape(-1), start=1):
            if self.should_stop(float(value), k):
                return k
        return None


class StoppingPolicy(ClickPolicy):
    """``inner`` behind a :class:`StopRule`: no click once the current mask's predicted IoU reaches the target.

    The session's model must be a :class:`~monai_baldsam.usam.scorer.UsamModel` (its ``last_quality`` is read).
    """

    def __init__(self, inner: ClickPolicy, rule: StopRule | None = None) -> None:
        self.inner = inner
        self.rule = rule or StopRule()
        self.name = f"{inner.name}+stop@{self.rule.target_iou:g}"  # type: ignore[misc]
        self.uses_ground_truth = inner.uses_ground_truth  # type: ignore[misc]
        self.requires_extras = inner.requires_extras  # type: ignore[misc]

    def choose(self, context: ClickContext) -> Click | None:
        quality = getattr(context.model, "last_quality", None)
        if quality is None:
            raise ValueError(f"{self.name} needs a model that predicts mask quality (monai_baldsam.usam.UsamModel); "
                             f"got {type(context.model).__name__}")
        if self.rule.should_stop(quality.iou, context.interaction - 1):
            return None
        return self.inner.choose(context)


def stopping_outcomes(predicted: np.ndarray, true: np.ndarray, rule: StopRule) -> dict[str, Any]:
    """The stop rule on recorded sessions.

    Args:
        predicted, true: ``(n_images, N)`` predicted and true IoU after each interaction (sessions run to the
            budget ``N`` without stopping).
        rule: the :class:`StopRule`.

    Returns:
        ``stops`` (per image: the interaction it stops at, ``N`` when it never stops), ``clicks_saved`` (``N - stop``
        per image and their mean), ``stopped`` (how many images stop before the budget), ``too_early`` (stopped with a
        true IoU below the target; count and fraction of the images that stop), ``missed`` (never stopped although
        the true IoU reached the target at some interaction), ``true_iou_at_stop`` (mean), ``final_true_iou`` (mean
        true IoU at the budget), and ``oracle_stop`` (the first interaction whose true IoU reaches the target, ``N``
        when none, for comparison).
    """
    pred = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(true, dtype=np.float64)
    if pred.shape != truth.shape or pred.ndim != 2 or pred.shape[1] < 1:
        raise ValueError(f"predicted and true must be (n_images, N) of the same shape, got {pred.shape} and "
                         f"{truth.shape}")
    n = pred.shape[1]
    stops, early, reached_unstopped, iou_at_stop, oracle = [], [], [], [], []
    for p_curve, t_curve in zip(pred, truth):
        stop = rule.stop_index(p_curve)
        reached = np.flatnonzero(t_curve >= rule.target_iou)
        oracle.append(int(reached[0]) + 1 if reached.size else n)
        if stop is None:
            stops.append(n)
            early.append(False)
            reached_unstopped.append(bool(reached.size))
            iou_at_stop.append(float(t_curve[-1]))
        else:
            stops.append(stop)
            early.append(bool(t_curve[stop - 1] < rule.target_iou))
            reached_unstopped.append(False)
            iou_at_stop.append(float(t_curve[stop - 1]))
    stops_a = np.asarray(stops)
    stopped = int(sum(rule.stop_index(p) is not None for p in pred))
    n_early = int(np.sum(early))
    return {"target_iou": rule.target_iou, "n_images": int(pred.shape[0]), "budget": n,
            "stops": stops_a.tolist(), "clicks_saved": (n - stops_a).tolist(),
            "mean_clicks_saved": float(np.mean(n - stops_a)) if len(stops_a) else 0.0,
            "stopped": stopped, "too_early": n_early,
            "too_early_fraction": n_early / stopped if stopped else 0.0,
            "missed": int(np.sum(reached_unstopped)),
            "true_iou_at_stop": float(np.mean(iou_at_stop)) if iou_at_stop else 0.0,
            "final_true_iou": float(truth[:, -1].mean()) if len(truth) else 0.0,
            "oracle_stop": oracle, "mean_oracle_stop": float(np.mean(oracle)) if oracle else 0.0}
