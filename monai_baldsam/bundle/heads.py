"""The head a bundle runs: named in its configs by registry name and pinned by SHA-256, never copied into the bundle.

A bundle's ``inference.json`` / ``evaluate.json`` say ``"head": "polyp"`` and ``"head_sha256": "4a25..."``; the file
is the shipped one in ``monai_baldsam/head/weights/`` (found through :func:`monai_baldsam.head.registry.resolve_head`,
so nothing depends on where the bundle or the repository lies). :func:`resolve_bundle_head` refuses a file whose hash
is not the pinned one, naming both hashes. A user's own head is a path in ``head`` with its hash in ``head_sha256``,
or ``card`` there: then only the card beside the file, if any, is checked. (``python -m monai.bundle run`` drops
``None`` overrides, so ``--head_sha256 None`` would keep the bundle's pin: the word is ``card``.)
"""

from __future__ import annotations

import os
import re

from monai_baldsam.bundles import bundle_metadata
from monai_baldsam.head.registry import HeadFile, resolve_head
from monai_baldsam.sam.checkpoints import CheckpointError, file_sha256

__all__ = ["GENERATE_COMMAND", "FROM_CARD", "BundleHeadError", "resolve_bundle_head", "bundle_head"]

#: the command that regenerates the bundles from the template
GENERATE_COMMAND = "python -m monai_baldsam.bundle.generate"
#: ``head_sha256`` value meaning: no pin, check the file against its card (if it has one)
FROM_CARD = "card"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class BundleHeadError(CheckpointError):
    """The head a bundle names is not the file it pinned (another SHA-256)."""


def resolve_bundle_head(head: str | os.PathLike[str] | None, sha256: str | None) -> HeadFile:
    """The head file of a bundle config: ``head`` is a shipped head's registry name (``general``, ``polyp``, ...) or
    a path to a head file; ``sha256`` the hash the file must have (``None`` or ``"card"``: the card's hash, if the
    file has a card).

    Raises:
        ValueError: no head given, or ``sha256`` is neither 64 hex digits nor ``"card"``.
        FileNotFoundError: ``head`` is neither a shipped head nor an existing file.
        BundleHeadError: the file's SHA-256 is not ``sha256`` (the message names the expected and found hashes).
    """
    if head is None or not str(head):
        raise ValueError("the bundle config names no head: give --head NAME (a shipped head, e.g. general) or "
                         f"--head PATH (a head file) and --head_sha256 HASH (or {FROM_CARD})")
    pinned = None if sha256 in (None, "", FROM_CARD) else str(sha256)
    if pinned is not None and not _SHA256.match(pinned):
        raise ValueError(f"head_sha256 must be 64 hexadecimal digits, or {FROM_CARD!r} to check the head against its "
                         f"card, got {sha256!r}")
    found = resolve_head(head)
    expected = pinned.lower() if pinned else found.sha256
    if expected is None:
        return found
    actual = file_sha256(found.path)
    if actual != expected.lower():
        source = "the bundle config" if pinned else f"the card of {found.path.name}"
        raise BundleHeadError(
            f"head {str(head)!r} ({found.path}) has SHA-256 {actual}, but {source} expects {expected}. "
            f"If the installed head changed, reinstall monai_baldsam or regenerate the bundles ({GENERATE_COMMAND}); "
            f"to run another head on purpose, pass --head NAME|PATH with --head_sha256 {actual} "
            f"(or --head_sha256 {FROM_CARD} to check only its card).")
    return HeadFile(found.path, actual, found.name)


def bundle_head(name: str) -> HeadFile:
    """The head bundle ``name`` runs: the shipped head its metadata names (``baldsam.head``, a registry name), its
    file checked against the pinned ``baldsam.head_sha256`` (:class:`BundleHeadError`
    on a mismatch)."""
    block = bundle_metadata(name).get("baldsam")
    if not isinstance(block, dict) or not block.get("head"):
        raise ValueError(f"bundle {name}: configs/metadata.json has no 'baldsam' block naming its head: it is not a "
                         "monai_baldsam bundle (reinstall monai_baldsam)")
    return resolve_bundle_head(block["head"], block.get("head_sha256"))
