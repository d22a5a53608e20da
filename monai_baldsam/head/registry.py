"""Heads shipped with the package, by name, and resolution of ``--head NAME|PATH``.

Each shipped head is a file in ``monai_baldsam/head/weights/`` with a JSON card beside it; the card's ``head_sha256``
is checked when the head loads, so a damaged or replaced file is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_baldsam.sam.checkpoints import WeightsFile, resolve_weights_file

__all__ = ["WEIGHTS_DIR", "SHIPPED_HEADS", "DEFAULT_HEAD", "DEFAULT_2D_HEAD", "HeadFile", "resolve_head"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: name -> file stem in ``weights/``; ``general`` is trained on every domain, the others on one each.
SHIPPED_HEADS: dict[str, str] = {
    "general": "general_v1",
    "ultrasound": "busi_v1",
    "polyp": "kvasir_v1",
    "skin": "ph2_v1",
    #: fine-tuned from ``general`` on FLAIR slices of train/brats_mri3d (whole tumour), for 3D brain MR
    "brain_mri": "brats_v1",
    "general_v0": "general_v0",
    #: general_v1 fine-tuned on the click-trained decoder clicks_v1 (every click reaches the decoder), six 2D domains
    "general_v2": "general_v2",
}
#: aliases by training data set
_ALIASES = {"busi": "ultrasound", "kvasir": "polyp", "ph2": "skin", "brats": "brain_mri"}
DEFAULT_HEAD = "general"
#: the head ``--head auto`` (the default of ``segment`` and ``evaluate``) takes for 2D pictures with the default model
#: (LiteMedSAM and its click-trained decoder ``clicks_v1``): ``general_v2``, trained on that decoder; it leaves a box
#: alone to the decoder (its card's ``box_alone``), so a box gives LiteMedSAM's own mask and clicks correct it
DEFAULT_2D_HEAD = "general_v2"


#: a head file and the SHA-256 it must have (``None`` for a user's file without a card)
HeadFile = WeightsFile


def resolve_head(name_or_path: str | os.PathLike[str]) -> HeadFile:
    """A shipped head's name (``general``, ``ultrasound``/``busi``, ``polyp``/``kvasir``, ``skin``/``ph2``,
    ``brain_mri``/``brats``) or a path
    to a head file. A path's card (same stem, ``.json``) supplies the expected hash when it exists."""
    return resolve_weights_file(name_or_path, SHIPPED_HEADS, WEIGHTS_DIR, "head_sha256", "head",
                                "head {text} is neither a shipped head ({known}) nor an existing file", _ALIASES)
