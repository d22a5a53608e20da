"""The one-shot baseline on tiny synthetic masks with a fake click model: points inside the ground-truth interior,
seeded, nested over budgets, decoded with no feedback, and run by the runner like any policy; and the error-pixel
flags every session records for its clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_baldsam.evaluation import evaluate
from monai_baldsam.evaluation.report import run_summary
from monai_baldsam.interaction import (
    ModelOutput,
    OneShotPolicy,
    make_first_prompt,
    make_policy,
    one_shot_points,
    run_first_interaction,
    run_session,
)
from monai_baldsam.interaction.geometry import padded_distance_transform
from monai_baldsam.interaction.one_shot import interior_candidates, interior_order
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.predictor import SliceEmbedding

HW = (20, 28)


class DiscModel:
    """A fake click model: the box (if any) shrunk by one pixel on each side, plus a disc of radius ``radius`` at every
    positive click, minus one at every negative click. Records every prompt."""

    signature = "disc@test"

    def __init__(self, radius: float = 2.5) -> None:
        self.radius = radius
        self.calls: list[dict] = []

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        return SliceEmbedding(torch.zeros(1, 1, 1, 1), (int(image.shape[-2]), int(image.shape[-1])))

    def predict(self, embedding, point_coords_xy, point_labels, box_xy, mask_input) -> ModelOutput:
        h, w = embedding.original_hw
        mask = np.zeros((h, w), bool)
        if box_xy is not None:
            x0, y0, x1, y1 = (int(v) for v in box_xy)
            mask[y0 + 1:y1, x0 + 1:x1] = True
        yy, xx = np.mgrid[:h, :w]
        for (x, y), label in zip(np.asarray(point_coords_xy).reshape(-1, 2), np.asarray(point_labels).reshape(-1)):
            mask[(yy - y) ** 2 + (xx - x) ** 2 <= self.radius ** 2] = bool(label)
        self.calls.append({"points": np.asarray(point_coords_xy).reshape(-1, 2).copy(),
                           "labels": np.asarray(point_labels).reshape(-1).copy(),
                           "box": None if box_xy is None else np.asarray(box_xy).copy(), "mask_input": mask_input,
                           "mask": mask.copy()})
        return ModelOutput(mask.astype(np.float32), mask, torch.full((1, 1, 4, 4), float(len(self.calls))))


def _truth() -> np.ndarray:
    """An L-shaped object: its box over-covers the missing corner."""
    truth = np.zeros(HW, bool)
    truth[3:17, 4:12] = True
    truth[11:17, 4:24] = True
    return truth


def _session(model: DiscModel, truth: np.ndarray, first: str, n: int, seed: int, policy: str = "one_shot"):
    embedding = model.encode(torch.zeros(1, 3, *truth.shape))
    prompt = make_first_prompt(truth, first, np.random.default_rng(0))
    first_interaction = run_first_interaction(model, embedding, prompt)
    return run_session(model, embedding, truth, make_policy(policy), first_interaction, n, np.random.default_rng(seed))


def test_interior_leaves_out_the_boundary_ring_and_falls_back_on_thin_masks() -> None:
    truth = _truth()
    interior = interior_candidates(truth)
    depth = padded_distance_transform(truth[None])[0]
    assert interior.any() and not (interior & ~truth).any()
    np.testing.assert_array_equal(interior, depth >= 2)
    assert not interior[3, 4:12].any() and interior[4, 5:11].all()  # the top row is boundary, the next one not
    line = np.zeros(HW, bool)
    line[5, 3:20] = True  # one pixel thin: nothing is 2 px deep
    np.testing.assert_array_equal(interior_candidates(line), line)
    with pytest.raises(ValueError, match="empty"):
        interior_candidates(np.zeros(HW, bool))
    with pytest.raises(ValueError, match="min_depth_px"):
        interior_candidates(truth, -1)


def test_points_inside_seeded_distinct_and_nested() -> None:
    truth = _truth()
    interior = interior_candidates(truth)
    points = one_shot_points(truth, 9, np.random.default_rng(1))
    assert points.shape == (9, 2) and points.dtype == np.int64
    assert interior[points[:, 1], points[:, 0]].all()
    assert len({tuple(p) for p in points.tolist()}) == 9
    np.testing.assert_array_equal(points, one_shot_points(truth, 9, np.random.default_rng(1)))
    assert not np.array_equal(points, one_shot_points(truth, 9, np.random.default_rng(2)))
    np.testing.assert_array_equal(one_shot_points(truth, 4, np.random.default_rng(1)), points[:4])  # nested
    order = interior_order(truth, np.random.default_rng(1))
    assert len(order) == interior.sum()  # every interior pixel once
    assert one_shot_points(truth, 10_000, np.random.default_rng(1)).shape == (interior.sum(), 2)
    with pytest.raises(ValueError, match="Generator"):
        one_shot_points(truth, 3, 0)  # type: ignore[arg-type]


def test_uniform_over_the_interior() -> None:
    truth = _truth()
    interior = interior_candidates(truth)
    counts = np.zeros(HW)
    for seed in range(400):
        x, y = one_shot_points(truth, 1, np.random.default_rng(seed))[0]
        counts[y, x] += 1
    upper = interior[:11].sum() / interior.sum()  # the share of the interior in the L's vertical bar (rows < 11)
    assert counts[:11].sum() / 400 == pytest.approx(upper, abs=0.08)


@pytest.mark.parametrize("first", ["box", "click"])
def test_session_feeds_no_mask_back_and_adds_the_drawn_points(first: str) -> None:
    truth, model, n = _truth(), DiscModel(), 6
    result = _session(model, truth, first, n, seed=3)
    calls = model.calls
    assert len(calls) == n and result.stopped_at is None
    assert all(call["mask_input"] is None for call in calls)  # no feedback at any budget
    first_points = 0 if first == "box" else 1
    drawn = calls[-1]["points"][first_points:]
    for k, call in enumerate(calls, start=1):
        assert len(call["points"]) == first_points + k - 1  # box + k-1 points, or k points
        np.testing.assert_array_equal(call["points"][first_points:], drawn[:k - 1])  # nested budgets
        assert (call["labels"] == 1).all()
        if first == "box":
            np.testing.assert_array_equal(call["box"], calls[0]["box"])
        else:
            assert call["box"] is None
            np.testing.assert_array_equal(call["points"][0], calls[0]["points"][0])  # the shared first click
    interior = interior_candidates(truth)
    assert interior[drawn[:, 1].astype(int), drawn[:, 0].astype(int)].all()
    first_click = calls[0]["points"].tolist()
    expected = [p for p in interior_order(truth, np.random.default_rng(3)).tolist() if p not in first_click]
    np.testing.assert_array_equal(drawn, expected[:n - 1])  # the session's generator, drawn once at interaction 2
    iou = [(c["mask"] & truth).sum() / (c["mask"] | truth).sum() for c in calls]
    np.testing.assert_allclose(result.iou, iou)


def test_seeds_reproduce_and_differ() -> None:
    truth = _truth()
    a, b, c = (_session(DiscModel(), truth, "click", 5, seed) for seed in (4, 4, 5))
    np.testing.assert_array_equal(a.clicks_xy, b.clicks_xy)
    np.testing.assert_array_equal(a.iou, b.iou)
    assert not np.array_equal(a.clicks_xy, c.clicks_xy)


def test_a_small_interior_runs_out_of_points_and_keeps_its_iou() -> None:
    truth = np.zeros(HW, bool)
    truth[5:10, 5:10] = True  # a 5 x 5 square: 9 pixels are 2 px deep
    model = DiscModel(radius=0.5)
    result = _session(model, truth, "box", 14, seed=0)
    assert result.stopped_at == 11 and result.stop_reason == "no_click"  # box + 9 points, then nothing left
    assert len(model.calls) == 10
    np.testing.assert_array_equal(result.iou[10:], result.iou[9])


def test_one_instance_redraws_for_each_session() -> None:
    policy, truth = OneShotPolicy(), _truth()
    runs = []
    for seed in (1, 2, 1):
        model = DiscModel()
        embedding = model.encode(torch.zeros(1, 3, *HW))
        first = run_first_interaction(model, embedding, make_first_prompt(truth, "box", np.random.default_rng(0)))
        runs.append(run_session(model, embedding, truth, policy, first, 4, np.random.default_rng(seed)).clicks_xy)
    np.testing.assert_array_equal(runs[0], runs[2])
    assert not np.array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="min_depth_px"):
        OneShotPolicy(min_depth_px=-0.5)


@pytest.mark.parametrize("policy", ["one_shot", "random", "oracle", "random_error"])
def test_clicks_on_error_flags_match_the_mask_before_each_click(policy: str) -> None:
    truth, model = _truth(), DiscModel()
    result = _session(model, truth, "box", 6, seed=2, policy=policy)
    flags = result.click_on_error
    assert flags is not None and flags.shape == (len(result.clicks_xy),)
    assert np.isnan(flags[result.click_interaction == 1]).all()  # no mask before the first prompt
    for (x, y), k, flag in zip(result.clicks_xy, result.click_interaction, flags):
        if k >= 2:
            before = model.calls[k - 2]["mask"]
            assert flag == float(before[y, x] != truth[y, x])
    if policy in ("oracle", "random_error"):  # they click errors by construction
        assert np.nansum(flags) == (result.click_interaction >= 2).sum() > 0


def _write_case(folder: Path, name: str, truth: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    pixels = np.random.default_rng(len(name)).integers(0, 255, (*truth.shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "images" / f"{name}.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(folder / "masks" / f"{name}.png")


def test_runner_treats_one_shot_like_a_policy(tmp_path: Path) -> None:
    for name, shift in (("a", 0), ("b", 2), ("c", 4)):
        _write_case(tmp_path, name, np.roll(_truth(), shift, axis=1))
    cases = discover_cases(tmp_path)
    runs = evaluate(cases, DiscModel(), ["one_shot", "oracle"], ["box", "click"], n_interactions=5, seed=1,
                    progress=False)
    for first in ("box", "click"):
        shot, oracle = runs[(first, "one_shot")], runs[(first, "oracle")]
        assert shot.iou_curves().shape == oracle.iou_curves().shape == (3, 5)
        np.testing.assert_array_equal(shot.iou_curves()[:, 0], oracle.iou_curves()[:, 0])  # shared first prompt
    again = evaluate(cases, DiscModel(), ["one_shot"], ["box"], n_interactions=5, seed=1, progress=False)
    np.testing.assert_array_equal(again[("box", "one_shot")].iou_curves(), runs[("box", "one_shot")].iou_curves())
    other = evaluate(cases, DiscModel(), ["one_shot"], ["box"], n_interactions=5, seed=2, progress=False)
    assert not all(np.array_equal(x.session.clicks_xy, y.session.clicks_xy)
                   for x, y in zip(other[("box", "one_shot")].cases, runs[("box", "one_shot")].cases))
    summary = run_summary(runs[("box", "one_shot")])
    assert summary["policy"] == "one_shot" and len(summary["miou_curve"]) == 5
    counted = summary["clicks_on_error"]
    flags = [f for item in summary["per_image"] for f in item["clicks_on_error"]]
    assert counted["clicks"] == 3 * 4 == len(flags)  # box first: four points per image, all flagged
    assert counted["on_error"] == sum(flags) and counted["share"] == pytest.approx(sum(flags) / len(flags))
    oracle_summary = run_summary(runs[("click", "oracle")])
    assert oracle_summary["clicks_on_error"]["share"] == 1.0
    assert all(item["clicks_on_error"][0] is None for item in oracle_summary["per_image"])  # the first click
