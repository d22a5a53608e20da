"""The simulated session with a fake model: prompts fed back, early stops, ground truth hidden from GT-free policies,
seeded policies, the registry and the runner's sharing of embeddings and first prompts."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.evaluation import evaluate, session_rng
from monai_baldsam.interaction import (
    Click,
    ClickContext,
    ClickModel,
    ClickPolicy,
    FirstPrompt,
    ModelOutput,
    available_policies,
    make_first_prompt,
    make_policy,
    parse_policy_names,
    register_policy,
    run_first_interaction,
    run_session,
)
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.predictor import SliceEmbedding


class SquareModel:
    """A fake click model: the box region (if any), plus a (2r+1)^2 square at every positive click, minus one at every
    negative click. Records every prompt it gets."""

    signature = "square@test"

    def __init__(self, radius: int = 2, hw: tuple[int, int] = (24, 32)) -> None:
        self.radius = radius
        self.hw = hw
        self.calls: list[dict] = []
        self.encoded = 0

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        self.encoded += 1
        return SliceEmbedding(torch.zeros(1, 1, 1, 1), (int(image.shape[-2]), int(image.shape[-1])))

    def predict(self, embedding, point_coords_xy, point_labels, box_xy, mask_input) -> ModelOutput:
        h, w = embedding.original_hw
        mask = np.zeros((h, w), bool)
        if box_xy is not None:
            x0, y0, x1, y1 = (int(v) for v in box_xy)
            mask[y0:y1 + 1, x0:x1 + 1] = True
        r = self.radius
        for (x, y), lab in zip(np.asarray(point_coords_xy).reshape(-1, 2).astype(int), np.asarray(point_labels)):
            mask[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] = bool(lab)
        low_res = torch.full((1, 1, 4, 4), float(len(self.calls)))
        self.calls.append({"points": np.asarray(point_coords_xy).copy(), "labels": np.asarray(point_labels).copy(),
                           "box": None if box_xy is None else np.asarray(box_xy).copy(), "mask_input": mask_input,
                           "low_res": low_res})
        return ModelOutput(probability=mask.astype(np.float32), mask=mask, low_res_logits=low_res)


def _truth(hw: tuple[int, int] = (24, 32)) -> np.ndarray:
    truth = np.zeros(hw, bool)
    truth[4:16, 6:22] = True
    return truth


def _session(model, truth, policy, first="click", n=6, seed=0):
    embedding = model.encode(torch.zeros(1, 3, *truth.shape))
    prompt = make_first_prompt(truth, first, np.random.default_rng(seed))
    first_i = run_first_interaction(model, embedding, prompt)
    return run_session(model, embedding, truth, policy, first_i, n, np.random.default_rng(seed))


def test_fake_model_satisfies_the_protocol() -> None:
    assert isinstance(SquareModel(), ClickModel)


def test_prompt_accumulates_box_clicks_and_previous_logits() -> None:
    model, truth = SquareModel(), _truth()
    truth[8:12, 10:14] = False  # a hole: the box over-segments it
    result = _session(model, truth, make_policy("oracle"), first="box", n=4)
    calls = model.calls
    assert result.stopped_at is None and len(calls) == 4
    for k, call in enumerate(calls):
        np.testing.assert_array_equal(call["box"], [6, 4, 21, 15])  # the first box, every time
        assert len(call["points"]) == k  # all clicks so far, one more each time
        if k == 0:
            assert call["mask_input"] is None
        else:
            assert call["mask_input"] is calls[k - 1]["low_res"]  # the previous low-res logits fed back
    assert result.clicks_xy.shape == (len(calls) - 1, 2)
    assert result.click_interaction.tolist() == list(range(2, len(calls) + 1))
    assert result.click_labels[0] == 0  # the first oracle click removes the hole's false positives


def test_first_click_session_and_no_repeated_clicks() -> None:
    model, truth = SquareModel(radius=1), _truth()
    result = _session(model, truth, make_policy("oracle"), first="click", n=8)
    assert result.clicks_xy[0].tolist() == [11, 9]  # farthest from the boundary (first in row-major among ties)
    assert result.click_labels[0] == 1 and result.click_interaction[0] == 1
    assert len({tuple(p) for p in result.clicks_xy.tolist()}) == len(result.clicks_xy)
    assert result.iou.shape == (8,) and np.all(np.diff(result.iou) >= -1e-12)  # squares only add foreground here


def test_perfect_first_prediction_stops_and_keeps_the_iou() -> None:
    model, truth = SquareModel(), _truth()  # the box model is exact for a rectangle
    result = _session(model, truth, make_policy("oracle"), first="box", n=5)
    assert result.stopped_at == 2 and result.stop_reason == "perfect"
    np.testing.assert_array_equal(result.iou, np.ones(5))
    assert len(model.calls) == 1
    assert np.isnan(result.seconds[1:]).all()


class NoClickPolicy(ClickPolicy):
    name = "no_click_test"

    def choose(self, context: ClickContext) -> Click | None:
        return None


def test_policy_without_a_click_ends_the_session() -> None:
    model, truth = SquareModel(), _truth()
    result = _session(model, truth, NoClickPolicy(), first="click", n=4)
    assert result.stopped_at == 2 and result.stop_reason == "no_click"
    assert np.all(result.iou == result.iou[0]) and result.iou[0] < 1


class CornerPolicy(ClickPolicy):
    """GT-free: clicks the first valid pixel of the row-major order and leaves the polarity to the user."""

    name = "corner_test"
    uses_ground_truth = False
    seen: ClassVar[list] = []

    def choose(self, context: ClickContext) -> Click | None:
        CornerPolicy.seen.append(context.ground_truth)
        y, x = np.argwhere(context.valid)[0]
        return Click((int(x), int(y)), None)


def test_ground_truth_is_hidden_and_the_user_answers_polarity() -> None:
    CornerPolicy.seen = []
    model, truth = SquareModel(), _truth()
    result = _session(model, truth, CornerPolicy(), first="click", n=4)
    assert CornerPolicy.seen and all(gt is None for gt in CornerPolicy.seen)
    assert result.clicks_xy[1:].tolist() == [[0, 0], [1, 0], [2, 0]]
    assert result.click_labels[1:].tolist() == [0, 0, 0]  # background, answered from the truth


class NeedsMapPolicy(CornerPolicy):
    name = "needs_map_test"
    requires_extras = ("mutual_information",)


def test_missing_model_maps_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mutual_information"):
        _session(SquareModel(), _truth(), NeedsMapPolicy(), first="click", n=3)


def test_seeded_policies_reproducible_and_seed_dependent() -> None:
    truth = _truth()
    for name in ("random", "random_error"):
        a = _session(SquareModel(radius=0), truth, make_policy(name), first="click", n=6, seed=1)
        b = _session(SquareModel(radius=0), truth, make_policy(name), first="click", n=6, seed=1)
        c = _session(SquareModel(radius=0), truth, make_policy(name), first="click", n=6, seed=2)
        np.testing.assert_array_equal(a.clicks_xy, b.clicks_xy)
        np.testing.assert_array_equal(a.iou, b.iou)
        assert not np.array_equal(a.clicks_xy, c.clicks_xy)
    rng = session_rng(0, "case", "policy:random")
    assert rng.integers(1 << 30) == session_rng(0, "case", "policy:random").integers(1 << 30)
    assert session_rng(0, "case", "policy:random").integers(1 << 30) != \
        session_rng(0, "case", "policy:oracle").integers(1 << 30)


def test_first_prompt_box_jitter_and_errors() -> None:
    truth = _truth()
    exact = make_first_prompt(truth, FirstPrompt.BOX, np.random.default_rng(0))
    np.testing.assert_array_equal(exact.box_xy, [6, 4, 21, 15])
    assert exact.points_xy.shape == (0, 2)
    j1 = make_first_prompt(truth, "box", np.random.default_rng(5), box_jitter=0.2)
    j2 = make_first_prompt(truth, "box", np.random.default_rng(5), box_jitter=0.2)
    np.testing.assert_array_equal(j1.box_xy, j2.box_xy)
    with pytest.raises(ValueError, match="empty"):
        make_first_prompt(np.zeros((4, 4), bool), "box", np.random.default_rng(0))
    with pytest.raises(ValueError, match="box"):
        make_first_prompt(truth, "click", np.random.default_rng(0), box_jitter=0.1)
    with pytest.raises(ValueError):
        make_first_prompt(truth, "lasso", np.random.default_rng(0))


def test_registry() -> None:
    assert {"oracle", "random_error", "random"} <= set(available_policies())
    assert make_policy("oracle").uses_ground_truth and not make_policy("random").uses_ground_truth
    assert parse_policy_names(["oracle, random", "oracle", "random_error"]) == ["oracle", "random", "random_error"]
    with pytest.raises(ValueError, match="unknown click policy"):
        make_policy("bald_typo")
    with pytest.raises(ValueError, match="already registered"):
        register_policy("oracle", NoClickPolicy)


def _write_case(folder: Path, name: str, truth: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(len(name))
    Image.fromarray(rng.integers(0, 255, (*truth.shape, 3), dtype=np.uint8)).save(folder / "images" / f"{name}.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(folder / "masks" / f"{name}.png")


def test_runner_shares_embeddings_and_first_prompts(tmp_path: Path) -> None:
    truth = _truth()
    truth[8:12, 10:14] = False
    for name in ("a", "b", "c"):
        _write_case(tmp_path, name, truth)
    cases = discover_cases(tmp_path)
    model = SquareModel()
    runs = evaluate(cases, model, ["random", "oracle"], ["box", "click"], n_interactions=4, seed=3, progress=False)
    assert model.encoded == 3  # once per image for 4 runs
    assert list(runs) == [("box", "random"), ("box", "oracle"), ("click", "random"), ("click", "oracle")]
    for first in ("box", "click"):
        np.testing.assert_array_equal(runs[(first, "random")].iou_curves()[:, 0],
                                      runs[(first, "oracle")].iou_curves()[:, 0])
    # a policy's result does not depend on which other policies run, nor on --limit
    alone = evaluate(cases[:2], SquareModel(), ["oracle"], ["box"], n_interactions=4, seed=3, progress=False)
    np.testing.assert_array_equal(alone[("box", "oracle")].iou_curves(), runs[("box", "oracle")].iou_curves()[:2])
    with pytest.raises(ValueError, match="box"):
        evaluate(cases, model, ["oracle"], ["click"], 4, box_jitter=0.1, progress=False)


class QueryPolicy(ClickPolicy):
    """GT-free, like BALD: asks the model about a candidate click before choosing it."""

    name = "query_test"
    seen: ClassVar[list] = []

    def choose(self, context: ClickContext) -> Click | None:
        assert context.model is not None and context.embedding is not None and context.prompt is not None
        QueryPolicy.seen.append((len(context.prompt.points_xy), context.prompt.mask_input))
        y, x = np.argwhere(context.valid)[-1]
        candidate = np.concatenate([context.prompt.points_xy, [[x, y]]])
        out = context.model.predict(context.embedding, candidate, np.append(context.prompt.labels, 1),
                                    context.prompt.box_xy, context.prediction.low_res_logits)
        assert out.mask.shape == context.valid.shape
        return Click((int(x), int(y)))


def test_policies_can_query_the_model_with_the_current_prompt() -> None:
    QueryPolicy.seen = []
    model = SquareModel()
    result = _session(model, _truth(), QueryPolicy(), first="click", n=3)
    assert [n for n, _ in QueryPolicy.seen] == [1, 2]  # the prompt behind the current prediction
    assert QueryPolicy.seen[1][1] is not None
    assert len(model.calls) == 1 + 2 * 2  # first prompt, then one query and one prediction per click
    assert result.policy_seconds[1] > 0
