"""Cross-check LastLayerLaplace against laplace-torch 0.3 (laplace-torch is in the test extra).

laplace-torch has no Bernoulli likelihood; the per-pixel Bernoulli model is embedded exactly in its softmax
``classification`` likelihood by emitting the logits ``[0, f]`` (cross-entropy of class 1 on ``[0, f]`` is
``BCEWithLogits(f)``), with the pixels as the rows of a TensorDataset. Its ``full``/``diag`` GGN, evidence
and probit predictive must then agree with ours. Its ``kron`` is the expectation K-FAC, which does not.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from monai_baldsam.bayes import LastLayerLaplace

pytestmark = pytest.mark.slow  # importing laplace-torch (torchmetrics, torchvision) takes seconds


@pytest.fixture(scope="module")
def laplace():
    """The laplace package, imported only when a test here runs (so ``-m "not slow"`` skips the import)."""
    try:
        import laplace
    except ImportError as err:
        pytest.fail(f"laplace-torch is missing ({err}): install the test extra, pip install -e '.[test]'")
    return laplace

C = 4


class ZeroLogitPad(nn.Module):
    """``f (N, 1) -> [0, f] (N, 2)``: the Bernoulli model as a 2-class softmax with a pinned class-0 logit."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(f), f], dim=-1)


def _setup(laplace, structure: str):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, C, 6, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(C, generator=g, dtype=torch.float64)
    bias = torch.tensor(-0.3, dtype=torch.float64)
    targets = (torch.rand(2, 6, 5, generator=g, dtype=torch.float64) < 0.4).double()
    ours = LastLayerLaplace(weight, bias, structure=structure, prior_precision=0.8).fit([(features, targets)])
    linear = nn.Linear(C, 1).double()
    with torch.no_grad():
        linear.weight.copy_(weight[None])
        linear.bias.copy_(bias.view(1))
    phi = features.permute(0, 2, 3, 1).reshape(-1, C)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(phi, targets.reshape(-1).long()), batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = laplace.Laplace(
            nn.Sequential(linear, ZeroLogitPad()), "classification", subset_of_weights="all",
            hessian_structure=structure, prior_precision=0.8,
        )
        theirs.fit(loader)
    return ours, theirs, features, phi


@pytest.mark.parametrize("structure", ["full", "diag"])
def test_ggn_evidence_and_probit_agree_with_laplace_torch(laplace, structure: str) -> None:
    ours, theirs, features, phi = _setup(laplace, structure)
    torch.testing.assert_close(theirs.H.double(), ours.likelihood_hessian, rtol=1e-6, atol=1e-9)
    assert theirs.log_marginal_likelihood().item() == pytest.approx(ours.log_marginal_likelihood().item(), rel=1e-6)
    probs = theirs(phi, pred_type="glm", link_approx="probit")[:, 1].reshape(2, 6, 5)
    torch.testing.assert_close(probs.double(), ours.predict_probit(features), rtol=1e-6, atol=1e-8)


def test_laplace_torch_kron_is_the_expectation_kfac_not_the_exact_ggn(laplace) -> None:
    ours, theirs, _, phi = _setup(laplace, "kron")
    exact = ours.likelihood_hessian
    kfac = theirs.H.to_matrix().double()
    assert float((kfac - exact).norm() / exact.norm()) > 0.01
    aug = torch.cat([phi, torch.ones(phi.shape[0], 1, dtype=torch.float64)], dim=1)
    p = torch.sigmoid(aug @ ours.mean)
    h = p * (1 - p)
    # weight block: mean(h) * sum phi phi^T; bias block: sum h; no weight-bias cross terms
    torch.testing.assert_close(kfac[:C, :C], h.mean() * phi.T @ phi, rtol=1e-6, atol=1e-9)
    assert float(kfac[C, C]) == pytest.approx(float(h.sum()), rel=1e-6)
    assert float(kfac[:C, C].abs().max()) == 0.0
