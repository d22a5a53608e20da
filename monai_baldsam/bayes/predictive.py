"""The predictive of a Gaussian posterior over ``[w; b]`` of a per-pixel logistic layer.

Given the posterior mean ``theta = [w; b]`` (``P = C + 1``) and a scale ``S`` with ``Sigma = S S^T`` (``(P, P)``, or
the ``(P,)`` standard deviations of a diagonal posterior), the logit of a pixel with features ``phi`` is Gaussian:
mean ``f = w . phi + b``, variance ``v = [phi; 1]^T Sigma [phi; 1]``. From it: the probit approximation of the
predictive probability, and Monte Carlo samples of the weights.

Pure tensor functions: ``features`` ``(B, C, H, W)`` are expected checked
(:func:`~monai_baldsam.bayes._pixels.check_features`); results run in the features' dtype and device and never
build a pixel-by-pixel matrix.
"""

from __future__ import annotations

import math

import torch

__all__ = ["logit_moments", "probit_probability", "check_sampling", "sample_parameters", "sampled_probabilities"]


def logit_moments(features: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor,
                  diagonal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the per-pixel logit: ``(f_MAP, a^T Sigma a)``, each ``(B, H, W)``.

    Args:
        features: ``(B, C, H, W)``.
        mean: ``(C + 1,)`` posterior mean ``[w; b]``.
        scale: ``S`` with ``Sigma = S S^T``, ``(C + 1, C + 1)``; with ``diagonal`` the ``(C + 1,)`` standard deviations.
        diagonal: whether ``scale`` is the diagonal form.
    """
    scale = scale.to(features.device, features.dtype)
    mean = mean.to(features.device, features.dtype)
    logits = torch.einsum("bchw,c->bhw", features, mean[:-1]) + mean[-1]
    if diagonal:
        variance = torch.einsum("bchw,c->bhw", features.square(), scale[:-1].square()) + scale[-1].square()
    else:
        projected = torch.einsum("bchw,cp->bphw", features, scale[:-1]) + scale[-1][None, :, None, None]
        variance = projected.square().sum(dim=1)
    return logits, variance


def probit_probability(logits: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Predictive foreground probability ``sigmoid(f / sqrt(1 + pi v / 8))`` (probit approximation)."""
    return torch.sigmoid(logits * torch.rsqrt(1.0 + math.pi / 8.0 * variance))


def check_sampling(n_samples: int, generator: torch.Generator) -> None:
    """ValueError unless ``n_samples`` is a positive int and ``generator`` a ``torch.Generator``."""
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if not isinstance(generator, torch.Generator):
        raise ValueError("sample_weights needs an explicit generator=torch.Generator().manual_seed(...)")


def sample_parameters(mean: torch.Tensor, scale: torch.Tensor, diagonal: bool, n_samples: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_samples`` draws ``(weights (S, C), biases (S,))`` from ``N(mean, S S^T)``, in ``mean``'s dtype and device.

    The normal draws come from ``generator`` (on its device), so a seeded generator gives identical samples.
    """
    check_sampling(n_samples, generator)
    noise = torch.randn((n_samples, mean.numel()), generator=generator, device=generator.device, dtype=mean.dtype)
    noise = noise.to(mean.device)
    theta = mean + (noise * scale if diagonal else noise @ scale.T)
    return theta[:, :-1], theta[:, -1]


def sampled_probabilities(features: torch.Tensor, weights: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """``(S, B, H, W)`` foreground probabilities of ``features`` under sampled ``weights (S, C)``, ``biases (S,)``
    (one einsum for all samples)."""
    weights = weights.to(features.device, features.dtype)
    biases = biases.to(features.device, features.dtype)
    logits = torch.einsum("sc,bchw->sbhw", weights, features) + biases[:, None, None, None]
    return torch.sigmoid(logits)
