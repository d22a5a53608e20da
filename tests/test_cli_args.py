"""The shared command-line pieces: training options (``train-head`` / ``train-usam``), the image input of ``segment`` /
``suggest``, the model options, ``--threads``, and the scaffolding of the CPU cost benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from benchmarks import timing
from monai_baldsam.cli.input_args import load_image_input, window_from_args
from monai_baldsam.cli.main import build_parser, main
from monai_baldsam.cli.model_args import apply_bundle, segmenter_from_args
from monai_baldsam.cli.runtime_args import apply_threads, check_threads
from monai_baldsam.cli.training_args import check_training_args
from monai_baldsam.sam.backbones import get_backbone_spec
from monai_baldsam.sam.checkpoints import CheckpointError
from monai_baldsam.transforms.intensity import WindowIntensity
from monai_baldsam.transforms.prompts import UserPrompts


@pytest.fixture()
def keep_threads():
    """Restore torch's thread count after a test that sets it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _training_args(**overrides) -> argparse.Namespace:
    values = {"epochs": None, "val_fraction": 0.15, "threads": None, "max_per_folder": None}
    return argparse.Namespace(**{**values, **overrides})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--val-fraction", "1"], "--val-fraction must be in [0, 1), got 1.0"),
        (["--val-fraction", "-0.1"], "--val-fraction must be in [0, 1), got -0.1"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--max-per-folder", "0"], "--max-per-folder must be a positive integer, got 0"),
        (["--max-per-folder", "kvasir=x"], "--max-per-folder kvasir must be a positive integer, got 'x'"),
        (["--max-per-folder", "a=1", "=3"], "--max-per-folder takes N or FOLDER=N (e.g. kvasir=200), got '=3'"),
    ],
)
def test_training_commands_reject_bad_values_alike(tmp_path: Path, capsys, keep_threads, argv, message) -> None:
    """Both training commands stop on the same bad value with the same message, before loading any model or data,
    and write nothing."""
    data = tmp_path / "data"
    data.mkdir()
    errors = {}
    for command in ("train-head", "train-usam"):
        out = tmp_path / f"{command}.pt"
        assert main([command, "--data", str(data), "--out", str(out), *argv]) == 2
        errors[command] = capsys.readouterr().err
        assert not out.exists() and not out.with_suffix(".json").exists()
    assert errors["train-head"] == errors["train-usam"] == f"baldsam: error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_learning_rate_is_checked_where_the_command_has_it(tmp_path: Path, capsys) -> None:
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "h.pt")]
    assert main(["train-head", *base, "--lr", "0"]) == 2
    assert capsys.readouterr().err == "baldsam: error: --lr must be positive, got 0.0\n"
    with pytest.raises(SystemExit) as exited:  # train-usam has no --lr: an argparse error, not a silent default
        main(["train-usam", *base, "--lr", "1e-3"])
    assert exited.value.code == 2 and "unrecognized arguments: --lr" in capsys.readouterr().err


def test_check_training_args_parses_and_sets_threads(keep_threads) -> None:
    target = 1 if torch.get_num_threads() != 1 else 2
    checked = check_training_args(_training_args(epochs=3, val_fraction=0.0, threads=target,
                                                 max_per_folder=["kvasir=20", "ph2=5"], lr=1e-3))
    assert (checked.epochs, checked.val_fraction, checked.lr) == (3, 0.0, 1e-3)
    assert checked.max_per_folder == {"kvasir": 20, "ph2": 5}
    assert torch.get_num_threads() == target
    plain = check_training_args(_training_args(max_per_folder=["7"]))  # a namespace without --lr (train-usam's)
    assert plain.lr is None and plain.epochs is None and plain.max_per_folder == 7


def test_threads_check_is_shared_with_evaluate(tmp_path: Path, dev_dir, capsys, keep_threads) -> None:
    with pytest.raises(ValueError, match="--threads must be at least 1, got 0"):
        check_threads(0)
    before = torch.get_num_threads()
    apply_threads(None)
    assert torch.get_num_threads() == before
    assert main(["evaluate", "--data", str(dev_dir("busi")), "--policy", "oracle", "--first", "box",
                 "--out", str(tmp_path / "ev"), "--threads", "0"]) == 2
    assert capsys.readouterr().err == "baldsam: error: --threads must be at least 1, got 0\n"
    assert not (tmp_path / "ev").exists()


def test_segment_and_suggest_read_the_input_options_alike(capsys) -> None:
    parser = build_parser()
    options = ["--channel", "1", "--axis", "0", "--window", "ct", "--device", "cpu"]
    segment = parser.parse_args(["segment", "v.nii.gz", "--out", "m.nii.gz", *options])
    suggest = parser.parse_args(["suggest", "v.nii.gz", *options])
    for name in ("image", "channel", "axis", "window", "device", "backbone", "checkpoint", "bundle"):
        assert getattr(segment, name) == getattr(suggest, name), name
    assert (segment.channel, segment.axis, segment.window) == (1, 0, "ct")
    assert segment.checkpoint_sha256 is None and not hasattr(suggest, "checkpoint_sha256")
    for argv in (["segment", "v.nii.gz", "--out", "m.nii.gz", "--axis", "3"], ["suggest", "v.nii.gz", "--axis", "3"]):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(argv)
        assert exited.value.code == 2 and "argument --axis: invalid choice: 3" in capsys.readouterr().err


def test_load_image_input_takes_the_channel_and_the_through_plane_axis(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((6, 8, 5, 2)).astype(np.float32)
    path = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 3.0, 1.0, 1.0])), path)  # j has the largest voxel size
    source = load_image_input(argparse.Namespace(image=str(path), channel=1, axis=None))
    assert source.is_volume and tuple(source.image.shape) == (1, 6, 8, 5)
    np.testing.assert_allclose(source.image[0].numpy(), data[..., 1], rtol=1e-6)
    assert source.axis == 1 and source.segmenter_axis == 1 and source.requested_axis is None
    assert source.inputs == [str(path)]
    assert sorted(source.checked_prompts(UserPrompts(box=[0, 0, 4, 3, 4])).slices) == [4]  # a box on slice j = 4
    with pytest.raises(ValueError, match="outside"):
        source.checked_prompts(UserPrompts(box=[0, 0, 9, 3, 4]))
    given = load_image_input(argparse.Namespace(image=str(path), channel=0, axis=2))
    assert given.axis == 2 and given.segmenter_axis == 2
    with pytest.raises(ValueError, match="channel"):
        load_image_input(argparse.Namespace(image=str(path), channel=None, axis=None))


def test_load_image_input_on_a_picture_keeps_the_given_axis(dev_dir) -> None:
    picture = dev_dir("busi") / "images" / "benign_001.png"
    source = load_image_input(argparse.Namespace(image=str(picture), channel=None, axis=1))
    assert not source.is_volume and source.axis == 2
    assert source.segmenter_axis == 1  # passed on to the Segmenter as given, as before
    height, width = source.image.shape[1:]
    assert sorted(source.checked_prompts(UserPrompts(box=[1, 1, width - 2, height - 2])).slices) == [0]


def test_window_from_args() -> None:
    assert window_from_args(argparse.Namespace(window="auto")) is None
    assert isinstance(window_from_args(argparse.Namespace(window="ct")), WindowIntensity)
    with pytest.raises(ValueError):
        window_from_args(argparse.Namespace(window="no_such_window"))


def test_segmenter_from_args_forwards_the_model_options() -> None:
    wrong = argparse.Namespace(backbone="lite_medsam", checkpoint=None, checkpoint_sha256="0" * 64, device="cpu",
                               head=None)
    with pytest.raises(CheckpointError, match="SHA-256"):
        segmenter_from_args(wrong)  # segment / evaluate: --checkpoint-sha256 reaches the loader
    args = argparse.Namespace(backbone="lite_medsam", checkpoint=None, device="cpu", head=None, bundle="polyp")
    apply_bundle(args)  # suggest: no --checkpoint-sha256 option; the bundle's head
    window = WindowIntensity("ct")
    segmenter = segmenter_from_args(args, window, 0)
    assert segmenter.axis == 0 and segmenter.window is window and segmenter.click_model is not None
    assert segmenter.predictor.backbone.checkpoint_sha256 == get_backbone_spec("lite_medsam").checkpoint_sha256


def test_interleaved_medians_alternates_the_calls_and_takes_medians() -> None:
    durations = {"a": [0.5, 0.1, 0.3, 0.9, 0.2], "b": [2.0, 4.0, 1.0, 3.0, 8.0]}
    now, order = [0.0], []

    def make(name: str):
        def call() -> None:
            order.append(name)
            now[0] += durations[name][sum(n == name for n in order) - 1]
        return call

    medians = timing.interleaved_medians({"a": make("a"), "b": make("b")}, 5, clock=lambda: now[0])
    assert order == ["a", "b"] * 5
    assert medians == pytest.approx({k: float(np.median(v)) for k, v in durations.items()})
    with pytest.raises(ValueError, match="--repeats"):
        timing.interleaved_medians({"a": make("a")}, 0)


@pytest.mark.slow
def test_cost_arguments_and_cases(dev_dir, keep_threads) -> None:
    parser = argparse.ArgumentParser()
    timing.add_cost_arguments(parser, repeats=7)
    target = 1 if torch.get_num_threads() != 1 else 2
    # --allow-dirty: the tests run in trees with uncommitted changes, which a benchmark refuses at parse time
    args = timing.parse_cost_args(parser, ["--domains", "busi", "--limit", "1", "--threads", str(target),
                                           "--allow-dirty"])
    assert (args.head, args.domains, args.limit, args.repeats) == ("general", ["busi"], 1, 7)
    assert (args.variant, args.allow_dirty) == (None, True)
    assert torch.get_num_threads() == target
    dev_dir("busi")  # fails with a message when the data are missing
    models = timing.load_cost_models(args.head)
    cases = list(timing.cost_cases(models, args.domains, args.limit))
    assert len(cases) == 1
    case = cases[0]
    assert case.row() == {"domain": "busi", "image": case.name, "image_hw": case.image_hw}
    x, y = case.clicks_xy[0].astype(int)
    x0, y0, x1, y1 = case.box_xy
    assert x0 <= x <= x1 and y0 <= y <= y1 and case.labels.tolist() == [1]
    assert case.previous.shape[-2:] == tuple(models.plain.predictor.backbone.low_res_hw)
