"""The active-learning simulation (issue 17, section 3): the pure pieces (labels needed to reach a target, savings,
the strategies' picks) and the whole loop on the tiny ViT with synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_baldsam.evaluation.active_learning import (
    ActiveLearningConfig,
    encode_cases,
    head_click_model,
    label_savings,
    labels_to_reach,
    pick_next,
    pool_scores,
    seed_round,
    simulate,
    strategy_curves,
)
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.trainer import TrainConfig, train_head
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.encoder_runtime import make_encoder
from tests.test_head_training import _FAST, _synthetic_folder


def test_labels_to_reach_interpolates_between_rounds() -> None:
    counts = [20, 40, 60, 80, 100]
    assert labels_to_reach(counts, [0.5, 0.6, 0.7, 0.8, 0.9], 0.75) == pytest.approx(70.0)
    assert labels_to_reach(counts, [0.5, 0.6, 0.7, 0.8, 0.9], 0.4) == 20.0  # reached by the seed set
    assert labels_to_reach(counts, [0.5, 0.6, 0.7, 0.8, 0.9], 0.95) is None
    assert labels_to_reach(counts, [0.5, 0.8, 0.7, 0.9, 0.9], 0.75) == pytest.approx(20 + 20 * 0.25 / 0.3)
    with pytest.raises(ValueError, match="increase"):
        labels_to_reach([20, 20], [0.1, 0.2], 0.1)


def test_savings_are_against_the_baselines_final_miou() -> None:
    counts = [20, 40, 60]
    per_seed = {"random": {0: np.array([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]]),
                           1: np.array([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]])},
                "bald": {0: np.array([[0.5, 0.5], [0.7, 0.7], [0.8, 0.8]]),
                         1: np.array([[0.5, 0.5], [0.7, 0.7], [0.8, 0.8]])},
                "usam": {0: np.array([[0.4, 0.4], [0.5, 0.5], [0.6, 0.6]]),
                         1: np.array([[0.4, 0.4], [0.5, 0.5], [0.6, 0.6]])}}
    curves = strategy_curves(per_seed, counts)
    assert curves["bald"].shape == (3, 2)
    saved = label_savings(curves, counts)
    assert saved["random"] == {"target_miou": 0.7, "labels": 60.0, "saving": 0.0}
    assert saved["bald"]["labels"] == pytest.approx(40.0) and saved["bald"]["saving"] == pytest.approx(1 / 3, abs=1e-3)
    assert saved["usam"]["labels"] is None and saved["usam"]["saving"] is None
    with pytest.raises(ValueError, match="rounds"):
        strategy_curves(per_seed, [20, 40])


def test_picks_follow_the_apps_ranking_and_random_is_seeded() -> None:
    names = [f"img{i}" for i in range(10)]
    scores = {n: float(i % 4) for i, n in enumerate(names)}  # 3.0 for img3 and img7: a tie goes to the smaller name
    assert pick_next("bald", names, scores, 3, np.random.default_rng(0)) == ["img3", "img7", "img2"]
    first = pick_next("random", names, {}, 4, np.random.default_rng(5))
    assert first == pick_next("random", names[::-1], {}, 4, np.random.default_rng(5)) and len(set(first)) == 4
    assert pick_next("random", names, {}, 40, np.random.default_rng(0)) == sorted(names)
    with pytest.raises(ValueError, match="no usam score"):
        pick_next("usam", names, {"img0": 1.0}, 2, np.random.default_rng(0))


def test_config_counts_and_refusals() -> None:
    config = ActiveLearningConfig(seed_images=20, per_round=20, rounds=4)
    assert config.labelled_counts == [20, 40, 60, 80, 100]
    assert config.to_dict()["train"]["epochs"] == 5  # the app trainer's max_epochs
    with pytest.raises(ValueError, match="score_key"):
        ActiveLearningConfig(score_key="max")
    with pytest.raises(ValueError, match="at least 1"):
        ActiveLearningConfig(rounds=0)


@pytest.mark.slow
def test_the_loop_on_synthetic_images(tiny_vit, tmp_path) -> None:
    """Seed round, then a round of bald and of random on the tiny ViT: labels grow by the round's picks, bald takes
    the unlabelled images with the highest BALD scores, the head is fine-tuned from the current one."""
    folder = _synthetic_folder(tmp_path / "pool", n=8)
    start_head = train_head([folder], tmp_path / "start.pt", backbone=tiny_vit, seed=0, val_fraction=0.25,
                            store_dir=tmp_path / "store", config=_FAST, progress=False).path
    store = EmbeddingStore(tmp_path / "store")
    runner = make_encoder(tiny_vit, "torch")
    cases = discover_cases(folder)
    pool, dev = encode_cases(cases[:6], tiny_vit, store, runner), encode_cases(cases[6:], tiny_vit, store, runner)
    config = ActiveLearningConfig(seed_images=3, per_round=2, rounds=1, interactions=2,
                                  train=TrainConfig(**{**_FAST.__dict__, "epochs": 1}), val_fraction=0.34)
    torch.manual_seed(0)
    start = seed_round(pool, dev, start_head, tmp_path / "work", tiny_vit, store, runner, config, seed=1)
    assert len(start.labelled) == 3 and start.dev_iou.shape == (2, 2) and start.head.is_file()
    assert start.labelled == seed_round(pool, dev, start_head, tmp_path / "again", tiny_vit, store, runner, config,
                                        seed=1).labelled
    unlabelled = [item for item in pool if item.name not in start.labelled]
    scores = pool_scores("bald", head_click_model(tiny_vit, start.head), unlabelled, config)
    assert set(scores) == {item.name for item in unlabelled} and all(v >= 0 for v in scores.values())
    for strategy in ("bald", "random"):
        rounds = simulate(strategy, start, pool, dev, tmp_path / "work", tiny_vit, store, runner, config, seed=1)
        assert [len(r.labelled) for r in rounds] == config.labelled_counts
        added = rounds[1].labelled[3:]
        assert rounds[1].labelled[:3] == start.labelled and not set(added) & set(start.labelled)
        if strategy == "bald":
            assert added == sorted(scores, key=lambda n: (-scores[n], n))[:2]
        record = rounds[1].record(config.interactions)
        assert record["labelled"] == 5 and len(record["dev_iou"]) == 2 and len(record["head_sha256"]) == 64
    with pytest.raises(ValueError, match="fewer than"):
        seed_round(pool, dev, start_head, tmp_path / "small", tiny_vit, store, runner,
                   ActiveLearningConfig(seed_images=5, per_round=2, rounds=1), seed=0)
