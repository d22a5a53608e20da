"""The model-driven policies ``bald`` and ``entropy``: argmax of the model's map over valid pixels, blind to truth,
and end to end through ``baldsam evaluate --head`` with the shipped general head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_baldsam.cli.main import main
from monai_baldsam.interaction import ClickContext, ModelOutput, available_policies, make_policy

HEAD = Path(__file__).resolve().parents[1] / "monai_baldsam" / "head" / "weights" / "general_v0.pt"


def _context(maps: dict[str, np.ndarray], valid: np.ndarray) -> ClickContext:
    shape = valid.shape
    output = ModelOutput(probability=np.full(shape, 0.5, np.float32), mask=np.zeros(shape, bool),
                         low_res_logits=torch.zeros(1, 1, 4, 4), extras=maps)
    return ClickContext(prediction=output, clicks_xy=np.zeros((0, 2), np.int64), click_labels=np.zeros(0, np.int64),
                        box_xy=None, valid=valid, rng=np.random.default_rng(0), interaction=2)


@pytest.mark.parametrize(("name", "key"), [("bald", "mutual_information"), ("entropy", "predictive_entropy"),
                                          ("epig", "epig")])
def test_policy_clicks_the_valid_maximum_of_its_map(name: str, key: str) -> None:
    assert name in available_policies()
    policy = make_policy(name)
    assert not policy.uses_ground_truth and policy.requires_extras == (key,)
    score = np.zeros((6, 8))
    score[2, 5] = 3.0  # the best pixel, but already clicked
    score[4, 1] = 2.0
    score[1, 7] = 2.0  # tie with (x=1, y=4): row-major order picks (x=7, y=1)
    valid = np.ones((6, 8), bool)
    valid[2, 5] = False
    other = "predictive_entropy" if key == "mutual_information" else "mutual_information"
    click = policy.choose(_context({key: score, other: -score}, valid))
    assert click is not None and click.xy == (7, 1) and click.label is None


def test_policy_without_valid_pixels_places_no_click_and_checks_shapes() -> None:
    policy = make_policy("bald")
    assert policy.choose(_context({"mutual_information": np.ones((3, 3))}, np.zeros((3, 3), bool))) is None
    with pytest.raises(ValueError, match="shape"):
        policy.choose(_context({"mutual_information": np.ones((2, 3))}, np.ones((3, 3), bool)))


def test_evaluate_with_head_runs_bald_end_to_end(tmp_path: Path, dev_dir, capsys) -> None:
    if not HEAD.is_file():
        pytest.fail(f"the shipped head {HEAD} is missing")
    out = tmp_path / "run"
    code = main(["evaluate", "--data", str(dev_dir("ph2")), "--policy", "bald,oracle", "--first", "click",
                 "--clicks", "3", "--limit", "1", "--head", str(HEAD), "--out", str(out), "--no-progress",
                 "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    bald = json.loads((out / "bald" / "metrics.json").read_text())
    oracle = json.loads((out / "oracle" / "metrics.json").read_text())
    assert bald["policy"] == "bald" and bald["n_images"] == 1
    assert bald["miou_at"]["1"] == oracle["miou_at"]["1"]  # the same first click for every policy
    assert bald["miou_at"]["1"] > 0.2  # the head answers a single click, the plain LiteMedSAM decoder does not


def test_footprint_and_gate_move_bald_from_a_spike_to_a_wide_uncertain_region() -> None:
    from monai_baldsam.interaction.policies import BaldPolicy

    score = np.zeros((100, 100))
    score[5, 90] = 0.69  # a single most uncertain pixel
    score[40:70, 20:50] = 0.6  # a wide uncertain region
    valid = np.ones_like(score, dtype=bool)
    spike = make_policy("bald_pixel").choose(_context({"mutual_information": score}, valid))
    region = BaldPolicy(footprint=0.05, gate=0.5).choose(_context({"mutual_information": score}, valid))
    assert spike is not None and spike.xy == (90, 5)
    assert region is not None and 20 <= region.xy[0] < 50 and 40 <= region.xy[1] < 70
    with pytest.raises(ValueError, match="footprint"):
        BaldPolicy(footprint=0.7)
    with pytest.raises(ValueError, match="gate"):
        BaldPolicy(gate=-0.1)


def test_exclusion_keeps_bald_away_from_earlier_clicks() -> None:
    from dataclasses import replace

    from monai_baldsam.interaction.policies import BaldPolicy

    score = np.zeros((100, 100))
    score[40:60, 40:60] = 0.6  # the region the earlier click at (x=50, y=50) answered
    score[10:20, 80:90] = 0.5  # a region nobody asked about yet
    valid = np.ones_like(score, dtype=bool)
    valid[50, 50] = False
    context = replace(_context({"mutual_information": score}, valid), clicks_xy=np.array([[50, 50]]))
    near = BaldPolicy(footprint=0.02, gate=0.5).choose(context)
    far = BaldPolicy(footprint=0.02, gate=0.5, exclusion=0.15).choose(context)
    assert near is not None and 40 <= near.xy[0] < 60 and 40 <= near.xy[1] < 60
    assert far is not None and 80 <= far.xy[0] < 90 and 10 <= far.xy[1] < 20
    allowed = BaldPolicy(exclusion=0.15).candidates(valid, np.array([[50, 50]]))
    assert not allowed[35:66, 35:66].any() and allowed[34, 50] and allowed[50, 66]
    everywhere = BaldPolicy(exclusion=0.499).candidates(valid, np.array([[50, 50]]))
    assert np.array_equal(everywhere, valid)  # nothing would be left: the exclusion is dropped
    with pytest.raises(ValueError, match="exclusion"):
        BaldPolicy(exclusion=0.5)


def test_region_rule_and_expected_error_policy() -> None:
    from dataclasses import replace

    from monai_baldsam.interaction.policies import BaldPolicy, ExpectedErrorPolicy

    mask = np.zeros((60, 60), dtype=bool)
    mask[10:40, 10:40] = True
    score = np.zeros((60, 60))
    score[40:52, 12:38] = 0.5  # a wide uncertain band just outside the mask
    score[39, 10:40] = 0.7  # the boundary row, where the answer is a coin flip
    context = replace(_context({"mutual_information": score}, np.ones((60, 60), bool)),
                      prediction=ModelOutput(probability=np.where(mask, 0.9, 0.1).astype(np.float32), mask=mask,
                                             low_res_logits=torch.zeros(1, 1, 4, 4),
                                             extras={"mutual_information": score}))
    click = BaldPolicy(gate=0.5, exclusion=0.0, region=True).choose(context)
    assert click is not None and 40 <= click.xy[1] < 52 and not mask[click.xy[1], click.xy[0]]
    with pytest.raises(ValueError, match="region rule"):
        BaldPolicy(gate=0.0, region=True)
    probability = np.full((60, 60), 0.02, np.float32)
    probability[5:15, 45:55] = 0.45  # the mask is most likely wrong here
    probability[30, 30] = 0.97
    expected = ExpectedErrorPolicy(footprint=0.0, gate=0.0, exclusion=0.0)
    assert expected.requires_extras == () and not expected.uses_ground_truth
    chosen = expected.choose(replace(context, prediction=ModelOutput(
        probability=probability, mask=probability > 0.5, low_res_logits=torch.zeros(1, 1, 4, 4))))
    assert chosen is not None and 45 <= chosen.xy[0] < 55 and 5 <= chosen.xy[1] < 15


def test_lookahead_tries_both_answers_of_each_bald_proposal_and_keeps_the_most_informative() -> None:
    from dataclasses import replace

    from monai_baldsam.interaction.policies import LookaheadBaldPolicy

    score = np.zeros((100, 100))
    score[10:20, 10:20] = 0.6  # BALD's first proposal
    score[70:80, 70:80] = 0.5  # its second: the answer here settles the image (tested below)
    calls: list[tuple[int, int, int]] = []

    class AnsweringModel:  # a click model whose uncertainty after a click depends on where the click was
        signature = "fake"

        def predict(self, embedding, points_xy, labels, box_xy, mask_input):
            x, y = (int(v) for v in points_xy[-1])
            calls.append((x, y, int(labels[-1])))
            left = 1.0 if (x, y) == settled else 100.0
            return ModelOutput(probability=np.zeros((100, 100), np.float32), mask=np.zeros((100, 100), bool),
                               low_res_logits=torch.zeros(1, 1, 4, 4),
                               extras={"predictive_entropy": np.full((100, 100), left / 1e4)})

    policy = LookaheadBaldPolicy(candidates=2, footprint=0.02, gate=0.5, exclusion=0.1)
    context = replace(_context({"mutual_information": score, "predictive_entropy": score}, np.ones((100, 100), bool)),
                      model=AnsweringModel(), embedding=object())
    proposals = policy.proposals(context)
    assert len(proposals) == 2 and 10 <= proposals[0][0] < 20 and 70 <= proposals[1][0] < 80
    settled = proposals[1]
    click = policy.choose(context)
    assert click is not None and click.xy == settled and click.label is None
    assert sorted({(x, y) for x, y, _ in calls}) == sorted(proposals)  # each proposal tried ...
    assert {label for _, _, label in calls} == {0, 1}  # ... with both answers (p = 0.5 at every pixel)
    assert LookaheadBaldPolicy(candidates=1).choose(context) is not None
    with pytest.raises(ValueError, match="candidates"):
        LookaheadBaldPolicy(candidates=0)
