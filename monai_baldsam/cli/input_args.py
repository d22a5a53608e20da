"""The image or volume a command reads: its positional argument, ``--window`` / ``--channel`` / ``--axis``, and
loading it with its slicing axis (``segment`` and ``suggest``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time: keeps --help fast
    from monai.data import MetaTensor

    from monai_baldsam.transforms.intensity import WindowIntensity
    from monai_baldsam.transforms.prompts import CheckedPrompts, UserPrompts

__all__ = ["AXIS_HELP", "add_image_argument", "add_volume_arguments", "ImageInput", "load_image_input",
           "window_from_args"]

AXIS_HELP = "slicing axis of a volume (default: the through-plane axis)"


def add_image_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="input image: .png/.jpg, .nii/.nii.gz, .dcm or a DICOM series folder")


def add_volume_arguments(parser: argparse.ArgumentParser, axis_help: str = AXIS_HELP) -> None:
    """Add ``--window``, ``--channel`` (of a 4D volume) and ``--axis`` (0, 1 or 2)."""
    parser.add_argument("--window", default="auto",
                        help="intensity window: auto, minmax, percentile, ct or a CT preset (soft_tissue, lung, bone, ...)")
    parser.add_argument("--channel", type=int, default=None, help="channel of a multi-channel (4D) volume")
    parser.add_argument("--axis", type=int, default=None, choices=(0, 1, 2), help=axis_help)


@dataclass(frozen=True)
class ImageInput:
    """A loaded input and the axis its prompts are read along.

    Attributes:
        image: channel first, ``(C, H, W)`` for a 2D picture or ``(C, I, J, K)`` for a volume.
        axis: the slicing axis: ``--axis`` or the through-plane axis for a volume; 2 for a 2D picture.
        requested_axis: ``--axis`` as given (``None``: not given).
        path: the input path, ``~`` expanded.
    """

    image: MetaTensor
    axis: int
    requested_axis: int | None
    path: str

    @property
    def is_volume(self) -> bool:
        return self.image.ndim == 4

    @property
    def inputs(self) -> list[str]:
        """The paths an output must never replace."""
        return [self.path]

    @property
    def segmenter_axis(self) -> int | None:
        """The ``axis`` for :class:`~monai_baldsam.segmentation.Segmenter`: the resolved one on a volume, else
        ``--axis`` as given."""
        return self.axis if self.is_volume else self.requested_axis

    def checked_prompts(self, prompts: UserPrompts) -> CheckedPrompts:
        """``prompts`` checked against the image once, here at the command line (``ValueError`` before any model
        loads); passed down as they are, they are not checked again."""
        from monai_baldsam.transforms.prompts import check_prompts

        return check_prompts(prompts, self.image.shape[1:], self.axis)


def load_image_input(args: argparse.Namespace) -> ImageInput:
    """Load ``args.image`` (channel ``args.channel`` of a 4D volume) and resolve ``args.axis`` on a volume."""
    from monai_baldsam.io import load_image
    from monai_baldsam.transforms.volume_geometry import resolve_axis

    image = load_image(args.image, channel=args.channel)
    axis = resolve_axis(args.axis, image.affine) if image.ndim == 4 else 2
    return ImageInput(image=image, axis=axis, requested_axis=args.axis, path=str(Path(args.image).expanduser()))


def window_from_args(args: argparse.Namespace) -> WindowIntensity | None:
    """``--window``: ``None`` for ``auto`` (the reader's default window), else that window."""
    from monai_baldsam.transforms.intensity import WindowIntensity

    return None if args.window == "auto" else WindowIntensity(args.window)
