"""The MONAI Label app's pure parts: Slicer's request keys, BALD score summaries, strategy ranking, head publishing,
model configs and the app path. No server here (tests/test_monailabel_server.py runs one)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monai_baldsam.monailabel import app_dir
from monai_baldsam.monailabel.lib.configs import discover_configs, select_configs
from monai_baldsam.monailabel.lib.heads import HeadStore
from monai_baldsam.monailabel.lib.prompts import parse_request, prompts_2d, prompts_3d, slice_of_request
from monai_baldsam.sam.checkpoints import file_sha256


def test_slicer_points_roi_and_flags_are_read() -> None:
    p = parse_request({"foreground": [[10, 20, 3], [11.6, 21.2, 3]], "background": "[[5, 6, 3]]",
                       "roi": [30, 12, 40, 50, 3, 3], "slice": "3", "label": "lesion", "reset_state": "true"})
    np.testing.assert_array_equal(p.foreground_ijk, [[10, 20, 3], [12, 21, 3]])
    np.testing.assert_array_equal(p.background_ijk, [[5, 6, 3]])
    lo, hi = p.roi_ijk
    np.testing.assert_array_equal(lo, [12, 40, 3])  # Slicer's [i0, i1, j0, j1, k0, k1], min/max sorted
    np.testing.assert_array_equal(hi, [30, 50, 3])
    assert p.slice_index == 3 and p.label == "lesion" and p.reset
    user = prompts_2d(p, 3)
    assert user.box == [12.0, 40.0, 30.0, 50.0]
    assert user.foreground == [[10.0, 20.0], [12.0, 21.0]] and user.background == [[5.0, 6.0]]


def test_picture_points_without_k_and_box_key() -> None:
    p = parse_request({"foreground": [[7, 9]], "box": [1, 2, 30, 40], "reset_state": False})
    assert not p.reset and p.slice_index is None
    user = prompts_2d(p, 0)
    assert user.foreground == [[7.0, 9.0]] and user.box == [1.0, 2.0, 30.0, 40.0]


def test_points_on_other_slices_are_left_out_and_empty_slice_is_an_error() -> None:
    p = parse_request({"foreground": [[1, 2, 5], [3, 4, 6]], "background": []})
    assert prompts_2d(p, 6).foreground == [[3.0, 4.0]]
    assert slice_of_request(p, 10) == 6  # no 'slice': the last click's k
    with pytest.raises(ValueError, match="no click or ROI on slice 2"):
        prompts_2d(p, 2)
    with pytest.raises(ValueError, match="outside the volume"):
        slice_of_request(parse_request({"slice": 12, "foreground": [[1, 2, 12]]}), 10)


@pytest.mark.parametrize("bad, message", [
    ({"foreground": [[1, 2, 3, 4]]}, "foreground"),
    ({"background": [1, 2]}, "background"),
    ({"roi": [1, 2, 3]}, "roi"),
    ({"box": [1, 2, 3]}, "box"),
    ({"slice": "middle"}, "slice"),
    ({"foreground": [[float("nan"), 1, 0]]}, "non-finite"),
])
def test_bad_request_keys_say_what_to_fix(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_request(bad)


def test_roi_becomes_a_box_on_its_middle_slice_along_the_axis() -> None:
    p = parse_request({"roi": [10, 20, 30, 40, 4, 8], "foreground": [[15, 35, 6]]})
    user = prompts_3d(p, axis=2)
    assert user.box == [10.0, 30.0, 6.0, 20.0, 40.0]  # (i0, j0, k, i1, j1)
    user0 = prompts_3d(p, axis=0, foreground=[], with_roi=True)
    assert user0.box == [30.0, 4.0, 15.0, 40.0, 8.0] and user0.foreground == []  # (j0, k0, i, j1, k1)
    assert prompts_3d(p, axis=2, with_roi=False).box is None


def test_mi_summary_matches_a_naive_mean_and_top_fraction() -> None:
    from monai_baldsam.image_selection import mi_summary
    from monai_baldsam.monailabel.lib.scoring import scoring_slices

    rng = np.random.default_rng(0)
    maps = [rng.random((13, 7)) * 0.6, rng.random((5, 4)) * 0.6]
    mean_bits, top_bits = mi_summary(maps, top_fraction=0.1)
    values = np.sort(np.concatenate([m.ravel() for m in maps]))[::-1] / math.log(2.0)
    k = math.ceil(0.1 * values.size)
    assert mean_bits == pytest.approx(values.mean())
    assert top_bits == pytest.approx(values[:k].mean())
    assert top_bits >= mean_bits
    with pytest.raises(ValueError, match="top_fraction"):
        mi_summary(maps, top_fraction=0.0)
    assert scoring_slices(9, 3) == [2, 4, 6]
    assert scoring_slices(2, 3) == [0, 1]


def test_strategy_ranking_highest_score_then_least_recently_served() -> None:
    from monai_baldsam.image_selection import Candidate, rank_candidates

    ranked = rank_candidates([Candidate("a", 0.2, 0), Candidate("b", 0.5, 100), Candidate("c", None, 0),
                              Candidate("d", 0.5, 50), Candidate("e", 0.5 + 1e-12, 75)])
    assert [c.image_id for c in ranked] == ["d", "e", "b", "a"]  # ties (within 1e-9) by served time; c unscored
    assert rank_candidates([Candidate("c", None, 0)]) == []


def test_head_store_serves_bundle_head_until_a_trained_one_is_published(tmp_path: Path) -> None:
    base = tmp_path / "bundle_head.pt"
    base.write_bytes(b"bundle weights")
    store = HeadStore(tmp_path / "models" / "m", base, file_sha256(base))
    assert store.current().source == "bundle" and store.stamp() is None
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "head.pt").write_bytes(b"fine-tuned weights")
    (staging / "head.json").write_text("{}")
    version = store.publish(staging / "head.pt", published=123.0)
    current = store.current()
    assert current.source == "trained" and current.path == version.path and current.published == 123.0
    assert current.sha256 == file_sha256(current.path) != file_sha256(base)
    assert current.path.with_suffix(".json").is_file() and not (staging / "head.pt").exists()
    assert store.stamp() is not None
    assert json.loads(store.pointer.read_text())["file"] == current.path.name
    assert base.read_bytes() == b"bundle weights"  # the shipped head is never touched


def test_configs_one_per_bundle_with_its_dimension() -> None:
    configs = {c.name: c for c in discover_configs()}
    assert {"baldsam_ultrasound", "baldsam_polyp", "baldsam_skin_lesion", "baldsam_brain_mri"} <= set(configs)
    assert configs["baldsam_brain_mri"].spatial_dims == 3 and configs["baldsam_ultrasound"].spatial_dims == 2
    assert all(c.head_path.is_file() for c in configs.values())
    chosen = select_configs(list(configs.values()), "ultrasound, baldsam_brain_mri")
    assert [c.name for c in chosen] == ["baldsam_ultrasound", "baldsam_brain_mri"]
    with pytest.raises(ValueError, match="unknown model 'liver'"):
        select_configs(list(configs.values()), "liver")


def test_cli_prints_the_app_folder_holding_main_py() -> None:
    out = subprocess.run([sys.executable, "-m", "monai_baldsam.cli.main", "monailabel-app", "--check"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == app_dir() and (Path(out) / "main.py").is_file()


def test_volume_requests_apply_only_new_points_and_notice_removed_ones() -> None:
    from collections import Counter

    from monai_baldsam.monailabel.lib.infers import new_points, next_click_record

    applied = Counter({(1, 2, 3): 1, (4, 5, 6): 1})
    fresh, kept = new_points(np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [7, 8, 9]]), applied)
    assert kept and sorted(fresh) == [(7, 8, 9), (7, 8, 9)]
    fresh, kept = new_points(np.array([[1, 2, 3]]), applied)
    assert not kept and fresh == []  # (4, 5, 6) was removed in Slicer: the session starts over
    record = next_click_record((10, 20, 3), score=math.log(2.0), mi=0.5, probability=0.25, axis=2)
    assert record["ijk"] == [10, 20, 3] and record["slice"] == 3 and record["axis"] == 2
    assert record["bald_score_bits"] == pytest.approx(1.0) and record["probability"] == 0.25


def test_embedding_cache_budget_from_the_server_conf() -> None:
    from monai_baldsam.monailabel.lib.app import DEFAULT_EMBEDDING_CACHE_MB, embedding_cache_bytes

    assert embedding_cache_bytes({}) == DEFAULT_EMBEDDING_CACHE_MB << 20
    assert embedding_cache_bytes({"embedding_cache_mb": "256"}) == 256 << 20
    assert embedding_cache_bytes({"embedding_cache_mb": "0.5"}) == 1 << 19
    for bad in ("-1", "0", "lots", "nan"):
        with pytest.raises(ValueError, match="embedding_cache_mb must be a positive number"):
            embedding_cache_bytes({"embedding_cache_mb": bad})
