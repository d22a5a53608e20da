"""The paired bootstrap interval over images: a naive loop reference, cases with a known answer, and its validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_baldsam.evaluation.statistics import PairedDifference, bootstrap_means, paired_bootstrap


def _naive_interval(a: np.ndarray, b: np.ndarray, n_resamples: int, confidence: float, seed: int
                    ) -> tuple[float, float, float]:
    """The documented procedure written as plainly as possible: one resample at a time, a Python mean, sorted means,
    and the linear-interpolation quantile by hand."""
    rng = np.random.default_rng(seed)
    n = len(a)
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    means = []
    for _ in range(n_resamples):
        picks = rng.integers(0, n, size=n)
        means.append(sum(diffs[i] for i in picks) / n)
    means.sort()

    def quantile(q: float) -> float:
        position = q * (len(means) - 1)
        low = math.floor(position)
        high = min(low + 1, len(means) - 1)
        return means[low] + (position - low) * (means[high] - means[low])

    tail = (1 - confidence) / 2
    return sum(diffs) / n, quantile(tail), quantile(1 - tail)


@pytest.mark.parametrize("n_images, n_resamples, confidence", [(7, 300, 0.95), (40, 2500, 0.9), (3, 1030, 0.95)])
def test_matches_a_naive_loop(n_images: int, n_resamples: int, confidence: float) -> None:
    data = np.random.default_rng(n_images)
    a, b = data.uniform(0.3, 1.0, n_images), data.uniform(0.3, 1.0, n_images)
    result = paired_bootstrap(a, b, n_resamples=n_resamples, confidence=confidence, rng=np.random.default_rng(11))
    mean, low, high = _naive_interval(a, b, n_resamples, confidence, seed=11)
    assert result.mean == pytest.approx(mean, abs=1e-12)
    assert result.low == pytest.approx(low, abs=1e-12) and result.high == pytest.approx(high, abs=1e-12)
    assert result.n_images == n_images and result.n_resamples == n_resamples and result.confidence == confidence
    assert result.low <= result.mean <= result.high


def test_resample_blocks_do_not_change_the_stream() -> None:
    values = np.random.default_rng(0).normal(size=13)
    blocked = bootstrap_means(values, 2500, np.random.default_rng(4))  # three blocks of at most 1024
    rng = np.random.default_rng(4)
    one_by_one = np.array([values[rng.integers(0, 13, size=13)].mean() for _ in range(2500)])
    np.testing.assert_allclose(blocked, one_by_one, rtol=0, atol=1e-15)


def test_identical_runs_give_a_zero_interval() -> None:
    a = np.random.default_rng(1).uniform(size=25)
    result = paired_bootstrap(a, a.copy(), rng=0)
    assert (result.mean, result.low, result.high) == (0.0, 0.0, 0.0)
    assert not result.beyond_noise


def test_a_constant_shift_collapses_the_interval_on_the_shift() -> None:
    b = np.random.default_rng(2).uniform(0.2, 0.7, size=31)
    for shift in (0.125, -0.05):
        result = paired_bootstrap(b + shift, b, n_resamples=500, rng=3)
        assert result.mean == pytest.approx(shift, abs=1e-12)
        assert result.low == pytest.approx(shift, abs=1e-12) and result.high == pytest.approx(shift, abs=1e-12)
        assert result.beyond_noise  # no spread at all: any non-zero shift is beyond noise


def test_noisy_equal_means_contain_zero_and_a_clear_gain_does_not() -> None:
    rng = np.random.default_rng(5)
    base = rng.uniform(0.3, 0.9, size=60)
    noise = rng.normal(0, 0.05, size=30)
    equal = base + np.concatenate([noise, -noise])  # per-image noise, mean difference exactly 0
    result = paired_bootstrap(equal, base, rng=7)
    assert result.low < 0 < result.high and not result.beyond_noise
    gain = paired_bootstrap(equal + 0.03, base, rng=7)  # the same noise, shifted by 3 points of IoU
    assert gain.low > 0 and gain.beyond_noise
    assert gain.high - gain.low == pytest.approx(result.high - result.low, abs=1e-9)  # a shift moves, never widens


def test_interval_width_matches_the_normal_theory() -> None:
    diff = np.random.default_rng(8).normal(0.02, 0.1, size=400)
    result = paired_bootstrap(diff, np.zeros_like(diff), n_resamples=20_000, rng=9)
    half_width = 1.959964 * diff.std() / math.sqrt(diff.size)  # the plug-in standard error of the mean
    assert (result.high - result.low) / 2 == pytest.approx(half_width, rel=0.05)
    assert (result.high + result.low) / 2 == pytest.approx(diff.mean(), abs=0.2 * half_width)


def test_seeded_and_seed_dependent() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=15), rng.uniform(size=15)
    assert paired_bootstrap(a, b, rng=4) == paired_bootstrap(a, b, rng=np.random.default_rng(4))
    assert paired_bootstrap(a, b, rng=4) != paired_bootstrap(a, b, rng=5)


def test_to_dict_is_json_ready() -> None:
    d = PairedDifference(mean=0.1, low=0.02, high=0.2, n_images=9, n_resamples=100, confidence=0.95).to_dict()
    assert d == {"mean": 0.1, "low": 0.02, "high": 0.2, "n_images": 9, "n_resamples": 100, "confidence": 0.95,
                 "beyond_noise": True}


def test_invalid_inputs_are_clear_errors() -> None:
    ok = np.array([0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="same images"):
        paired_bootstrap(ok, ok[:2])
    with pytest.raises(ValueError, match="at least 2 images"):
        paired_bootstrap(ok[:1], ok[:1])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap(ok, np.array([0.5, np.nan, 0.7]))
    with pytest.raises(ValueError, match=r"\(n,\)"):
        paired_bootstrap(ok[None], ok[None])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(ok, ok, confidence=95)
    with pytest.raises(ValueError, match="resample"):
        paired_bootstrap(ok, ok, n_resamples=0)
    with pytest.raises(ValueError, match="seed"):
        paired_bootstrap(ok, ok, rng=-1)
    with pytest.raises(ValueError, match="Generator"):
        bootstrap_means(ok, 10, np.random.RandomState(0))  # type: ignore[arg-type]
