"""Clicks work by default: ``segment --fg`` on real dev images with default options follows the click (the shipped
click-trained decoder), a click the chosen model cannot follow is refused, heads keep the decoder they were trained
on, and the shipped decoder file is hash-checked."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from monai_baldsam.cli.main import main
from monai_baldsam.sam.backbones import load_backbone
from monai_baldsam.sam.checkpoints import CheckpointError
from monai_baldsam.sam.decoders import WEIGHTS_DIR, apply_decoder, default_decoder, follows_clicks, resolve_decoder


def _deepest_click(truth: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the object pixel farthest from the background: where an annotator clicks first."""
    depth = ndimage.distance_transform_edt(np.pad(truth, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(col), int(row)


@pytest.mark.parametrize("domain,name", [("busi", "benign_002"), ("kvasir", None), ("ph2", None)])
def test_segment_one_click_with_default_options_follows_the_click(tmp_path: Path, dev_dir, capsys, domain: str,
                                                                 name: str | None) -> None:
    folder = dev_dir(domain)
    mask_path = folder / "masks" / f"{name}.png" if name else sorted((folder / "masks").iterdir())[0]
    image_path = next(p for p in (folder / "images").iterdir() if p.stem == mask_path.stem)
    truth = np.array(Image.open(mask_path).convert("L")) > 127
    x, y = _deepest_click(truth)
    out = tmp_path / "mask.png"
    code = main(["segment", str(image_path), "--fg", f"{x},{y}", "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["foreground_voxels"] > 0
    mask = np.array(Image.open(out)) > 127
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.5, f"{domain}/{mask_path.stem}: one click with default options gave IoU {iou:.3f}"


def test_click_with_the_box_only_decoder_and_no_head_is_refused(tmp_path: Path, dev_dir, capsys) -> None:
    folder = dev_dir("busi")
    out = tmp_path / "mask.png"
    code = main(["segment", str(folder / "images" / "benign_002.png"), "--fg", "240,120", "--decoder", "original",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "ignores clicks" in err and "--head general" in err and "box" in err
    assert not out.exists()
    box_code = main(["segment", str(folder / "images" / "benign_002.png"), "--box", "215,107,265,132", "--decoder",
                     "original", "--out", str(out)])
    assert box_code == 0 and out.is_file()  # a box alone is what that decoder follows


def test_heads_run_on_the_decoder_they_were_trained_on(lite_medsam) -> None:
    from monai_baldsam.segmentation import Segmenter

    with_head = Segmenter(head="general")
    assert with_head.predictor.backbone.decoder_name == "original" and with_head.follows_clicks
    plain = Segmenter()
    assert plain.predictor.backbone.decoder_name == default_decoder("lite_medsam") == "clicks_v1"
    assert follows_clicks(plain.predictor.backbone) and not follows_clicks(lite_medsam)
    with pytest.raises(ValueError, match="trained on decoder 'original'"):
        Segmenter(head="general", decoder="clicks_v1")


def test_shipped_decoder_is_small_hash_checked_and_carded(tmp_path: Path) -> None:
    found = resolve_decoder("clicks_v1")
    card = json.loads(found.path.with_suffix(".json").read_text())
    assert found.path.parent == WEIGHTS_DIR and found.path.stat().st_size < 10 << 20
    assert card["decoder_sha256"] == found.sha256 and card["data"]["train"] and card["validation"]["history"]
    assert all(entry["domain"] and len(entry["image"]) == 64 for entry in card["data"]["train"])
    damaged = tmp_path / "clicks_v1.pt"
    blob = bytearray(found.path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    damaged.write_bytes(bytes(blob))
    shutil.copy(found.path.with_suffix(".json"), damaged.with_suffix(".json"))  # the card's hash: the good file's
    with pytest.raises(CheckpointError, match="SHA-256"):
        apply_decoder(load_backbone("lite_medsam"), damaged)


def test_default_head_on_pictures_leaves_a_box_alone_to_the_decoder(tmp_path: Path, dev_dir, capsys) -> None:
    """``--head auto`` (the default): general_v2 on a 2D picture (and on a volume), whose box alone is LiteMedSAM's
    own mask (the decoder answers it); ``--head none`` is the decoder alone; ``--decoder`` or ``--checkpoint`` take no
    head."""
    from monai_baldsam.cli import model_args
    from monai_baldsam.head.registry import DEFAULT_2D_HEAD

    assert model_args._DEFAULT_2D_HEAD == DEFAULT_2D_HEAD  # spelled twice: --help does not import the registry
    image = dev_dir("busi") / "images" / "benign_002.png"
    masks = {}
    for head in ("auto", "none"):
        out = tmp_path / f"{head}.png"
        argv = ["segment", str(image), "--box", "215,107,265,132", "--out", str(out), "--usam", "none"]
        assert main(argv + ([] if head == "auto" else ["--head", head])) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["head"] == (DEFAULT_2D_HEAD if head == "auto" else None)
        masks[head] = np.array(Image.open(out)) > 127
    overlap = (masks["auto"] & masks["none"]).sum() / (masks["auto"] | masks["none"]).sum()
    assert masks["none"].any() and overlap > 0.995, f"the default head changed a box-alone mask: IoU {overlap:.4f}"
    for argv, expected in [(["--decoder", "clicks_v1"], None), (["--checkpoint", "my.pth"], None),
                           ([], DEFAULT_2D_HEAD), (["--head", "general"], "general"), (["--head", "none"], None),
                           (["--backbone", "sam_vit_b"], None)]:
        args = argparse.Namespace(head="auto", backbone="lite_medsam", checkpoint=None, decoder=None)
        for flag, value in zip(argv[::2], argv[1::2]):
            setattr(args, flag.lstrip("-"), value)
        model_args.resolve_auto_head(args)
        assert args.head == expected, argv


def test_default_head_on_a_volume_leaves_the_box_alone_to_the_decoder(tmp_path: Path, dev_dir, capsys) -> None:
    """A volume gets the default head too (it decodes the clicked slices only): with a box alone the propagated
    volume mask is the one without a head, and the report names the head."""
    import nibabel as nib

    from monai_baldsam.head.registry import DEFAULT_2D_HEAD

    volume = sorted((dev_dir("hippocampus") / "images").glob("*.nii*"))[0]
    truth = nib.load(dev_dir("hippocampus") / "masks" / volume.name).get_fdata() > 0
    k = int(np.median(np.nonzero(truth.any(axis=(0, 1)))[0]))
    i, j = np.nonzero(truth[:, :, k])
    box = f"{i.min()},{j.min()},{k},{i.max()},{j.max()}"
    masks = {}
    for head in ("auto", "none"):
        out = tmp_path / f"{head}.nii.gz"
        argv = ["segment", str(volume), "--box", box, "--axis", "2", "--out", str(out), "--usam", "none"]
        assert main(argv + ([] if head == "auto" else ["--head", head])) == 0
        assert json.loads(capsys.readouterr().out)["head"] == (DEFAULT_2D_HEAD if head == "auto" else None)
        masks[head] = nib.load(out).get_fdata() > 0
    assert masks["none"].any(), "the box gave an empty volume mask"
    assert np.array_equal(masks["auto"], masks["none"]), "the default head changed a box-alone volume mask"
