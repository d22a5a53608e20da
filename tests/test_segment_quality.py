"""UncertainSAM quality from the decode that made the mask: one decoder call per prompted slice in the bundle network
and the MONAI Label picture path, with the same numbers as the separate ``Segmenter.mask_quality`` decode; the
segmenter's UncertainSAM models sit in a bounded, clearable cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from monai_baldsam.bundle.inference import BaldSamNetwork
from monai_baldsam.io import load_image
from monai_baldsam.segmentation import Segmenter, UserPrompts
from monai_baldsam.suggestion import suggest_2d
from monai_baldsam.usam import UsamModel, resolve_usam

BOX = [100.0, 100.0, 250.0, 250.0]


@contextmanager
def count_decodes(segmenter: Segmenter) -> Iterator[list[int]]:
    """Counts mask-decoder passes: every decode (SAM's ``predict_masks`` or the head's ``run_mask_decoder``) runs
    the decoder's two-way transformer exactly once."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    handle = segmenter.predictor.backbone.mask_decoder.transformer.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def network() -> BaldSamNetwork:
    return BaldSamNetwork("lite_medsam", head="general", usam="general")


@pytest.fixture(scope="module")
def busi_image(dev_dir):
    return load_image(dev_dir("busi") / "images" / "benign_001.png")


def test_bundle_network_decodes_a_picture_once_with_the_old_quality(network: BaldSamNetwork, busi_image) -> None:
    prompts = UserPrompts(box=BOX, foreground=[[180.0, 170.0]])
    segmenter = network.segmenter
    segmenter.usam_model("general")  # loading the heads decodes nothing, but keep it out of the count anyway
    with count_decodes(segmenter) as calls:
        result = network(busi_image, prompts)
    assert calls[0] == 1, f"{calls[0]} decoder passes for one prompted picture"
    # the old path: suggestion and quality each decode the slice
    with count_decodes(segmenter) as calls:
        old_quality = segmenter.mask_quality(busi_image, prompts, "general")[0].to_dict()
        old = suggest_2d(segmenter, busi_image, prompts, network.footprint, network.gate)
    assert calls[0] == 2
    assert result["quality"] == old_quality
    assert 0.0 < result["quality"]["predicted_iou"] < 1.0
    assert result["next_click"] == old.to_dict()
    for name in ("mask", "mutual_information", "probability"):
        np.testing.assert_array_equal(result[name], old.maps[name])


def test_assess_gives_head_outputs_and_mask_quality_from_one_decode(network: BaldSamNetwork, busi_image) -> None:
    segmenter = network.segmenter
    prompts = UserPrompts(box=BOX)
    with count_decodes(segmenter) as calls:
        assessed = segmenter.assess(busi_image, prompts, "general")
    assert calls[0] == 1 and list(assessed) == [0]
    output = segmenter.head_outputs(busi_image, prompts)[0]
    np.testing.assert_array_equal(assessed[0].output.mask, output.mask)
    np.testing.assert_array_equal(assessed[0].output.probability, output.probability)
    assert assessed[0].quality == segmenter.mask_quality(busi_image, prompts, "general")[0]


def test_usam_models_are_cached_per_name_bounded_and_clearable(network: BaldSamNetwork) -> None:
    segmenter = network.segmenter
    segmenter.clear_usam_cache()
    first = segmenter.usam_model("general")
    assert isinstance(first, UsamModel) and first.click_model is segmenter.click_model
    assert segmenter.usam_model("general") is first  # loaded once per name
    path = str(resolve_usam("general").path)  # the same heads under another name: its own entry
    by_path = segmenter.usam_model(path)
    assert by_path is not first
    assert list(segmenter._usam_models) == ["general", path]
    segmenter.usam_model("general")  # most recently used moves to the end
    assert list(segmenter._usam_models) == [path, "general"]
    old_size = segmenter.usam_cache_size
    try:
        segmenter.usam_cache_size = 1
        segmenter.usam_model(path)
        assert list(segmenter._usam_models) == [path]  # the least recently used was dropped
        assert segmenter.usam_model("general") is not first  # ... and is loaded again when asked for
        segmenter.usam_cache_size = 0
        with pytest.raises(ValueError, match="usam_cache_size"):
            segmenter.usam_model("general")
    finally:
        segmenter.usam_cache_size = old_size
    segmenter.clear_usam_cache()
    assert not segmenter._usam_models


def test_monailabel_picture_request_decodes_once_with_the_old_quality(dev_dir, tmp_path: Path) -> None:
    from monai_baldsam.monailabel.lib.configs import discover_configs
    from monai_baldsam.monailabel.lib.heads import HeadStore
    from monai_baldsam.monailabel.lib.hub import ModelHub
    from monai_baldsam.monailabel.lib.infers import BaldSamInfer
    from monai_baldsam.sam.checkpoints import file_sha256

    config = {c.name: c for c in discover_configs()}["baldsam_ultrasound"]
    store = HeadStore(tmp_path / "models" / config.name, config.head_path, file_sha256(config.head_path))
    task = BaldSamInfer(config, ModelHub(), store, usam="general")
    image_path = dev_dir("busi") / "images" / "benign_001.png"
    request = {"image": str(image_path), "box": BOX, "foreground": [[180, 170]], "result_extension": ".png"}
    segmenter = task.hub.model(config.name, store).segmenter
    segmenter.usam_model("general")
    with count_decodes(segmenter) as calls:
        label_file, params = task(dict(request))
    try:
        assert calls[0] == 1, f"{calls[0]} decoder passes for one prompted picture"
        prompts = UserPrompts(box=BOX, foreground=[[180.0, 170.0]])
        old = segmenter.mask_quality(task.load_image(str(image_path)), prompts, "general")[0].to_dict()
        assert params["quality"] == old and 0.0 < old["predicted_iou"] < 1.0
        assert params["next_click"] is not None
    finally:
        if label_file and os.path.exists(label_file):
            os.unlink(label_file)
