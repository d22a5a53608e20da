"""monai_baldsam: interactive medical image segmentation with SAM, a Bayesian head and BALD click suggestions.

Importing the package has no side effects: models, data and devices are touched only when called.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
