"""Training slices from 3D volumes: which slices of a volume the head trains on, and how one is loaded.

A volume folder (``images/`` and ``masks/`` of NIfTI volumes or DICOM series folders, the layout of
``train/brats_mri3d``) gives, per volume:

* every slice along the acquisition's through-plane axis (:func:`~monai_baldsam.transforms.volume_geometry.resolve_axis`, as
  :class:`~monai_baldsam.volume.VolumeSession` slices it) that holds the object;
* and, for training only, up to ``empty_neighbours`` empty slices on each side of the object (every empty slice
  within that many slices of an object slice). An empty slice carries the box of its nearest object slice: in a
  volume session such a slice is only ever prompted by the box propagated from its neighbour (it is the slice past
  each end that BALD scores), and the head must learn to answer it with an empty mask.

Volumes are windowed once per volume with :func:`monai_baldsam.transforms.intensity.default_window` (house rule 8: MR
percentiles over the whole volume, never per slice), exactly as the volume session windows them, then each slice is
turned into SAM's orientation (rows = the second in-plane axis). The split into training and validation is made by
volume (:func:`monai_baldsam.head.train.data.split_cases`), so no volume has slices on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monai_baldsam.inferers.slicewise import SliceWiseSamInferer
from monai_baldsam.interaction.cases import LoadedCase
from monai_baldsam.io.cases import EvalCase
from monai_baldsam.io.readers import load_image, load_mask
from monai_baldsam.transforms.intensity import default_window
from monai_baldsam.transforms.volume_geometry import resolve_axis

__all__ = ["VolumeSliceCase", "slice_name", "volume_slice_cases", "VolumeSliceLoader"]


@dataclass(frozen=True)
class VolumeSliceCase(EvalCase):
    """One slice of a volume: ``image``/``mask`` are the volume's files, ``index`` the slice along ``axis``.

    Attributes:
        volume: the volume's name (its file stem or series folder name).
        axis: the slicing axis (0, 1 or 2).
        index: the slice index along ``axis``.
        neighbour: for an empty slice, the object slice whose box prompts it; ``None`` for an object slice.
    """

    volume: str = ""
    axis: int = 2
    index: int = 0
    neighbour: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.neighbour is not None


def slice_name(volume: str, axis: int, index: int) -> str:
    """The case name of a volume slice (unique per volume, axis and index; seeds and cards use it)."""
    return f"{volume}@axis{axis}:{index:04d}"


def _load_volume(image_path: Path, mask_path: Path) -> tuple[torch.Tensor, np.ndarray, int]:
    """``(windowed volume (1, I, J, K), truth (I, J, K) bool, axis)`` of one volume."""

    image = load_image(image_path)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"{image_path} has shape {tuple(image.shape)}: a training volume must be one 3D channel "
                         "(1, I, J, K); split multi-channel volumes into one file per channel (e.g. FLAIR only)")
    truth = load_mask(mask_path, reference=image)[0].numpy().astype(bool)
    axis = resolve_axis(None, image.affine)
    return default_window(image)(image), truth, axis


def volume_slice_cases(volume: str, image: Path, mask: Path, empty_neighbours: int) -> list[VolumeSliceCase]:
    """The training slices of one volume (see the module docstring), in increasing slice order.

    Args:
        volume: the volume's name.
        image, mask: its image and mask (NIfTI file or DICOM series folder).
        empty_neighbours: how many empty slices next to the object on each side to add (0: object slices only).

    Raises:
        ValueError: an empty mask, a mask whose geometry differs from the image's, a multi-channel volume.
    """
    if empty_neighbours < 0:
        raise ValueError(f"empty_neighbours must be >= 0, got {empty_neighbours}")
    _, truth, axis = _load_volume(image, mask)
    filled = np.flatnonzero(np.moveaxis(truth, axis, 0).reshape(truth.shape[axis], -1).any(axis=1))
    if filled.size == 0:
        raise ValueError(f"mask {mask} is empty: every training volume needs the object (remove it or fix its mask)")
    cases = [VolumeSliceCase(slice_name(volume, axis, int(k)), image, mask, volume=volume, axis=axis, index=int(k))
             for k in filled]
    if empty_neighbours:
        filled_set = set(int(k) for k in filled)
        for k in range(truth.shape[axis]):
            if k in filled_set:
                continue
            distance = np.abs(filled - k)
            if distance.min() <= empty_neighbours:
                near = int(filled[int(np.argmin(distance))])
                cases.append(VolumeSliceCase(slice_name(volume, axis, k), image, mask, volume=volume, axis=axis,
                                             index=k, neighbour=near))
    return sorted(cases, key=lambda c: c.index)


class VolumeSliceLoader:
    """Loads volume slices for the head, keeping the last windowed volume (one at a time: bounded) so that the
    slices of one volume load it once."""

    def __init__(self) -> None:
        self._key: tuple[Path, Path] | None = None
        self._volume: tuple[torch.Tensor, np.ndarray, int] | None = None

    def clear(self) -> None:
        self._key, self._volume = None, None

    def _get(self, case: VolumeSliceCase) -> tuple[torch.Tensor, np.ndarray, int]:
        key = (Path(case.image), Path(case.mask))
        if self._key != key or self._volume is None:
            self._volume = _load_volume(*key)
            self._key = key
        return self._volume

    def load(self, case: VolumeSliceCase) -> tuple[LoadedCase, np.ndarray | None]:
        """``(loaded slice, prompt truth)``: the slice as SAM sees it (``1 x 3 x H x W`` in [0, 1], truth ``(H, W)``
        in SAM's orientation) and, for an empty slice, its neighbour's truth (whose box prompts it), else ``None``."""

        volume, truth, axis = self._get(case)
        if axis != case.axis:
            raise ValueError(f"{case.name} was listed along axis {case.axis}, but {case.image} is sliced along axis "
                             f"{axis} now: list the slices again")
        inferer = SliceWiseSamInferer(axis=axis)
        sam_image = inferer.sam_images(volume, [case.index]).contiguous()
        slices = np.moveaxis(truth, axis, 0)
        on_slice = np.ascontiguousarray(slices[case.index].T)  # [x, y] -> SAM's (H = y, W = x)
        if case.is_empty:
            if on_slice.any():
                raise ValueError(f"{case.name} was listed as an empty slice but its mask holds the object: list the "
                                 "slices again")
            prompt_truth = np.ascontiguousarray(slices[int(case.neighbour)].T)
            return LoadedCase(case, sam_image, on_slice), prompt_truth
        if not on_slice.any():
            raise ValueError(f"{case.name}: the mask holds nothing on slice {case.index}: list the slices again")
        return LoadedCase(case, sam_image, on_slice), None
