"""The training scaffold the head, UncertainSAM and decoder trainers share: the schedule matches each trainer's
former one, the best state is a copy, outputs and config files are handled as the cards need."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from monai_baldsam.head.train.scaffold import BestState, TimeBudget, checked_outputs, config_record, cosine_factor
from monai_baldsam.sam.checkpoints import file_sha256


def test_cosine_factor_is_the_head_schedule_bit_for_bit() -> None:
    total = 37
    assert [cosine_factor(s, total) for s in range(total + 1)] == [
        0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total + 1)]


def test_cosine_factor_warms_up_then_decays_as_the_decoder_schedule() -> None:
    warmup, total = 5, 40
    former = [(s + 1) / warmup if s < warmup else
              0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - warmup) / (total - warmup)))) for s in range(total + 3)]
    assert [cosine_factor(s, total, warmup) for s in range(total + 3)] == pytest.approx(former, abs=1e-15)
    assert cosine_factor(total + 2, total, warmup) == pytest.approx(0.0)


def test_best_state_keeps_a_copy_and_counts_stale_offers() -> None:
    weights = {"w": torch.zeros(2)}
    best = BestState(higher_is_better=True, score=-1.0)
    assert best.offer(0.5, 1, lambda: weights)
    weights["w"] += 1  # training goes on: the kept state must not follow
    assert not best.offer(0.4, 2, weights) and not best.offer(0.5, 3, weights)
    assert (best.score, best.step, best.stale) == (0.5, 1, 2) and float(best.state["w"].sum()) == 0.0
    loss = BestState(higher_is_better=False)
    assert loss.offer(3.0, 0, {}) and loss.offer(2.0, 1, {}) and not loss.offer(2.5, 2, {})


def test_time_budget() -> None:
    assert not TimeBudget(None).spent() and not TimeBudget(60.0).spent()
    assert TimeBudget(-1.0).spent()


def test_outputs_are_refused_when_they_exist_and_configs_are_recorded(tmp_path: Path) -> None:
    out, card = checked_outputs(tmp_path / "m.pt", overwrite=False)
    assert card == tmp_path / "m.json"
    card.write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite"):
        checked_outputs(out, overwrite=False)
    assert checked_outputs(out, overwrite=True) == (out, card)
    assert config_record(None) == {"config_file": None, "config_sha256": None}
    assert config_record(card) == {"config_file": "m.json", "config_sha256": file_sha256(card)}
