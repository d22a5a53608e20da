"""The validation images of a head's training split (its card's ``data.val`` list), loaded with the head as a click
model: what the policy-tuning benchmarks run on, so that no choice is made on dev data.

Imported by the benchmarks of this package (each run as ``python -m benchmarks.<name>`` from the repository root).
"""

from __future__ import annotations

import json

from monai_baldsam.head.click_model import BayesianHeadClickModel, load_head_click_model
from monai_baldsam.head.registry import HeadFile, resolve_head
from monai_baldsam.head.train.data import TrainItem, card_cases, load_items
from monai_baldsam.head.train.embedding_store import EmbeddingStore

__all__ = ["load_validation_split"]


def load_validation_split(head_name: str, device: str = "cpu", limit: int | None = None
                          ) -> tuple[HeadFile, BayesianHeadClickModel, list[TrainItem]]:
    """``(head, click model on device, validation items)`` of the shipped head or head file ``head_name`` (the
    first ``limit`` per domain only, for smoke runs); the embeddings come from (and go to) the on-disk
    :class:`EmbeddingStore` and stay on the CPU."""
    head = resolve_head(head_name)
    card = json.loads(head.path.with_suffix(".json").read_text())
    model = load_head_click_model(head.path, head_sha256=head.sha256, device=device)
    items = load_items(card_cases(card, "val", limit), model.predictor.backbone, EmbeddingStore(),
                       keep_images=False, desc="validation images")
    return head, model, items
