"""What the app refuses from a request, and how a refusal reaches the client: a 4xx answer that says what to fix.

MONAI Label 0.8.5 registers no exception handler, so anything an app raises becomes ``500 Internal Server Error``
with no message. The app raises :class:`RequestError` (or ``ValueError``) for a request it cannot serve and turns it
into FastAPI's ``HTTPException`` (:func:`to_http`) at the points the endpoints call into the app (``infer``, the
datastore's ``save_label``), so the client gets ``{"detail": "<what is wrong>"}`` with a 4xx status and the server
goes on serving others.

The checks here are pure: an image id is a name in the datastore, never a path; a label tag is a plain name (it
becomes a folder name in a local datastore).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = ["RequestError", "check_image_id", "check_label_tag", "is_upload", "to_http"]

TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_ID_LENGTH = 256


class RequestError(ValueError):
    """A request the app cannot serve; ``status`` is the HTTP status to answer with (400, 404, 413, 422)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = int(status)


def check_image_id(image_id: Any, known: Iterable[str] | None = None) -> str:
    """``image_id`` as a datastore id: a non-empty name without a path in it, and (``known`` given) one of them.

    Raises:
        RequestError: 400 for an empty id or one holding a path, 404 for an id not in ``known``.
    """
    if not isinstance(image_id, str) or not image_id.strip():
        raise RequestError("no image id given: pass ?image=<id> with an id from GET /datastore/")
    if len(image_id) > MAX_ID_LENGTH:
        raise RequestError(f"the image id is {len(image_id)} characters long: ids are at most {MAX_ID_LENGTH}")
    if "/" in image_id or "\\" in image_id or "\x00" in image_id or image_id in (".", ".."):
        raise RequestError(f"image id {image_id[:80]!r} holds a path: give the id of an image in the datastore "
                           "(GET /datastore/ lists them), not a file name or path")
    if known is not None and image_id not in set(known):
        raise RequestError(f"image {image_id!r} is not in the datastore: GET /datastore/ lists the image ids",
                           status=404)
    return image_id


def check_label_tag(tag: Any) -> str:
    """A label tag (``final``, ``original``, ...): letters, digits, ``_``, ``-`` and ``.``, not starting with ``.``,
    at most 64 characters (it names a folder of a local datastore)."""
    if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
        raise RequestError(f"label tag {str(tag)[:80]!r} is not a plain name: use letters, digits, '_', '-' or '.' "
                           "(not first), at most 64 characters, e.g. 'final'")
    return tag


def is_upload(path: str, session_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``path`` is where MONAI Label put a file uploaded with the request (a ``tmp*`` file directly in the
    temporary folder) or a session's image (under ``session_dir``): the only paths an infer may read."""
    p = Path(path)
    if p.parent == Path(tempfile.gettempdir()) and p.name.startswith("tmp") and p.is_file():
        return True
    if session_dir:
        root = Path(session_dir).resolve()
        return p.resolve() != root and root in p.resolve().parents
    return False


def to_http(err: ValueError) -> Exception:
    """The ``fastapi.HTTPException`` that answers ``err`` (status from a :class:`RequestError`, else 400)."""
    from fastapi import HTTPException

    return HTTPException(status_code=getattr(err, "status", 400), detail=str(err))
