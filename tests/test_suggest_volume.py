"""BALD over a volume excludes the neighbourhood of earlier clicks on their slice, with the 2D ``bald`` policy's rule
and settings (read from one ``BaldPolicy()``): pure tests on small arrays, and one on a real dev volume."""

from __future__ import annotations

import numpy as np
import pytest

import monai_baldsam.suggestion as suggestion
from monai_baldsam.interaction.policies import BaldPolicy
from monai_baldsam.suggestion import best_volume_click, exclude_near_clicks
from monai_baldsam.volume.session import VolumeUncertainty


def _square_hit(click_ijk, point_ijk, axis: int, radius: int) -> bool:
    """Whether ``point_ijk`` lies on the click's slice within the square of half-width ``radius`` around it."""
    if click_ijk[axis] != point_ijk[axis]:
        return False
    return all(abs(int(c) - int(p)) <= radius for n, (c, p) in enumerate(zip(click_ijk, point_ijk)) if n != axis)


def test_exclude_near_clicks_removes_a_square_on_the_clicked_slice_only() -> None:
    valid = np.ones((3, 20, 30), dtype=bool)  # slices 4, 5, 6 along axis 2, (X, Y) = (20, 30)
    out = exclude_near_clicks(valid, [4, 5, 6], np.array([[10, 12, 5], [1, 1, 9]]), axis=2, radius=2)
    expected = valid.copy()
    expected[1, 8:13, 10:15] = False  # the click on slice 5; the one on slice 9 is not scored: removes nothing
    np.testing.assert_array_equal(out, expected)
    assert valid.all()  # the input is left as it was
    # clipped at the border; with axis 0 the in-plane coordinates are (j, k)
    out0 = exclude_near_clicks(np.ones((2, 6, 7), dtype=bool), [3, 8], np.array([[8, 0, 6]]), axis=0, radius=1)
    assert not out0[1, 0:2, 5:7].any() and out0[1].sum() == 6 * 7 - 4 and out0[0].all()
    # radius 0 or no clicks: unchanged
    assert exclude_near_clicks(valid, [4, 5, 6], np.zeros((0, 3)), 2, 3).all()
    assert exclude_near_clicks(valid, [4, 5, 6], np.array([[10, 12, 5]]), 2, 0).all()


def test_exclude_near_clicks_drops_an_exclusion_that_leaves_nothing_and_checks_shapes() -> None:
    valid = np.zeros((2, 10, 10), dtype=bool)
    valid[0, 4, 4] = True  # the only candidate is next to the click
    out = exclude_near_clicks(valid, [0, 1], np.array([[5, 5, 0]]), axis=2, radius=2)
    np.testing.assert_array_equal(out, valid)
    with pytest.raises(ValueError, match="one plane per slice"):
        exclude_near_clicks(valid, [0, 1, 2], np.array([[5, 5, 0]]), axis=2, radius=2)
    with pytest.raises(ValueError, match="radius"):
        exclude_near_clicks(valid, [0, 1], np.array([[5, 5, 0]]), axis=2, radius=-1)


def _uncertainty(clicks_ijk: np.ndarray, mask: np.ndarray | None = None) -> VolumeUncertainty:
    """MI on slices 2-4 of a (40, 40, 6) volume: a strong blob at (20, 20) on slice 3, a weaker one at (8, 30) on
    slice 2; slices 0, 1 and 5 are not scored."""
    mi = np.zeros((40, 40, 6), dtype=np.float32)
    mi[17:24, 17:24, 3] = 0.6
    mi[19:22, 19:22, 3] = 0.69
    mi[6:11, 28:33, 2] = 0.5
    mi[0:5, 0:5, 1] = 0.69  # unscored slice: never a candidate
    return VolumeUncertainty(maps={"mutual_information": mi}, probability=np.full(mi.shape, 0.5, np.float32),
                             slices=(2, 3, 4), axis=2, clicks_ijk=clicks_ijk, mask=mask)


def test_volume_bald_skips_the_square_around_an_earlier_click() -> None:
    valid = np.ones((40, 40, 6), dtype=bool)
    first, _ = best_volume_click(_uncertainty(np.zeros((0, 3), np.int64)), valid)
    assert first == (20, 20, 3)
    valid[first] = False
    after = _uncertainty(np.array([first]))
    policy = BaldPolicy(exclusion=0.1)  # 4 px: the square covers the whole strong blob
    radius = int(round(policy.exclusion * 40))
    second, _ = best_volume_click(after, valid, policy=policy)
    assert not _square_hit(first, second, 2, radius)
    assert second[2] == 2 and 6 <= second[0] <= 10 and 28 <= second[1] <= 32  # the other uncertain place
    # without the exclusion the rule asks again right next to the first click
    again, _ = best_volume_click(after, valid, policy=BaldPolicy(exclusion=0.0))
    assert _square_hit(first, again, 2, radius)
    with pytest.raises(ValueError, match="either footprint/gate or a policy"):
        best_volume_click(after, valid, 0.03, policy=BaldPolicy())
    with pytest.raises(ValueError, match="shape"):
        best_volume_click(after, valid[:, :, :3])


def test_volume_bald_reads_its_settings_from_one_bald_policy(monkeypatch) -> None:
    valid = np.ones((40, 40, 6), dtype=bool)
    valid[20, 20, 3] = False
    after = _uncertainty(np.array([[20, 20, 3]]))
    # the default exclusion (0.03 x 40 = 1 px) leaves the strong blob's rim right next to the click...
    found, _ = best_volume_click(after, valid)
    assert found[2] == 3 and _square_hit((20, 20, 3), found, 2, 3)
    # ...a larger exclusion set on the policy class (as a change of the 2D defaults would be) carries over
    monkeypatch.setattr(BaldPolicy, "default_exclusion", 0.2)
    found_wide, _ = best_volume_click(after, valid)
    assert found_wide[2] == 2 and not _square_hit((20, 20, 3), found_wide, 2, 8)

    # the region rule when the policy says so: the centre of the uncertain region with the most MI, split by the mask
    class RegionBald(BaldPolicy):
        def __init__(self, footprint=None, gate=None, exclusion=None, region=True) -> None:
            super().__init__(footprint, gate, exclusion, region)

    mask = np.zeros((40, 40, 6), dtype=bool)
    mask[:20, :, 3] = True  # splits the strong blob: rows 17-19 inside, 20-23 outside
    monkeypatch.setattr(suggestion, "BaldPolicy", RegionBald)
    found_region, mass = best_volume_click(_uncertainty(np.zeros((0, 3), np.int64), mask), np.ones_like(valid))
    assert found_region[2] == 3 and 20 <= found_region[0] <= 23 and mass > 0
    with pytest.raises(ValueError, match="current mask"):
        best_volume_click(_uncertainty(np.zeros((0, 3), np.int64)), np.ones_like(valid))


@pytest.mark.slow
def test_volume_bald_on_a_dev_volume_does_not_ask_again_next_to_a_click(dev_dir) -> None:
    """brats pat0002 with the brain MR head: a box on the largest tumour slice, the BALD click answered from the
    truth, then the next BALD click; it is not in the excluded square around the first one on its slice, and would
    not be without the exclusion either: the answer is part of the clicked slice's maps."""
    from monai_baldsam.evaluation.volumes import first_box
    from monai_baldsam.io import load_image, load_mask
    from monai_baldsam.segmentation import Segmenter
    from monai_baldsam.transforms.prompts import UserPrompts

    folder = dev_dir("brats_mri3d")
    name = "brats_2013_pat0002_1.nii.gz"
    image = load_image(folder / "images" / name)
    truth = load_mask(folder / "masks" / name, reference=image)[0].numpy().astype(bool)
    session = Segmenter("lite_medsam", head="brain_mri").session(image)
    session.update(first_box(truth, session.axis), propagate=False)  # the box's slice and its two neighbours
    valid = np.ones(truth.shape, dtype=bool)
    policy = BaldPolicy()
    clicks = []
    for _ in range(2):
        uncertainty = session.uncertainty()
        np.testing.assert_array_equal(uncertainty.clicks_ijk, np.array(clicks, dtype=np.int64).reshape(-1, 3))
        found = best_volume_click(uncertainty, valid)
        assert found is not None
        point, _ = found
        a, b = [n for n in range(3) if n != session.axis]
        radius = int(round(policy.exclusion * min(truth.shape[a], truth.shape[b])))
        assert radius >= 1
        assert not any(_square_hit(c, point, session.axis, radius) for c in clicks), (point, clicks)
        if clicks:
            # the first click falls on the slice past the box slice's end; its answer is now part of that slice's
            # maps (decoded with the box BALD asked with and the click), so BALD does not ask next to it again even
            # without the exclusion (before fd4e956 it did: the slice was decoded from the click alone)
            again, _ = best_volume_click(uncertainty, valid, policy=BaldPolicy(exclusion=0.0))
            assert not any(_square_hit(c, again, session.axis, radius) for c in clicks), (again, clicks)
        valid[point] = False
        clicks.append(list(point))
        answer = "foreground" if truth[point] else "background"
        session.update(UserPrompts(**{answer: [list(point)]}), propagate=False)
