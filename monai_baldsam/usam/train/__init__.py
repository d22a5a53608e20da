"""Training of the UncertainSAM heads: simulated prompt states and their targets
(:mod:`~monai_baldsam.usam.train.data`) and :func:`~monai_baldsam.usam.train.trainer.train_usam`. Nothing that runs
the heads imports this subpackage.
"""

from monai_baldsam.usam.train.trainer import UsamTrainConfig, train_usam

__all__ = ["UsamTrainConfig", "train_usam"]
