"""The MONAI Label app copied to a work folder of the user's own (``baldsam monailabel-app --copy-to DIR``).

The copy: the app's files land in a missing or empty folder, a non-empty one is refused (untouched) unless
``--overwrite``, which replaces only the app's files (atomically, keeping a changed one as a backup) and keeps the
rest; a failure part-way leaves no half copy. End to end: ``monailabel start_server --app <copy>`` answers one
Slicer-style click and writes ``logs/``, ``model/`` and ``bin/`` into the copy, not into the package's app folder.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from monai_baldsam.cli.main import main as baldsam_main
from monai_baldsam.monailabel import app_dir
from monai_baldsam.monailabel import workdir
from monai_baldsam.monailabel.workdir import APP_FILES, copy_app

PICTURE = "benign_015"


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> content)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _shipped() -> dict[str, bytes]:
    return {name: (app_dir() / name).read_bytes() for name in APP_FILES}


def test_copy_to_missing_folder_has_the_app_files_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "work" / "app"  # parents missing too
    copied = copy_app(target)
    assert copied.path == target.resolve() and copied.path.is_absolute() and copied.backups == ()
    assert _tree(target) == _shipped()
    assert "from monai_baldsam.monailabel.lib.app import BaldSamApp" in (target / "main.py").read_text()
    assert sorted(os.listdir(tmp_path / "work")) == ["app"], "a temporary folder was left beside the copy"
    assert oct((target.stat().st_mode) & 0o777) == oct(0o755)


def test_copy_into_empty_folder_keeps_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    inode = target.stat().st_ino
    copied = copy_app(target)
    assert copied.path == target.resolve() and target.stat().st_ino == inode  # the user's folder itself, not replaced
    assert _tree(target) == _shipped()


def test_non_empty_folder_is_refused_and_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    (target / "logs").mkdir(parents=True)
    (target / "notes.txt").write_text("my notes")
    (target / "logs" / "app.log").write_text("old log")
    before = _tree(target)
    with pytest.raises(FileExistsError, match="--overwrite"):
        copy_app(target)
    assert _tree(target) == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_overwrite_replaces_only_app_files_and_backs_up_a_changed_one(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    copy_app(target)
    (target / "logs").mkdir()
    (target / "logs" / "app.log").write_text("old log")
    (target / "notes.txt").write_text("my notes")
    edited = (target / "main.py").read_bytes() + b"\n# my edit\n"
    (target / "main.py").write_bytes(edited)
    copied = copy_app(target, overwrite=True)
    assert (target / "main.py").read_bytes() == _shipped()["main.py"]
    assert len(copied.backups) == 1 and copied.backups[0].parent == target.resolve()
    assert copied.backups[0].name.startswith("main.py.bak-") and copied.backups[0].read_bytes() == edited
    assert (target / "logs" / "app.log").read_text() == "old log" and (target / "notes.txt").read_text() == "my notes"
    # the same again: main.py is already the shipped one, so no further backup
    assert copy_app(target, overwrite=True).backups == ()
    assert len(list(target.glob("main.py.bak-*"))) == 1
    assert not list(target.glob(".tmp-*")), "a temporary file was left in the folder"


def test_failed_overwrite_keeps_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mine"
    copy_app(target)
    (target / "main.py").write_bytes(b"# the user's app\n")
    (target / "notes.txt").write_text("my notes")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)  # the final rename of the atomic write fails
    with pytest.raises(OSError, match="disk full"):
        copy_app(target, overwrite=True)
    monkeypatch.undo()
    assert (target / "main.py").read_bytes() == b"# the user's app\n"
    assert not list(target.glob(".tmp-*")), "a temporary file was left in the folder"


def test_failed_copy_to_missing_folder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_copy(src: object, dst: object) -> None:
        Path(dst).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(workdir.shutil, "copyfile", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        copy_app(tmp_path / "app")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [], "a half copy or a temporary folder was left"


def test_bad_targets_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        copy_app(a_file, overwrite=True)
    assert a_file.read_text() == "x"
    with pytest.raises(ValueError, match="package's own app folder"):
        copy_app(app_dir(), overwrite=True)
    with pytest.raises(ValueError, match="package's own app folder"):
        copy_app(app_dir() / "sub", overwrite=True)
    assert not (app_dir() / "sub").exists()
    # the `monailabel` script (0.8.5) runs `python -m monailabel.main $*`: a path with a space cannot be started
    with pytest.raises(ValueError, match="space"):
        copy_app(tmp_path / "my app")
    assert not (tmp_path / "my app").exists()


def test_cli_copy_to_prints_the_app_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "app"
    assert baldsam_main(["monailabel-app", "--copy-to", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target.resolve())
    assert _tree(target) == _shipped()
    (target / "notes.txt").write_text("my notes")
    assert baldsam_main(["monailabel-app", "--copy-to", str(target)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err
    assert baldsam_main(["monailabel-app", "--copy-to", str(target), "--overwrite"]) == 0
    assert capsys.readouterr().out.strip() == str(target.resolve())
    assert (target / "notes.txt").read_text() == "my notes"
    assert baldsam_main(["monailabel-app", "--overwrite"]) == 2
    assert "--copy-to" in capsys.readouterr().err


def test_server_runs_from_the_copy_and_writes_there(tmp_path: Path, dev_dir) -> None:
    """One real server on the copied app, one click request: answered, and its folders and log are in the copy."""
    from monailabel.client import MONAILabelClient

    from monai_baldsam.monailabel.lib.process import ServerProcess

    copied = copy_app(tmp_path / "work_app").path
    studies = tmp_path / "studies"
    studies.mkdir()
    busi = dev_dir("busi")
    shutil.copy(busi / "images" / f"{PICTURE}.png", studies / f"{PICTURE}.png")
    truth = (np.asarray(Image.open(busi / "masks" / f"{PICTURE}.png").convert("L")) > 127).T  # MONAI's (x, y)
    dist = ndimage.distance_transform_edt(np.pad(truth, 1))[1:-1, 1:-1]
    x, y = (int(v) for v in np.unravel_index(int(np.argmax(dist)), dist.shape))
    client_id = f"workdir-{uuid.uuid4().hex[:12]}"  # marks this test's request in the logs
    package_log = app_dir() / "logs" / "app.log"

    proc = ServerProcess(copied, studies, tmp_path / "server.log",
                         conf={"models": "baldsam_ultrasound", "device": "cpu", "usam": "none"},
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"})
    try:
        proc.start()
        (tmp_path / "client").mkdir()
        client = MONAILabelClient(proc.url, tmpdir=str(tmp_path / "client"), client_id=client_id)
        label_file, result = client.infer("baldsam_ultrasound", PICTURE,
                                          {"foreground": [[x, y, 0]], "background": [], "label": "lesion",
                                           "reset_state": True})
    finally:
        proc.stop()
    label = np.asarray(Image.open(label_file)).T > 0
    assert label.shape == truth.shape
    dice = 2 * (label & truth).sum() / max(1, label.sum() + truth.sum())
    assert dice > 0.6, f"the click at the lesion's centre gave Dice {dice:.3f} from the copied app"
    assert result["head"]["source"] == "bundle" and result["head"]["sha256"], "the shipped head was not served"
    assert 0 <= result["next_click"]["ijk"][0] < truth.shape[0]
    # MONAI Label's folders and its log are in the copy
    for name in ("logs", "model", "bin"):
        assert (copied / name).is_dir(), f"{name}/ was not created in the copied app {copied}"
    app_log = (copied / "logs" / "app.log").read_text(errors="replace")
    assert f"Initializing App from: {copied};" in app_log
    assert client_id in app_log, "the infer request is not in the copied app's log"
    # ... and not in the package's app folder
    if package_log.exists():
        package_text = package_log.read_text(errors="replace")
        assert str(copied) not in package_text and client_id not in package_text, \
            f"the server from {copied} wrote to the package's log {package_log}"
    assert _tree(copied).keys() >= {"main.py", "logs/app.log"}
