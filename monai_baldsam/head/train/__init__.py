"""Training of the prediction head: nothing that runs a head (segmentation, suggestion, the MONAI Label app, the
volume session) imports this subpackage (an import-linter contract in ``pyproject.toml`` checks it).

* :mod:`~monai_baldsam.head.train.trainer`: :func:`train_head` (simulated sessions, Laplace fit, model card).
* :mod:`~monai_baldsam.head.train.scaffold`: what every trainer of the package shares (outputs, backbone, schedule,
  time budget, best state, card).
* :mod:`~monai_baldsam.head.train.data`: the training images (split, loaded, encoded once), as
  :class:`~monai_baldsam.head.train.data.TrainItem`.
* :mod:`~monai_baldsam.head.train.volume_slices`: 3D volumes as training slices.
* :mod:`~monai_baldsam.head.train.embedding_store`: the signature-checked on-disk embedding store.
* :mod:`~monai_baldsam.head.train.simulation`: batched simulated users (boxes, error and uncertain clicks).
* :mod:`~monai_baldsam.head.train.optim_config`: the optimisation settings the trainers share.

Importing the subpackage loads the trainer; import a module directly for less.
"""

from monai_baldsam.head.train.trainer import TrainConfig, TrainResult, train_head

__all__ = ["TrainConfig", "TrainResult", "train_head"]
