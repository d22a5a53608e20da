"""Expected predictive information gain over the image (EPIG), in its Gaussian form for the last layer.

BALD scores a pixel by what its label says about the weights; EPIG (Bickford Smith et al., AISTATS 2023) by what it
says about the *predictions at the other pixels* of the image. For the head's last layer, a per-pixel logistic
layer with a Gaussian posterior ``N(theta, Sigma)`` over ``[w; b]``, the label at pixel ``x`` is one Bernoulli
observation with design ``a_x = [phi_x; 1]``. One Laplace (generalised Gauss-Newton) step with it gives the rank-one
update

    Sigma' = Sigma - lam_x Sigma a_x a_x^T Sigma / (1 + lam_x a_x^T Sigma a_x),   lam_x = p_x (1 - p_x),

so the logit variance of every target pixel ``z`` falls by ``lam_x (a_z^T Sigma a_x)^2 / (1 + lam_x v_x)``. The
score of ``x`` is the predictive-probability variance it removes over the image (delta method, each target weighted
by ``(p_z (1 - p_z))^2``):

    score(x) = lam_x a_x^T Sigma G Sigma a_x / (1 + lam_x v_x),   G = sum_z (p_z (1 - p_z))^2 a_z a_z^T,

one ``(P, P)`` matrix per image, so the map costs ``O(pixels x P^2)``: no pixel-by-pixel matrix. Pixels whose label
the model already knows (``lam_x`` small) and pixels whose features say nothing about the uncertain ones score low;
a pixel scores high when the answer there moves the predictions of many uncertain pixels at once.
"""

from __future__ import annotations

import torch

__all__ = ["expected_variance_reduction"]


def expected_variance_reduction(features: torch.Tensor, logits: torch.Tensor, variance: torch.Tensor,
                                covariance: torch.Tensor) -> torch.Tensor:
    """The EPIG map: ``(B, H, W)``, the image's predictive variance one label at each pixel removes.

    Args:
        features: ``(B, C, H, W)`` the last layer's inputs ``phi``.
        logits: ``(B, H, W)`` the mean logit per pixel.
        variance: ``(B, H, W)`` the logit variance per pixel, ``a^T Sigma a``.
        covariance: ``(C + 1, C + 1)`` posterior covariance of ``[w; b]``, or the ``(C + 1,)`` variances of a
            diagonal posterior.
    """
    if features.ndim != 4:
        raise ValueError(f"features must be (B, C, H, W), got {tuple(features.shape)}")
    batch, channels, height, width = features.shape
    if logits.shape != (batch, height, width) or variance.shape != (batch, height, width):
        raise ValueError(f"logits and variance must be {(batch, height, width)}, got {tuple(logits.shape)} and "
                         f"{tuple(variance.shape)}")
    covariance = covariance.to(features.device, features.dtype)
    if covariance.ndim == 1:
        covariance = torch.diag(covariance)
    if covariance.shape != (channels + 1, channels + 1):
        raise ValueError(f"covariance must be ({channels + 1}, {channels + 1}) for {channels} channels, got "
                         f"{tuple(covariance.shape)}")
    design = torch.cat([features, torch.ones_like(features[:, :1])], dim=1).flatten(2)  # (B, P, N)
    probability = torch.sigmoid(logits * torch.rsqrt(1.0 + torch.pi / 8.0 * variance.clamp_min(0.0))).flatten(1)
    precision = probability * (1.0 - probability)  # lam: one Bernoulli label's curvature, per pixel (B, N)
    gram = torch.einsum("bpn,bqn->bpq", design * precision.square()[:, None], design)  # G (B, P, P)
    middle = covariance @ gram @ covariance  # Sigma G Sigma
    quadratic = torch.einsum("bpn,bpq,bqn->bn", design, middle, design)
    score = precision * quadratic / (1.0 + precision * variance.flatten(1).clamp_min(0.0))
    return score.clamp_min(0.0).reshape(batch, height, width)
