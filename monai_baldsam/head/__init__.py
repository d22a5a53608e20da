"""Prediction head for BALD-SAM: a small conv net on the frozen SAM decoder that makes clicks work, whose last
layer carries a Laplace posterior for BALD click suggestions (see ``README.md`` beside this file).

* :mod:`~monai_baldsam.head.features`: decoder features, click and mask encodings (no image re-encoding).
* :mod:`~monai_baldsam.head.model`: :class:`PredictionHead` and :class:`HeadConfig`.
* :mod:`~monai_baldsam.head.click_model`: :class:`BayesianHeadClickModel` (the evaluation's ClickModel protocol).
* :mod:`~monai_baldsam.head.checkpoint`: :func:`save_head` / :func:`load_head` (one verified file).
* :mod:`~monai_baldsam.head.clicks`: click encodings and the clicks of simulated users.
* :mod:`~monai_baldsam.head.registry`: the shipped heads by name.

Training lives in :mod:`monai_baldsam.head.train` (:func:`~monai_baldsam.head.train.train_head`, the on-disk
embedding store, simulated sessions): nothing here imports it, so running a head never loads the trainer.

Importing has no side effects.
"""

from monai_baldsam.head.checkpoint import HEAD_FORMAT, TrainedHead, backbone_signature, load_head, save_head
from monai_baldsam.head.click_model import (
    EXTRA_KEYS,
    BayesianHeadClickModel,
    UncertaintyMethod,
    load_head_click_model,
)
from monai_baldsam.head.features import DecoderClicks, FeatureConfig, FeatureExtractor, HeadInputs, HeadPrompts
from monai_baldsam.head.model import HeadConfig, HeadOutput, PredictionHead

__all__ = [
    "HEAD_FORMAT",
    "TrainedHead",
    "backbone_signature",
    "load_head",
    "save_head",
    "EXTRA_KEYS",
    "BayesianHeadClickModel",
    "UncertaintyMethod",
    "load_head_click_model",
    "DecoderClicks",
    "FeatureConfig",
    "FeatureExtractor",
    "HeadInputs",
    "HeadPrompts",
    "HeadConfig",
    "HeadOutput",
    "PredictionHead",
]
