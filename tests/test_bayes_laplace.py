"""LastLayerLaplace against naive references on a tiny per-pixel logistic problem (float64, dense autograd)."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_baldsam.bayes import LastLayerLaplace

STRUCTURES = ("full", "kron", "diag")
C, B, H, W = 3, 2, 3, 4


def _problem(seed: int = 0, n_images: int = B, height: int = H, width: int = W):
    """Features, 0/1 targets, a valid mask and MAP-ish weights (P = C + 1 = 4 parameters, ~20 pixels)."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n_images, C, height, width, generator=g, dtype=torch.float64)
    weight = torch.randn(C, generator=g, dtype=torch.float64)
    bias = torch.tensor(0.4, dtype=torch.float64)
    logits = torch.einsum("bchw,c->bhw", features, weight) + bias
    targets = (torch.rand(n_images, height, width, generator=g, dtype=torch.float64) < torch.sigmoid(logits)).double()
    valid = torch.rand(n_images, height, width, generator=g) > 0.15
    return features, targets, valid, weight, bias


def _pixels(features, targets, valid):
    return features.permute(0, 2, 3, 1)[valid], targets[valid]


def _neg_log_joint_hessian(features, targets, valid, weight, bias, prior, temperature=1.0) -> torch.Tensor:
    """Dense Hessian of sum BCE / T + 0.5 * prior * |theta|^2 at the MAP, by autograd."""
    phi, y = _pixels(features, targets, valid)
    prior = torch.as_tensor(prior, dtype=torch.float64)

    def neg_log_joint(theta: torch.Tensor) -> torch.Tensor:
        logits = phi @ theta[:-1] + theta[-1]
        nll = F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / temperature
        return nll + 0.5 * (prior * theta.square()).sum()

    theta = torch.cat([weight, bias.reshape(1)])
    return torch.autograd.functional.hessian(neg_log_joint, theta)


def _naive_log_marglik(features, targets, valid, weight, bias, prior, temperature=1.0, diag=False) -> float:
    phi, y = _pixels(features, targets, valid)
    theta = torch.cat([weight, bias.reshape(1)])
    prior_vec = torch.as_tensor(prior, dtype=torch.float64).expand(theta.numel())
    log_lik = -F.binary_cross_entropy_with_logits(phi @ weight + bias, y, reduction="sum") / temperature
    precision = _neg_log_joint_hessian(features, targets, valid, weight, bias, prior_vec, temperature)
    log_det_post = torch.log(torch.diagonal(precision)).sum() if diag else torch.logdet(precision)
    log_prior = -0.5 * (prior_vec * theta.square()).sum() + 0.5 * torch.log(prior_vec).sum()
    return float(log_lik + log_prior - 0.5 * log_det_post)


def _fitted(structure: str, prior=0.7, temperature=1.0, seed=0) -> tuple[LastLayerLaplace, tuple]:
    data = _problem(seed)
    features, targets, valid, weight, bias = data
    la = LastLayerLaplace(weight, bias, structure=structure, prior_precision=prior, temperature=temperature)
    la.fit([(features, targets, valid)])
    return la, data


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_full_precision_equals_autograd_hessian(temperature: float) -> None:
    la, data = _fitted("full", prior=0.7, temperature=temperature)
    reference = _neg_log_joint_hessian(*data, prior=0.7, temperature=temperature)
    torch.testing.assert_close(la.posterior_precision, reference, rtol=0, atol=1e-12)


def test_per_parameter_prior_full_and_diag() -> None:
    prior = torch.tensor([0.5, 2.0, 1.0, 0.1], dtype=torch.float64)
    for structure in ("full", "diag"):
        la, data = _fitted(structure, prior=prior)
        reference = _neg_log_joint_hessian(*data, prior=prior)
        expected = reference if structure == "full" else torch.diagonal(reference)
        torch.testing.assert_close(la.posterior_precision, expected, rtol=0, atol=1e-12)


def test_diag_precision_is_the_diagonal_of_the_autograd_hessian() -> None:
    la, data = _fitted("diag")
    reference = _neg_log_joint_hessian(*data, prior=0.7)
    assert la.posterior_precision.shape == (C + 1,)
    torch.testing.assert_close(la.posterior_precision, torch.diagonal(reference), rtol=0, atol=1e-12)


def test_kron_factorisation_is_exact_for_a_single_output_layer() -> None:
    # Documented relation: G (1 x 1) = [[1]], A = sum_n h_n [phi_n; 1][phi_n; 1]^T, so G ⊗ A is the exact GGN
    # (weight-bias cross terms included) and the kron posterior equals the full one.
    la, data = _fitted("kron")
    features, targets, valid, weight, bias = data
    g_factor, a_factor = la.kron_factors
    assert g_factor.shape == (1, 1) and float(g_factor) == 1.0
    phi, _ = _pixels(features, targets, valid)
    aug = torch.cat([phi, torch.ones(phi.shape[0], 1, dtype=torch.float64)], dim=1)
    h = torch.sigmoid(aug @ torch.cat([weight, bias.reshape(1)]))
    h = h * (1 - h)
    torch.testing.assert_close(a_factor, (aug * h[:, None]).T @ aug, rtol=0, atol=1e-12)
    reference = _neg_log_joint_hessian(*data, prior=0.7)
    torch.testing.assert_close(la.posterior_precision, reference, rtol=0, atol=1e-12)
    full, _ = _fitted("full")
    torch.testing.assert_close(la.posterior_covariance, full.posterior_covariance, rtol=1e-9, atol=1e-12)
    assert la.log_marginal_likelihood().item() == pytest.approx(full.log_marginal_likelihood().item(), abs=1e-9)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_fit_over_batches_equals_fit_at_once(structure: str) -> None:
    features, targets, valid, weight, bias = _problem(1, n_images=4)
    once = LastLayerLaplace(weight, bias, structure=structure).fit([(features, targets, valid)])
    batches = [(features[i : i + 1], targets[i : i + 1], valid[i : i + 1]) for i in range(4)]
    streamed = LastLayerLaplace(weight, bias, structure=structure).fit(batches, chunk_size=5)
    mapped = LastLayerLaplace(weight, bias, structure=structure)
    mapped.fit([{"features": features[:2], "targets": targets[:2], "valid": valid[:2]}])
    mapped.fit([{"features": features[2:], "targets": targets[2:], "valid": valid[2:]}], override=False)
    for other in (streamed, mapped):
        torch.testing.assert_close(other.likelihood_hessian, once.likelihood_hessian, rtol=0, atol=1e-12)
        torch.testing.assert_close(other.loss, once.loss, rtol=0, atol=1e-12)
        assert other.n_data == once.n_data == int(valid.sum())
    refit = LastLayerLaplace(weight, bias, structure=structure).fit(batches)
    refit.fit(batches[:1])  # override=True starts again
    assert refit.n_data == int(valid[:1].sum())


def test_fit_without_valid_mask_uses_every_pixel() -> None:
    features, targets, _, weight, bias = _problem(2)
    all_valid = torch.ones_like(targets, dtype=torch.bool)
    a = LastLayerLaplace(weight, bias).fit([(features, targets)])
    b = LastLayerLaplace(weight, bias).fit([(features, targets, all_valid)])
    torch.testing.assert_close(a.likelihood_hessian, b.likelihood_hessian, rtol=0, atol=1e-12)
    assert a.n_data == targets.numel()


def test_subsampled_fit_is_seeded_and_unbiased() -> None:
    features, targets, _, weight, bias = _problem(3, n_images=8, height=40, width=40)
    full = LastLayerLaplace(weight, bias).fit([(features, targets)])

    def sub(seed: int) -> LastLayerLaplace:
        return LastLayerLaplace(weight, bias).fit(
            [(features, targets)], subsample=0.5, generator=torch.Generator().manual_seed(seed)
        )

    first, again, other = sub(0), sub(0), sub(1)
    assert torch.equal(first.likelihood_hessian, again.likelihood_hessian)
    assert not torch.equal(first.likelihood_hessian, other.likelihood_hessian)
    rel = (first.likelihood_hessian - full.likelihood_hessian).norm() / full.likelihood_hessian.norm()
    assert float(rel) < 0.05
    assert first.n_data == pytest.approx(full.n_data, rel=0.05)
    assert float(first.loss) == pytest.approx(float(full.loss), rel=0.05)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_log_marginal_likelihood_matches_naive(structure: str, temperature: float) -> None:
    la, data = _fitted(structure, prior=0.7, temperature=temperature)
    naive = _naive_log_marglik(*data, prior=0.7, temperature=temperature, diag=structure == "diag")
    assert la.log_marginal_likelihood().item() == pytest.approx(naive, abs=1e-9)
    naive_other = _naive_log_marglik(*data, prior=3.0, temperature=temperature, diag=structure == "diag")
    assert la.log_marginal_likelihood(3.0).item() == pytest.approx(naive_other, abs=1e-9)
    assert float(la.prior_precision) == 0.7  # evaluating at another prior does not change the stored one
    if structure != "kron":
        prior = torch.tensor([0.5, 2.0, 1.0, 0.1], dtype=torch.float64)
        naive_vec = _naive_log_marglik(*data, prior=prior, temperature=temperature, diag=structure == "diag")
        assert la.log_marginal_likelihood(prior).item() == pytest.approx(naive_vec, abs=1e-9)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_marglik_increases_evidence_and_lands_on_the_grid_optimum(structure: str) -> None:
    la, _ = _fitted(structure, prior=50.0)
    before = la.log_marginal_likelihood().item()
    tuned = la.optimize_prior_precision("marglik", )
    assert la.log_marginal_likelihood().item() > before + 1e-3
    grid = torch.logspace(-3, 3, 601, dtype=torch.float64)
    evidence = torch.stack([la.log_marginal_likelihood(delta) for delta in grid])
    best = grid[int(torch.argmax(evidence))]
    assert abs(math.log10(float(tuned)) - math.log10(float(best))) < 0.02
    assert torch.equal(la.prior_precision, tuned)


def _evidence_gradient(la: LastLayerLaplace) -> torch.Tensor:
    """Autograd d log-evidence / d log delta at the current prior (independent of the tuning formulas)."""
    log_delta = la.prior_precision.log().clone().requires_grad_(True)
    la.log_marginal_likelihood(log_delta.exp()).backward()
    return log_delta.grad


@pytest.mark.parametrize("structure", STRUCTURES)
def test_marglik_is_a_stationary_point_of_the_evidence(structure: str) -> None:
    la, _ = _fitted(structure, prior=5.0)
    la.optimize_prior_precision("marglik")
    assert float(_evidence_gradient(la).abs().max()) < 1e-8
    if structure == "kron":
        with pytest.raises(ValueError, match="prior_structure='diag'"):
            la.optimize_prior_precision("marglik", prior_structure="diag")
        return
    scalar_evidence = la.log_marginal_likelihood().item()
    per_param = la.optimize_prior_precision("marglik", prior_structure="diag")
    assert per_param.shape == (C + 1,)
    assert la.log_marginal_likelihood().item() > scalar_evidence
    assert float(_evidence_gradient(la).abs().max()) < 1e-6


@pytest.mark.parametrize("structure", STRUCTURES)
def test_gridsearch_picks_the_naive_validation_nll_minimum(structure: str) -> None:
    la, _ = _fitted(structure)
    features, targets, valid, _, _ = _problem(7, n_images=3)
    val = [(features, targets, valid)]
    chosen = la.optimize_prior_precision("gridsearch", val_loader=val, log_prior_prec_min=-2, log_prior_prec_max=2,
                                         grid_size=9)
    grid = torch.logspace(-2, 2, 9, dtype=torch.float64)
    nll = []
    for delta in grid:
        la.prior_precision = delta
        p = la.predict_probit(features)[valid].clamp(1e-12, 1 - 1e-12)
        nll.append(float(F.binary_cross_entropy(p, targets[valid])))
    assert float(chosen) == pytest.approx(float(grid[min(range(9), key=nll.__getitem__)]))
    torch.testing.assert_close(la.validation_nll(grid, val), torch.tensor(nll, dtype=torch.float64), rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match="val_loader"):
        la.optimize_prior_precision("gridsearch")
    with pytest.raises(ValueError, match="method must be one of"):
        la.optimize_prior_precision("bayes")


@pytest.mark.parametrize("structure", STRUCTURES)
def test_predictive_variance_and_probit_match_naive(structure: str) -> None:
    la, data = _fitted(structure, prior=0.3)
    features, _, _, weight, bias = data
    precision = _neg_log_joint_hessian(*data, prior=0.3)
    cov = torch.linalg.inv(precision)
    if structure == "diag":
        cov = torch.diag(1.0 / torch.diagonal(precision))
    aug = torch.cat([features, torch.ones_like(features[:, :1])], dim=1)
    v_naive = torch.einsum("bphw,pq,bqhw->bhw", aug, cov, aug)
    f_naive = torch.einsum("bchw,c->bhw", features, weight) + bias
    torch.testing.assert_close(la.predictive_variance(features), v_naive, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        la.predict_probit(features), torch.sigmoid(f_naive / torch.sqrt(1 + math.pi * v_naive / 8)), rtol=1e-9, atol=1e-12
    )
    la32 = la.predict_probit(features.float())
    assert la32.dtype == torch.float32 and la32.shape == (B, H, W)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_weight_samples_have_the_posterior_covariance(structure: str) -> None:
    la, _ = _fitted(structure, prior=0.3)
    weights, biases = la.sample_weights(40_000, generator=torch.Generator().manual_seed(0))
    theta = torch.cat([weights, biases[:, None]], dim=1)
    cov = la.posterior_covariance if structure != "diag" else torch.diag(la.posterior_covariance)
    torch.testing.assert_close(theta.mean(0), la.mean, rtol=0, atol=0.03 * float(cov.diagonal().sqrt().max()))
    torch.testing.assert_close(torch.cov(theta.T), cov, rtol=0, atol=0.05 * float(cov.diagonal().max()))


@pytest.mark.parametrize("structure", STRUCTURES)
def test_mc_predictive_converges_to_probit(structure: str) -> None:
    la, data = _fitted(structure, prior=0.3)
    features = data[0]
    probs = la.predict_mc(features, 20_000, generator=torch.Generator().manual_seed(1))
    assert probs.shape == (20_000, B, H, W)
    probit = la.predict_probit(features)
    assert float(la.predictive_variance(features).max()) > 0.3  # wide enough for the check to mean something
    torch.testing.assert_close(probs.mean(0), probit, rtol=0, atol=0.02)  # probit approximation error
    exact = la.predict_uncertainty(features)["mean_probability"]  # quadrature: no approximation, MC error only
    torch.testing.assert_close(probs.mean(0), exact, rtol=0, atol=0.008)


def test_sampling_is_reproducible_with_a_seeded_generator() -> None:
    la, data = _fitted("full")
    a = la.predict_mc(data[0], 4, generator=torch.Generator().manual_seed(5))
    b = la.predict_mc(data[0], 4, generator=torch.Generator().manual_seed(5))
    c = la.predict_mc(data[0], 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(ValueError, match="generator"):
        la.sample_weights(3, generator=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generator"):
        la.predict_uncertainty(data[0], n_samples=3)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_state_dict_round_trip_and_signature(structure: str) -> None:
    signature = {"backbone": "lite_medsam", "checkpoint_sha256": "ab12"}
    features, targets, valid, weight, bias = _problem(4)
    la = LastLayerLaplace(weight, bias, structure=structure, temperature=2.0, signature=signature)
    la.fit([(features, targets, valid)]).optimize_prior_precision("marglik", n_steps=20)
    buffer = io.BytesIO()
    torch.save(la.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, map_location="cpu", weights_only=True)
    loaded = LastLayerLaplace.from_state_dict(state, expected_signature=signature)
    assert loaded.structure == la.structure and loaded.temperature == 2.0 and loaded.signature == signature
    torch.testing.assert_close(loaded.predict_probit(features), la.predict_probit(features), rtol=0, atol=0)
    assert loaded.log_marginal_likelihood().item() == la.log_marginal_likelihood().item()
    loaded.check_signature({"backbone": "lite_medsam"})  # a subset of the stored entries matches
    with pytest.raises(ValueError, match="vit_b.*lite_medsam|lite_medsam.*vit_b"):
        loaded.check_signature({"backbone": "vit_b", "checkpoint_sha256": "ab12"})
    with pytest.raises(ValueError, match="signature mismatch"):
        LastLayerLaplace.from_state_dict(state, expected_signature={"checkpoint_sha256": "ffff"})
    other = LastLayerLaplace(weight, bias, structure="diag" if structure != "diag" else "full")
    with pytest.raises(ValueError, match="structure"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="channels"):
        LastLayerLaplace(torch.zeros(C + 2), structure=structure).load_state_dict(state)


def test_from_module_and_temperature() -> None:
    features, targets, valid, weight, bias = _problem(5)
    conv = nn.Conv2d(C, 1, kernel_size=1).double()
    with torch.no_grad():
        conv.weight.copy_(weight.view(1, C, 1, 1))
        conv.bias.copy_(bias.view(1))
    la = LastLayerLaplace.from_module(conv).fit([(features, targets, valid)])
    torch.testing.assert_close(la.mean, torch.cat([weight, bias.view(1)]))
    hot = LastLayerLaplace.from_module(conv, temperature=4.0).fit([(features, targets, valid)])
    torch.testing.assert_close(hot.likelihood_hessian * 4.0, la.likelihood_hessian)
    with pytest.raises(ValueError, match="one output"):
        LastLayerLaplace.from_module(nn.Conv2d(C, 2, kernel_size=1))
    with pytest.raises(ValueError, match="temperature"):
        LastLayerLaplace(weight, bias, temperature=0.0)


def test_bad_inputs_give_clear_errors() -> None:
    features, targets, valid, weight, bias = _problem(6)
    with pytest.raises(ValueError, match=r"\(C,\).*from_module"):
        LastLayerLaplace(weight.view(1, C), bias)
    with pytest.raises(ValueError, match="structure must be one of 'diag', 'kron', 'full'"):
        LastLayerLaplace(weight, bias, structure="lowrank")
    with pytest.raises(ValueError, match="scalar prior_precision only"):
        LastLayerLaplace(weight, bias, structure="kron", prior_precision=torch.ones(C + 1))
    with pytest.raises(ValueError, match=r"\(4,\) tensor"):
        LastLayerLaplace(weight, bias, prior_precision=torch.ones(2))
    with pytest.raises(ValueError, match="positive"):
        LastLayerLaplace(weight, bias, prior_precision=-1.0)
    la = LastLayerLaplace(weight, bias)
    with pytest.raises(RuntimeError, match="fit"):
        la.predict_probit(features)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        la.fit([(features[0], targets[0])])
    with pytest.raises(ValueError, match="5 channels but the last layer has 3"):
        la.fit([(torch.zeros(B, 5, H, W, dtype=torch.float64), targets)])
    with pytest.raises(ValueError, match="targets must have shape"):
        la.fit([(features, targets[:, :2])])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        la.fit([(features, targets * 2)])
    with pytest.raises(ValueError, match="bool mask"):
        la.fit([(features, targets, valid.double())])
    with pytest.raises(ValueError, match="no valid pixels"):
        la.fit([(features, targets, torch.zeros_like(valid))])
    with pytest.raises(ValueError, match="generator"):
        la.fit([(features, targets)], subsample=0.5)
    with pytest.raises(ValueError, match="each loader item"):
        la.fit([features])
    la.fit([(features, targets, valid)])
    with pytest.raises(ValueError, match=r"expected shape \(B, 3, H, W\)"):
        la.predict_mc(torch.zeros(1, 4, 2, 2), 2, generator=torch.Generator())
    with pytest.raises(ValueError, match="n_samples"):
        la.predict_mc(features, 0, generator=torch.Generator())
