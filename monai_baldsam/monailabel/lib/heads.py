"""Which head a model serves: the bundle's, or the latest one the app's trainer fine-tuned, published atomically.

A fine-tuned head is stored under its content hash, ``<model_dir>/<model>/head-<sha12>.pt`` with its card
``head-<sha12>.json``; these files are never changed after they are written. ``current.json`` names the head in use
(file and SHA-256) and is replaced atomically by :meth:`HeadStore.publish`, so a reader sees either the old head or
the new one, never half of one. Infer tasks call :meth:`HeadStore.stamp` on every request (one ``stat``) and reload
the head when it changed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.sam.checkpoints import file_sha256

__all__ = ["HeadVersion", "HeadStore"]

CURRENT = "current.json"


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

    def current(self) -> HeadVersion:
        """The head in use now."""
        try:
            record = json.loads(self.pointer.read_text())
        except FileNotFoundError:
            return self.base
        except ValueError as err:
            raise ValueError(f"{self.pointer} cannot be read ({err}): delete it to serve the bundle's head again") \
                from None
        path = self.folder / str(record["file"])
        if not path.is_file():
            raise FileNotFoundError(f"{self.pointer} names {path.name}, which is missing: delete {self.pointer} to "
                                    "serve the bundle's head again")
        return HeadVersion(path, str(record["sha256"]), "trained", float(record.get("published", 0.0)))

    def publish(self, head_file: str | os.PathLike[str], published: float) -> HeadVersion:
        """Move a freshly trained ``head_file`` (and its card, same stem ``.json``) into the store under its hash and
        make it the current head. The source files are moved, so pass a staging copy."""
        head_file = Path(head_file)
        sha = file_sha256(head_file)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"head-{sha[:12]}.pt"
        card = head_file.with_suffix(".json")
        if card.is_file():
            shutil.move(str(card), str(target.with_suffix(".json")))
        shutil.move(str(head_file), str(target))
        record = {"file": target.name, "sha256": sha, "published": published}
        atomic_write_text(self.pointer, json.dumps(record, indent=1) + "\n", overwrite=True)
        return HeadVersion(target, sha, "trained", published)
