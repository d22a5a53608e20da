"""Checkpoint files: locate, verify by SHA-256, download (only when allowed) and load safely.

Every load uses ``torch.load(..., map_location=..., weights_only=True)``; a file whose hash does not match
the expected one is refused with a message naming the file, the expected and the actual hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

__all__ = [
    "WeightsFile",
    "resolve_weights_file",
    "load_checkpoint_payload",
    "card_sha256",
    "CACHE_ENV_VAR",
    "CheckpointError",
    "checkpoint_cache_dir",
    "file_sha256",
    "verify_sha256",
    "download_checkpoint",
    "load_state_dict",
]

CACHE_ENV_VAR = "BALDSAM_CACHE"

_HASH_MEMO: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, of the wrong model, or fails its hash check."""


def checkpoint_cache_dir() -> Path:
    """Folder searched for SAM checkpoints by file name: ``$BALDSAM_CACHE/checkpoints`` or ``~/.cache/monai_baldsam/checkpoints``."""
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "monai_baldsam"
    return base / "checkpoints"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, memoised by (path, size, mtime) so repeated loads do not re-read large files."""
    path = Path(path)
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _HASH_LOCK:
        if memo_key in _HASH_MEMO:
            return _HASH_MEMO[memo_key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_MEMO[memo_key] = value
    return value


def verify_sha256(path: str | os.PathLike[str], expected_sha256: str | None, what: str = "checkpoint") -> str:
    """Return the file's SHA-256; raise :class:`CheckpointError` if ``expected_sha256`` is given and differs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} file {path} does not exist")
    actual = file_sha256(path)
    if expected_sha256 is not None and actual.lower() != expected_sha256.lower():
        raise CheckpointError(
            f"{what} file {path} has SHA-256 {actual}, expected {expected_sha256.lower()}: the file is corrupt, "
            "incomplete or a different model. Download it again, or, for a fine-tuned checkpoint of the same "
            "architecture, pass its own hash with --checkpoint-sha256."
        )
    return actual


def download_checkpoint(url: str, destination: Path, expected_sha256: str) -> Path:
    """Download ``url`` to ``destination`` atomically, keeping it only if its SHA-256 is ``expected_sha256``."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part", dir=destination.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.hub.download_url_to_file(url, str(tmp), progress=True)
        verify_sha256(tmp, expected_sha256, what=f"download of {url}")
        os.replace(tmp, destination)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(
            f"could not download {url} to {destination}: {err}. Without a network, download the file elsewhere "
            f"and pass it with --checkpoint, or put it in {destination.parent}."
        ) from err
    return destination


def load_state_dict(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Mapping[str, Any]:
    """Load a state dict with ``weights_only=True``; unwraps ``{"model": ...}`` / ``{"state_dict": ...}``."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip and EOF errors all mean the same to the user
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
    if isinstance(state, dict):
        for wrapper in ("model", "state_dict"):
            if wrapper in state and isinstance(state[wrapper], dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} does not hold a state dict of tensors")
    return state


def load_checkpoint_payload(path: Path, sha256: str | None, fmt: str, what: str, kind: str) -> tuple[dict, str]:
    """``(payload, actual SHA-256)`` of a dict checkpoint written by this package (heads, UncertainSAM heads):
    hash-checked, loaded with ``weights_only=True`` on the CPU, and its ``format`` field checked.

    ``what`` names the file in messages (``"head checkpoint"``), ``kind`` is the phrase for a wrong format
    (``"a head checkpoint"``). Raises :class:`CheckpointError`."""
    actual = verify_sha256(path, sha256, what=what)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file
        raise CheckpointError(f"{what} {path} cannot be read ({type(err).__name__}: {err}): the file is corrupt or "
                              "incomplete; train or copy it again") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not {kind} of format {fmt!r} (found {found!r})")
    return payload, actual


def card_sha256(weights: Path, key: str, what: str, required: bool) -> str | None:
    """The SHA-256 recorded under ``key`` in the JSON card beside ``weights`` (same stem); ``None`` without a card,
    unless ``required`` (a shipped file), which raises ``FileNotFoundError``."""

    card = weights.with_suffix(".json")
    if not card.is_file():
        if required:
            raise FileNotFoundError(f"the card {card.name} of shipped {what} {weights.name} is missing: reinstall")
        return None
    try:
        value = json.loads(card.read_text()).get(key)
    except (OSError, ValueError) as err:
        raise ValueError(f"{what} card {card} cannot be read ({err}): fix or remove it") from None
    return str(value) if value else None


@dataclass(frozen=True)
class WeightsFile:
    """A weights file, the SHA-256 it must have (``None`` for a user's file without a card) and its name."""

    path: Path
    sha256: str | None
    name: str


def resolve_weights_file(name_or_path: str | os.PathLike[str], shipped: Mapping[str, str], weights_dir: Path,
                         hash_key: str, what: str, unknown: str, aliases: Mapping[str, str] | None = None
                         ) -> WeightsFile:
    """A shipped file's name (``shipped``: name -> stem of ``<weights_dir>/<stem>.pt``, ``aliases``: other name ->
    name) or a path to a weights file; the card beside the file (same stem, ``.json``) gives the hash under
    ``hash_key``, required for a shipped file. ``what`` names the kind in messages; ``unknown`` is the message for a
    name that is neither, formatted with ``text`` and ``known`` (the shipped names and aliases)."""
    text = str(name_or_path)
    key = (aliases or {}).get(text, text)
    if key in shipped:
        path = weights_dir / f"{shipped[key]}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"shipped {what} {text!r} ({path.name}) is missing from this installation: "
                                    "reinstall monai_baldsam or pass a file path")
        return WeightsFile(path, card_sha256(path, hash_key, what, required=True), key)
    path = Path(text).expanduser()
    if not path.is_file():
        known = ", ".join(sorted({*shipped, *(aliases or {})}))
        raise FileNotFoundError(unknown.format(text=repr(text), known=known))
    return WeightsFile(path, card_sha256(path, hash_key, what, required=False), path.stem)
