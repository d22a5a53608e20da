"""An on-disk store of image embeddings for training, bounded and keyed by a full signature (micro-sam style).

Each entry is one file ``<key>.pt`` holding ``{"signature": {...}, "features": (1, D, h, w) float32}``. The key is
a digest of the windowed image's content hash and the backbone's signature; the stored signature (format version,
content hash, backbone name, full checkpoint SHA-256, ``img_size``) is compared on every read, and a mismatch is an
error, never a silent reuse. Files are written atomically; the store is bounded in items and bytes (least recently
used files go first; a read refreshes the file's time) and can be cleared.

Default folder: ``$BALDSAM_CACHE/embeddings`` or ``~/.cache/monai_baldsam/embeddings``.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.sam.checkpoints import CACHE_ENV_VAR
from monai_baldsam.sam.embedding_cache import content_hash
from monai_baldsam.sam.model import SamBackbone

__all__ = ["STORE_FORMAT", "default_store_dir", "embedding_signature", "EmbeddingStore"]

STORE_FORMAT = "monai_baldsam.embedding/2"


def default_store_dir() -> Path:
    """``$BALDSAM_CACHE/embeddings``, else ``~/.cache/monai_baldsam/embeddings``."""
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "monai_baldsam"
    return base / "embeddings"


def embedding_signature(image: torch.Tensor, backbone: SamBackbone, encoder: str = "torch") -> dict[str, Any]:
    """The full signature of ``image``'s (``1 x 3 x H x W`` in [0, 1]) embedding through ``backbone``'s encoder run
    by runtime ``encoder`` (:attr:`~monai_baldsam.sam.encoder_runtime.ImageEncoderRunner.tag`)."""
    return {"format": STORE_FORMAT, "content_hash": content_hash(image), "backbone": backbone.name,
            "checkpoint_sha256": backbone.checkpoint_sha256 or "random", "img_size": int(backbone.img_size),
            "encoder": encoder}


class EmbeddingStore:
    """Signature-checked embedding files in ``folder``, at most ``max_items`` files and ``max_bytes`` bytes.

    Args:
        folder: where the files live (created on the first write); default :func:`default_store_dir`.
        max_items, max_bytes: bounds; after a write the least recently used files are deleted to stay within both.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, max_items: int = 4096,
                 max_bytes: int = 16 << 30) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"store bounds must be positive, got max_items={max_items}, max_bytes={max_bytes}")
        self.folder = Path(folder).expanduser() if folder is not None else default_store_dir()
        self.max_items = int(max_items)
        self.max_bytes = int(max_bytes)

    @staticmethod
    def key(signature: dict[str, Any]) -> str:
        """File stem: digest of the content hash and the backbone signature."""
        text = (f"{signature['content_hash']}|{signature['backbone']}@{str(signature['checkpoint_sha256'])[:16]}"
                f"|{signature.get('encoder', 'torch')}")
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def path(self, signature: dict[str, Any]) -> Path:
        return self.folder / f"{self.key(signature)}.pt"

    def get(self, signature: dict[str, Any], map_location: str | torch.device = "cpu") -> torch.Tensor | None:
        """The stored ``(1, D, h, w)`` embedding for ``signature``, or None when absent.

        Raises:
            ValueError: the file exists but holds another signature, or is not an embedding file.
        """
        path = self.path(signature)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
            raise ValueError(f"embedding file {path} is unreadable ({err}): delete it or clear the store "
                             f"({self.folder})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("features"), torch.Tensor):
            raise ValueError(f"{path} is not an embedding file of this store: delete it or clear {self.folder}")
        stored = entry.get("signature")
        if stored != signature:
            raise ValueError(f"embedding file {path} was written for signature {stored}, not {signature}: it is "
                             f"stale or from another model. Clear the store ({self.folder}) or use another folder")
        os.utime(path)
        return entry["features"]

    def put(self, signature: dict[str, Any], features: torch.Tensor) -> Path:
        """Write ``features`` (``(1, D, h, w)``) under ``signature`` atomically, then enforce the bounds."""
        if features.ndim != 4 or features.shape[0] != 1:
            raise ValueError(f"features must be one embedding (1, D, h, w), got {tuple(features.shape)}")
        buffer = io.BytesIO()
        torch.save({"signature": dict(signature), "features": features.detach().to("cpu", torch.float32).clone()},
                   buffer)
        path = atomic_write_bytes(self.path(signature), buffer.getvalue(), overwrite=True)
        self._enforce_bounds()
        return path

    def get_or_compute(self, image: torch.Tensor, backbone: SamBackbone, encode: Any,
                       encoder: str = "torch") -> torch.Tensor:
        """The embedding of ``image`` through ``backbone`` (encoder runtime ``encoder``): from the store, else
        ``encode(image)`` and stored."""
        signature = embedding_signature(image, backbone, encoder)
        found = self.get(signature)
        if found is not None:
            return found
        features = encode(image).detach().cpu()
        self.put(signature, features)
        return features

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.glob("*.pt") if p.is_file()]

    def _enforce_bounds(self) -> None:
        entries = sorted(((p.stat().st_mtime_ns, p.stat().st_size, p) for p in self._files()), key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        while entries and (len(entries) > self.max_items or total > self.max_bytes):
            _, size, path = entries.pop(0)
            path.unlink(missing_ok=True)
            total -= size

    def __len__(self) -> int:
        return len(self._files())

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self._files())

    def clear(self) -> None:
        """Delete every embedding file of the store (other files in the folder are left alone)."""
        for path in self._files():
            path.unlink(missing_ok=True)
