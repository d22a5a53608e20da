"""Mask descriptor and quality metrics checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_baldsam.usam.features import mask_descriptor, valid_low_res
from monai_baldsam.usam.metrics import detection_auroc, ranking_auc, spearman


def test_valid_low_res_crops_the_padding():
    # a 48 x 64 slice in a 64 px SAM input: resized to 48 x 64, so 3/4 of the 16 rows are image
    valid = valid_low_res((48, 64), 64, 16)
    assert valid.sum() == 12 * 16 and valid[:12].all() and not valid[12:].any()


def test_mask_descriptor_by_hand():
    logits = torch.full((1, 1, 4, 4), -20.0)
    logits[0, 0, :2, :2] = 20.0          # judged mask: 4 pixels, all confident
    logits[0, 0, 3, 3] = 0.0             # one pixel at p = 0.5 (1 bit), not in the mask (logit 0 is not > 0)
    sam = torch.full((1, 1, 4, 4), -20.0)
    sam[0, 0, :2, :3] = 5.0              # SAM's mask: 6 pixels, 4 shared
    valid = torch.ones((4, 4), dtype=torch.bool)
    d = mask_descriptor(logits, sam, valid, torch.tensor([True]))[0]
    assert d[0].item() == pytest.approx(4 / 16)                  # area fraction
    assert d[1].item() == pytest.approx(1 / 16, abs=1e-4)        # mean entropy: one pixel of 1 bit
    assert d[2].item() == pytest.approx(1 / 4, abs=1e-4)         # entropy per mask pixel
    assert d[3].item() == pytest.approx(4 / 6)                   # IoU with SAM's mask
    assert d[4].item() == 1.0


def test_mask_descriptor_ignores_padding():
    logits = torch.full((1, 1, 4, 4), 20.0)
    valid = torch.zeros((4, 4), dtype=torch.bool)
    valid[:2] = True
    d = mask_descriptor(logits, logits, valid, torch.tensor([False]))[0]
    assert d[0].item() == pytest.approx(1.0)  # 8 of 8 valid pixels


def test_spearman_and_ranking_auc_by_hand():
    true = np.array([0.2, 0.5, 0.7, 0.9])
    assert spearman(true * 2, true) == pytest.approx(1.0)
    assert spearman(-true, true) == pytest.approx(-1.0)
    assert ranking_auc(true, true) == 1.0
    # one swapped pair (0.5 <-> 0.7) out of 6: 5/6 concordant
    assert ranking_auc(np.array([0.1, 0.6, 0.4, 0.8]), true) == pytest.approx(5 / 6)
    # a tie in the score counts one half: pairs (0,1) tied -> 5.5/6
    assert ranking_auc(np.array([0.3, 0.3, 0.6, 0.8]), true) == pytest.approx(5.5 / 6)
    assert math.isnan(ranking_auc(np.ones(3), np.ones(3)))
    assert math.isnan(spearman(np.ones(4), true))


def test_detection_auroc_by_hand():
    true = np.array([0.5, 0.7, 0.85, 0.95])       # two bad (< 0.8), two good
    assert detection_auroc(true, true, 0.8) == 1.0
    assert detection_auroc(-true, true, 0.8) == 0.0
    # bad scores 0.6, 0.9; good scores 0.7, 0.95: bad-below-good pairs (0.6<0.7, 0.6<0.95, 0.9<0.95) = 3 of 4
    assert detection_auroc(np.array([0.6, 0.9, 0.7, 0.95]), true, 0.8) == pytest.approx(3 / 4)
    assert math.isnan(detection_auroc(true, np.ones(4), 0.8))


def test_metric_input_errors():
    with pytest.raises(ValueError, match="same length"):
        spearman(np.ones(3), np.ones(4))
