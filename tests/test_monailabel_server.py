"""A real MONAI Label server running the app, called over HTTP as 3D Slicer calls it.

One server per module (``monailabel start_server`` on 127.0.0.1, a free port, a studies folder made from dev data:
three busi ultrasound PNGs and a BraTS FLAIR volume cropped to 5 slices around the tumour), stopped by its PID in a
finalizer. Requests go through ``monailabel.client.MONAILabelClient``, the client 3D Slicer's MONAI Label module
uses, with Slicer's keys (``foreground``/``background`` voxel lists, ``roi``, ``label``, ``reset_state``,
``result_extension=.nrrd``); ``/scoring`` (which the client lacks) with plain HTTP. The tests run in file order and
build on each other (infer -> scoring -> strategy -> label -> training).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import nibabel as nib
import numpy as np
import pytest
import requests
from PIL import Image
from scipy import ndimage

from monailabel.client import MONAILabelClient

from monai_baldsam.monailabel.workdir import copy_app
from monai_baldsam.monailabel.lib.process import ServerProcess

PICTURES = ("benign_015", "benign_016", "benign_001")  # 701 x 526, 558 x 462, 416 x 416 pixels
VOLUME = "brats_2013_pat0002_1"
VOLUME_SLICES = (102, 107)  # k range kept: the tumour's largest slice (104) in the middle
MODEL_2D, MODEL_3D = "baldsam_ultrasound", "baldsam_brain_mri"


def _deepest_point(mask_xy: np.ndarray) -> tuple[int, int]:
    dist = ndimage.distance_transform_edt(np.pad(mask_xy, 1))[1:-1, 1:-1]
    x, y = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def _read_label(path: str) -> np.ndarray:
    """A returned ``.nrrd`` label as MONAI orders it (``(X, Y)`` / ``(I, J, K)``: NRRD's fastest axis first)."""
    import nrrd

    data, _ = nrrd.read(path, index_order="F")
    return np.asarray(data)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, dev_dir) -> dict:
    """The studies folder (pictures + cropped volume) and the ground truth of each image, in MONAI order."""
    root = tmp_path_factory.mktemp("monailabel")
    studies = root / "studies"
    studies.mkdir()
    busi = dev_dir("busi")
    truth = {}
    for name in PICTURES:
        shutil.copy(busi / "images" / f"{name}.png", studies / f"{name}.png")
        truth[name] = (np.asarray(Image.open(busi / "masks" / f"{name}.png").convert("L")) > 127).T
    brats = dev_dir("brats_mri3d")
    image = nib.load(brats / "images" / f"{VOLUME}.nii.gz")
    mask = nib.load(brats / "masks" / f"{VOLUME}.nii.gz")
    k0, k1 = VOLUME_SLICES
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.array([0, 0, k0]) + image.affine[:3, 3]
    crop = np.asarray(image.dataobj)[:, :, k0:k1].astype(np.float32)
    nib.save(nib.Nifti1Image(crop, affine), studies / "brats_crop.nii.gz")
    truth["brats_crop"] = np.asarray(mask.dataobj)[:, :, k0:k1] > 0
    return {"root": root, "studies": studies, "truth": truth, "affine": affine, "shape": crop.shape}


@pytest.fixture(scope="module")
def server(studio: dict):
    """The running server; stopped by its PID when the module ends, whatever happened."""
    # run from a copy of the app, as users do (`baldsam monailabel-app --copy-to`): MONAI Label writes logs/,
    # model/ and bin/ into the app folder, which must not be the installed package
    proc = ServerProcess(copy_app(studio["root"] / "app").path, studio["studies"], studio["root"] / "server.log",
                         conf={"models": f"{MODEL_2D},{MODEL_3D}", "device": "cpu"},
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              # scoring runs when the tests ask for it (not at start-up or after each next sample)
                              "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"})
    try:
        proc.start()
        yield proc
    finally:
        status = proc.stop()
        assert proc.process is None or proc.process.poll() is not None, "the server is still running after stop()"
        print(f"monailabel server (pid {proc.pid}) stopped with status {status}")


@pytest.fixture(scope="module")
def client(server: ServerProcess, studio: dict) -> MONAILabelClient:
    tmp = studio["root"] / "client"
    tmp.mkdir(exist_ok=True)
    return MONAILabelClient(server.url, tmpdir=str(tmp), client_id="slicer-test")


def _wait_task(server: ServerProcess, kind: str, timeout: float) -> dict:
    """Poll ``GET /<kind>/`` until the latest task is DONE or ERROR."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(f"{server.url}/{kind}/", timeout=10)
        if response.status_code == 200 and response.json().get("status") in ("DONE", "ERROR"):
            return response.json()
        time.sleep(2.0)
    pytest.fail(f"{kind} did not finish within {timeout:.0f} s; server log:\n{server.log_tail()}")


def _run_scoring(server: ServerProcess, method: str = "bald") -> dict:
    response = requests.post(f"{server.url}/scoring/{method}", timeout=30)
    assert response.status_code == 200, response.text
    task = _wait_task(server, "scoring", 600)
    assert task["status"] == "DONE", f"scoring failed: {list(task.get('details', []))}"
    return task


def _datastore(client: MONAILabelClient) -> dict:
    return client.datastore()["objects"]


def test_info_lists_models_scoring_strategy_and_trainers(client: MONAILabelClient, studio: dict) -> None:
    info = client.info()
    models = info["models"]
    assert set(models) == {MODEL_2D, MODEL_3D}
    assert models[MODEL_2D]["dimension"] == 2 and models[MODEL_3D]["dimension"] == 3
    assert models[MODEL_2D]["type"] == "deepgrow"  # Slicer lists it among its interactive (click) models
    assert models[MODEL_2D]["baldsam"]["head"]["source"] == "bundle"
    assert {"bald", "usam"} <= set(info["scoring"]) and {"bald", "usam", "random"} <= set(info["strategies"])
    assert set(info["trainers"]) == {MODEL_2D, MODEL_3D}
    assert info["datastore"]["total"] == len(PICTURES) + 1


def test_infer_2d_click_gives_label_in_image_geometry_and_next_click(client: MONAILabelClient, studio: dict) -> None:
    name = PICTURES[0]
    truth = studio["truth"][name]
    x, y = _deepest_point(truth)
    params = {"foreground": [[x, y, 0]], "background": [], "label": "lesion", "reset_state": True,
              "result_extension": ".nrrd", "result_dtype": "uint8", "mi_map": True}
    label_file, result = client.infer(MODEL_2D, name, params)
    label = _read_label(label_file)
    assert label.shape == truth.shape, f"label {label.shape} is not on the image grid {truth.shape}"
    assert set(np.unique(label)) <= {0, 1}
    assert _dice(label, truth) > 0.6, f"the click at the lesion's centre gave Dice {_dice(label, truth):.3f}"
    click = result["next_click"]
    i, j, k = click["ijk"]
    assert 0 <= i < truth.shape[0] and 0 <= j < truth.shape[1] and k == 0
    assert (i, j) != (x, y), "the suggestion repeats the click just given"
    assert click["bald_score"] >= 0 and 0.0 <= click["probability"] <= 1.0
    assert result["encoded_slices"] == 1  # the first request on this picture encodes it
    assert 0.0 <= result["quality"]["predicted_iou"] <= 1.0 and "prompt_gap" in result["quality"]  # UncertainSAM
    mi = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mi_map"]["data"])))).T
    assert result["mi_map"]["format"] == ".png" and mi.shape == truth.shape
    # Slicer's next click: the suggested point, answered by the truth; the embedding is reused (no encoder pass)
    fg = [[x, y, 0]] + ([[i, j, 0]] if truth[i, j] else [])
    bg = [] if truth[i, j] else [[i, j, 0]]
    label_file2, result2 = client.infer(MODEL_2D, name, {"foreground": fg, "background": bg, "label": "lesion"})
    assert result2["encoded_slices"] == 0
    label2 = np.asarray(Image.open(label_file2)).T  # no result_extension: the image's own format (PNG)
    assert label2.shape == truth.shape
    assert tuple(result2["next_click"]["ijk"]) not in {tuple(p) for p in fg + bg}


def test_infer_3d_roi_then_click_propagates_and_reuses_embeddings(client: MONAILabelClient, studio: dict) -> None:
    truth = studio["truth"]["brats_crop"]
    k = int(np.argmax(truth.sum(axis=(0, 1))))
    ii, jj = np.nonzero(truth[:, :, k])
    roi = [int(ii.min()), int(ii.max()), int(jj.min()), int(jj.max()), k, k]  # Slicer's [i0, i1, j0, j1, k0, k1]
    params = {"foreground": [], "background": [], "roi": roi, "label": "tumour", "reset_state": True,
              "mi_map": True}
    label_file, result = client.infer(MODEL_3D, "brats_crop", params)
    label_img = nib.load(label_file)
    assert label_img.shape == studio["shape"]
    np.testing.assert_allclose(label_img.affine, studio["affine"], atol=1e-3)
    label = np.asarray(label_img.dataobj)
    assert label[:, :, k].any() and (label.sum(axis=(0, 1)) > 0).sum() > 1, "the box did not propagate"
    assert _dice(label, truth) > 0.6
    click = result["next_click"]
    assert all(0 <= c < s for c, s in zip(click["ijk"], studio["shape"]))
    mi = _nifti(result["mi_map"])
    assert mi.shape == studio["shape"]
    assert 0.0 <= result["quality"][str(k)]["predicted_iou"] <= 1.0  # UncertainSAM on the ROI's slice
    first_encoded = result["encoded_slices"]
    assert first_encoded >= 2
    # the next click (Slicer sends the ROI and every point again): only the new click is applied
    i, j, kk = click["ijk"]
    fg, bg = ([[i, j, kk]], []) if truth[i, j, kk] else ([], [[i, j, kk]])
    _, result2 = client.infer(MODEL_3D, "brats_crop", {"foreground": fg, "background": bg, "roi": roi,
                                                      "label": "tumour"})
    assert result2["encoded_slices"] < first_encoded
    assert result2["next_click"] is None or list(result2["next_click"]["ijk"]) != [i, j, kk]


def _nifti(record: dict) -> nib.Nifti1Image:
    """The base64 ``.nii.gz`` of an ``mi_map`` record as a NIfTI image."""
    assert record["format"] == ".nii.gz" and record["units"] == "bits"
    return nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(record["data"])))


def test_scoring_writes_scores_and_strategy_picks_the_highest(client: MONAILabelClient, server: ServerProcess,
                                                              studio: dict) -> None:
    _run_scoring(server)
    head_sha = client.info()["models"][MODEL_2D]["baldsam"]["head"]["sha256"]
    scores = {}
    for image_id, obj in _datastore(client).items():
        record = obj["image"]["info"].get("bald")
        assert record is not None, f"{image_id} was not scored"
        assert 0.0 < record["mean_mi_bits"] <= record["topk_mean_mi_bits"] <= 1.0
        assert record["score"] == record["mean_mi_bits"] and record["model_ts"] > 0
        if image_id != "brats_crop":
            assert record["head_sha256"] == head_sha and record["model"] == MODEL_2D
        else:
            assert record["model"] == MODEL_3D
        scores[image_id] = record["score"]
    sample = client.next_sample("bald", {})
    assert sample["id"] == max(scores, key=scores.get), f"strategy chose {sample['id']} from {scores}"


def test_usam_scoring_and_strategy_lowest_predicted_iou_first(client: MONAILabelClient, server: ServerProcess) -> None:
    from monai_baldsam.usam import resolve_usam

    _run_scoring(server, "usam")
    predicted = {}
    for image_id, obj in _datastore(client).items():
        record = obj["image"]["info"].get("usam")
        assert record is not None, f"{image_id} was not scored by usam"
        assert np.isfinite(record["predicted_iou"]) and record["score"] == pytest.approx(1 - record["predicted_iou"])
        assert record["usam_sha256"] == resolve_usam("general").sha256
        predicted[image_id] = record["predicted_iou"]
    assert len(set(predicted.values())) > 1, f"every image got the same predicted IoU: {predicted}"
    sample = client.next_sample("usam", {})
    assert sample["id"] == min(predicted, key=predicted.get), f"usam chose {sample['id']} from {predicted}"


def _save_truth_label(client: MONAILabelClient, studio: dict, name: str) -> bytes:
    path = studio["root"] / f"{name}_label.png"
    Image.fromarray(studio["truth"][name].T.astype(np.uint8)).save(path)
    client.save_label(name, str(path), tag="final", params={"label_info": [{"name": "lesion", "idx": 1}]})
    return path.read_bytes()


def test_submitted_label_is_stored_and_survives_rescoring(client: MONAILabelClient, server: ServerProcess,
                                                          studio: dict) -> None:
    before = {i: o["image"]["info"]["bald"] for i, o in _datastore(client).items()}
    name = max(PICTURES, key=lambda i: before[i]["score"])  # the picture the model is least sure about
    sent = _save_truth_label(client, studio, name)
    stored = studio["studies"] / "labels" / "final" / f"{name}.png"
    assert stored.read_bytes() == sent
    time.sleep(1.1)
    _run_scoring(server)  # a subprocess rewrites the datastore file: the label must stay
    objects = _datastore(client)
    assert "final" in objects[name]["labels"], f"label lost from the datastore: {objects[name]}"
    assert stored.read_bytes() == sent
    # every image was scored with the current head already: the second run changed no record
    assert {i: o["image"]["info"]["bald"] for i, o in objects.items()} == before
    sample = client.next_sample("bald", {})
    assert sample["id"] != name, "a labeled image was offered again"
    rest = {i: r["score"] for i, r in before.items() if i != name}
    assert sample["id"] == max(rest, key=rest.get)


def test_train_publishes_new_head_and_infer_reloads_it(client: MONAILabelClient, server: ServerProcess,
                                                       studio: dict) -> None:
    labeled = [i for i, o in _datastore(client).items() if o["labels"].get("final")]
    second = next(n for n in PICTURES if n not in labeled)
    _save_truth_label(client, studio, second)  # two labeled pictures: one to train on, one to validate
    labeled.append(second)
    before = client.info()["models"][MODEL_2D]["baldsam"]["head"]
    response = requests.post(f"{server.url}/train/{MODEL_2D}", json={"max_epochs": 1, "max_minutes": 3}, timeout=30)
    assert response.status_code == 200, response.text
    task = _wait_task(server, "train", 900)
    assert task["status"] == "DONE", f"training failed: {list(task.get('details', []))}"
    after = client.info()["models"][MODEL_2D]["baldsam"]["head"]
    assert after["source"] == "trained" and after["sha256"] != before["sha256"]
    store = studio["studies"] / ".baldsam" / "models" / MODEL_2D
    current = json.loads((store / "current.json").read_text())
    head_file = store / current["file"]
    from monai_baldsam.sam.checkpoints import file_sha256

    assert file_sha256(head_file) == after["sha256"] == current["sha256"]
    truth = studio["truth"][PICTURES[0]]
    x, y = _deepest_point(truth)
    _, result = client.infer(MODEL_2D, PICTURES[0], {"foreground": [[x, y, 0]], "label": "lesion"})
    assert result["head"]["sha256"] == after["sha256"], "the infer task still serves the old head"
    objects = _datastore(client)
    assert all("final" in objects[n]["labels"] for n in labeled), "a label was lost during training"


def test_concurrent_infer_requests_all_answered(server: ServerProcess, studio: dict) -> None:
    """Six clients at once (the benchmark sends 20): each gets the answer its request gets alone."""
    truth = studio["truth"][PICTURES[0]]
    inside = np.argwhere(ndimage.binary_erosion(truth, iterations=5))
    picks = inside[np.linspace(0, len(inside) - 1, 6).astype(int)]

    def one(n: int, tag: str) -> tuple[np.ndarray, dict]:
        tmp = studio["root"] / f"{tag}{n}"
        tmp.mkdir(exist_ok=True)
        c = MONAILabelClient(server.url, tmpdir=str(tmp), client_id=f"user{n}")
        x, y = (int(v) for v in picks[n])
        path, params = c.infer(MODEL_2D, PICTURES[0], {"foreground": [[x, y, 0]], "label": "lesion",
                                                       "result_extension": ".nrrd"})
        return _read_label(path), params

    alone = [one(n, "alone") for n in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda n: one(n, "together"), range(6)))
    for (label, params), (ref_label, ref_params), pick in zip(together, alone, picks):
        assert label.shape == truth.shape and label[tuple(pick)] == 1, "the clicked pixel is not in the label"
        np.testing.assert_array_equal(label, ref_label)
        assert params["next_click"] == ref_params["next_click"]
        i, j, k = params["next_click"]["ijk"]
        assert 0 <= i < truth.shape[0] and 0 <= j < truth.shape[1] and k == 0
        assert params["encoded_slices"] == 0
