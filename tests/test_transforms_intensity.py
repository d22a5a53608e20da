"""Per-volume intensity windowing: CT presets, percentiles, min/max, auto mode and the dictionary version."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_baldsam.transforms import (
    CT_PRESETS,
    WINDOW_META_KEY,
    WINDOW_MODE_META_KEY,
    CTPreset,
    WindowIntensity,
    WindowIntensityd,
    WindowMode,
    compute_window,
    window_for_modality,
)


def _two_range_volume() -> MetaTensor:
    """(1, 16, 16, 4): slice k=0 spans 0..10, slice k=3 spans 0..1000 (a dim and a bright slice)."""
    gen = torch.Generator().manual_seed(0)
    vol = torch.rand((1, 16, 16, 4), generator=gen)
    vol[..., 0] *= 10.0
    vol[..., 1] *= 100.0
    vol[..., 2] *= 500.0
    vol[..., 3] *= 1000.0
    return MetaTensor(vol)


@pytest.mark.parametrize("mode", ["minmax", "percentile"])
def test_window_is_per_volume_dim_slice_stays_dim(mode: str) -> None:
    vol = _two_range_volume()
    out = WindowIntensity(mode)(vol)
    # per-slice min-max would stretch slice 0 to [0, 1]; per-volume keeps it about 1/100 of the bright slice
    assert float(out[..., 0].max()) < 0.02
    assert float(out[..., 3].max()) == pytest.approx(1.0)
    ratio = float(out[..., 3].mean()) / float(out[..., 0].mean())
    assert 50.0 < ratio < 150.0
    low, high = out.meta[WINDOW_META_KEY]
    assert low < 1.0 and high > 900.0
    assert out.meta[WINDOW_MODE_META_KEY] == mode


@pytest.mark.parametrize("preset", list(CTPreset))
def test_ct_preset_maps_window_edges_to_0_and_1(preset: CTPreset) -> None:
    level, width = CT_PRESETS[preset]
    values = torch.tensor([[level - width / 2, level, level + width / 2, level - width, level + width]])
    out = WindowIntensity(preset.value)(MetaTensor(values))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy()[0], [0.0, 0.5, 1.0, 0.0, 1.0], atol=1e-6)
    assert out.meta[WINDOW_META_KEY] == (level - width / 2, level + width / 2)


def test_presets_have_the_documented_level_and_width() -> None:
    assert CT_PRESETS[CTPreset.SOFT_TISSUE] == (40.0, 400.0)
    assert CT_PRESETS[CTPreset.ABDOMEN] == (50.0, 350.0)
    assert CT_PRESETS[CTPreset.LIVER] == (80.0, 150.0)
    assert CT_PRESETS[CTPreset.LUNG] == (-600.0, 1500.0)
    assert CT_PRESETS[CTPreset.BONE] == (400.0, 1800.0)
    assert CT_PRESETS[CTPreset.BRAIN] == (40.0, 80.0)


def test_explicit_level_width_overrides_preset() -> None:
    out = WindowIntensity("ct", preset="bone", level=100.0, width=200.0)(torch.tensor([[0.0, 100.0, 200.0]]))
    np.testing.assert_allclose(out.numpy()[0], [0.0, 0.5, 1.0], atol=1e-6)


def test_percentile_window_matches_numpy_over_whole_volume() -> None:
    vol = _two_range_volume()
    low, high = WindowIntensity("percentile", lower=2.0, upper=98.0).window(vol)
    ref = np.percentile(vol.numpy().ravel(), [2.0, 98.0])
    np.testing.assert_allclose([low, high], ref, rtol=1e-6)
    out = WindowIntensity("percentile", lower=2.0, upper=98.0)(vol)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    inside = (vol > low) & (vol < high)
    np.testing.assert_allclose(out[inside].numpy(), ((vol[inside] - low) / (high - low)).numpy(), rtol=1e-5)


def test_percentile_nonzero_ignores_background() -> None:
    vol = torch.zeros((1, 20, 20, 5))
    vol[:, 5:15, 5:15, :] = torch.linspace(100.0, 200.0, 10 * 10 * 5).reshape(1, 10, 10, 5)
    low_all, _ = compute_window(vol, "percentile", lower=5.0, upper=95.0)
    low_nz, high_nz = compute_window(vol, "percentile", lower=5.0, upper=95.0, nonzero=True)
    assert low_all == 0.0  # most voxels are background
    ref = np.percentile(vol.numpy()[vol.numpy() != 0], [5.0, 95.0])
    np.testing.assert_allclose([low_nz, high_nz], ref, rtol=1e-6)
    assert low_nz > 100.0


@pytest.mark.parametrize("mode", ["minmax", "percentile", "auto"])
def test_constant_image_gives_zeros_not_nan(mode: str) -> None:
    out = WindowIntensity(mode, nonzero=True)(MetaTensor(torch.full((1, 8, 8, 3), 7.0)))
    assert not torch.isnan(out).any()
    assert torch.count_nonzero(out) == 0
    zeros = WindowIntensity("percentile", nonzero=True)(torch.zeros((1, 4, 4)))
    assert torch.count_nonzero(zeros) == 0 and not torch.isnan(zeros).any()


def test_minmax_rgb_is_joint_over_channels() -> None:
    rgb = torch.zeros((3, 4, 4))
    rgb[0] = 200.0
    rgb[1] = 100.0
    rgb[2, 0, 0] = 50.0  # min 0, max 200 over all channels
    out = WindowIntensity("minmax")(rgb)
    assert float(out[0].mean()) == pytest.approx(1.0)
    assert float(out[1].mean()) == pytest.approx(0.5)  # per-channel min-max would give 0 (constant) or 1
    assert float(out[2, 0, 0]) == pytest.approx(0.25)


def test_auto_mode_uses_argument_then_meta_modality() -> None:
    hu = MetaTensor(torch.tensor([[[-1000.0, -160.0, 40.0, 240.0, 3000.0]]]))
    out_ct = WindowIntensity("auto", modality="CT")(hu)
    assert out_ct.meta[WINDOW_MODE_META_KEY] == "ct"
    np.testing.assert_allclose(out_ct.numpy().ravel(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    hu.meta["modality"] = "CT"
    assert WindowIntensity()(hu).meta[WINDOW_MODE_META_KEY] == "ct"
    hu.meta["modality"] = "MR"
    assert WindowIntensity()(hu).meta[WINDOW_MODE_META_KEY] == "percentile"
    assert WindowIntensity()(MetaTensor(torch.rand(3, 5, 5))).meta[WINDOW_MODE_META_KEY] == "minmax"


def test_window_for_modality() -> None:
    assert window_for_modality("CT") == WindowMode.CT
    assert window_for_modality("ct") == WindowMode.CT
    for name in ("MR", "US", "PT"):
        assert window_for_modality(name) == WindowMode.PERCENTILE
    for name in (None, "RGB", "OT", "XC"):
        assert window_for_modality(name) == WindowMode.MINMAX


def test_numpy_in_numpy_out() -> None:
    arr = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    out = WindowIntensity("minmax")(arr)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), np.arange(12) / 11.0, rtol=1e-6)


def test_input_meta_is_not_modified() -> None:
    img = MetaTensor(torch.rand(1, 4, 4))
    WindowIntensity("minmax")(img)
    assert WINDOW_META_KEY not in img.meta


def test_invalid_arguments_raise_actionable_errors() -> None:
    with pytest.raises(ValueError, match="unknown window mode"):
        WindowIntensity("zscore")
    with pytest.raises(ValueError, match="unknown CT preset"):
        WindowIntensity("ct", preset="kidney")
    with pytest.raises(ValueError, match="both level and width"):
        WindowIntensity("ct", level=40.0)
    with pytest.raises(ValueError, match="width must be positive"):
        WindowIntensity("ct", level=40.0, width=0.0)
    with pytest.raises(ValueError, match="0 <= lower < upper <= 100"):
        WindowIntensity("percentile", lower=99.0, upper=1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        WindowIntensity("minmax")(torch.tensor([[0.0, float("nan")]]))


def test_dictionary_version_windows_each_key_and_allows_missing_keys() -> None:
    data = {"image": MetaTensor(torch.linspace(0.0, 10.0, 11).reshape(1, 11)), "label": torch.ones(1, 11)}
    out = WindowIntensityd(keys=["image", "ct"], mode="minmax", allow_missing_keys=True)(data)
    np.testing.assert_allclose(out["image"].numpy().ravel(), np.linspace(0.0, 1.0, 11), atol=1e-6)
    assert out["image"].meta[WINDOW_META_KEY] == (0.0, 10.0)
    assert out["label"] is data["label"]
    assert "ct" not in out
    with pytest.raises(KeyError, match="ct"):
        WindowIntensityd(keys=["image", "ct"], mode="minmax")(data)
