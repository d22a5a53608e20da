"""``baldsam compare`` with paired bootstrap intervals and error-click shares, on tiny synthetic runs: written by
``baldsam evaluate`` with a fake Bayesian click model (bald, oracle, random, one_shot), and hand-made ``metrics.json``
files with known differences."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from monai_baldsam.cli import evaluate_cmd
from monai_baldsam.cli.main import main
from monai_baldsam.evaluation.paired import paired_comparisons, per_image_at
from monai_baldsam.evaluation.statistics import paired_bootstrap
from monai_baldsam.interaction import ModelOutput
from monai_baldsam.sam.predictor import SliceEmbedding

HW = (20, 28)
POLICIES = ("bald", "oracle", "random", "one_shot")


class BlurModel:
    """A fake Bayesian click model: the box shrunk by a pixel, discs at clicks, blurred into a probability; the
    uncertainty maps peak at the predicted boundary."""

    signature = "blur@test"

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        return SliceEmbedding(torch.zeros(1, 1, 1, 1), (int(image.shape[-2]), int(image.shape[-1])))

    def predict(self, embedding, point_coords_xy, point_labels, box_xy, mask_input) -> ModelOutput:
        h, w = embedding.original_hw
        hard = np.zeros((h, w), bool)
        if box_xy is not None:
            x0, y0, x1, y1 = (int(v) for v in box_xy)
            hard[y0 + 1:y1, x0 + 1:x1] = True
        yy, xx = np.mgrid[:h, :w]
        for (x, y), label in zip(np.asarray(point_coords_xy).reshape(-1, 2), np.asarray(point_labels).reshape(-1)):
            hard[(yy - y) ** 2 + (xx - x) ** 2 <= 6.25] = bool(label)
        p = np.clip(gaussian_filter(hard.astype(np.float32), 1.0), 1e-4, 1 - 1e-4)
        entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
        return ModelOutput(p, p >= 0.5, torch.zeros(1, 1, 4, 4),
                           {"mutual_information": 0.5 * entropy, "predictive_entropy": entropy})


def _write_case(folder: Path, name: str, truth: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    pixels = np.random.default_rng(len(name)).integers(0, 255, (*truth.shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "images" / f"{name}.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(folder / "masks" / f"{name}.png")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    for n in range(6):
        truth = np.zeros(HW, bool)
        truth[3 + n % 3:17, 4:11 + n] = True
        truth[11:17, 4:22 + n % 4] = True  # an L: the box over-covers a corner
        _write_case(data, f"case{n}", truth)
    out = tmp_path_factory.mktemp("eval") / "run"
    patch = pytest.MonkeyPatch()
    patch.setattr(evaluate_cmd, "click_model_from_args", lambda args: BlurModel())
    try:
        code = main(["evaluate", "--data", str(data), "--policy", ",".join(POLICIES), "--first", "box",
                     "--clicks", "10", "--out", str(out), "--no-progress"])
    finally:
        patch.undo()
    assert code == 0
    return out


def test_evaluate_records_one_shot_and_error_clicks(evaluated: Path) -> None:
    metrics = {p: json.loads((evaluated / p / "metrics.json").read_text()) for p in POLICIES}
    for policy, m in metrics.items():
        assert m["policy"] == policy and m["n_images"] == 6 and len(m["miou_curve"]) == 10
        flags = [f for item in m["per_image"] for f in item["clicks_on_error"]]
        assert all(len(item["clicks_on_error"]) == len(item["clicks"]) for item in m["per_image"])
        assert m["clicks_on_error"] == {"clicks": len(flags), "on_error": sum(flags),
                                        "share": sum(flags) / len(flags) if flags else None}
    assert metrics["oracle"]["clicks_on_error"]["share"] == 1.0
    assert metrics["random"]["clicks_on_error"]["share"] < 1.0  # blind clicks often land where the mask is right
    one_shot = metrics["one_shot"]["per_image"]
    assert all(label == 1 for item in one_shot for _, _, label, _ in item["clicks"])  # interior points: positive
    first_iou = {p: [item["iou"][0] for item in m["per_image"]] for p, m in metrics.items()}
    assert all(v == first_iou["bald"] for v in first_iou.values())


def test_compare_prints_and_writes_paired_intervals(evaluated: Path, tmp_path: Path, capsys) -> None:
    png = tmp_path / "cmp.png"
    assert main(["compare", str(evaluated), "--out", str(png), "--resamples", "2000"]) == 0
    printed = capsys.readouterr().out
    assert "| box + oracle | oracle | box | 6 |" in printed  # the existing table is still there
    assert "Paired differences to bald" in printed and "| box | box + bald | box + one_shot | 10 | 6 |" in printed
    assert "only 6 images" in printed  # too few to trust an interval: said next to it
    report = json.loads((tmp_path / "cmp.json").read_text())
    assert Image.open(png).format == "PNG" and report["png"] == str(png.resolve())
    assert not list(tmp_path.glob(".tmp-*"))
    pairs = {(row["other_policy"], row["at"]): row for row in report["paired"]}
    assert set(pairs) == {(p, k) for p in POLICIES[1:] for k in (5, 10)}
    metrics = {p: json.loads((evaluated / p / "metrics.json").read_text()) for p in POLICIES}
    for (other, k), row in pairs.items():
        a = np.array([item["iou"][k - 1] for item in metrics["bald"]["per_image"]])
        b = np.array([item["iou"][k - 1] for item in metrics[other]["per_image"]])
        assert row["mean"] == pytest.approx((a - b).mean()) and row["n_images"] == 6
        assert row["reference_miou"] == pytest.approx(metrics["bald"]["miou_at"][str(k)])
        assert row["low"] <= row["mean"] <= row["high"]
        assert row["beyond_noise"] == (row["low"] > 0 or row["high"] < 0)
        mark = "*" if row["beyond_noise"] else ""
        assert f"[{row['low']:+.3f}, {row['high']:+.3f}] | {mark} |" in printed
    shares = {row["policy"]: row["clicks_on_error"]["share"] for row in report["runs"]}
    assert shares == {p: metrics[p]["clicks_on_error"]["share"] for p in POLICIES}
    assert report["bootstrap"]["resamples"] == 2000 and report["bootstrap"]["at"] == [5, 10]
    # refused without --overwrite (the PNG and its JSON exist); --seed moves the bounds, never the means
    assert main(["compare", str(evaluated), "--out", str(png), "--resamples", "2000"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["compare", str(evaluated), "--out", str(png), "--resamples", "2000", "--seed", "1",
                 "--overwrite"]) == 0
    reseeded = {(r["other_policy"], r["at"]): r for r in json.loads((tmp_path / "cmp.json").read_text())["paired"]}
    assert all(reseeded[key]["mean"] == row["mean"] for key, row in pairs.items())
    assert any(reseeded[key]["low"] != row["low"] for key, row in pairs.items() if row["high"] > row["low"])


def _fake_run(folder: Path, policy: str, first: str, curves: np.ndarray, names: list[str],
              on_error: bool = True, data: str | None = None) -> Path:
    """A minimal ``metrics.json`` with the keys ``load_run`` checks and the per-image curves."""
    folder.mkdir(parents=True)
    per_image = []
    for name, curve in zip(names, curves):
        item = {"name": name, "iou": [float(v) for v in curve], "clicks": [[1, 1, 1, k] for k in range(2, 6)]}
        if on_error:
            item["clicks_on_error"] = [True, False, True, True]
        per_image.append(item)
    mean = curves.mean(axis=0)
    summary = {"policy": policy, "first": first, "n_images": len(names), "clicks": curves.shape[1], "noc80": 3.0,
               "noc85": 4.0, "noc90": 5.0, "miou_at": {"1": float(mean[0]), "5": float(mean[4])},
               "miou_curve": [float(v) for v in mean], "auc": float(mean.mean()), "seconds_per_click": 0.1,
               "per_image": per_image, **({} if data is None else {"data": data})}
    (folder / "metrics.json").write_text(json.dumps(summary))
    return folder


def test_known_shift_is_beyond_noise_and_images_pair_by_name(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    other = rng.uniform(0.3, 0.8, size=(8, 5))
    names = [f"img{n}" for n in range(8)]
    order = rng.permutation(8)  # the bald run lists its images in another order: pairing is by name
    bald = _fake_run(tmp_path / "bald", "bald", "click", other[order] + 0.1, [names[i] for i in order])
    random = _fake_run(tmp_path / "random", "random", "click", other, names, on_error=False)
    png = tmp_path / "out" / "shift.png"
    png.parent.mkdir()
    assert main(["compare", str(bald), str(random), "--out", str(png)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(png.with_suffix(".json").read_text())
    [row] = report["paired"]  # budget 10 is beyond these 5-interaction runs
    assert row["at"] == 5 and row["mean"] == pytest.approx(0.1)
    assert row["low"] == pytest.approx(0.1) and row["high"] == pytest.approx(0.1) and row["beyond_noise"]
    assert "| +0.100 | [+0.100, +0.100] | * |" in printed
    shares = {r["policy"]: r["clicks_on_error"] for r in report["runs"]}
    assert shares["bald"] == {"clicks": 32, "on_error": 24, "share": 0.75}
    assert shares["random"] == {"clicks": None, "on_error": None, "share": None}  # written before it was recorded
    assert "| click + random | random | click | - | - | - |" in printed


def test_runs_on_different_images_are_refused(tmp_path: Path, capsys) -> None:
    curves = np.full((4, 5), 0.5)
    bald = _fake_run(tmp_path / "bald", "bald", "box", curves, ["a", "b", "c", "d"])
    oracle = _fake_run(tmp_path / "oracle", "oracle", "box", curves, ["a", "b", "c", "e"])
    png = tmp_path / "c.png"
    assert main(["compare", str(bald), str(oracle), "--out", str(png)]) == 2
    err = capsys.readouterr().err
    assert "different images" in err and "['d']" in err and "['e']" in err and "--no-stats" in err
    assert not png.exists() and not png.with_suffix(".json").exists()  # nothing written
    assert main(["compare", str(bald), str(oracle), "--out", str(png), "--no-stats"]) == 0
    assert json.loads(png.with_suffix(".json").read_text())["paired"] == []
    # a run after another first prompt is not paired with bald, so its images need not match
    click = _fake_run(tmp_path / "click", "random", "click", curves[:2], ["x", "y"])
    rows = paired_comparisons([json.loads((d / "metrics.json").read_text()) for d in (bald, click)], ["b", "c"])
    assert rows == []
    # nor are runs on other data: two data sets in one compare, each paired within itself
    runs = [_fake_run(tmp_path / f"{d}_{p}", p, "box", curves[:n] + (0.1 if p == "bald" else 0), names[:n], data=d)
            for d, n, names in (("A", 4, list("abcd")), ("B", 3, list("xyz"))) for p in ("bald", "oracle")]
    png = tmp_path / "two.png"
    assert main(["compare", *map(str, runs), "--out", str(png), "--resamples", "100"]) == 0
    rows = json.loads(png.with_suffix(".json").read_text())["paired"]
    assert [(r["data"], r["n_images"], r["other_policy"]) for r in rows] == [("A", 4, "oracle"), ("B", 3, "oracle")]
    assert all(r["mean"] == pytest.approx(0.1) for r in rows)


def test_compare_without_a_bald_run_and_bad_options(tmp_path: Path, capsys) -> None:
    curves = np.random.default_rng(1).uniform(size=(3, 5))
    runs = [str(_fake_run(tmp_path / p, p, "box", curves, ["a", "b", "c"])) for p in ("oracle", "random")]
    assert main(["compare", *runs, "--out", str(tmp_path / "x.png")]) == 0
    assert "no run of the reference policy 'bald'" in capsys.readouterr().out
    assert main(["compare", *runs, "--out", str(tmp_path / "y.png"), "--reference", "random"]) == 0
    assert "| box | box + random | box + oracle | 5 | 3 |" in capsys.readouterr().out
    for extra, pattern in ((["--at", "5,x"], "--at"), (["--at", "0"], "--at"), (["--resamples", "0"], "--resamples"),
                           (["--confidence", "95"], "--confidence"), (["--seed", "-2"], "--seed")):
        assert main(["compare", *runs, "--out", str(tmp_path / "z.png"), *extra]) == 2
        assert pattern in capsys.readouterr().err
    assert not (tmp_path / "z.png").exists()


def test_paired_comparisons_match_the_bootstrap_and_ignore_other_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    names = ["p", "q", "r", "s", "t"]
    summaries = [json.loads((_fake_run(tmp_path / p, p, "box", rng.uniform(size=(5, 6)), names) / "metrics.json")
                            .read_text()) for p in ("bald", "entropy", "random")]
    rows = paired_comparisons(summaries, ["B", "E", "R"], at=(5,), n_resamples=500)
    alone = paired_comparisons([summaries[0], summaries[2]], ["B", "R"], at=(5,), n_resamples=500)
    assert [r["other"] for r in rows] == ["E", "R"]
    assert rows[1] == {**alone[0], "other": "R"}  # each interval has its own generator
    a = [item["iou"][4] for item in summaries[0]["per_image"]]
    b = [item["iou"][4] for item in summaries[2]["per_image"]]
    words = [zlib.crc32(w.encode()) for w in ("box", "bald", "random")]  # the documented seeding
    generator = np.random.default_rng(np.random.SeedSequence([0, *words, 5]))
    expected = paired_bootstrap(a, b, n_resamples=500, rng=generator)
    assert rows[1] == {**rows[1], **expected.to_dict()}
    with pytest.raises(ValueError, match="fewer than 7"):
        per_image_at(summaries[0], 7)
