"""Crash-safe writes of the app's stores: a file is written to a hidden temporary file in its own folder, flushed to
disk (``fsync``) and renamed onto its name, so a server killed at any moment leaves the old file or the new one,
never half of one (:func:`monai_baldsam.io.atomic.atomic_path` does the temporary file, fsync and rename).

Temporary files are ``.tmp-<random>-<name>`` (:data:`~monai_baldsam.io.atomic.TEMP_PREFIX`). The stores write them
only while they hold their lock, so one found while holding the lock was left by a killed process:
:func:`remove_stale_temps` deletes it.

Fault injection (tests only): ``BALDSAM_FAULT_PAUSE="label=1.5,head=30"`` makes the write named ``label`` (a label
saved into the local datastore) or ``head`` (the switch of ``current.json`` to a newly trained head) sleep that many
seconds between writing its temporary file and renaming it, so a test can kill the server at exactly that moment.
Unset (the default), nothing sleeps.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from monai_baldsam.io.atomic import TEMP_PREFIX, atomic_path

__all__ = ["FAULT_PAUSE_ENV", "fault_pause", "atomic_copy", "atomic_write_text_paused", "remove_stale_temps"]

logger = logging.getLogger(__name__)

#: Environment variable of the test-only pause before a commit (see the module docstring).
FAULT_PAUSE_ENV = "BALDSAM_FAULT_PAUSE"


def fault_pause(what: str) -> float:
    """Sleep as long as :data:`FAULT_PAUSE_ENV` says for ``what`` (read on every call); returns the seconds slept.

    Raises:
        ValueError: the variable is set but is not ``name=seconds[,name=seconds...]``.
    """
    spec = os.environ.get(FAULT_PAUSE_ENV, "").strip()
    if not spec:
        return 0.0
    pauses = {}
    for item in spec.split(","):
        name, sep, seconds = item.partition("=")
        try:
            pauses[name.strip()] = float(seconds)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"{FAULT_PAUSE_ENV}={spec!r} is not name=seconds[,name=seconds...] (e.g. label=1.5)")
    seconds = max(0.0, pauses.get(what, 0.0))
    if seconds:
        logger.warning(f"{FAULT_PAUSE_ENV}: pausing {seconds:g} s before committing a {what} (test fault injection)")
        time.sleep(seconds)
    return seconds


def atomic_copy(source: str | os.PathLike[str], dest: str | os.PathLike[str], what: str) -> Path:
    """Copy ``source`` onto ``dest`` (replacing it) through a temporary file in ``dest``'s folder, fsync'd before the
    rename; ``what`` names the write for :func:`fault_pause`."""
    dest = Path(dest)
    with atomic_path(dest, overwrite=True) as tmp:
        shutil.copyfile(source, tmp)
        fault_pause(what)
    return dest


def atomic_write_text_paused(path: str | os.PathLike[str], text: str, what: str) -> Path:
    """Write ``text`` to ``path`` (replacing it) atomically; ``what`` names the write for :func:`fault_pause`."""
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
        fault_pause(what)
    return path


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files (``.tmp-*``) directly in ``folder`` and return them. Call it only while holding
    the lock that every writer of ``folder`` holds while its temporary file exists."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(TEMP_PREFIX) and (path.is_file() or path.is_symlink()):
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        logger.warning(f"removed {len(removed)} temporary file(s) a killed process left in {folder}: "
                       f"{', '.join(p.name for p in removed[:5])}")
    return removed
