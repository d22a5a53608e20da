"""Regression targets of the simulated prompt states on a tiny synthetic case, checked against values computed by
hand: a stub model whose mask is exactly the prompt box (so IoUs are rectangle overlaps) on a tiny random ViT (so the
decoder runs and its tokens and multimask outputs are real), and a second tiny ViT as the "larger" backbone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_baldsam.interaction.model import ModelOutput, SamClickModel
from monai_baldsam.sam.backbones import build_sam_vit
from monai_baldsam.sam.geometry import postprocess_low_res_logits
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding
from monai_baldsam.usam.train.data import (
    ImageStates,
    StateConfig,
    StateStore,
    dense_prompt,
    image_rng,
    simulate_states,
)

H, W = 48, 64
TRUTH_BOX = (10, 8, 29, 23)  # x0, y0, x1, y1 inclusive


def _truth() -> np.ndarray:
    truth = np.zeros((H, W), dtype=bool)
    x0, y0, x1, y1 = TRUTH_BOX
    truth[y0:y1 + 1, x0:x1 + 1] = True
    return truth


def _rect_iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


class BoxMaskModel:
    """Runs the real decoder (tokens), answers with the prompt box as the mask; logs every box it gets."""

    def __init__(self, predictor: SamPredictor) -> None:
        self.inner = SamClickModel(predictor)
        self.predictor = predictor
        self.boxes: list[tuple[int, int, int, int] | None] = []

    @property
    def signature(self) -> str:
        return "box-mask"

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        return self.inner.encode(image)

    def predict(self, embedding, point_coords_xy, point_labels, box_xy, mask_input) -> ModelOutput:
        out = self.inner.predict(embedding, point_coords_xy, point_labels, box_xy, mask_input)
        mask = np.zeros(embedding.original_hw, dtype=bool)
        if box_xy is not None:
            x0, y0, x1, y1 = (int(v) for v in box_xy)
            mask[y0:y1 + 1, x0:x1 + 1] = True
            self.boxes.append((x0, y0, x1, y1))
        else:
            for (x, y), label in zip(np.asarray(point_coords_xy, dtype=int), point_labels):
                mask[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = bool(label)
            self.boxes.append(None)
        return ModelOutput(mask.astype(np.float32), mask, out.low_res_logits, {})


def _multimask_ious(predictor: SamPredictor, embedding: SliceEmbedding, box, truth) -> list[float]:
    _, _, box_t = predictor.prompts_to_torch(None, None, np.asarray(box, dtype=float), embedding.original_hw)
    out = predictor.predict_torch(boxes=box_t, multimask_output=True, embedding=embedding)
    masks = postprocess_low_res_logits(out.low_res_logits, predictor.img_size, embedding.original_hw)[0] > 0
    return [float((m.numpy() & truth).sum() / max(1, (m.numpy() | truth).sum())) for m in masks]


@pytest.fixture()
def setup(tiny_vit):
    torch.manual_seed(5)
    large = build_sam_vit(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=64, window_size=2,
                          name="tiny_large").eval().requires_grad_(False)
    image = torch.rand((1, 3, H, W), generator=torch.Generator().manual_seed(0))
    predictor = SamPredictor(tiny_vit)
    embedding = SliceEmbedding(predictor.encode(image), (H, W))
    large_model = SamClickModel(SamPredictor(large))
    return predictor, embedding, large_model, large_model.encode(image)


def test_sam_state_targets_by_hand(setup):
    predictor, embedding, large_model, large_embedding = setup
    truth = _truth()
    sam = BoxMaskModel(predictor)
    config = StateConfig(sam_jitters=2, head_rounds=0, dense_clicks=2)
    states = simulate_states(embedding, truth, sam, None, config, image_rng(0, "case"), large_model, large_embedding)
    assert states.path == ["sam"] * 3 and states.kind == ["box", "jitter", "jitter"]
    assert states.features.shape[0] == 3 and states.targets.shape == (3, 4)
    # logged boxes: exact box, the dense prompt (the exact box + clicks), then the two jittered boxes
    assert sam.boxes[0] == TRUTH_BOX and sam.boxes[1] == TRUTH_BOX
    boxes = [sam.boxes[0], *sam.boxes[2:]]
    for row, box in zip(states.targets.numpy().astype(np.float64), boxes):
        iou = _rect_iou(box, TRUTH_BOX)
        task = max([iou, *_multimask_ious(predictor, embedding, box, truth)]) - iou
        large_mask = large_model.predict(large_embedding, None, None, np.asarray(box, dtype=float), None).mask
        large_iou = float((large_mask & truth).sum() / max(1, (large_mask | truth).sum()))
        np.testing.assert_allclose(row, [iou, 1.0 - iou, task, large_iou - iou], atol=1e-5)
    assert states.targets[0, 0] == 1.0 and states.targets[0, 1] == 0.0 and states.targets[0, 2] == 0.0
    assert states.targets[1:, 0].max() < 1.0  # the jittered boxes miss part of the object


def test_head_states_and_missing_model_gap(setup):
    predictor, embedding, _, _ = setup
    truth = _truth()
    head = BoxMaskModel(predictor)
    config = StateConfig(sam_jitters=0, head_rounds=2, head_box_first=0.0, dense_clicks=1)
    states = simulate_states(embedding, truth, BoxMaskModel(predictor), head, config, image_rng(1, "case"))
    assert states.path == ["sam", "head", "head", "head"]
    assert states.kind[1] == "box" and states.kind[2].startswith("click+") and states.interaction[2:] == [1, 2]
    assert bool(torch.isnan(states.targets[:, 3]).all())  # no larger backbone: no model gap
    assert states.features[:, -1].tolist() == [0.0, 1.0, 1.0, 1.0]  # the "from a head" flag
    # the click session's first state: one 5 x 5 positive square deep inside the 20 x 16 rectangle
    assert states.targets[2, 0].item() == pytest.approx(25 / truth.sum())
    # the baseline columns: SAM's own IoU prediction is finite, BALD is NaN without a Bayesian head
    assert bool(torch.isfinite(states.baselines[:, 0]).all()) and bool(torch.isnan(states.baselines[:, 2]).all())


def test_dense_prompt_clicks_are_inside_and_outside():
    truth = _truth()
    box, clicks, labels = dense_prompt(truth, np.random.default_rng(0), 3)
    np.testing.assert_array_equal(box, TRUTH_BOX)
    assert labels.tolist() == [1, 1, 1, 0, 0, 0]
    inside = truth[clicks[:, 1].astype(int), clicks[:, 0].astype(int)]
    assert inside.tolist() == [True, True, True, False, False, False]


def test_empty_truth_is_refused(setup):
    predictor, embedding, _, _ = setup
    with pytest.raises(ValueError, match="empty"):
        simulate_states(embedding, np.zeros((H, W), bool), BoxMaskModel(predictor), None, StateConfig(),
                        image_rng(0, "x"))


def test_state_store_roundtrip_and_stale_signature(tmp_path):
    store = StateStore(tmp_path, max_items=2)
    states = ImageStates(torch.ones((2, 3)), torch.zeros((2, 4)), torch.full((2, 3), math.nan), ["sam", "head"],
                         ["box", "box"], [1, 1])
    signature = StateStore.signature(image_sha256="a", seed=0)
    store.put(signature, states)
    got = store.get(signature)
    assert got is not None and got.path == ["sam", "head"] and torch.equal(got.features, states.features)
    assert store.get(StateStore.signature(image_sha256="b", seed=0)) is None
    # a file whose stored signature differs from its key is stale: an error, never silently reused
    other = StateStore.signature(image_sha256="c", seed=0)
    store.path(other).write_bytes(store.path(signature).read_bytes())
    with pytest.raises(ValueError, match="stale"):
        store.get(other)
    for n in range(3):  # bounded: at most 2 files
        store.put(StateStore.signature(image_sha256=f"n{n}", seed=0), states)
    assert len(store) == 2
    store.clear()
    assert len(store) == 0
