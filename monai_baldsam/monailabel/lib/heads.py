"""Which head a model serves: the bundle's, or the latest one the app's trainer fine-tuned, published atomically.

A fine-tuned head is stored under its content hash, ``<model_dir>/<model>/head-<sha12>.pt`` with its card
``head-<sha12>.json``; these files are never changed after they are written. ``current.json`` names the head in use
(file, SHA-256 and the record it replaced) and ``previous.json`` the head before it. :meth:`HeadStore.publish` copies
the head in (temporary file, fsync, rename), writes ``previous.json``, and then switches ``current.json`` by one
atomic rename, so a server killed at any moment serves the old head or the new one, never half of one. Infer tasks
call :meth:`HeadStore.stamp` on every request (one ``stat``) and reload the head when it changed.

:meth:`HeadStore.current` serves only a head whose file has the SHA-256 its record names: a record that cannot be read
or names a missing or altered file is passed over, with a logged warning, for the head it replaced (the record's
``previous``, then ``previous.json``), and at last the bundle's head.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.monailabel.lib.durable import atomic_copy, atomic_write_text_paused
from monai_baldsam.sam.checkpoints import file_sha256

__all__ = ["HeadVersion", "HeadStore"]

logger = logging.getLogger(__name__)

CURRENT = "current.json"
PREVIOUS = "previous.json"


@dataclass(frozen=True)
class HeadVersion:
    """A head file and its SHA-256; ``source`` is ``"bundle"`` or ``"trained"``; ``published`` the time it was put
    in use (seconds since the epoch; the file's mtime for a bundle head)."""

    path: Path
    sha256: str | None
    source: str
    published: float

    def to_dict(self) -> dict[str, object]:
        return {"file": self.path.name, "sha256": self.sha256, "source": self.source,
                "published": round(self.published, 3)}


class HeadStore:
    """The heads of one model.

    Args:
        folder: where this model's fine-tuned heads go (created on first publish).
        base_path: the shipped head (used until a fine-tuned one is published).
        base_sha256: its expected hash.
    """

    def __init__(self, folder: str | os.PathLike[str], base_path: str | os.PathLike[str],
                 base_sha256: str | None) -> None:
        self.folder = Path(folder)
        self.base = HeadVersion(Path(base_path), base_sha256, "bundle", Path(base_path).stat().st_mtime)
        self._warned: set[str] = set()

    @property
    def pointer(self) -> Path:
        return self.folder / CURRENT

    def stamp(self) -> tuple[int, int] | None:
        """A cheap fingerprint of the pointer file (changes when a head is published); ``None`` without one."""
        try:
            st = self.pointer.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    @property
    def previous_pointer(self) -> Path:
        return self.folder / PREVIOUS

    def _records(self) -> list[tuple[str, Any]]:
        """The published records, newest first: ``current.json``, the record it replaced, ``previous.json``; a file
        that cannot be read gives its error instead of a record."""
        records: list[tuple[str, Any]] = []
        for pointer in (self.pointer, self.previous_pointer):
            try:
                record = json.loads(pointer.read_text())
            except FileNotFoundError:
                continue
            except (ValueError, OSError) as err:
                records.append((pointer.name, err))
                continue
            records.append((pointer.name, record))
            if pointer == self.pointer and isinstance(record, dict) and record.get("previous"):
                records.append((f"{pointer.name} (previous)", record["previous"]))
        return records

    def _verified(self, record: Any) -> HeadVersion:
        """The head a record names, if its file is there with the record's SHA-256 (``ValueError`` otherwise)."""
        if not isinstance(record, dict) or not {"file", "sha256"} <= set(record):
            raise ValueError(f"not a head record: {str(record)[:120]}")
        path = self.folder / Path(str(record["file"])).name
        if not path.is_file():
            raise ValueError(f"{path.name} is missing")
        actual = file_sha256(path)
        if actual != str(record["sha256"]).lower():
            raise ValueError(f"{path.name} has SHA-256 {actual[:12]}..., its record says {str(record['sha256'])[:12]}"
                             "... (incomplete or altered)")
        return HeadVersion(path, actual, "trained", float(record.get("published", 0.0)))

    def current(self) -> HeadVersion:
        """The head in use now: the newest published head whose file is whole (see the module docstring), or the
        bundle's head."""
        for name, record in self._records():
            try:
                if isinstance(record, Exception):
                    raise ValueError(f"cannot be read ({record})")
                return self._verified(record)
            except ValueError as err:
                message = f"{self.folder / name.split()[0]}: {err}; passed over for the head it replaced"
                if message not in self._warned:  # once per process: infer tasks ask on every request
                    self._warned.add(message)
                    logger.warning(message)
        return self.base

    def publish(self, head_file: str | os.PathLike[str], published: float) -> HeadVersion:
        """Copy a freshly trained ``head_file`` (and its card, same stem ``.json``) into the store under its hash and
        make it the current head (see the module docstring); the source files are then deleted."""
        head_file = Path(head_file)
        sha = file_sha256(head_file)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"head-{sha[:12]}.pt"
        card = head_file.with_suffix(".json")
        if card.is_file():
            atomic_copy(card, target.with_suffix(".json"), what="card")
        atomic_copy(head_file, target, what="head_file")
        version = self._verified({"file": target.name, "sha256": sha, "published": published})
        old = self.current()
        old_record = None if old.source == "bundle" else {**old.to_dict(), "sha256": old.sha256}
        if old_record is not None:
            atomic_write_text(self.previous_pointer, json.dumps(old_record, indent=1) + "\n", overwrite=True)
        record = {"file": target.name, "sha256": sha, "published": published, "previous": old_record}
        atomic_write_text_paused(self.pointer, json.dumps(record, indent=1) + "\n", what="head")  # the switch
        head_file.unlink()
        card.unlink(missing_ok=True)
        return version
