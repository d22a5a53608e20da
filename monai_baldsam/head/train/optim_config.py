"""The optimisation settings every trainer of this package shares (the prediction head's and UncertainSAM's).

:class:`OptimConfig` declares, documents and validates ``epochs``, ``batch_size``, ``lr`` and ``weight_decay`` once;
:class:`~monai_baldsam.head.train.trainer.TrainConfig` and :class:`~monai_baldsam.usam.train.trainer.UsamTrainConfig`
extend
it. A trainer whose defaults differ redeclares only the default (``epochs: int = 300``); a redeclared field keeps
its place, so ``dataclasses.asdict`` (what the model cards record) lists the fields in the same order as before.
``patience`` stays with each trainer: it comes at a different place in each card.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OptimConfig"]


@dataclass(frozen=True)
class OptimConfig:
    """Shared optimisation settings (defaults: the prediction head's).

    Attributes:
        epochs: passes over the training data (at most; trainers may stop early).
        batch_size: items per optimiser step.
        lr: AdamW learning rate, > 0.
        weight_decay: AdamW weight decay, >= 0.
    """

    epochs: int = 20
    batch_size: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got epochs={self.epochs}, "
                             f"batch_size={self.batch_size}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got lr={self.lr}, "
                             f"weight_decay={self.weight_decay}")
