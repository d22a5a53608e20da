"""The stop rule: by hand on recorded curves, and online in the evaluation harness with a UsamModel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.interaction.policies import make_policy
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.sam.predictor import SamPredictor
from monai_baldsam.usam import StoppingPolicy, StopRule, UsamModel, stopping_outcomes
from monai_baldsam.usam.model import UsamConfig, UsamHeads


def test_stop_rule_by_hand():
    rule = StopRule(target_iou=0.9)
    assert rule.stop_index(np.array([0.5, 0.89, 0.9, 0.95])) == 3
    assert rule.stop_index(np.array([0.5, 0.6])) is None
    assert StopRule(0.9, min_interaction=3).stop_index(np.array([0.95, 0.95, 0.95])) == 3
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="target_iou"):
            StopRule(bad)
    with pytest.raises(ValueError, match="min_interaction"):
        StopRule(0.9, min_interaction=0)


def test_stopping_outcomes_by_hand():
    predicted = np.array([[0.80, 0.92, 0.95, 0.96],    # stops at 2, truth 0.91 there: fine
                          [0.91, 0.93, 0.94, 0.95],    # stops at 1, truth 0.70: too early
                          [0.50, 0.60, 0.70, 0.80]])   # never stops; truth reaches 0.9 at 3: missed
    true = np.array([[0.70, 0.91, 0.93, 0.93],
                     [0.70, 0.85, 0.92, 0.93],
                     [0.60, 0.80, 0.90, 0.92]])
    out = stopping_outcomes(predicted, true, StopRule(0.9))
    assert out["stops"] == [2, 1, 4]
    assert out["clicks_saved"] == [2, 3, 0] and out["mean_clicks_saved"] == pytest.approx(5 / 3)
    assert out["stopped"] == 2 and out["too_early"] == 1 and out["too_early_fraction"] == 0.5
    assert out["missed"] == 1
    assert out["true_iou_at_stop"] == pytest.approx((0.91 + 0.70 + 0.92) / 3)
    assert out["oracle_stop"] == [2, 3, 3]
    with pytest.raises(ValueError, match="same shape"):
        stopping_outcomes(predicted, true[:, :2], StopRule())


def _usam(tiny_vit, iou_bias: float) -> UsamModel:
    torch.manual_seed(0)
    heads = UsamHeads(UsamConfig.for_decoder(tiny_vit.mask_decoder, hidden=8))
    with torch.no_grad():
        last = heads.heads["iou"][-1]
        last.weight.zero_()
        last.bias.fill_(iou_bias)  # a constant predicted IoU: sigmoid(bias)
    return UsamModel(SamClickModel(SamPredictor(tiny_vit)), heads.eval())


def _session(model, policy, n: int = 4):
    truth = np.zeros((48, 64), dtype=bool)
    truth[10:30, 12:40] = True
    embedding = model.encode(torch.rand((1, 3, 48, 64), generator=torch.Generator().manual_seed(0)))
    rng = np.random.default_rng(0)
    first = run_first_interaction(model, embedding, make_first_prompt(truth, "box", rng))
    return run_session(model, embedding, truth, policy, first, n, rng)


def test_stopping_policy_online(tiny_vit):
    confident = _usam(tiny_vit, 10.0)   # predicted IoU ~ 1: stops after the first prompt
    result = _session(confident, StoppingPolicy(make_policy("oracle"), StopRule(0.9)))
    assert result.stopped_at == 2 and result.stop_reason == "no_click"
    assert confident.last_quality is not None and confident.last_quality.iou > 0.99
    doubtful = _usam(tiny_vit, -10.0)   # predicted IoU ~ 0: never stops, the oracle keeps clicking
    result = _session(doubtful, StoppingPolicy(make_policy("oracle"), StopRule(0.9)))
    assert result.stop_reason != "no_click" and len(result.clicks_xy) >= 1
    # offline, on the predicted curve of the confident model, the rule stops at interaction 1 as it did online
    assert StopRule(0.9).stop_index(np.array([confident.last_quality.iou])) == 1


def test_stopping_policy_needs_quality(tiny_vit):
    result_model = SamClickModel(SamPredictor(tiny_vit))
    with pytest.raises(ValueError, match="predicts mask quality"):
        _session(result_model, StoppingPolicy(make_policy("oracle")))
