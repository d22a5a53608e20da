"""Condition a Gaussian posterior over a logistic layer on a few labelled pixels (the user's clicks on this image).

The last-layer Laplace posterior ``N(theta_0, Sigma_0)`` over ``theta = [w; b]`` is the prior for one image; each
click adds the likelihood ``Bernoulli(y_i | sigmoid(a_i . theta))`` of its label ``y_i`` at its pixel's layer inputs
``a_i = [phi_i; 1]``, counted ``weight`` times. The new Laplace approximation is found by Newton's method (the
log-posterior is concave): the mode ``theta_1`` and the covariance ``(Sigma_0^-1 + weight sum_i s_i (1 - s_i)
a_i a_i^T)^-1`` at it. With no click, or ``weight`` 0, the prior comes back unchanged.

A click then changes the layer's weights for the whole image, as a labelled example does in active learning: the
label BALD asks for updates the very weights BALD measures the information about.
"""

from __future__ import annotations

import torch

__all__ = ["condition_on_labels"]


def condition_on_labels(mean: torch.Tensor, covariance: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor,
                        weight: float, iterations: int = 25, tolerance: float = 1e-8
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, covariance)`` of the Laplace approximation after observing ``labels`` at ``rows``.

    Args:
        mean: ``(P,)`` prior mean ``theta_0``.
        covariance: ``(P, P)`` prior covariance ``Sigma_0`` (symmetric positive definite).
        rows: ``(K, P)`` layer inputs ``a_i`` of the labelled pixels (the bias input 1 included).
        labels: ``(K,)`` 0/1 labels.
        weight: how many pixels each label counts for (>= 0).
        iterations: at most this many Newton steps; ``tolerance`` stops earlier on the step's size.

    Returns:
        The posterior mode ``(P,)`` and covariance ``(P, P)``, in ``mean``'s dtype and device.
    """
    if mean.ndim != 1 or covariance.shape != (mean.numel(), mean.numel()):
        raise ValueError(f"mean must be (P,) and covariance (P, P), got {tuple(mean.shape)} and "
                         f"{tuple(covariance.shape)}")
    if rows.ndim != 2 or rows.shape[1] != mean.numel() or labels.shape != rows.shape[:1]:
        raise ValueError(f"rows must be (K, {mean.numel()}) with labels (K,), got {tuple(rows.shape)} and "
                         f"{tuple(labels.shape)}")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    if rows.shape[0] == 0 or weight == 0:
        return mean, covariance
    if bool(((labels != 0) & (labels != 1)).any()):
        raise ValueError(f"labels must be 0 or 1, got {labels.tolist()}")
    dtype = torch.float64  # a P x P solve, P ~ 34: exact and cheap in double precision
    theta0 = mean.to(dtype)
    prior_precision = torch.linalg.inv(covariance.to(dtype))
    prior_precision = (prior_precision + prior_precision.T) / 2
    a = rows.to(dtype)
    y = labels.to(dtype)

    def objective(value: torch.Tensor) -> torch.Tensor:  # the negative log-posterior, up to a constant
        logits = a @ value
        delta = value - theta0
        nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
        return 0.5 * delta @ prior_precision @ delta + weight * nll

    theta = theta0.clone()
    current = objective(theta)
    for _ in range(iterations):
        s = torch.sigmoid(a @ theta)
        gradient = prior_precision @ (theta - theta0) - weight * a.T @ (y - s)
        hessian = prior_precision + weight * (a.T * (s * (1 - s))) @ a
        step = torch.linalg.solve(hessian, gradient)
        size = 1.0
        while size > 1e-4:  # backtrack: a full Newton step can overshoot when the labels weigh a lot
            candidate = theta - size * step
            value = objective(candidate)
            if value <= current:
                break
            size /= 2
        else:
            break
        theta, current = candidate, value
        if float((size * step).abs().max()) < tolerance:
            break
    s = torch.sigmoid(a @ theta)
    precision = prior_precision + weight * (a.T * (s * (1 - s))) @ a
    posterior = torch.linalg.inv((precision + precision.T) / 2)
    return theta.to(mean.dtype), ((posterior + posterior.T) / 2).to(mean.dtype)
