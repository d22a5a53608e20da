"""Each shipped head, decoder and UncertainSAM heads file has the configuration that produced it in ``configs/``: the card's
recorded settings equal the file's, the card names the file and its hash, and ``baldsam train-head|train-usam
--config`` reads it (command-line options win; an unknown key is refused, by name)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from monai_baldsam.cli.main import main
from monai_baldsam.data_paths import data_root
from monai_baldsam.decoder.config import load_decoder_config
from monai_baldsam.head.checkpoint import head_decoder
from monai_baldsam.head.registry import SHIPPED_HEADS, WEIGHTS_DIR
from monai_baldsam.head.train import trainer as head_trainer
from monai_baldsam.head.train.config import load_head_config
from monai_baldsam.head.train.scaffold import TrainResult
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.decoders import SHIPPED_DECODERS, WEIGHTS_DIR as DECODER_WEIGHTS
from monai_baldsam.usam.checkpoint import SHIPPED_USAM
from monai_baldsam.usam.train import trainer as usam_trainer
from monai_baldsam.usam.train.config import USAM_OPTIONS, load_usam_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
USAM_WEIGHTS = Path(usam_trainer.__file__).resolve().parents[1] / "weights"
#: settings added to TrainConfig after a head was trained, with the value that reproduces that head
ADDED_SINCE = {"general_v0": {"uncertain_click_fraction": 0.0}}
#: settings added to DecoderTrainConfig after a decoder was trained, with the value that reproduces it
DECODER_ADDED_SINCE = {"clicks_v1": {"train_boxes": False, "init_decoder": "original"}}


@pytest.mark.parametrize("name", sorted(SHIPPED_DECODERS))
def test_each_shipped_decoder_card_matches_its_config(name: str) -> None:
    card = _card(DECODER_WEIGHTS / f"{SHIPPED_DECODERS[name]}.json")
    config_path = CONFIGS / f"decoder_{name}.json"
    assert (card["config_file"], card["config_sha256"]) == (config_path.name, file_sha256(config_path))
    backbone, data, train = load_decoder_config(config_path)
    assert backbone == card["backbone"]
    assert asdict(train) == {**card["train_config"], **DECODER_ADDED_SINCE.get(name, {})}
    assert data.to_dict() == card["data_config"]
    assert card.get("answers_boxes", False) == train.train_boxes
    if train.init_decoder != "original":  # the decoder it started from, by hash
        assert card["init_decoder"]["name"] == train.init_decoder
        assert card["init_decoder"]["sha256"] == _card(
            DECODER_WEIGHTS / f"{SHIPPED_DECODERS[train.init_decoder]}.json")["decoder_sha256"]


def _card(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _recorded_data_dirs(card: dict[str, Any]) -> list[str]:
    """``data_dirs`` as the card records them (general_v0's card predates the key: its domains' folders)."""
    if "data_dirs" in card:
        return card["data_dirs"]
    return [f"train/{d}" for d in sorted({item["domain"] for item in card["data"]["train"]})]


@pytest.mark.parametrize("stem", sorted(set(SHIPPED_HEADS.values())))
def test_each_shipped_head_card_matches_its_config(stem: str) -> None:
    card, config_path = _card(WEIGHTS_DIR / f"{stem}.json"), CONFIGS / f"head_{stem}.json"
    raw, settings = json.loads(config_path.read_text()), load_head_config(config_path)
    assert (card["config_file"], card["config_sha256"]) == (config_path.name, file_sha256(config_path))
    train = {**asdict(settings.train), "temperatures": list(settings.train.temperatures)}
    assert train == {**card["train_config"], **ADDED_SINCE.get(stem, {})}
    assert (settings.seed, settings.val_fraction, settings.max_per_folder) == (
        card["seed"], card["val_fraction"], card["max_per_folder"])
    assert raw["data_dirs"] == _recorded_data_dirs(card)
    assert settings.data_dirs == tuple(str(data_root() / d) for d in raw["data_dirs"])
    assert raw["backbone"] == card["backbone"]["backbone"] and raw["init"] == card.get("init")
    if card.get("init"):  # the file it fine-tuned, verified by hash
        assert settings.init == WEIGHTS_DIR / card["init"]["file"]
    assert head_decoder(WEIGHTS_DIR / f"{stem}.pt") == settings.decoder  # the decoder it trained on, recorded


@pytest.mark.parametrize("stem", sorted(set(SHIPPED_USAM.values())))
def test_each_shipped_usam_card_matches_its_config(stem: str) -> None:
    card, config_path = _card(USAM_WEIGHTS / f"{stem}.json"), CONFIGS / f"{stem}.json"
    raw, settings = json.loads(config_path.read_text()), load_usam_config(config_path)
    assert (card["config_file"], card["config_sha256"]) == (config_path.name, file_sha256(config_path))
    assert asdict(settings.train) == card["train_config"] and asdict(settings.states) == card["states"]
    assert (settings.seed, settings.val_fraction, settings.max_per_folder) == (
        card["seed"], card["val_fraction"], card["max_per_folder"])
    assert raw["data_dirs"] == card["data_dirs"] and raw["backbone"] == card["backbone"]["backbone"]
    assert settings.large_backbone == card["large_backbone"]
    assert {k: card["usam_config"][k] for k in USAM_OPTIONS} == settings.usam_options
    head = card["click_states_head"]
    assert raw["head"] == {"file": head["head_file"], "sha256": head["head_sha256"]}
    assert settings.head == WEIGHTS_DIR / head["head_file"]


@pytest.mark.parametrize(("command", "config", "where", "key"), [
    ("train-head", "head_busi_v1.json", None, "learning_rate"),
    ("train-head", "head_busi_v1.json", "train", "epoch"),
    ("train-usam", "usam_general_v1.json", None, "heads"),
    ("train-usam", "usam_general_v1.json", "states", "jitters"),
])
def test_an_unknown_key_in_a_config_is_refused_by_name(tmp_path: Path, capsys, command: str, config: str,
                                                        where: str | None, key: str) -> None:
    raw = json.loads((CONFIGS / config).read_text())
    (raw if where is None else raw[where])[key] = 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    out = tmp_path / "m.pt"
    assert main([command, "--config", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"unknown key {key!r}" in err and str(bad) in err
    assert not out.exists() and not out.with_suffix(".json").exists()


def _capture_train_head(monkeypatch) -> dict[str, Any]:
    """Replace the trainer by a stub; the returned dict receives the arguments ``train-head`` passes it."""
    seen: dict[str, Any] = {}

    def fake_train_head(data_dirs, out, **kwargs):
        seen.update(kwargs, data_dirs=data_dirs)
        return TrainResult(Path(out), Path(out).with_suffix(".json"), {
            "head_sha256": "", "best_epoch": 1, "validation_full_res_oracle": {}, "duration_s": 0.0})

    monkeypatch.setattr(head_trainer, "train_head", fake_train_head)
    return seen


def test_train_head_reads_its_config_and_the_command_line_wins(tmp_path: Path, monkeypatch) -> None:
    seen = _capture_train_head(monkeypatch)
    config = CONFIGS / "head_busi_v1.json"
    assert main(["train-head", "--config", str(config), "--out", str(tmp_path / "h.pt"), "--epochs", "2",
                 "--no-progress"]) == 0
    assert seen["data_dirs"] == [str(data_root() / "train/busi")] and seen["config_file"] == str(config)
    assert (seen["config"].epochs, seen["config"].lr, seen["config"].max_train_seconds) == (2, 1e-3, 540.0)
    assert seen["init"] == WEIGHTS_DIR / "general_v1.pt" and seen["head_options"] is None
    assert (seen["seed"], seen["val_fraction"], seen["backbone"]) == (0, 0.15, "lite_medsam")


def test_a_head_config_names_its_decoder_and_moves_an_init_head_to_it(tmp_path: Path, monkeypatch) -> None:
    """head_general_v2: the click-trained decoder, fine-tuned from general_v1 with only the decoder prompting
    changed; ``--decoder`` and ``--encoder`` on the command line reach the trainer."""
    seen = _capture_train_head(monkeypatch)
    config = CONFIGS / "head_general_v2.json"
    assert main(["train-head", "--config", str(config), "--out", str(tmp_path / "h.pt"), "--encoder",
                 "openvino-bf16", "--no-progress"]) == 0
    assert (seen["decoder"], seen["encoder"]) == ("clicks_v1", "openvino-bf16")
    assert seen["init"] == WEIGHTS_DIR / "general_v1.pt"
    assert seen["head_options"] == {"features": {"decoder_clicks": "always", "box_from_mask": True}}
    assert len(seen["data_dirs"]) == 6
    assert main(["train-head", "--config", str(config), "--out", str(tmp_path / "h2.pt"), "--decoder", "original",
                 "--no-progress"]) == 0
    assert (seen["decoder"], seen["encoder"]) == ("original", "torch")


def test_train_usam_reads_its_config(tmp_path: Path, monkeypatch) -> None:
    seen: dict[str, Any] = {}

    def fake_train_usam(data_dirs, out, **kwargs):
        seen.update(kwargs, data_dirs=data_dirs)
        return TrainResult(Path(out), Path(out).with_suffix(".json"), {
            "usam_sha256": "", "counts": {}, "training": {}, "val_metrics": {}, "seconds": 0.0})

    monkeypatch.setattr(usam_trainer, "train_usam", fake_train_usam)
    config = CONFIGS / "usam_general_v1.json"
    assert main(["train-usam", "--config", str(config), "--out", str(tmp_path / "u.pt"), "--val-fraction", "0.2",
                 "--no-progress"]) == 0
    assert seen["max_per_folder"] == {"busi": 38, "kvasir": 100, "ph2": 80} and seen["val_fraction"] == 0.2
    assert seen["head"] == str(WEIGHTS_DIR / "general_v1.pt") and seen["config"].epochs == 300
    assert seen["head_options"] == {"hidden": 128, "depth": 2, "dropout": 0.1} and seen["config_file"] == str(config)


def test_a_training_command_needs_data(tmp_path: Path, capsys) -> None:
    assert main(["train-head", "--out", str(tmp_path / "h.pt")]) == 2
    assert "--data" in capsys.readouterr().err
