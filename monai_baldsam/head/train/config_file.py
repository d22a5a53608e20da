"""Reading a training configuration file (``configs/*.json``), the part every trainer's config shares.

A configuration is a plain JSON object, so MONAI's ``monai.bundle.ConfigParser`` reads it too: a ``_description``,
then the trainer's settings. Every key must be known: a misspelt setting is an error that names it, never a silent
default. Data folders are relative to the data root (:func:`~monai_baldsam.data_paths.data_root`) unless absolute,
and a weights file the run starts from is named with its SHA-256 (``{"file": ..., "sha256": ...}``, as cards record
it), so a configuration cannot silently start from another file.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from monai_baldsam.data_paths import data_root
from monai_baldsam.sam.checkpoints import file_sha256

__all__ = ["DESCRIPTION_KEY", "read_config", "dataclass_from", "data_folders", "max_per_folder_from",
           "recorded_file"]

#: the one key a configuration may hold besides its trainer's settings: what it produces, for a reader
DESCRIPTION_KEY = "_description"

T = TypeVar("T")


def read_config(path: str | os.PathLike[str], known: Iterable[str], what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a key outside ``known`` (and ``_description``) is a ``ValueError`` naming it.
    ``what`` names the kind of configuration in messages (``head training``)."""
    path = Path(path).expanduser()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} config {path} does not exist") from None
    except ValueError as err:
        raise ValueError(f"{what} config {path} is not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{what} config {path} must hold a JSON object of settings")
    allowed = {*known, DESCRIPTION_KEY}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in {what} config {path}"
                         f"{f' (and {unknown[1:]})' if len(unknown) > 1 else ''}; known keys: {sorted(allowed)}")
    return raw


def dataclass_from(cls: type[T], values: Mapping[str, Any] | None, where: str) -> T:
    """``cls(**values)`` after refusing a key that is not one of its fields (lists become tuples)."""
    values = dict(values or {})
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in {where}; known: {sorted(names)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def data_folders(folders: Iterable[str]) -> tuple[str, ...]:
    """Folders relative to the data root made absolute (absolute ones kept)."""
    root = data_root()
    return tuple(str(f) if Path(f).is_absolute() else str(root / f) for f in folders)


def max_per_folder_from(value: Any, where: str) -> int | dict[str, int] | None:
    """A per-folder cap as configs and cards write it: null, one number, or folder name -> number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, dict)):
        raise ValueError(f"max_per_folder in {where} must be null, a number or {{folder: number}}, got {value!r}")
    if isinstance(value, int):
        return value
    return {str(k): int(v) for k, v in value.items()}


def recorded_file(record: str | Mapping[str, str], weights_dir: Path, where: str) -> str | Path:
    """A weights file named as a card records it (``{"file": name, "sha256": hash}``): the file in ``weights_dir``
    (or the path given), refused unless its SHA-256 matches. A plain string (a shipped name) is returned as it is."""
    if isinstance(record, str):
        return record
    if set(record) != {"file", "sha256"}:
        raise ValueError(f"{where} must be a name or {{\"file\": ..., \"sha256\": ...}}, got {dict(record)}")
    path = Path(record["file"]).expanduser()
    if not path.is_absolute() and (weights_dir / path).is_file():
        path = weights_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"{where}: {record['file']} is neither in {weights_dir} nor an existing file")
    found = file_sha256(path)
    if found != record["sha256"]:
        raise ValueError(f"{where}: {path} has SHA-256 {found}, the config names {record['sha256']}")
    return path
