"""Option vocabularies of the Bayesian head's posterior (``str`` Enums, so plain strings are accepted)."""

from __future__ import annotations

from enum import Enum

__all__ = ["HessianStructure", "TuningMethod", "PriorStructure", "parse_option"]


class HessianStructure(str, Enum):
    """Structure of the last layer's generalised Gauss-Newton (GGN) matrix and posterior precision."""

    DIAG = "diag"
    """Diagonal of the GGN: independent Gaussian per parameter (cheapest, ignores correlations)."""

    KRON = "kron"
    """Kronecker factors ``G ⊗ A`` of the GGN; for a single-output layer this is exact (see ``laplace.py``)."""

    FULL = "full"
    """Dense GGN, Cholesky of the posterior precision; allows a per-parameter prior."""


class TuningMethod(str, Enum):
    """How :meth:`LastLayerLaplace.optimize_prior_precision` chooses the prior precision."""

    MARGLIK = "marglik"
    """Gradient ascent of the Laplace log marginal likelihood in log prior precision (no validation data)."""

    GRIDSEARCH = "gridsearch"
    """Log-spaced grid, scored by the probit predictive's negative log-likelihood on validation pixels."""


class PriorStructure(str, Enum):
    """Shape of the tuned prior precision."""

    SCALAR = "scalar"
    """One precision for every parameter (isotropic Gaussian prior)."""

    DIAG = "diag"
    """One precision per parameter (``C`` weights then the bias); ``diag`` and ``full`` structures only."""


def parse_option(enum_cls: type[Enum], value: object, name: str) -> Enum:
    """``enum_cls(value)``, raising a ValueError that lists the allowed values."""
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_cls)  # type: ignore[attr-defined]
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None
