"""Bayesian last layer for the SAM prediction head: a last-layer Laplace posterior and BALD acquisition scores.

- :mod:`~monai_baldsam.bayes.acquisition`: pure, batched entropy / BALD maps and the masked argmax click.
- :mod:`~monai_baldsam.bayes.epig`: the expected predictive information gain over the image (Gaussian form).
- :mod:`~monai_baldsam.bayes.laplace`: :class:`LastLayerLaplace`, the Laplace posterior of a per-pixel
  logistic 1x1-conv layer (``diag`` / ``kron`` / ``full``), with evidence-based prior tuning; its parts live in
  :mod:`~monai_baldsam.bayes.curvature` (GGN accumulation), :mod:`~monai_baldsam.bayes.predictive` (predictive
  from the factorised posterior) and :mod:`~monai_baldsam.bayes.tuning` (prior-precision solvers).

Importing this package has no side effects (no laplace-torch import, no device work).
"""

from monai_baldsam.bayes.acquisition import (
    UNCERTAINTY_KEYS,
    best_click,
    binary_entropy,
    expected_entropy,
    gaussian_logit_uncertainty_maps,
    masked_argmax,
    mutual_information,
    neighbourhood_mean,
    predictive_entropy,
    uncertainty_maps,
)
from monai_baldsam.bayes.enums import HessianStructure, PriorStructure, TuningMethod
from monai_baldsam.bayes.laplace import LastLayerLaplace
from monai_baldsam.bayes.state import STATE_FORMAT_VERSION, check_signature_dict, compare_signatures

__all__ = [
    "UNCERTAINTY_KEYS",
    "binary_entropy",
    "expected_entropy",
    "gaussian_logit_uncertainty_maps",
    "masked_argmax",
    "neighbourhood_mean",
    "best_click",
    "mutual_information",
    "predictive_entropy",
    "uncertainty_maps",
    "HessianStructure",
    "PriorStructure",
    "TuningMethod",
    "STATE_FORMAT_VERSION",
    "LastLayerLaplace",
    "check_signature_dict",
    "compare_signatures",
]
