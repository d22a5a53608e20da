"""The BALD comparison's bookkeeping on hand-made summaries: the pooled table over domains is recomputed from the
pooled images (not copied from the first domain), and issue 17's targets are judged from a record."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.bald_paired_dev import pooled
from benchmarks.bald_targets import check_targets, gap_closed


def _summary(policy: str, curves: list[list[float]], on_error: list[list[bool]]) -> dict[str, Any]:
    per_image = [{"name": f"img{n}", "iou": curve, "clicks_on_error": flags}
                 for n, (curve, flags) in enumerate(zip(curves, on_error))]
    return {"policy": policy, "first": "box", "n_images": len(curves), "miou_at": {"1": curves[0][0]},
            "miou_curve": curves[0], "per_image": per_image}


def test_pooled_recomputes_the_table_from_every_domains_images() -> None:
    by_domain = {"a": [_summary("bald", [[0.5, 0.6], [0.7, 0.8]], [[True], [False]])],
                 "b": [_summary("bald", [[0.9, 1.0]], [[True]])]}
    (run,) = pooled(by_domain)
    assert run["data"] == "all" and run["n_images"] == 3
    assert [item["name"] for item in run["per_image"]] == ["a/img0", "a/img1", "b/img0"]
    assert run["miou_curve"] == pytest.approx([0.7, 0.8])  # (0.5 + 0.7 + 0.9) / 3, not domain a's 0.6
    assert run["miou_at"]["1"] == pytest.approx(0.7)
    assert run["clicks_on_error"]["clicks"] == 3 and run["clicks_on_error"]["on_error"] == 2


def _record(bald5: float, entropy_low: float, share: float) -> dict[str, Any]:
    table = {d: [{"policy": p, "first": "box", "miou@5": v, "miou@10": v}
                 for p, v in (("random", 0.80), ("oracle", 0.90), ("bald", bald5))] for d in ("x", "y")}
    paired = {d: [{"first": f, "other_policy": o, "at": k, "mean": 0.01, "low": entropy_low if o == "entropy" else
                   -0.01, "high": 0.03} for f in ("box", "click") for o in ("entropy", "random", "random_error",
                                                                             "one_shot") for k in (5, 10)]
              for d in ("x", "y")}
    return {"domains": ["x", "y"], "policies": ["oracle", "random_error", "random", "entropy", "bald", "one_shot"],
            "table": table, "paired": paired,
            "clicks_on_error": {"all": [{"policy": "bald", "first": "box", "share": share}]}}


def test_gap_closed_is_the_share_of_random_to_oracle() -> None:
    assert gap_closed(_record(0.86, 0.0, 0.5), "x") == pytest.approx(0.6)
    assert gap_closed(_record(0.80, 0.0, 0.5), "x") == pytest.approx(0.0)


def test_targets_are_judged_from_the_record() -> None:
    met = {c["target"]: c["met"] for c in check_targets(_record(0.87, 0.001, 0.55))}
    assert all(met.values()) is False  # 2 domains cannot reach ">= 4 of the domains"
    assert [c["met"] for c in check_targets(_record(0.87, 0.001, 0.55))] == [False, True, False, True, True, True]
    missed = check_targets(_record(0.84, -0.001, 0.45))
    assert [c["met"] for c in missed] == [False, False, False, False, False, True]
    assert missed[3]["value"] == "x 40 %, y 40 %" and missed[4]["value"] == "45 %"
