"""The app's models: one task config per monai_baldsam bundle (2D bundles -> 2D infer task, 3D -> 3D task).

A bundle is read through the bundle contract (``monai_baldsam.bundles.list_bundles`` / ``bundle_dir`` /
``bundle_head`` and the ``"baldsam"`` block of ``configs/metadata.json``: backbone, the head's registry name and
SHA-256, spatial_dims, domain). Where that package is
not installed, the shipped registry heads stand in (:data:`REGISTRY_FALLBACK`), so the app still serves the same
model names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from monai_baldsam.bundle.heads import bundle_head
from monai_baldsam.bundles import bundle_dir, list_bundles
from monai_baldsam.head.registry import resolve_head

__all__ = ["ModelConfig", "REGISTRY_FALLBACK", "discover_configs", "select_configs"]

#: bundle name -> (registry head, spatial dims, domain, label) when ``monai_baldsam.bundles`` is missing.
REGISTRY_FALLBACK: dict[str, tuple[str, int, str, str]] = {
    "baldsam_ultrasound": ("general", 2, "busi", "breast lesion"),
    "baldsam_polyp": ("polyp", 2, "kvasir", "polyp"),
    "baldsam_skin_lesion": ("skin", 2, "ph2", "skin lesion"),
    "baldsam_brain_mri": ("general", 3, "brats_mri3d", "whole tumour"),
}


@dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
        name: the model name in ``/info`` and ``/infer/<name>`` (the bundle's name).
        spatial_dims: 2 (pictures, or one slice of a volume) or 3 (volumes, with propagation).
        head_path: the shipped head file; ``head_sha256``: its expected SHA-256 (from the bundle or the card).
        backbone: backbone registry name the head was trained on.
        domain: the data domain (``busi``, ``kvasir``, ``ph2``, ``brats_mri3d``).
        label: the structure's name (the label value 1).
        description: shown by 3D Slicer.
    """

    name: str
    spatial_dims: int
    head_path: Path
    head_sha256: str | None
    backbone: str
    domain: str
    label: str
    description: str


def _label_name(label_classes: str, default: str) -> str:
    found = re.search(r"1\s*:\s*([^,;]+)", label_classes or "")
    return found.group(1).strip() if found else default


def _from_bundles() -> list[ModelConfig]:
    configs = []
    for name in list_bundles():
        root = bundle_dir(name)
        meta = json.loads((root / "configs" / "metadata.json").read_text())
        block = meta.get("baldsam")
        if not isinstance(block, dict):
            raise ValueError(f"bundle {name} has no 'baldsam' block in configs/metadata.json: it is not a "
                             "monai_baldsam bundle (reinstall monai_baldsam)")
        dims = int(block.get("spatial_dims", 2))
        if dims not in (2, 3):
            raise ValueError(f"bundle {name}: spatial_dims must be 2 or 3, got {dims}")
        head = bundle_head(name)
        configs.append(ModelConfig(
            name=name, spatial_dims=dims, head_path=head.path.resolve(),
            head_sha256=head.sha256, backbone=str(block.get("backbone", "lite_medsam")),
            domain=str(block.get("domain", "")), label=_label_name(str(meta.get("label_classes", "")), "lesion"),
            description=str(meta.get("task", name))))
    return configs


def _from_registry() -> list[ModelConfig]:
    configs = []
    for name, (head, dims, domain, label) in REGISTRY_FALLBACK.items():
        found = resolve_head(head)
        kind = "3D volumes with propagation" if dims == 3 else "2D images"
        configs.append(ModelConfig(name=name, spatial_dims=dims, head_path=found.path, head_sha256=found.sha256,
                                   backbone="lite_medsam", domain=domain, label=label,
                                   description=f"SAM (LiteMedSAM) + Bayesian head '{head}' with BALD next-click "
                                               f"suggestions ({domain}, {kind})"))
    return configs


def discover_configs() -> list[ModelConfig]:
    """Every model the app can serve: the bundles', else the registry fallback."""
    found = _from_bundles()
    return found if found else _from_registry()


def select_configs(configs: Sequence[ModelConfig], names: str | None) -> list[ModelConfig]:
    """The models named in ``names`` (comma-separated, the ``baldsam_`` prefix optional; ``None``/``"all"``: all)."""
    if names is None or names.strip().lower() in ("", "all"):
        return list(configs)
    by_name = {c.name: c for c in configs}
    chosen = []
    for raw in names.split(","):
        key = raw.strip()
        key = key if key in by_name else f"baldsam_{key}"
        if key not in by_name:
            raise ValueError(f"unknown model {raw.strip()!r} in --conf models: choose among {', '.join(by_name)}")
        if by_name[key] not in chosen:
            chosen.append(by_name[key])
    return chosen
