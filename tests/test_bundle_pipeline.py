"""The bundle's pipeline is MONAI transforms a user can change: prompts follow spatial transforms through world
coordinates, and the outputs come back to the loaded image's geometry through ``Invertd``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose, Flipd, Orientationd, Rotate90d, Spacingd
from PIL import Image

from monai_baldsam.bundle.inference import PromptedInferer, inference_items
from monai_baldsam.bundle.pipeline import InvertBaldSamOutputs
from monai_baldsam.bundles import bundle_dir
from monai_baldsam.transforms.prompts import CheckedPrompts, UserPrompts
from monai_baldsam.transforms.world_prompts import PromptsToImaged, PromptsToWorldd, WorldPrompts


def _dotted(shape: tuple[int, ...], dots: list[tuple[int, ...]], affine: np.ndarray) -> MetaTensor:
    """An image that is zero except value n + 1 at the n-th dot."""
    data = torch.zeros((1, *shape))
    for n, dot in enumerate(dots):
        data[(0, *dot)] = n + 1.0
    return MetaTensor(data, affine=torch.as_tensor(affine, dtype=torch.float64))


SPATIAL = [(2, [Flipd("image", spatial_axis=0)]), (2, [Rotate90d("image", k=1)]),
           (2, [Rotate90d("image", k=3), Flipd("image", spatial_axis=1)]),
           (3, [Flipd("image", spatial_axis=2)]), (3, [Orientationd("image", axcodes="LPS")]),
           (3, [Rotate90d("image", k=1, spatial_axes=(0, 1)), Flipd("image", spatial_axis=0)])]


@pytest.mark.parametrize("dims, spatial", SPATIAL)
def test_clicks_land_on_the_same_content_after_spatial_transforms(dims: int, spatial: list) -> None:
    three_d = dims == 3
    shape, fg, bg = ((23, 31, 9), (5, 7, 3), (20, 2, 6)) if three_d else ((40, 27), (5, 9), (33, 20))
    affine = np.diag([0.8, 1.1, 3.0, 1.0]) if three_d else np.eye(4)
    image = _dotted(shape, [fg, bg], affine)
    prompts = UserPrompts(foreground=[list(fg)], background=[list(bg)])
    out = Compose([PromptsToWorldd(), *spatial, PromptsToImaged()])({"image": image, "prompts": prompts})
    moved, checked = out["image"], out["prompts"]
    assert isinstance(checked, CheckedPrompts) and checked.fits(moved.shape[1:], checked.axis)
    for clicks, value in ((checked.foreground, 1.0), (checked.background, 2.0)):
        index = tuple(int(round(v)) for v in clicks[0])
        assert float(moved[(0, *index)]) == value, f"{type(spatial[0]).__name__}: click moved off its dot"


def test_a_box_follows_a_flip_and_a_bad_prompts_value_is_refused() -> None:
    image = _dotted((40, 27), [], np.eye(4))
    out = Compose([PromptsToWorldd(), Flipd("image", spatial_axis=0), PromptsToImaged()])(
        {"image": image, "prompts": UserPrompts(box=[2, 3, 10, 20])})
    assert out["prompts"].box == pytest.approx([29, 3, 37, 20])  # x -> 39 - x, corners reordered
    with pytest.raises(ValueError, match="UserPrompts"):
        PromptsToWorldd()({"image": image, "prompts": [[1, 2]]})
    with pytest.raises(ValueError, match="WorldPrompts"):
        PromptsToImaged()({"image": image, "prompts": UserPrompts(box=[2, 3, 10, 20])})
    with pytest.raises(ValueError, match="MetaTensor"):
        PromptsToWorldd()({"image": torch.zeros(1, 4, 4), "prompts": UserPrompts(box=[0, 0, 2, 2])})
    world = PromptsToWorldd()({"image": image, "prompts": UserPrompts(box=[2, 3, 10, 20])})["prompts"]
    assert isinstance(world, WorldPrompts) and world.box_corners.shape == (2, 2)


def test_the_bundle_pipeline_changed_in_its_config_inverts_back_to_the_input(dev_dir) -> None:
    """The polyp bundle's own preprocessing from inference.json, with a flip and a rotation inserted the way a user
    would, on a non-square dev image: label and maps come back on the loaded image's grid, close to the unchanged
    pipeline's, and the next click is a pixel of the loaded image."""
    image_path = next((dev_dir("clinicdb") / "images").iterdir())
    truth = np.array(Image.open(dev_dir("clinicdb") / "masks" / f"{image_path.stem}.png")) > 0
    ys, xs = np.nonzero(truth)
    box = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    parser = ConfigParser()
    parser.read_config(str(bundle_dir("polyp") / "configs" / "inference.json"))
    parser["device"] = "$torch.device('cpu')"
    parser["usam"] = None
    network = parser.get_parsed_content("network_def")
    plain = parser.get_parsed_content("preprocessing")
    transforms = list(plain.transforms)
    assert [type(t).__name__ for t in transforms] == ["LoadPromptedImaged", "PromptsToWorldd", "PromptsToImaged"]
    changed = Compose([*transforms[:2], Rotate90d("image", k=1), Flipd("image", spatial_axis=1), transforms[2]])
    item = inference_items(image=str(image_path), box=box)[0]
    results = {}
    for name, pipeline in (("plain", plain), ("changed", changed)):
        data = pipeline(dict(item))
        pred = PromptedInferer()([data["image"]], network, [data["prompts"]], originals=[data["original"]])
        results[name] = (data, InvertBaldSamOutputs(pipeline)({"image": [data["image"]], "pred": pred}))
    loaded = results["plain"][0]["original"]
    transformed = results["changed"][0]["image"]
    assert tuple(transformed.shape[1:]) == tuple(loaded.shape[1:])[::-1]  # the network really saw the rotated image
    masks = {}
    for name, (_, output) in results.items():
        pred = output["pred"][0]
        assert tuple(np.shape(pred["mask"])) == tuple(loaded.shape[1:]) == np.shape(pred["mutual_information"])
        masks[name] = np.asarray(pred["mask"]).astype(bool)
        point = pred["next_click"]["point"]
        assert 0 <= point["x"] < loaded.shape[1] and 0 <= point["y"] < loaded.shape[2]
        assert torch.allclose(output["image"][0].affine, loaded.affine)
    truth_xy = truth.T
    ious = {name: (m & truth_xy).sum() / max(1, (m | truth_xy).sum()) for name, m in masks.items()}
    agreement = (masks["plain"] & masks["changed"]).sum() / max(1, (masks["plain"] | masks["changed"]).sum())
    assert ious["plain"] > 0.5 and ious["changed"] > 0.5 and agreement > 0.8, (ious, agreement)


def test_spacing_changes_are_inverted_too() -> None:
    """A resampling transform (not an exact permutation) is inverted onto the loaded grid with Invertd."""
    image = _dotted((40, 30), [(10, 12)], np.eye(4))
    image.meta["filename_or_obj"] = "dot.png"
    pipeline = Compose([PromptsToWorldd(), Spacingd("image", pixdim=(0.5, 2.0)), PromptsToImaged()])
    data = pipeline({"image": image, "prompts": UserPrompts(foreground=[[10, 12]])})
    moved = data["image"]
    assert moved.shape[1] > 70 and moved.shape[2] < 20  # resampled: 0.5 along x, 2.0 along y
    mask = np.zeros(moved.shape[1:], dtype=np.uint8)
    x, y = (int(round(v)) for v in data["prompts"].foreground[0])
    mask[x - 2:x + 3, y - 1:y + 2] = 1
    pred = {"mask": mask, "mutual_information": mask.astype(np.float32), "probability": mask.astype(np.float32),
            "next_click": {"point": {"x": x, "y": y}}, "original": image}
    out = InvertBaldSamOutputs(pipeline)({"image": [moved], "pred": [pred]})["pred"][0]
    assert np.shape(out["mask"]) == (40, 30) and out["mask"][10, 12] == 1
    assert out["next_click"]["point"] == {"x": 10, "y": 12}
