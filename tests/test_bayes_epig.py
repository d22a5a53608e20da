"""The EPIG map of the last layer against its definition: the rank-one Laplace update of the posterior after one
label, and the predictive variance it removes over the image, computed the slow way."""

from __future__ import annotations

import pytest
import torch

from monai_baldsam.bayes.epig import expected_variance_reduction


def _problem(seed: int = 0, channels: int = 3, h: int = 4, w: int = 5):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn((2, channels, h, w), generator=g, dtype=torch.float64)
    root = torch.randn((channels + 1, channels + 1), generator=g, dtype=torch.float64)
    covariance = root @ root.T / channels + 0.1 * torch.eye(channels + 1, dtype=torch.float64)
    design = torch.cat([features, torch.ones_like(features[:, :1])], dim=1)
    variance = torch.einsum("bphw,pq,bqhw->bhw", design, covariance, design)
    logits = torch.randn((2, h, w), generator=g, dtype=torch.float64)
    return features, logits, variance, covariance, design


def _slow(logits, variance, covariance, design) -> torch.Tensor:
    probability = torch.sigmoid(logits / torch.sqrt(1.0 + torch.pi / 8.0 * variance))
    out = torch.zeros_like(logits)
    for b in range(logits.shape[0]):
        rows = design[b].flatten(1).T  # (N, P)
        p = probability[b].flatten()
        for x in range(rows.shape[0]):
            a, lam = rows[x], p[x] * (1 - p[x])
            updated = covariance - lam * torch.outer(covariance @ a, covariance @ a) / (1 + lam * a @ covariance @ a)
            removed = torch.einsum("np,pq,nq->n", rows, covariance - updated, rows)  # each target's logit variance
            out[b].view(-1)[x] = ((p * (1 - p)) ** 2 * removed).sum()
    return out


def test_epig_is_the_variance_one_label_removes_over_the_image() -> None:
    features, logits, variance, covariance, design = _problem()
    fast = expected_variance_reduction(features, logits, variance, covariance)
    torch.testing.assert_close(fast, _slow(logits, variance, covariance, design))
    assert fast.shape == (2, 4, 5) and bool((fast >= 0).all())


def test_a_diagonal_posterior_is_its_variances() -> None:
    features, logits, _, covariance, design = _problem(1)
    variances = torch.diagonal(covariance).clone()
    variance = torch.einsum("bphw,p->bhw", design.square(), variances)
    torch.testing.assert_close(expected_variance_reduction(features, logits, variance, variances),
                               expected_variance_reduction(features, logits, variance, torch.diag(variances)))


def test_no_posterior_uncertainty_no_gain_and_a_certain_pixel_gains_nothing() -> None:
    features, logits, variance, covariance, _ = _problem(2)
    assert float(expected_variance_reduction(features, logits, variance * 0, covariance * 0).abs().max()) == 0.0
    logits = logits.clone()
    logits[0, 1, 2] = 1e4  # the model knows this pixel's label
    assert float(expected_variance_reduction(features, logits, variance, covariance)[0, 1, 2]) < 1e-12


def test_bad_shapes_are_refused() -> None:
    features, logits, variance, covariance, _ = _problem()
    with pytest.raises(ValueError, match="covariance must be"):
        expected_variance_reduction(features, logits, variance, covariance[:-1, :-1])
    with pytest.raises(ValueError, match="logits and variance"):
        expected_variance_reduction(features, logits[:, :-1], variance, covariance)
