"""A work folder of the user's own for the MONAI Label app: ``baldsam monailabel-app --copy-to DIR``.

``monailabel start_server --app APP`` (MONAI Label 0.8.5, ``monailabel/main.py``) always creates ``model/``,
``lib/``, ``logs/`` and ``bin/`` in ``APP`` and writes its log to ``APP/logs/app.log``; no setting moves them
(``--log_config`` only changes where the log goes, the folders are still created). Run from the package, ``APP`` is
inside site-packages, which many users cannot write to and which should hold installed code only. :func:`copy_app`
copies the app's files (:data:`APP_FILES`: ``main.py``, which imports :mod:`monai_baldsam.monailabel.lib.app` from
the installed package, so the copy serves the installed code and its shipped bundles and heads) into a folder the
user owns, which then receives those folders.

Nothing the user has is lost: a folder that is not empty is refused unless ``overwrite``; with ``overwrite`` only
the app's files are replaced (each atomically; one that differs from the shipped version is first kept as
``<name>.bak-<time>``), everything else in the folder (logs, models, the user's own files) stays.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.monailabel import app_dir

__all__ = ["APP_FILES", "AppCopy", "copy_app"]

#: The files of a thin app folder (MONAI Label loads ``<app>/main.py``; the code stays in the package).
APP_FILES: tuple[str, ...] = ("main.py",)


def _package_app_dir() -> Path:
    return app_dir()


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def _new_folder(source: Path, target: Path) -> None:
    """Build the app in a hidden temporary folder beside the missing ``target``, then rename it to ``target``
    (atomic: ``target`` appears complete or not at all)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        for name in APP_FILES:
            shutil.copyfile(source / name, tmp / name)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0o700
        if target.exists():  # created meanwhile: never rename over it (POSIX would replace an empty folder)
            raise FileExistsError(f"{target} appeared while the app was copied; nothing was changed there. Run again")
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _write_files(source: Path, target: Path, replace: bool) -> tuple[Path, ...]:
    """Write the app's files into the existing folder ``target``, each atomically (temp file + rename); an existing
    one is replaced only if ``replace`` (after a backup if it differs). Returns the backups made."""
    backups = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in APP_FILES:
        new = (source / name).read_bytes()
        old_path = target / name
        if old_path.is_dir():
            raise ValueError(f"{old_path} is a folder, where the app's {name} must go: move it away, or copy the "
                             "app to another folder")
        if replace and old_path.is_file():
            old = old_path.read_bytes()
            if old == new:
                continue
            backup = old_path.with_name(f"{name}.bak-{stamp}")
            atomic_write_bytes(backup, old, overwrite=False)  # refuses to replace an older backup of the same second
            backups.append(backup)
        atomic_write_bytes(old_path, new, overwrite=replace)  # without replace: refused if the file appeared
    return tuple(backups)


@dataclass(frozen=True)
class AppCopy:
    """Where the app was copied (``path``, for ``monailabel start_server --app``), and the backups made of the
    user's changed app files (``--overwrite``)."""

    path: Path
    backups: tuple[Path, ...] = ()


def copy_app(target: str | os.PathLike[str], overwrite: bool = False,
             source: str | os.PathLike[str] | None = None) -> AppCopy:
    """Copy the MONAI Label app's files (:data:`APP_FILES`) to ``target``; the returned :attr:`AppCopy.path`
    (absolute) is the folder to pass as ``monailabel start_server --app``.

    Args:
        target: the work folder. A missing one is built beside it and appears in one atomic rename (parents
            created); an empty one receives each file atomically.
        overwrite: allow a folder that is not empty: only the app's files in it are replaced (each atomically; a
            differing one is kept as ``<name>.bak-<time>``), nothing else there is touched.
        source: the app folder to copy (default: the one inside the installed package).

    Raises:
        ValueError: ``target`` is a file, is (inside) the package's app folder, or its path has whitespace (MONAI
            Label's ``monailabel`` script splits such a path).
        FileExistsError: ``target`` is not empty and ``overwrite`` is False.
        FileNotFoundError: an app file is missing from ``source`` (a broken installation).
    """
    src = Path(source).expanduser().resolve() if source is not None else _package_app_dir().resolve()
    dest = Path(target).expanduser().resolve()
    if dest == src or src in dest.parents:
        raise ValueError(f"{dest} is the package's own app folder (or inside it): give a folder of your own, e.g. "
                         "~/baldsam-monailabel")
    if any(ch.isspace() for ch in str(dest)):
        raise ValueError(f"{str(dest)!r} has a space in it: MONAI Label's `monailabel` script (0.8.5) passes its "
                         "arguments on unquoted ($*), so `monailabel start_server --app` cannot start an app there. "
                         "Choose a folder whose path has no spaces")
    missing = [name for name in APP_FILES if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{src} lacks the app file(s) {missing}: reinstall monai_baldsam")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest} is a file: give a folder (missing or empty) for the app")
    if not dest.exists():
        _new_folder(src, dest)
        return AppCopy(dest)
    if _is_empty_dir(dest):
        return AppCopy(dest, _write_files(src, dest, replace=False))
    if not overwrite:
        raise FileExistsError(f"{dest} is not empty: give a missing or empty folder, or pass --overwrite to replace "
                              f"the app's files there ({', '.join(APP_FILES)}; everything else is kept, and a changed "
                              "file is kept as <name>.bak-<time>)")
    return AppCopy(dest, _write_files(src, dest, replace=True))
