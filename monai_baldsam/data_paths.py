"""Where the project's data lives: ``$BALDSAM_DATA`` or ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "data_root", "domain_dir"]

DATA_ENV_VAR = "BALDSAM_DATA"


def data_root() -> Path:
    """The data folder: ``$BALDSAM_DATA`` when set, else ``../shared/data`` next to the repository checkout."""
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def domain_dir(domain: str, split: str = "dev") -> Path:
    """``<data_root>/<split>/<domain>``, checked to exist, with a message that says how to fix it."""
    path = data_root() / split / domain
    if not path.is_dir():
        raise FileNotFoundError(
            f"data folder {path} does not exist: set {DATA_ENV_VAR} to the folder that holds "
            f"'dev/' and 'train/' (default: ../shared/data beside the repository)"
        )
    return path
