"""Shipped heads by name and ``--head NAME|PATH`` resolution: every shipped head loads on LiteMedSAM, verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_baldsam.head.checkpoint import load_head
from monai_baldsam.head.registry import SHIPPED_HEADS, WEIGHTS_DIR, resolve_head
from monai_baldsam.sam.checkpoints import CheckpointError, file_sha256


@pytest.mark.parametrize("name", sorted(SHIPPED_HEADS))
def test_every_shipped_head_is_present_small_verified_and_loads(name: str, lite_medsam) -> None:
    found = resolve_head(name)
    assert found.path.parent == WEIGHTS_DIR and found.sha256 == file_sha256(found.path)
    assert found.path.stat().st_size < 20 << 20
    card = json.loads(found.path.with_suffix(".json").read_text())
    assert not any(str(d).startswith("/") for d in card.get("data_dirs", [])), "cards record no absolute paths"
    assert all("dev" not in str(d).split("/") for d in card.get("data_dirs", [])), "heads never train on dev data"
    trained = load_head(found.path, lite_medsam, sha256=found.sha256)
    assert trained.head.n_channels == trained.laplace.n_channels


def test_aliases_paths_and_bad_names(tmp_path: Path) -> None:
    assert resolve_head("busi").path == resolve_head("ultrasound").path
    assert resolve_head("kvasir").name == "polyp" and resolve_head("ph2").name == "skin"
    copy = tmp_path / "mine.pt"
    copy.write_bytes(resolve_head("general").path.read_bytes())
    assert resolve_head(str(copy)).sha256 is None  # no card beside it: nothing to check against
    (tmp_path / "mine.json").write_text(json.dumps({"head_sha256": "0" * 64}))
    assert resolve_head(str(copy)).sha256 == "0" * 64
    with pytest.raises(FileNotFoundError, match="neither a shipped head"):
        resolve_head("no_such_head")
    (tmp_path / "mine.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read"):
        resolve_head(str(copy))


def test_a_head_whose_card_hash_differs_is_refused(tmp_path: Path, lite_medsam) -> None:
    copy = tmp_path / "mine.pt"
    copy.write_bytes(resolve_head("general").path.read_bytes())
    (tmp_path / "mine.json").write_text(json.dumps({"head_sha256": "0" * 64}))
    with pytest.raises(CheckpointError):
        load_head(copy, lite_medsam, sha256=resolve_head(str(copy)).sha256)
