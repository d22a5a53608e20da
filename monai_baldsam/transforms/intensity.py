"""Intensity windowing decided once per image or volume, mapping intensities to float32 in ``[0, 1]``.

The window ``(low, high)`` is computed from the *whole* image or volume (all channels, all slices), never
per slice: a dim slice of a volume stays dim after windowing, so SAM sees the contrast a radiologist sees.

Modes (:class:`WindowMode`):

* ``ct`` - a fixed Hounsfield window, from a :class:`CTPreset` (``soft_tissue`` L40/W400, ``abdomen`` L50/W350,
  ``liver`` L80/W150, ``lung`` L-600/W1500, ``bone`` L400/W1800, ``brain`` L40/W80) or an explicit
  ``level``/``width`` in HU. A preset name may also be given directly as the mode (``mode="liver"``).
* ``percentile`` - the ``lower``/``upper`` percentiles of the volume (default 0.5 / 99.5), optionally over
  nonzero voxels only (``nonzero=True``, for skull-stripped MR whose background is exactly 0).
* ``minmax`` - the image minimum and maximum, jointly over all channels (RGB photos keep their colour ratios).
* ``auto`` - picks one of the above from the modality (:func:`window_for_modality`): ``CT`` -> ``ct``
  (``soft_tissue`` unless another preset/level/width is given), ``MR``/``US``/``PT``/``NM`` -> ``percentile``,
  anything else (RGB photos, unknown) -> ``minmax``. The modality is the ``modality`` argument when given, else
  ``meta["modality"]`` of the input ``MetaTensor`` (the project's readers write the DICOM Modality tag there).

Values outside the window are clipped. A window of zero width (a constant image in ``percentile``/``minmax``
mode) gives zeros, never NaN. The window used is written to the output meta as ``meta["baldsam_window"]``
``= (low, high)`` in input intensity units, and the resolved mode as ``meta["baldsam_window_mode"]``.
"""

from __future__ import annotations

from enum import Enum
from typing import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

__all__ = [
    "WindowMode",
    "CTPreset",
    "CT_PRESETS",
    "MODALITY_META_KEY",
    "WINDOW_META_KEY",
    "WINDOW_MODE_META_KEY",
    "window_for_modality",
    "compute_window",
    "apply_window",
    "WindowIntensity",
    "WindowIntensityd",
    "default_window",
]

MODALITY_META_KEY = "modality"
WINDOW_META_KEY = "baldsam_window"
WINDOW_MODE_META_KEY = "baldsam_window_mode"


class WindowMode(str, Enum):
    """How the intensity window is chosen."""

    AUTO = "auto"
    CT = "ct"
    PERCENTILE = "percentile"
    MINMAX = "minmax"


class CTPreset(str, Enum):
    """Named CT windows; see :data:`CT_PRESETS` for their level and width in HU."""

    SOFT_TISSUE = "soft_tissue"
    ABDOMEN = "abdomen"
    LIVER = "liver"
    LUNG = "lung"
    BONE = "bone"
    BRAIN = "brain"


CT_PRESETS: dict[CTPreset, tuple[float, float]] = {
    CTPreset.SOFT_TISSUE: (40.0, 400.0),
    CTPreset.ABDOMEN: (50.0, 350.0),
    CTPreset.LIVER: (80.0, 150.0),
    CTPreset.LUNG: (-600.0, 1500.0),
    CTPreset.BONE: (400.0, 1800.0),
    CTPreset.BRAIN: (40.0, 80.0),
}
"""``(level, width)`` in Hounsfield units for each :class:`CTPreset`."""

_PERCENTILE_MODALITIES = frozenset({"MR", "MRI", "US", "PT", "PET", "NM"})


def window_for_modality(modality: str | None) -> WindowMode:
    """The window mode for a modality string (DICOM ``Modality`` values such as ``"CT"``, ``"MR"``, ``"US"``).

    ``CT`` -> :attr:`WindowMode.CT`; ``MR``/``MRI``/``US``/``PT``/``PET``/``NM`` -> :attr:`WindowMode.PERCENTILE`;
    anything else, including ``None`` and RGB photos, -> :attr:`WindowMode.MINMAX`. Case-insensitive.
    """
    if modality is None:
        return WindowMode.MINMAX
    name = str(modality).strip().upper()
    if name == "CT":
        return WindowMode.CT
    if name in _PERCENTILE_MODALITIES:
        return WindowMode.PERCENTILE
    return WindowMode.MINMAX


def _ct_window(preset: CTPreset, level: float | None, width: float | None) -> tuple[float, float]:
    if level is None and width is None:
        level, width = CT_PRESETS[preset]
    if level is None or width is None:
        raise ValueError(f"give both level and width (HU) for an explicit CT window, got level={level}, width={width}")
    if width <= 0:
        raise ValueError(f"CT window width must be positive (HU), got {width}")
    return float(level) - float(width) / 2.0, float(level) + float(width) / 2.0


def compute_window(
    img: NdarrayOrTensor,
    mode: WindowMode | str,
    *,
    preset: CTPreset | str = CTPreset.SOFT_TISSUE,
    level: float | None = None,
    width: float | None = None,
    lower: float = 0.5,
    upper: float = 99.5,
    nonzero: bool = False,
) -> tuple[float, float]:
    """The window ``(low, high)`` for a whole image or volume of any shape, in its intensity units.

    ``mode`` must be resolved (not ``auto``). Statistics are joint over every element of ``img`` (all channels
    and all slices). Raises ``ValueError`` when a data-driven window is not finite (NaN or inf in the image).
    """
    mode = WindowMode(mode)
    if mode == WindowMode.AUTO:
        raise ValueError("compute_window needs a resolved mode: use window_for_modality(modality) to pick one")
    if mode == WindowMode.CT:
        return _ct_window(CTPreset(preset), level, width)
    values = convert_to_tensor(img, track_meta=False).detach().reshape(-1)
    if mode == WindowMode.MINMAX:
        if values.numel() == 0:
            raise ValueError("cannot compute a min/max window of an empty image")
        low, high = float(values.min()), float(values.max())
    else:  # percentile: numpy's selection is exact and has no size limit (torch.quantile stops at 2**24)
        arr = values.cpu().numpy()
        if nonzero:
            arr = arr[arr != 0]
        if arr.size == 0:
            return 0.0, 0.0
        low, high = (float(v) for v in np.percentile(arr, [lower, upper]))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"the {mode.value} window ({low}, {high}) is not finite: the image contains NaN or inf values")
    return low, high


def apply_window(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``clip((img - low) / (high - low), 0, 1)`` as float32; zeros when ``high <= low``."""
    out = img.to(torch.float32)
    if high <= low:
        return torch.zeros_like(out)
    return ((out - low) / (high - low)).clamp_(0.0, 1.0)


class WindowIntensity(Transform):
    """Map intensities of a channel-first image ``(C, X, Y)`` or volume ``(C, I, J, K)`` to float32 in ``[0, 1]``.

    The window is computed once from the whole input (see the module docstring for the modes). The output has
    the input's shape; for a ``MetaTensor`` it carries ``meta["baldsam_window"] = (low, high)`` and
    ``meta["baldsam_window_mode"]``. numpy input gives numpy output (without meta).

    Args:
        mode: a :class:`WindowMode` (``auto``, ``ct``, ``percentile``, ``minmax``) or a :class:`CTPreset` name,
            which means ``ct`` with that preset.
        preset: the CT preset used in ``ct`` mode when ``level``/``width`` are not given.
        level: explicit CT window centre in HU (with ``width``); overrides ``preset``.
        width: explicit CT window width in HU (with ``level``).
        lower: lower percentile in ``[0, 100]`` for ``percentile`` mode.
        upper: upper percentile in ``[0, 100]`` for ``percentile`` mode, greater than ``lower``.
        nonzero: in ``percentile`` mode, compute the percentiles over nonzero voxels only.
        modality: modality string for ``auto`` mode (``"CT"``, ``"MR"``, ``"US"``, ...); when ``None`` the
            input's ``meta["modality"]`` is used, and without either the image is treated as a photo (``minmax``).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        mode: WindowMode | CTPreset | str = WindowMode.AUTO,
        *,
        preset: CTPreset | str = CTPreset.SOFT_TISSUE,
        level: float | None = None,
        width: float | None = None,
        lower: float = 0.5,
        upper: float = 99.5,
        nonzero: bool = False,
        modality: str | None = None,
    ) -> None:
        mode_value = mode.value if isinstance(mode, Enum) else str(mode)
        presets = {p.value for p in CTPreset}
        if mode_value in presets:
            self.mode, preset = WindowMode.CT, CTPreset(mode_value)
        elif mode_value in {m.value for m in WindowMode}:
            self.mode = WindowMode(mode_value)
        else:
            raise ValueError(
                f"unknown window mode {mode_value!r}: use one of {[m.value for m in WindowMode]} "
                f"or a CT preset name {sorted(presets)}"
            )
        try:
            self.preset = CTPreset(preset)
        except ValueError:
            raise ValueError(f"unknown CT preset {preset!r}: use one of {sorted(presets)}") from None
        if self.mode in (WindowMode.CT, WindowMode.AUTO) and (level is not None or width is not None):
            _ct_window(self.preset, level, width)  # validate now, not on the first image
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= lower < upper <= 100, got lower={lower}, upper={upper}")
        self.level, self.width = level, width
        self.lower, self.upper, self.nonzero = float(lower), float(upper), bool(nonzero)
        self.modality = modality

    def resolve_mode(self, img: NdarrayOrTensor) -> WindowMode:
        """The mode used for ``img``: ``self.mode`` unless it is ``auto``, then decided from the modality."""
        if self.mode != WindowMode.AUTO:
            return self.mode
        modality = self.modality
        if modality is None and isinstance(img, MetaTensor):
            modality = img.meta.get(MODALITY_META_KEY)
        return window_for_modality(modality)

    def window(self, img: NdarrayOrTensor) -> tuple[float, float]:
        """The window ``(low, high)`` this transform would use for ``img``, without applying it."""
        return compute_window(
            img,
            self.resolve_mode(img),
            preset=self.preset,
            level=self.level,
            width=self.width,
            lower=self.lower,
            upper=self.upper,
            nonzero=self.nonzero,
        )

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Window ``img`` (any channel-first shape); returns float32 in ``[0, 1]`` of the same shape and type."""
        mode = self.resolve_mode(img)
        low, high = self.window(img)
        values = convert_to_tensor(img, track_meta=False)
        out, *_ = convert_to_dst_type(apply_window(values, low, high), img, dtype=torch.float32)
        if isinstance(out, MetaTensor):
            out.meta[WINDOW_META_KEY] = (low, high)
            out.meta[WINDOW_MODE_META_KEY] = mode.value
        return out


class WindowIntensityd(MapTransform):
    """Dictionary version of :class:`WindowIntensity`: each key's image gets its own per-image window.

    Args:
        keys: keys of the images to window.
        mode, preset, level, width, lower, upper, nonzero, modality: as in :class:`WindowIntensity`.
        allow_missing_keys: skip keys absent from the dictionary instead of raising ``KeyError``.
    """

    backend = WindowIntensity.backend

    def __init__(
        self,
        keys: KeysCollection,
        mode: WindowMode | CTPreset | str = WindowMode.AUTO,
        *,
        preset: CTPreset | str = CTPreset.SOFT_TISSUE,
        level: float | None = None,
        width: float | None = None,
        lower: float = 0.5,
        upper: float = 99.5,
        nonzero: bool = False,
        modality: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.windower = WindowIntensity(
            mode, preset=preset, level=level, width=width, lower=lower, upper=upper, nonzero=nonzero, modality=modality
        )

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.windower(d[key])
        return d


def default_window(image: MetaTensor) -> WindowIntensity:
    """The window for an image whose modality may be unknown: CT presets for CT, percentiles for MR/US and for
    volumes of unknown modality, whole-image min-max for pictures (LiteMedSAM's own normalisation)."""
    modality = str(image.meta.get("modality", "unknown")).upper() if isinstance(image, MetaTensor) else "UNKNOWN"
    if modality in ("", "UNKNOWN", "NONE") and image.ndim == 4:
        return WindowIntensity(WindowMode.PERCENTILE)
    return WindowIntensity(WindowMode.AUTO, modality=None if modality in ("", "UNKNOWN", "NONE") else modality)
