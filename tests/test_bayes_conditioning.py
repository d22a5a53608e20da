"""Conditioning the last-layer posterior on labelled pixels (the clicks): against a brute-force MAP and Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.bayes.conditioning import condition_on_labels


def _problem(seed: int, p: int = 5, k: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(p, p, generator=g, dtype=torch.float64)
    covariance = a @ a.T / p + 0.1 * torch.eye(p, dtype=torch.float64)
    mean = torch.randn(p, generator=g, dtype=torch.float64)
    rows = torch.randn(k, p, generator=g, dtype=torch.float64)
    rows[:, -1] = 1.0
    labels = (torch.rand(k, generator=g) > 0.5).to(torch.float64)
    return mean, covariance, rows, labels


@pytest.mark.parametrize(("seed", "weight"), [(0, 1.0), (1, 50.0), (2, 1e4)])
def test_mode_and_covariance_match_a_brute_force_laplace_fit(seed: int, weight: float) -> None:
    mean, covariance, rows, labels = _problem(seed)
    precision = torch.linalg.inv(covariance)

    def neg_log_posterior(theta: torch.Tensor) -> torch.Tensor:
        delta = theta - mean
        nll = torch.nn.functional.binary_cross_entropy_with_logits(rows @ theta, labels, reduction="sum")
        return 0.5 * delta @ precision @ delta + weight * nll

    theta = mean.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], max_iter=1000, tolerance_grad=1e-13, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = neg_log_posterior(theta)
        value.backward()
        return value

    optimizer.step(closure)
    mode, posterior = condition_on_labels(mean, covariance, rows, labels, weight)
    assert torch.allclose(mode, theta.detach(), atol=1e-6)
    hessian = torch.autograd.functional.hessian(neg_log_posterior, mode)
    assert torch.allclose(posterior, torch.linalg.inv(hessian), atol=1e-8)
    # the labels are better explained than under the prior mean, and the variance at their pixels shrinks
    def nll(theta: torch.Tensor) -> float:
        return float(torch.nn.functional.binary_cross_entropy_with_logits(rows @ theta, labels, reduction="sum"))

    assert nll(mode) < nll(mean)
    variance_before = torch.einsum("kp,pq,kq->k", rows, covariance, rows)
    variance_after = torch.einsum("kp,pq,kq->k", rows, posterior, rows)
    assert bool((variance_after < variance_before).all())


def test_no_label_or_zero_weight_returns_the_prior_and_bad_input_is_refused() -> None:
    mean, covariance, rows, labels = _problem(3)
    assert condition_on_labels(mean, covariance, rows[:0], labels[:0], 10.0)[0] is mean
    same_mean, same_cov = condition_on_labels(mean, covariance, rows, labels, 0.0)
    assert same_mean is mean and same_cov is covariance
    with pytest.raises(ValueError, match="weight"):
        condition_on_labels(mean, covariance, rows, labels, -1.0)
    with pytest.raises(ValueError, match="rows"):
        condition_on_labels(mean, covariance, rows[:, :3], labels, 1.0)
    with pytest.raises(ValueError, match="0 or 1"):
        condition_on_labels(mean, covariance, rows, labels + 2, 1.0)
    with pytest.raises(ValueError, match="covariance"):
        condition_on_labels(mean, covariance[:3, :3], rows, labels, 1.0)


def test_click_model_conditioning_is_off_by_default_and_moves_the_clicked_pixel(dev_dir) -> None:
    from monai_baldsam.head.click_model import load_head_click_model
    from monai_baldsam.head.registry import resolve_head
    from monai_baldsam.interaction.cases import load_case
    from monai_baldsam.io.cases import EvalCase

    head = resolve_head("general")
    model = load_head_click_model(head.path, head_sha256=head.sha256)
    folder = dev_dir("busi")
    loaded = load_case(EvalCase("benign_001", folder / "images" / "benign_001.png", folder / "masks" / "benign_001.png"))
    embedding = model.encode(loaded.image)
    height, width = embedding.original_hw
    box = np.array([width * 0.3, height * 0.3, width * 0.7, height * 0.7])
    plain = model.predict(embedding, None, None, box, None)
    # a background click where the head says foreground most confidently inside the box
    inside = np.zeros((height, width), bool)
    inside[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = True
    y, x = np.unravel_index(int(np.argmax(np.where(inside, plain.probability, -1))), inside.shape)
    clicks, labels = np.array([[x, y]]), np.array([0])
    off = model.predict(embedding, clicks, labels, box, plain.low_res_logits)
    model.click_weight = 1e-9
    tiny = model.predict(embedding, clicks, labels, box, plain.low_res_logits)
    assert np.abs(tiny.probability - off.probability).max() < 1e-4  # conditioning with no weight changes nothing
    model.click_weight = 1e4
    on = model.predict(embedding, clicks, labels, box, plain.low_res_logits)
    assert "clicks10000" in model.signature
    assert on.probability.mean() < off.probability.mean()  # a background label lowers foreground over the image
    assert on.extras["mutual_information"].shape == off.extras["mutual_information"].shape
    with pytest.raises(ValueError, match="click_weight"):
        load_head_click_model(head.path, head_sha256=head.sha256, click_weight=-1.0)
