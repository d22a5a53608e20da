"""Prior-precision tuning: exact maximisers of the Laplace evidence, and the validation-grid score.

Pure tensor functions, no torch.optim.

With likelihood precision ``H`` (eigenvalues ``lambda_k``), MAP ``theta`` and prior ``N(0, diag(delta)^-1)``
the Laplace log evidence is, up to a constant,
``-0.5 * (log det(H + diag delta) - sum log delta + sum delta theta^2)``.

- Scalar ``delta`` (any structure): ``d/d log delta = 0`` reads ``sum_k lambda_k / (lambda_k + delta) =
  delta |theta|^2`` (MacKay's "effective number of parameters = delta |theta|^2"). The left side falls and
  the right side rises with ``delta``, and the evidence is strictly concave in ``log delta``, so the root is
  unique; bisection in ``log delta`` finds it to machine precision in ~80 steps.
- Per-parameter ``delta`` with a diagonal ``H``: the evidence separates into one such problem per parameter.
- Per-parameter ``delta`` with a dense ``H`` (automatic relevance determination): the stationarity condition
  ``delta_i = (1 - delta_i Sigma_ii) / theta_i^2`` is iterated as a fixed point (MacKay, 1992).

:func:`marglik_prior_precision` picks the solver for a posterior; :func:`prior_grid` and :func:`probit_nll_grid` are
the validation grid search.

Solutions are confined to ``[10**LOG10_MIN, 10**LOG10_MAX]``; a bound is returned when the evidence keeps
rising towards it (e.g. a zero MAP weight, for which the evidence grows with ``delta`` without limit).

Why not gradient steps (laplace-torch runs 100 Adam steps at lr 0.1): Adam stops up to ~0.1 decades from the
optimum on small problems, and constructing the first ``torch.optim`` optimiser imports ``torch._dynamo``
(4.6 s measured on this machine), a cost a click-time tuning call should not pay.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["LOG10_MIN", "LOG10_MAX", "solve_scalar_evidence", "ard_fixed_point", "marglik_prior_precision",
           "prior_grid", "probit_nll_grid"]

LOG10_MIN = -12.0
LOG10_MAX = 12.0


def solve_scalar_evidence(eigenvalues: torch.Tensor, sq_norm: torch.Tensor, n_bisections: int = 90) -> torch.Tensor:
    """Per group ``g``, the ``delta_g > 0`` with ``sum_k lambda_gk / (lambda_gk + delta_g) = delta_g * sq_norm_g``.

    Args:
        eigenvalues: ``(G, K)`` non-negative eigenvalues of the likelihood precision of each group.
        sq_norm: ``(G,)`` squared norm of each group's MAP parameters.
        n_bisections: halvings of the log-interval (90 reach float64 resolution).

    Returns:
        ``(G,)`` evidence-maximising prior precisions, in ``[10**LOG10_MIN, 10**LOG10_MAX]``.
    """
    if eigenvalues.ndim != 2 or sq_norm.shape != eigenvalues.shape[:1]:
        raise ValueError(f"expected eigenvalues (G, K) and sq_norm (G,), got {tuple(eigenvalues.shape)}, {tuple(sq_norm.shape)}")
    log10 = torch.log(torch.tensor(10.0, dtype=eigenvalues.dtype, device=eigenvalues.device))
    lo = torch.full_like(sq_norm, LOG10_MIN) * log10
    hi = torch.full_like(sq_norm, LOG10_MAX) * log10
    lam = eigenvalues.clamp_min(0.0)
    for _ in range(n_bisections):
        mid = 0.5 * (lo + hi)
        delta = mid.exp()
        rising = (lam / (lam + delta[:, None])).sum(dim=1) > delta * sq_norm  # evidence still increases
        lo = torch.where(rising, mid, lo)
        hi = torch.where(rising, hi, mid)
    return (0.5 * (lo + hi)).exp()


def ard_fixed_point(
    hessian: torch.Tensor, theta: torch.Tensor, init: torch.Tensor, n_steps: int = 100, tol: float = 1e-10
) -> torch.Tensor:
    """Per-parameter prior precisions maximising the evidence for a dense ``hessian (P, P)`` and MAP ``theta (P,)``.

    Iterates ``delta_i <- (1 - delta_i Sigma_ii) / theta_i^2`` with ``Sigma = (H + diag delta)^-1`` from
    ``init (P,)`` until the largest change of ``log delta`` is below ``tol`` or ``n_steps`` iterations ran.
    """
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1] or theta.shape != hessian.shape[:1]:
        raise ValueError(f"expected hessian (P, P) and theta (P,), got {tuple(hessian.shape)}, {tuple(theta.shape)}")
    low, high = 10.0**LOG10_MIN, 10.0**LOG10_MAX
    delta = init.expand(theta.shape).clone().clamp(low, high)
    sq = theta.square()
    for _ in range(n_steps):
        chol = torch.linalg.cholesky(hessian + torch.diag(delta))
        sigma_diag = torch.cholesky_inverse(chol).diagonal()
        gamma = (1.0 - delta * sigma_diag).clamp_min(0.0)
        updated = torch.where(sq > 0, gamma / sq.clamp_min(torch.finfo(sq.dtype).tiny), torch.full_like(delta, high))
        updated = updated.clamp(low, high)
        change = (updated.log() - delta.log()).abs().max()
        delta = updated
        if float(change) < tol:
            break
    return delta


def marglik_prior_precision(mean: torch.Tensor, likelihood_hessian: torch.Tensor, eigenvalues: torch.Tensor | None,
                            per_parameter: bool, start: torch.Tensor | None = None, n_steps: int = 100) -> torch.Tensor:
    """The evidence-maximising prior precision of a posterior with MAP ``mean (P,)``.

    Args:
        mean: ``(P,)`` MAP parameters.
        likelihood_hessian: ``(P,)`` for a diagonal likelihood precision (solved exactly, separably per parameter
            with ``per_parameter``), or ``(P, P)`` dense.
        eigenvalues: ``(P,)`` eigenvalues of a dense ``likelihood_hessian``; needed for a scalar prior on a dense one.
        per_parameter: one precision per parameter (``(P,)``) instead of a scalar (0-d).
        start: ``(P,)`` or scalar starting point of the fixed point (dense ``likelihood_hessian`` with
            ``per_parameter``; required there).
        n_steps: at most this many fixed-point iterations.
    """
    if n_steps < 1:
        raise ValueError(f"marglik needs n_steps >= 1, got {n_steps}")
    sq = mean.square()
    if likelihood_hessian.ndim == 1:
        eigenvalues = likelihood_hessian
    elif per_parameter:
        if start is None:
            raise ValueError("a per-parameter prior on a dense Hessian needs a start for the fixed point")
        return ard_fixed_point(likelihood_hessian, mean, start, n_steps=n_steps)
    elif eigenvalues is None:
        raise ValueError("a scalar prior on a dense Hessian needs its eigenvalues")
    if not per_parameter:
        return solve_scalar_evidence(eigenvalues[None, :], sq.sum().reshape(1)).reshape(())
    return solve_scalar_evidence(eigenvalues[:, None], sq)


def prior_grid(log10_min: float, log10_max: float, size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(size,)`` prior precisions ``10 ** linspace(log10_min, log10_max)`` for the validation grid search."""
    if size < 1 or not log10_min <= log10_max:
        raise ValueError("gridsearch needs grid_size >= 1 and log_prior_prec_min <= log_prior_prec_max")
    return torch.logspace(log10_min, log10_max, size, dtype=dtype)


def probit_nll_grid(
    phi: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    eigenvalues: torch.Tensor,
    basis: torch.Tensor | None,
    grid: torch.Tensor,
    chunk_size: int = 1 << 15,
) -> torch.Tensor:
    """Mean probit-predictive NLL of pixels ``phi (N, C)``, ``y (N,)`` for every scalar prior in ``grid (G,)``.

    The likelihood precision is ``basis diag(eigenvalues) basis^T`` (``basis=None``: diagonal), so the logit
    variance at prior ``delta`` is ``sum_k (a^T q_k)^2 / (lambda_k + delta)`` with ``a = [phi; 1]``: one pass
    over the pixels scores the whole grid. ``mean`` is the ``(C + 1,)`` MAP; everything runs in its dtype.
    """
    inverse = 1.0 / (eigenvalues[:, None] + grid[None, :])  # (P, G): the posterior covariance in the eigenbasis
    total = torch.zeros_like(grid)
    for start in range(0, phi.shape[0], chunk_size):  # bounds the (pixels, G) temporaries
        rows = phi[start : start + chunk_size].to(mean.device, mean.dtype)
        a = torch.cat([rows, torch.ones_like(rows[:, :1])], dim=1)
        variance = (a if basis is None else a @ basis).square() @ inverse
        scaled = (a @ mean)[:, None] * torch.rsqrt(1.0 + math.pi / 8.0 * variance)
        target = y[start : start + chunk_size].to(mean.device, mean.dtype)[:, None].expand_as(scaled)
        total += F.binary_cross_entropy_with_logits(scaled, target, reduction="none").sum(dim=0)
    return total / phi.shape[0]
