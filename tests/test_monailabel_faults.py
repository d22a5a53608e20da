"""Faults with nothing lost: a real MONAI Label server killed (SIGKILL to its process group) while a label is being
saved and while a trained head is being published, then restarted on the same studies folder.

The kill lands mid-write by design: the test-only ``BALDSAM_FAULT_PAUSE`` (:mod:`~monai_baldsam.monailabel.lib.durable`)
makes the server sleep between writing a temporary file and renaming it onto its name, the test waits until the
temporary file is on disk and then kills the server at a seeded random moment of that window. After each restart:
every label whose ``PUT /datastore/label`` was answered 200 is listed and downloads byte for byte as submitted (the
label in flight may be there, whole, or not at all), no temporary file is listed or left, and the server answers;
the head in use is the old one after a kill mid-publish and the new one after a kill once published (by SHA-256), a
head file broken on disk is never served (the one before it is), and each serves an infer.

Studies: four busi pictures (local folder, no PACS); labels: each picture's truth mask and variants of it.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from scipy import ndimage

from monai_baldsam.io.atomic import TEMP_PREFIX
from monai_baldsam.monailabel.lib.durable import FAULT_PAUSE_ENV
from monai_baldsam.monailabel.lib.process import ServerProcess
from monai_baldsam.monailabel.workdir import copy_app
from monai_baldsam.sam.checkpoints import file_sha256

pytestmark = pytest.mark.slow

MODEL = "baldsam_ultrasound"
PICTURES = ("malignant_014", "malignant_015", "benign_020", "benign_001")  # the four smallest busi pictures
PAUSE_S = 2.0  # the server's pause between temporary file and rename; the kill lands within its first half
SEED = 21


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, dev_dir) -> dict:
    """The studies folder, the app copy, and three label versions per picture (PNG bytes): truth, dilated, eroded."""
    root = tmp_path_factory.mktemp("faults")
    studies = root / "studies"
    studies.mkdir()
    busi = dev_dir("busi")
    versions, shapes = {}, {}
    for name in PICTURES:
        shutil.copy(busi / "images" / f"{name}.png", studies / f"{name}.png")
        truth = np.asarray(Image.open(busi / "masks" / f"{name}.png").convert("L")) > 127
        versions[name] = [_png_bytes(m) for m in (truth, ndimage.binary_dilation(truth, iterations=4),
                                                   ndimage.binary_erosion(truth, iterations=4))]
        shapes[name] = truth.shape
    first = _decode(versions[PICTURES[0]][0])
    dist = ndimage.distance_transform_edt(np.pad(first, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)  # the lesion's deepest pixel
    return {"root": root, "studies": studies, "app": copy_app(root / "app").path, "versions": versions,
            "shapes": shapes, "click": [int(col), int(row), 0], "starts": 0}


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def _png_bytes(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _start(studio: dict, pauses: str = "") -> ServerProcess:
    studio["starts"] += 1
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"}
    if pauses:
        env[FAULT_PAUSE_ENV] = pauses
    return ServerProcess(studio["app"], studio["studies"], studio["root"] / f"server{studio['starts']}.log",
                         conf={"models": MODEL, "device": "cpu"}, env=env).start()


def _temps(folder: Path, recursive: bool = True) -> list[Path]:
    return sorted(folder.rglob(f"{TEMP_PREFIX}*") if recursive else folder.glob(f"{TEMP_PREFIX}*"))


def _submit(server: ServerProcess, name: str, label: bytes) -> int:
    response = requests.put(f"{server.url}/datastore/label", params={"image": name, "tag": "final"},
                            files={"label": (f"{name}.png", label)}, data={"params": "{}"}, timeout=60)
    return response.status_code


def _submitter(server: ServerProcess, plan: list[tuple[str, bytes]], log: dict) -> threading.Thread:
    """Submits ``plan`` in order until one fails; ``log["acked"]`` gets each 200, ``log["in_flight"]`` the one the
    kill interrupted."""

    def run() -> None:
        for name, label in plan:
            try:
                status = _submit(server, name, label)
            except requests.RequestException:
                log["in_flight"] = (name, label)
                return
            assert status == 200, f"submitting {name} was answered {status}"
            log["acked"].append((name, label))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _listed_labels(server: ServerProcess) -> dict[str, bytes]:
    """Every final label the server lists, downloaded; fails on a listed temporary file."""
    objects = requests.get(f"{server.url}/datastore/", params={"output": "all"}, timeout=30).json()["objects"]
    labels = {}
    for image_id, obj in objects.items():
        assert not image_id.startswith(TEMP_PREFIX), f"a temporary file is listed as image {image_id}"
        for tag, label in obj.get("labels", {}).items():
            name = str(label.get("info", {}).get("name", ""))
            assert not name.startswith(TEMP_PREFIX), f"a temporary file is listed as the {tag} label of {image_id}"
        if "final" in obj.get("labels", {}):
            response = requests.get(f"{server.url}/datastore/label", params={"label": image_id, "tag": "final"},
                                    timeout=30)
            assert response.status_code == 200, f"the listed label of {image_id} does not download: {response.text}"
            labels[image_id] = response.content
    return labels


def _check_labels(server: ServerProcess, studio: dict, acked: dict[str, bytes],
                  in_flight: tuple[str, bytes] | None) -> dict[str, bytes]:
    """Every acknowledged label listed and whole; the one in flight the old one, the new one, or absent."""
    listed = _listed_labels(server)
    for name in PICTURES:
        allowed = [acked[name]] if name in acked else [None]
        if in_flight is not None and in_flight[0] == name:
            allowed.append(in_flight[1])
        got = listed.get(name)
        state = "missing" if got is None else "not one that was submitted"
        assert any(got == a for a in allowed), f"the label of {name} is {state} after the restart"
        if got is not None:  # whole: it decodes, on the picture's grid, as the mask submitted
            pixels = _decode(got)
            assert pixels.shape == studio["shapes"][name] and set(np.unique(pixels)) <= {0, 1}
    assert not _temps(studio["studies"]), f"temporary files left after the restart: {_temps(studio['studies'])}"
    return {name: label for name, label in listed.items() if label is not None}


def test_labels_acknowledged_before_a_kill_mid_save_survive_it(studio: dict) -> None:
    rng = np.random.default_rng(SEED)
    acked: dict[str, bytes] = {}
    server = _start(studio, f"label={PAUSE_S}")
    labels_dir = studio["studies"] / "labels" / "final"
    for round_ in range(3):
        plan = [(str(n), studio["versions"][str(n)][int(v)])
                for n, v in zip(rng.choice(PICTURES, 8), rng.integers(0, 3, 8))]
        wait_acks, delay = int(rng.integers(1, 3)), float(rng.uniform(0.0, PAUSE_S / 2))
        log: dict = {"acked": [], "in_flight": None}
        thread = _submitter(server, plan, log)
        deadline = time.monotonic() + 60
        while (len(log["acked"]) < wait_acks or not _temps(labels_dir)) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        server.kill()
        in_mid_save = _temps(labels_dir)
        thread.join(timeout=60)
        assert in_mid_save, f"round {round_}: the kill did not land while a label was being saved"
        assert log["in_flight"] is not None and len(log["acked"]) >= wait_acks
        acked.update(dict(log["acked"]))
        print(f"round {round_}: {len(log['acked'])} labels acknowledged, killed {delay:.2f} s into saving "
              f"{log['in_flight'][0]} ({in_mid_save[0].name} on disk)")
        server = _start(studio, f"label={PAUSE_S}" if round_ < 2 else "")
        listed = _check_labels(server, studio, acked, log["in_flight"])
        acked.update({n: b for n, b in listed.items() if n == log["in_flight"][0]})  # it may have made it
    try:
        assert requests.get(f"{server.url}/info/", timeout=30).status_code == 200
        assert _submit(server, PICTURES[0], studio["versions"][PICTURES[0]][0]) == 200
        assert _listed_labels(server)[PICTURES[0]] == studio["versions"][PICTURES[0]][0]
    finally:
        server.stop()


def _head(server: ServerProcess) -> dict:
    return requests.get(f"{server.url}/info/", timeout=30).json()["models"][MODEL]["baldsam"]["head"]


def _train(server: ServerProcess) -> None:
    response = requests.post(f"{server.url}/train/{MODEL}", json={"max_epochs": 1, "max_minutes": 2}, timeout=30)
    assert response.status_code == 200, response.text


def _wait_train(server: ServerProcess, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = requests.get(f"{server.url}/train/", timeout=10).json()
        if task.get("status") in ("DONE", "ERROR"):
            return task
        time.sleep(1.0)
    pytest.fail(f"training did not finish within {timeout:.0f} s:\n{server.log_tail()}")


def _infer_head(server: ServerProcess, studio: dict) -> str:
    """One click inside the first picture's lesion; returns the SHA-256 of the head that answered."""
    params = json.dumps({"foreground": [studio["click"]], "background": []})
    response = requests.post(f"{server.url}/infer/{MODEL}", params={"image": PICTURES[0], "output": "json"},
                             data={"params": params}, timeout=300)
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    assert answer["encoded_slices"] in (0, 1) and answer["next_click"] is not None
    return answer["head"]["sha256"]


def _wait_for_temps(server: ServerProcess, folder: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not _temps(folder, recursive=False):  # (store/embeddings/ has its own while training)
        if time.monotonic() > deadline:
            pytest.fail(f"no publish started within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.05)


def test_head_in_use_after_a_kill_is_the_old_or_the_new_never_a_broken_one(studio: dict) -> None:
    rng = np.random.default_rng(SEED + 1)
    store = studio["studies"] / ".baldsam" / "models" / MODEL
    step = str(rng.choice(["head_file", "head"]))  # copying the head in, or switching current.json to it
    server = _start(studio, f"{step}=300")
    old = _head(server)
    assert old["source"] == "bundle"
    for name in PICTURES:
        assert _submit(server, name, studio["versions"][name][0]) == 200
    _train(server)
    _wait_for_temps(server, store)
    time.sleep(float(rng.uniform(0.0, 1.0)))
    server.kill()
    in_mid_publish = _temps(store, recursive=False)
    assert in_mid_publish, "the kill did not land while the head was being published"
    print(f"killed while publishing ({step}): {[p.name for p in in_mid_publish]} on disk")
    server = _start(studio)
    try:  # killed before the switch: the old head, whatever the new one left on disk
        assert _head(server) == old and _infer_head(server, studio) == old["sha256"]
        _train(server)  # a training that runs to its end: the new head
        task = _wait_train(server)
        assert task["status"] == "DONE", f"training failed: {task.get('details')}\n{server.log_tail()}"
        new = _head(server)
        assert new["source"] == "trained" and new["sha256"] != old["sha256"]
        leftovers = _temps(store, recursive=False) + list(store.glob("staging-*"))
        assert not leftovers, f"the killed training's leftovers remain: {leftovers}"
    finally:
        server.kill()  # a crash with nothing in flight
    server = _start(studio)
    try:
        assert _head(server) == new and _infer_head(server, studio) == new["sha256"]
    finally:
        server.stop()
    head_file = store / new["file"]
    assert file_sha256(head_file) == new["sha256"]
    head_file.write_bytes(head_file.read_bytes()[: head_file.stat().st_size // 2])  # broken on disk
    server = _start(studio)
    try:  # never served: the head it replaced is
        assert _head(server)["sha256"] == old["sha256"] and _infer_head(server, studio) == old["sha256"]
        assert "incomplete or altered" in server.log_tail(200_000)
    finally:
        server.stop()
