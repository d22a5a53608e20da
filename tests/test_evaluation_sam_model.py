"""The default click model (plain SAM decoder) with the real LiteMedSAM on one dev image."""

from __future__ import annotations

import numpy as np
import torch

from monai_baldsam.interaction import ClickModel, SamClickModel, load_case, make_first_prompt
from monai_baldsam.interaction.metrics import iou_score
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.predictor import SamPredictor


def test_sam_click_model_box_and_feedback(lite_medsam, dev_dir) -> None:
    model = SamClickModel(SamPredictor(lite_medsam, EmbeddingCache(max_items=4)))
    assert isinstance(model, ClickModel) and model.signature.startswith("lite_medsam@")
    loaded = load_case(discover_cases(dev_dir("ph2"), limit=1)[0])
    embedding = model.encode(loaded.image)
    assert embedding.original_hw == loaded.truth.shape
    model.encode(loaded.image.clone())  # same pixels: served by the cache
    assert model.predictor.cache.hits == 1 and model.predictor.cache.misses == 1
    prompt = make_first_prompt(loaded.truth, "box", np.random.default_rng(0))
    out = model.predict(embedding, prompt.points_xy, prompt.labels, prompt.box_xy, None)
    assert out.mask.shape == loaded.truth.shape and out.mask.dtype == bool
    assert out.probability.dtype == np.float32 and 0.0 <= out.probability.min() <= out.probability.max() <= 1.0
    assert out.low_res_logits.shape == (1, 1, 256, 256) and out.extras == {}
    assert iou_score(out.mask, loaded.truth) > 0.8
    again = model.predict(embedding, np.array([[10, 10]]), np.array([0]), prompt.box_xy, out.low_res_logits)
    assert again.mask.shape == loaded.truth.shape
    assert not torch.equal(again.low_res_logits, out.low_res_logits)
