"""The prior-precision solvers against closed forms and their documented bounds."""

from __future__ import annotations

import torch

from monai_baldsam.bayes.tuning import LOG10_MAX, LOG10_MIN, ard_fixed_point, solve_scalar_evidence


def test_single_parameter_root_matches_the_quadratic_formula() -> None:
    # one parameter: lambda / (lambda + d) = d t^2  <=>  t^2 d^2 + t^2 lambda d - lambda = 0
    lam = torch.tensor([[0.5], [3.0], [200.0]], dtype=torch.float64)
    sq = torch.tensor([0.2, 1.5, 0.01], dtype=torch.float64)
    l, t2 = lam[:, 0], sq
    closed = (-t2 * l + torch.sqrt(t2.square() * l.square() + 4 * t2 * l)) / (2 * t2)
    torch.testing.assert_close(solve_scalar_evidence(lam, sq), closed, rtol=1e-12, atol=0)


def test_degenerate_problems_return_the_bounds() -> None:
    lam = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    sq = torch.tensor([0.0, 1.0], dtype=torch.float64)  # zero MAP: evidence rises forever; no curvature: falls
    delta = solve_scalar_evidence(lam, sq)
    torch.testing.assert_close(delta.log10(), torch.tensor([LOG10_MAX, LOG10_MIN], dtype=torch.float64))


def test_ard_fixed_point_with_diagonal_hessian_matches_the_separable_solution() -> None:
    lam = torch.tensor([0.5, 3.0, 200.0], dtype=torch.float64)
    theta = torch.tensor([0.4, -1.2, 0.1], dtype=torch.float64)
    ard = ard_fixed_point(torch.diag(lam), theta, torch.tensor(1.0, dtype=torch.float64), n_steps=500)
    torch.testing.assert_close(ard, solve_scalar_evidence(lam[:, None], theta.square()), rtol=1e-7, atol=0)
