"""Safe output files: refuse to clobber inputs or existing files, and write atomically (temp file + rename).

Every writer in the package goes through :func:`check_output_path` and :func:`atomic_path`, so a crash or an error
mid-write never leaves a half-written file under the final name, and never a temporary file behind.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TEMP_PREFIX", "check_output_path", "atomic_path", "atomic_write_bytes", "atomic_write_text"]

PathLike = str | os.PathLike

#: Temporary files are ``<folder>/.tmp-<random>-<final name>``: hidden, same folder, same suffix (so writers that
#: pick the format from the extension, like nibabel for ``.nii.gz``, still do).
TEMP_PREFIX = ".tmp-"


def _same_file(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _exists_message(path: Path) -> str:
    return f"{path} already exists: choose another output path, or pass --overwrite (overwrite=True) to replace it"


def check_output_path(
    out_path: PathLike,
    inputs: Sequence[PathLike] = (),
    protected: Sequence[PathLike] = (),
    overwrite: bool = False,
) -> Path:
    """Validate an output path and return it absolute (symlinks resolved).

    Args:
        out_path: where the file will be written.
        inputs: the input file(s) this output derives from. Writing onto one is always refused; an input that is a
            folder (a DICOM series) is also refused as the output's parent or ancestor.
        protected: further paths never to write onto (even with ``overwrite``); a protected folder also protects
            everything below it.
        overwrite: allow replacing an existing output file.

    Raises:
        ValueError: ``out_path`` is an input or protected path (or inside a protected folder), or is a folder.
        FileExistsError: ``out_path`` exists and ``overwrite`` is False (the message names ``--overwrite``).
    """
    out = Path(out_path).expanduser().resolve()
    for kind, guarded in (("input", inputs), ("protected", protected)):
        for item in guarded:
            g = Path(item).expanduser().resolve()
            if _same_file(out, g):
                raise ValueError(
                    f"refusing to write {out}: it is the {kind} path {item}. Choose a different output path "
                    "(this is refused even with --overwrite)."
                )
            if g.is_dir() and g in out.parents:
                raise ValueError(
                    f"refusing to write {out}: it is inside the {kind} folder {g}. Write outputs to a separate folder."
                )
    if out.is_dir():
        raise ValueError(f"output path {out} is a folder: give a file name, e.g. {out / 'mask.nii.gz'}")
    if out.exists() and not overwrite:
        raise FileExistsError(_exists_message(out))
    return out


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, final: Path, overwrite: bool) -> None:
    """Move ``tmp`` to ``final``; without ``overwrite`` use a hard link so an existing file is never replaced."""
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise FileExistsError(_exists_message(final)) from None
    except OSError as exc:  # file systems without hard links: check, then rename (small race, best effort)
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.EACCES):
            raise
        if final.exists():
            raise FileExistsError(_exists_message(final)) from None
        os.replace(tmp, final)
        return
    tmp.unlink()


@contextmanager
def atomic_path(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success move it to ``path``, on any error delete it.

    The body must create the file at the yielded path (e.g. ``nib.save(img, tmp)``, ``pil.save(tmp)``). Parent
    folders are created. Without ``overwrite`` an existing ``path`` is refused both before and at the final step.

    Example:
        >>> with atomic_path(out / "scores.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text(json.dumps(scores))
    """
    final = Path(path).expanduser()
    if final.is_dir():
        raise ValueError(f"output path {final} is a folder: give a file name")
    if final.exists() and not overwrite:
        raise FileExistsError(_exists_message(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{final.name}")
    try:
        yield tmp
        if not tmp.is_file():
            raise RuntimeError(f"the writer did not create the temporary file {tmp} for {final}")
        _fsync_file(tmp)
        _commit(tmp, final, overwrite)
        _fsync_dir(final.parent)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def atomic_write_bytes(path: PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`) and return the path."""
    final = Path(path).expanduser()
    with atomic_path(final, overwrite=overwrite) as tmp:
        with open(tmp, "xb") as fh:
            fh.write(data)
    return final


def atomic_write_text(path: PathLike, text: str, overwrite: bool = False, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`) and return the path."""
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)
