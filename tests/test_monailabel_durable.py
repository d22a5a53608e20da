"""The app's stores recover from a crash: what a killed writer leaves (a temporary file, a truncated datastore file,
a broken head file or pointer) is never served, and the last whole state is.

Unit tests on temporary folders; ``tests/test_monailabel_faults.py`` kills a real server mid-write.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_baldsam.io.atomic import TEMP_PREFIX
from monai_baldsam.monailabel.lib.durable import FAULT_PAUSE_ENV, atomic_copy, fault_pause, remove_stale_temps
from monai_baldsam.monailabel.lib.heads import HeadStore
from monai_baldsam.monailabel.lib.local_store import BaldSamLocalDatastore
from monai_baldsam.sam.checkpoints import file_sha256


def _store(studies: Path) -> BaldSamLocalDatastore:
    return BaldSamLocalDatastore(str(studies), extensions=["*.png", "*.nii.gz"], auto_reload=False)


def _png(path: Path, seed: int, shape: tuple[int, int] = (32, 40)) -> np.ndarray:
    pixels = (np.random.default_rng(seed).random(shape) > 0.5).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _publish(store: HeadStore, staging: Path, content: bytes, published: float):
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "head.pt").write_bytes(content)
    return store.publish(staging / "head.pt", published)


def test_fault_pause_is_off_by_default_and_refuses_a_bad_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_PAUSE_ENV, raising=False)
    assert fault_pause("label") == 0.0
    monkeypatch.setenv(FAULT_PAUSE_ENV, "label=0.05,head=7")
    start = time.monotonic()
    assert fault_pause("label") == 0.05 and time.monotonic() - start >= 0.05
    assert fault_pause("datastore") == 0.0
    monkeypatch.setenv(FAULT_PAUSE_ENV, "label:2")
    with pytest.raises(ValueError, match="name=seconds"):
        fault_pause("label")


def test_atomic_copy_replaces_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    source, dest = tmp_path / "a.bin", tmp_path / "out" / "b.bin"
    source.write_bytes(b"new" * 1000)
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    atomic_copy(source, dest, what="label")
    assert dest.read_bytes() == b"new" * 1000 and sorted(p.name for p in dest.parent.iterdir()) == ["b.bin"]
    (dest.parent / f"{TEMP_PREFIX}abc-b.bin").write_bytes(b"ne")
    assert [p.name for p in remove_stale_temps(dest.parent)] == [f"{TEMP_PREFIX}abc-b.bin"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["b.bin"]


def test_saved_label_is_whole_and_a_killed_save_leaves_nothing_listed(tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    studies.mkdir()
    for n in range(2):
        _png(studies / f"img{n}.png", n)
    store = _store(studies)
    label = _png(tmp_path / "label.png", 10)
    assert store.save_label("img0", str(tmp_path / "label.png"), "final", {}) == "img0"
    saved = Path(store.get_label_uri("img0", "final"))
    np.testing.assert_array_equal(np.asarray(Image.open(saved)), label)
    assert json.loads((studies / "datastore_v2.json").read_text())["objects"]["img0"]["labels"]["final"]
    # what a server killed between writing the temporary file and the rename leaves behind
    half = (tmp_path / "label.png").read_bytes()[:50]
    (saved.parent / f"{TEMP_PREFIX}0123456789ab-img1.png").write_bytes(half)
    (studies / f"{TEMP_PREFIX}0123456789ab-img9.png").write_bytes(half)
    (studies / f"{TEMP_PREFIX}0123456789ab-datastore_v2.json").write_text('{"name": "new-da')
    restarted = _store(studies)
    assert sorted(restarted.list_images()) == ["img0", "img1"]
    assert restarted.get_labeled_images() == ["img0"]
    assert not [p for p in studies.rglob(f"{TEMP_PREFIX}*")], "stale temporary files were not removed"
    np.testing.assert_array_equal(np.asarray(Image.open(restarted.get_label_uri("img0", "final"))), label)


def test_unreadable_datastore_file_is_set_aside_and_rebuilt_from_the_files(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    studies = tmp_path / "studies"
    studies.mkdir()
    _png(studies / "img0.png", 0)
    _png(tmp_path / "label.png", 1)
    _store(studies).save_label("img0", str(tmp_path / "label.png"), "final", {})
    config = studies / "datastore_v2.json"
    config.write_text(config.read_text()[:40])  # truncated, as MONAI Label's in-place rewrite leaves it
    with caplog.at_level(logging.WARNING):
        store = _store(studies)
    assert "cannot be read" in caplog.text
    assert store.get_labeled_images() == ["img0"]
    assert json.loads(config.read_text())["objects"]["img0"]["labels"]["final"]
    assert len(list(studies.glob("datastore_v2.json.unreadable-*"))) == 1


def test_head_store_falls_back_to_the_last_whole_head(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = tmp_path / "bundle_head.pt"
    base.write_bytes(b"bundle weights")
    store = HeadStore(tmp_path / "models" / "m", base, file_sha256(base))
    first = _publish(store, tmp_path / "s1", b"first fine-tuned weights", 1.0)
    second = _publish(store, tmp_path / "s2", b"second fine-tuned weights", 2.0)
    assert store.current().sha256 == second.sha256 != first.sha256
    assert json.loads(store.pointer.read_text())["previous"]["sha256"] == first.sha256
    assert json.loads(store.previous_pointer.read_text())["sha256"] == first.sha256
    assert not list(store.folder.glob(f"{TEMP_PREFIX}*"))
    second.path.write_bytes(b"second fine-tu")  # a broken head file: never served
    with caplog.at_level(logging.WARNING):
        assert store.current().sha256 == first.sha256
    assert "incomplete or altered" in caplog.text
    store.pointer.write_text('{"file": "head-')  # a broken pointer: previous.json names the head before
    assert store.current().sha256 == first.sha256
    first.path.unlink()
    assert store.current() == store.base and store.current().sha256 == file_sha256(base)
