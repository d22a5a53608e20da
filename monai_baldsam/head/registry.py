"""Heads shipped with the package, by name, and resolution of ``--head NAME|PATH``.

Each shipped head is a file in ``monai_baldsam/head/weights/`` with a JSON card beside it; the card's ``head_sha256``
is checked when the head loads, so a damaged or replaced file is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WEIGHTS_DIR", "SHIPPED_HEADS", "DEFAULT_HEAD", "HeadFile", "resolve_head"]

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
}
#: aliases by training data set
_ALIASES = {"busi": "ultrasound", "kvasir": "polyp", "ph2": "skin", "brats": "brain_mri"}
DEFAULT_HEAD = "general"


@dataclass(frozen=True)
class HeadFile:
    """A head file and the SHA-256 it must have (``None`` for a user's file without a card)."""

    path: Path
    sha256: str | None
    name: str


def resolve_head(name_or_path: str | os.PathLike[str]) -> HeadFile:
    """A shipped head's name (``general``, ``ultrasound``/``busi``, ``polyp``/``kvasir``, ``skin``/``ph2``,
    ``brain_mri``/``brats``) or a path
    to a head file. A path's card (same stem, ``.json``) supplies the expected hash when it exists."""
    from monai_baldsam.sam.checkpoints import card_sha256  # here, not at the top: keeps `baldsam --help` fast

    text = str(name_or_path)
    key = _ALIASES.get(text, text)
    if key in SHIPPED_HEADS:
        path = WEIGHTS_DIR / f"{SHIPPED_HEADS[key]}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"shipped head {text!r} ({path.name}) is missing from this installation: "
                                    "reinstall monai_baldsam or pass a head file path")
        return HeadFile(path, card_sha256(path, "head_sha256", "head", required=True), key)
    path = Path(text).expanduser()
    if not path.is_file():
        known = ", ".join(sorted({*SHIPPED_HEADS, *_ALIASES}))
        raise FileNotFoundError(f"head {text!r} is neither a shipped head ({known}) nor an existing file")
    return HeadFile(path, card_sha256(path, "head_sha256", "head", required=False), path.stem)
