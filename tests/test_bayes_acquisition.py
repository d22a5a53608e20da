"""Property and known-value tests of the acquisition scores (seeded random sweeps; hypothesis is not installed)."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch

from monai_baldsam.bayes.acquisition import (
    UNCERTAINTY_KEYS,
    binary_entropy,
    expected_entropy,
    gaussian_logit_uncertainty_maps,
    masked_argmax,
    mutual_information,
    predictive_entropy,
    uncertainty_maps,
)

LOG2 = math.log(2.0)


def _random_probs(seed: int) -> torch.Tensor:
    """(S, B, H, W) probabilities with random shape, mixing exact 0, 1, 0.5 and continuous values."""
    g = torch.Generator().manual_seed(seed)
    s, b, h, w = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 9), (1, 4), (1, 6), (1, 6)))
    probs = torch.rand(s, b, h, w, generator=g, dtype=torch.float64)
    special = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    pick = torch.rand(s, b, h, w, generator=g) < 0.2
    probs[pick] = special[torch.randint(0, 3, (int(pick.sum()),), generator=g)]
    if seed % 3 == 0:  # squash towards the extremes, where the entropies nearly cancel
        probs = probs**6
    return probs


@pytest.mark.parametrize("seed", range(40))
def test_bald_properties_on_random_samples(seed: int) -> None:
    probs = _random_probs(seed)
    mi = mutual_information(probs)
    pred = predictive_entropy(probs)
    exp = expected_entropy(probs)
    assert mi.shape == probs.shape[1:]
    assert bool((mi >= 0).all())
    assert bool((mi <= pred + 1e-12).all())
    assert bool((exp >= 0).all()) and bool((pred <= LOG2 + 1e-12).all())
    torch.testing.assert_close(mi, (pred - exp).clamp_min(0.0), rtol=0, atol=1e-12)
    maps = uncertainty_maps(probs)
    assert tuple(maps) == UNCERTAINTY_KEYS
    torch.testing.assert_close(maps["mean_probability"], probs.mean(0))
    torch.testing.assert_close(maps["predictive_entropy"], pred)
    torch.testing.assert_close(maps["expected_entropy"], exp)
    torch.testing.assert_close(maps["mutual_information"], mi)


@pytest.mark.parametrize("seed", range(10))
def test_bald_is_zero_when_all_samples_agree(seed: int) -> None:
    common = _random_probs(seed)[0]
    probs = common.expand(7, *common.shape)
    # exactly 0 up to the round-off of averaging S equal floats
    torch.testing.assert_close(mutual_information(probs), torch.zeros_like(common), rtol=0, atol=1e-15)
    torch.testing.assert_close(predictive_entropy(probs), binary_entropy(common), rtol=0, atol=1e-15)


def test_bald_is_positive_when_samples_disagree() -> None:
    probs = torch.tensor([0.2, 0.7], dtype=torch.float64).view(2, 1, 1, 1)
    assert float(mutual_information(probs)) > 0.01


def test_known_value_for_samples_point1_point9() -> None:
    # H[E p] = H(0.5) = ln 2 = 0.6931472; E H[p] = H(0.1) = 0.1 ln 10 + 0.9 ln(10/9) = 0.2302585 + 0.0948245.
    probs = torch.tensor([0.1, 0.9], dtype=torch.float64).view(2, 1, 1, 1)
    assert float(predictive_entropy(probs)) == pytest.approx(0.6931472, abs=1e-7)
    assert float(expected_entropy(probs)) == pytest.approx(0.3250830, abs=1e-7)
    assert float(mutual_information(probs)) == pytest.approx(0.3680642, abs=1e-7)


def test_binary_entropy_extremes_and_maximum() -> None:
    p = torch.linspace(0.0, 1.0, 1001, dtype=torch.float64)
    h = binary_entropy(p)
    assert h[0].item() == 0.0 and h[-1].item() == 0.0
    assert not bool(torch.isnan(h).any())
    assert int(torch.argmax(h)) == 500 and h[500].item() == pytest.approx(LOG2, abs=1e-15)
    torch.testing.assert_close(h, h.flip(0))  # symmetric: H(p) = H(1 - p)
    assert binary_entropy(torch.tensor([0.3], dtype=torch.float32)).dtype == torch.float32


def test_shape_and_type_errors() -> None:
    with pytest.raises(ValueError, match="sample axis"):
        mutual_information(torch.rand(5))
    with pytest.raises(ValueError, match="floating-point"):
        predictive_entropy(torch.ones(2, 1, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="floating-point"):
        binary_entropy(torch.tensor([1, 0]))


def test_gaussian_logit_maps_match_monte_carlo() -> None:
    g = torch.Generator().manual_seed(3)
    mean = torch.tensor([[[-3.0, -0.5, 0.0, 0.4, 2.5]]], dtype=torch.float64)
    var = torch.tensor([[[0.0, 4.0, 1.0, 0.01, 9.0]]], dtype=torch.float64)
    maps = gaussian_logit_uncertainty_maps(mean, var)
    samples = torch.sigmoid(mean + var.sqrt() * torch.randn(200_000, *mean.shape, generator=g, dtype=torch.float64))
    reference = uncertainty_maps(samples)
    for key in UNCERTAINTY_KEYS:
        torch.testing.assert_close(maps[key], reference[key], rtol=0, atol=4e-3)
    assert float(maps["mutual_information"][0, 0, 0]) == 0.0  # zero variance: no epistemic uncertainty
    torch.testing.assert_close(maps["mean_probability"][0, 0, 0], torch.sigmoid(mean[0, 0, 0]))
    assert float(maps["mutual_information"][0, 0, 1]) > float(maps["mutual_information"][0, 0, 3])
    with pytest.raises(ValueError, match="same shape"):
        gaussian_logit_uncertainty_maps(mean, var[..., :2])
    with pytest.raises(ValueError, match="non-negative"):
        gaussian_logit_uncertainty_maps(mean, -var - 1)


def test_masked_argmax_respects_mask_and_frame() -> None:
    score = torch.zeros(2, 3, 5)
    score[0, 2, 4] = 9.0  # global maximum, but masked out
    score[0, 1, 3] = 5.0  # best valid pixel: row 1, column 3
    score[1, 0, 1] = 2.0
    valid = torch.ones(2, 3, 5, dtype=torch.bool)
    valid[0, 2, 4] = False
    xy = masked_argmax(score, valid)
    assert xy.dtype == torch.int64 and xy.tolist() == [[3, 1], [1, 0]]


def test_masked_argmax_ties_are_first_in_row_major_order() -> None:
    score = torch.zeros(1, 4, 4)
    score[0, 2, 1] = score[0, 1, 3] = score[0, 3, 0] = 1.0
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    assert masked_argmax(score, valid).tolist() == [[3, 1]]
    valid[0, 1, 3] = False
    assert masked_argmax(score, valid).tolist() == [[1, 2]]
    flat = torch.full((1, 3, 3), 0.25)  # all equal: the first valid pixel
    only_late = torch.zeros(1, 3, 3, dtype=torch.bool)
    only_late[0, 2, 1] = only_late[0, 2, 2] = True
    assert masked_argmax(flat, only_late).tolist() == [[1, 2]]


def test_masked_argmax_edge_values_and_errors() -> None:
    score = torch.full((1, 2, 2), -math.inf)
    valid = torch.tensor([[[False, False], [False, True]]])
    assert masked_argmax(score, valid).tolist() == [[1, 1]]  # a valid -inf still beats invalid pixels
    assert masked_argmax(torch.tensor([[[1, 7], [7, 2]]]), torch.ones(1, 2, 2, dtype=torch.bool)).tolist() == [[1, 0]]
    empty = torch.ones(2, 2, 2, dtype=torch.bool)
    empty[1] = False
    with pytest.raises(ValueError, match=r"batch items \[1\] have no valid pixel"):
        masked_argmax(torch.rand(2, 2, 2), empty)
    with pytest.raises(ValueError, match="bool"):
        masked_argmax(torch.rand(1, 2, 2), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        masked_argmax(torch.rand(1, 2, 2), torch.ones(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        masked_argmax(torch.tensor([[[float("nan"), 1.0]]]), torch.ones(1, 1, 2, dtype=torch.bool))


# ----------------------------------------------------------------- neighbourhood pooling and the best click
def test_neighbourhood_mean_matches_a_brute_force_window() -> None:
    from monai_baldsam.bayes.acquisition import neighbourhood_mean

    score = torch.rand((2, 7, 9), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pooled = neighbourhood_mean(score, 2)
    ref = torch.zeros_like(score)
    for y in range(7):
        for x in range(9):
            ref[:, y, x] = score[:, max(0, y - 2):y + 3, max(0, x - 2):x + 3].mean(dim=(1, 2))
    torch.testing.assert_close(pooled, ref)
    assert neighbourhood_mean(score, 0) is score
    with pytest.raises(ValueError, match="radius"):
        neighbourhood_mean(score, -1)


def test_best_click_prefers_a_wide_uncertain_region_and_respects_the_gate() -> None:
    from monai_baldsam.bayes.acquisition import best_click

    score = np.zeros((20, 20))
    score[2, 2] = 1.0  # one isolated spike
    score[10:16, 10:16] = 0.8  # a wide uncertain region
    valid = np.ones_like(score, dtype=bool)
    assert best_click(score, valid, radius=0)[0] == (2, 2)  # the pixel argmax takes the spike
    (y, x), pooled = best_click(score, valid, radius=2, gate=0.5)
    assert 10 <= y < 16 and 10 <= x < 16 and pooled == pytest.approx(0.8)
    ring = np.zeros((21, 21))
    ring[5, 5:16] = ring[15, 5:16] = ring[5:16, 5] = ring[5:16, 15] = 0.5  # boundary uncertainty around an object
    ring[15, 12] = 0.7
    (y, x), _ = best_click(ring, np.ones_like(ring, dtype=bool), radius=6, gate=0.0)
    assert 5 < y < 15 and 5 < x < 15 and ring[y, x] == 0.0  # without a gate: the confident middle
    (y, x), _ = best_click(ring, np.ones_like(ring, dtype=bool), radius=6, gate=0.5)
    assert ring[y, x] >= 0.35  # with it the click is on the uncertain ring
    stack = np.stack([np.zeros((5, 5)), np.pad(np.ones((1, 1)), 2)])
    blocked = np.ones_like(stack, dtype=bool)
    assert best_click(stack, blocked, radius=1, gate=0.5)[0] == (1, 2, 2)  # over a stack of slices
    blocked[1, 2, 2] = False
    assert best_click(stack, blocked, radius=1)[0] != (1, 2, 2)  # never an earlier click
    assert best_click(stack, np.zeros_like(blocked), radius=1) is None
    with pytest.raises(ValueError, match="gate"):
        best_click(score, valid, gate=1.5)


def test_best_click_equals_the_argmax_of_the_pooled_map_over_candidates() -> None:
    from monai_baldsam.bayes.acquisition import best_click, neighbourhood_mean

    rng = np.random.default_rng(3)
    for _ in range(5):
        score = rng.random((2, 23, 31)) ** 4
        valid = rng.random(score.shape) > 0.1
        for radius, gate in ((0, 0.0), (3, 0.0), (3, 0.6), (7, 0.9)):
            pooled = neighbourhood_mean(torch.from_numpy(score), radius).numpy()
            candidates = valid & (score >= gate * score[valid].max())
            expected = np.unravel_index(int(np.argmax(np.where(candidates, pooled, -np.inf))), score.shape)
            index, value = best_click(score.astype(np.float32), valid, radius, gate)
            assert index == tuple(int(v) for v in expected)
            assert value == pytest.approx(pooled[expected], rel=1e-5)


def test_best_region_click_takes_the_centre_of_the_heaviest_region_on_one_side_of_the_boundary() -> None:
    from monai_baldsam.bayes.acquisition import best_region_click

    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    score = np.zeros((40, 40))
    score[9:11, 10:30] = 0.6  # a thin band across the top edge (both sides): little mass
    score[30:38, 12:28] = 0.5  # a wide uncertain band outside the bottom edge: the most mass
    valid = np.ones_like(mask)
    (y, x), mass = best_region_click(score, valid, mask, gate=0.5)
    assert 30 <= y < 38 and 12 <= x < 28 and not mask[y, x]
    assert (y, x) == (33, 15)  # the band's deepest pixel (depth 4; the first in row-major order among them)
    assert mass == pytest.approx(0.5 * 8 * 16)
    # a region straddling the boundary is split: the click stays on one side, off the predicted edge
    straddle = np.zeros((40, 40))
    straddle[24:36, 14:26] = 0.5
    (y, x), _ = best_region_click(straddle, valid, mask, gate=0.5)
    assert (mask[y, x] and y < 29) or (not mask[y, x] and y > 30)
    # the gate drops weak pixels; nothing valid: None; already-clicked pixels are never chosen
    weak = score.copy()
    weak[0:8, 0:40] = 0.2
    (y, x), _ = best_region_click(weak, valid, mask, gate=0.5)
    assert y >= 30
    assert best_region_click(score, np.zeros_like(valid), mask) is None
    blocked = valid.copy()
    blocked[30:38, 12:28] = False
    (y, x), _ = best_region_click(score, blocked, mask, gate=0.5)
    assert 9 <= y < 11
    # over a stack of slices, regions stay in-plane
    stack = np.stack([np.zeros((40, 40)), score])
    index, _ = best_region_click(stack, np.ones(stack.shape, bool), np.stack([mask, mask]), gate=0.5)
    assert index == (1, 33, 15)
    with pytest.raises(ValueError, match="gate"):
        best_region_click(score, valid, mask, gate=0.0)
    with pytest.raises(ValueError, match="shape"):
        best_region_click(score, valid, mask[:5])
