"""monai_baldsam's MONAI bundles, shipped inside the package as ``monai_baldsam.bundles`` (this folder, data only).

Each bundle follows the model-zoo layout: ``configs/`` (``metadata.json``, ``inference.json``, ``evaluate.json``,
``train.json`` and the ``multi_gpu_*.json`` overlays for ``torchrun``), ``docs/README.md``, ``LICENSE`` and
``models/head.json``, which points at the bundle's head: the head file itself ships once, in
``monai_baldsam/head/weights/``, and the configs name it by registry name and SHA-256. The bundles' ``configs/`` and
``models/`` are generated from one template (``monai_baldsam/bundle/template.py``; regenerate with
``python -m monai_baldsam.bundle.generate``; a bundle's head: :func:`monai_baldsam.bundle.heads.bundle_head`). Run one with ``python -m monai.bundle run --config_file ...
--bundle_root "$(baldsam bundles path NAME)"`` or ``baldsam bundles run NAME ...``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["BUNDLES_DIR", "list_bundles", "bundle_dir", "bundle_metadata", "SCHEMA_FILE"]

BUNDLES_DIR = Path(__file__).resolve().parent
#: The metadata schema the bundles are validated against offline (``verify_metadata --filepath``).
SCHEMA_FILE = BUNDLES_DIR / "schema" / "meta_schema_baldsam.json"


def list_bundles() -> list[str]:
    """Names of the shipped bundles (folders holding ``configs/metadata.json``), sorted."""
    return sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "configs" / "metadata.json").is_file())


def bundle_dir(name: str) -> Path:
    """The folder of bundle ``name`` (``baldsam_ultrasound``; the ``baldsam_`` prefix may be left out)."""
    names = list_bundles()
    key = name if name in names else f"baldsam_{name}"
    if key not in names:
        raise ValueError(f"unknown bundle {name!r}: choose among {', '.join(names)}")
    return BUNDLES_DIR / key


def bundle_metadata(name: str) -> dict[str, Any]:
    """The bundle's ``configs/metadata.json``."""
    return json.loads((bundle_dir(name) / "configs" / "metadata.json").read_text())
