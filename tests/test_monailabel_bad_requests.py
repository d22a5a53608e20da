"""Bad requests to a real MONAI Label server running the app: each gets a 4xx answer whose ``detail`` says what is
wrong, nothing is written where it must not be, and the server goes on answering good requests.

One server (``monailabel start_server`` on 127.0.0.1, a free port) on a studies folder with one busi picture and a
3-slice BraTS crop, stopped by its PID in a finalizer. Only the last test runs the model (one picture encoded); the
bad requests are refused before any encoder pass.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import requests

from monai_baldsam.monailabel.lib.process import ServerProcess
from monai_baldsam.monailabel.lib.prompts import MAX_POINTS
from monai_baldsam.monailabel.workdir import copy_app

pytestmark = pytest.mark.slow

MODEL_2D, MODEL_3D = "baldsam_ultrasound", "baldsam_brain_mri"
PICTURE = "benign_001"  # 416 x 416
VOLUME = "brats_2013_pat0002_1"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, dev_dir) -> dict:
    root = tmp_path_factory.mktemp("bad_requests")
    studies = root / "studies"
    studies.mkdir()
    shutil.copy(dev_dir("busi") / "images" / f"{PICTURE}.png", studies / f"{PICTURE}.png")
    image = nib.load(dev_dir("brats_mri3d") / "images" / f"{VOLUME}.nii.gz")
    crop = np.asarray(image.dataobj)[:, :, 103:106].astype(np.float32)
    nib.save(nib.Nifti1Image(crop, image.affine), studies / "brats_crop.nii.gz")
    return {"root": root, "studies": studies, "volume_bytes": (studies / "brats_crop.nii.gz").read_bytes()}


@pytest.fixture(scope="module")
def server(studio: dict):
    proc = ServerProcess(copy_app(studio["root"] / "app").path, studio["studies"], studio["root"] / "server.log",
                         conf={"models": f"{MODEL_2D},{MODEL_3D}", "device": "cpu"},
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"})
    try:
        proc.start()
        yield proc
    finally:
        status = proc.stop()
        assert proc.process is None or proc.process.poll() is not None, "the server is still running after stop()"
        print(f"monailabel server (pid {proc.pid}) stopped with status {status}")


def _infer(server: ServerProcess, model: str, image: str, params: dict | None = None,
           upload: tuple[str, bytes] | None = None) -> requests.Response:
    files = {"file": upload} if upload else None
    return requests.post(f"{server.url}/infer/{model}", params={"image": image, "output": "json"},
                         data={"params": json.dumps(params or {})}, files=files, timeout=120)


def _refused(response: requests.Response, status: int, phrase: str) -> None:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    detail = response.json()["detail"]
    assert phrase in detail, f"the answer does not say {phrase!r}: {detail!r}"


def _four_d_nifti() -> bytes:
    data = np.random.default_rng(0).random((16, 16, 4, 2)).astype(np.float32)
    buffer = io.BytesIO()
    image = nib.Nifti1Image(data, np.eye(4))
    image.to_file_map({"image": nib.FileHolder(fileobj=buffer), "header": nib.FileHolder(fileobj=buffer)})
    return gzip.compress(buffer.getvalue())


CLICK = {"foreground": [[200, 200, 0]], "background": []}


@pytest.mark.parametrize("model, image, params, status, phrase", [
    ("no_such_model", PICTURE, CLICK, 404, "unknown model 'no_such_model'"),
    (MODEL_2D, "no_such_image", CLICK, 404, "not in the datastore"),
    (MODEL_2D, "../studies/benign_001", CLICK, 400, "holds a path"),
    (MODEL_2D, "/etc/passwd", CLICK, 400, "holds a path"),
    (MODEL_2D, PICTURE, {"foreground": [[5000, 10, 0]]}, 400, "outside the image"),
    (MODEL_2D, PICTURE, {"foreground": [[10, 10, 3]]}, 400, "outside the image"),  # a picture has only k = 0
    (MODEL_3D, "brats_crop", {"foreground": [[10, 10, -1]]}, 400, "outside the image"),
    (MODEL_3D, "brats_crop", {"roi": [300, 400, 0, 10, 0, 2]}, 400, "lies outside the image"),
    (MODEL_2D, PICTURE, {"foreground": [[1, 1, 0]] * (MAX_POINTS + 1)}, 400, f"at most {MAX_POINTS}"),
    # a list too long for the form field (1 MiB) is refused by the web framework before the app sees it
    (MODEL_2D, PICTURE, {"foreground": [[1, 1, 0]] * 100_000}, 400, "exceeded maximum size"),
    (MODEL_2D, PICTURE, {"foreground": [[1, 2, 3, 4]]}, 400, "voxel points"),
    (MODEL_3D, PICTURE, CLICK, 400, "2D image"),
])
def test_bad_infer_request_gets_4xx_saying_what_is_wrong(server: ServerProcess, model: str, image: str,
                                                         params: dict, status: int, phrase: str) -> None:
    _refused(_infer(server, model, image, params), status, phrase)


def test_path_to_a_server_file_is_not_read(server: ServerProcess, studio: dict) -> None:
    """An image id that is the absolute path of a file on the server (even one in the studies folder)."""
    path = str(studio["studies"] / f"{PICTURE}.png")
    _refused(_infer(server, MODEL_2D, path, CLICK), 400, "holds a path")


@pytest.mark.parametrize("name, data, phrase", [
    ("truncated.nii.gz", "truncated", "cannot read"),
    ("notes.nii.gz", b"not an image at all\n", "cannot read"),
    ("notes.txt", b"not an image at all\n", "unknown file type '.txt'"),
    ("four_d.nii.gz", "4d", "channel"),
])
def test_bad_upload_gets_400(server: ServerProcess, studio: dict, name: str, data: bytes | str, phrase: str) -> None:
    if data == "truncated":
        data = studio["volume_bytes"][: len(studio["volume_bytes"]) // 3]
    elif data == "4d":
        data = _four_d_nifti()
    response = _infer(server, MODEL_3D, "", {"foreground": [[5, 5, 1]]}, upload=(name, data))
    _refused(response, 400, phrase)


@pytest.mark.parametrize("image, tag, status, phrase", [
    (PICTURE, "../../escaped", 400, "not a plain name"),
    (PICTURE, ".hidden", 400, "not a plain name"),
    ("../benign_001", "final", 400, "holds a path"),
    ("no_such_image", "final", 404, "not in the datastore"),
])
def test_bad_label_save_gets_4xx_and_writes_nothing(server: ServerProcess, studio: dict, image: str, tag: str,
                                                    status: int, phrase: str) -> None:
    label = (studio["studies"] / f"{PICTURE}.png").read_bytes()
    before = sorted(p for p in studio["root"].rglob("*") if "logs" not in p.parts)
    response = requests.put(f"{server.url}/datastore/label", params={"image": image, "tag": tag},
                            data={"params": "{}"}, files={"label": ("label.png", label)}, timeout=60)
    _refused(response, status, phrase)
    after = sorted(p for p in studio["root"].rglob("*") if "logs" not in p.parts)
    assert after == before, f"a refused label wrote files: {sorted(set(after) - set(before))}"


def test_server_keeps_answering_after_bad_requests(server: ServerProcess, studio: dict) -> None:
    assert server.process is not None and server.process.poll() is None, "the server died"
    info = requests.get(f"{server.url}/info/", timeout=30)
    assert info.status_code == 200 and set(info.json()["models"]) == {MODEL_2D, MODEL_3D}
    # an ROI hanging over the picture's edge (Slicer allows it) is clipped, not refused
    response = _infer(server, MODEL_2D, PICTURE, {"foreground": [[200, 200, 0]], "roi": [150, 600, 150, 250]})
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    assert answer["encoded_slices"] == 1 and answer["next_click"] is not None
    assert 0 <= answer["next_click"]["ijk"][0] < 416 and 0 <= answer["next_click"]["ijk"][1] < 416
