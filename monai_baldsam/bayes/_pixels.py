"""Pixels as data points: unpack loader batches, validate their shapes and gather the valid pixels.

A batch is ``(features, targets)``, ``(features, targets, valid)`` or a mapping with the keys ``"features"``,
``"targets"`` and optionally ``"valid"``:

- ``features``: ``(B, C, H, W)`` floating point, the head's last-layer input ``phi``;
- ``targets``: ``(B, H, W)`` in ``[0, 1]`` (0/1 labels, bool, or soft labels);
- ``valid``: ``(B, H, W)`` bool, the pixels that count (padding and ignored regions are ``False``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch

__all__ = [
    "unpack_batch",
    "check_features",
    "check_targets",
    "check_valid",
    "iter_pixel_batches",
    "gather_pixels",
    "collect_pixels",
]


def unpack_batch(batch: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(features, targets, valid or None)`` from one loader item (tuple/list of 2 or 3, or a mapping)."""
    if isinstance(batch, Mapping):
        if "features" not in batch or "targets" not in batch:
            raise ValueError(
                f"a mapping batch needs the keys 'features' and 'targets' (and optionally 'valid'), got "
                f"{sorted(map(str, batch.keys()))}"
            )
        return batch["features"], batch["targets"], batch.get("valid")
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)) and len(batch) in (2, 3):
        features, targets = batch[0], batch[1]
        return features, targets, batch[2] if len(batch) == 3 else None
    raise ValueError(
        "each loader item must be (features, targets), (features, targets, valid) or a mapping with keys "
        f"'features', 'targets'[, 'valid'], got {type(batch).__name__}"
    )


def check_features(features: object, n_channels: int) -> torch.Tensor:
    """Validate a ``(B, C, H, W)`` floating-point feature map with ``C == n_channels``; returns it."""
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"features must be a torch.Tensor of shape (B, C, H, W), got {type(features).__name__}")
    if features.ndim != 4:
        raise ValueError(
            f"features must have shape (B, C, H, W) with C={n_channels}, got shape {tuple(features.shape)}"
            " (add a batch axis with features.unsqueeze(0) for a single image)"
        )
    if features.shape[1] != n_channels:
        raise ValueError(
            f"features have {features.shape[1]} channels but the last layer has {n_channels} inputs; "
            f"expected shape (B, {n_channels}, H, W), got {tuple(features.shape)}"
        )
    if not features.is_floating_point():
        raise ValueError(f"features must be floating point, got dtype {features.dtype}")
    return features


def check_targets(targets: object, features: torch.Tensor) -> torch.Tensor:
    """Validate ``(B, H, W)`` targets in ``[0, 1]`` matching ``features (B, C, H, W)``; returns them."""
    expected = (features.shape[0],) + tuple(features.shape[2:])
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"targets must be a torch.Tensor of shape {expected}, got {type(targets).__name__}")
    if tuple(targets.shape) != expected:
        raise ValueError(
            f"targets must have shape (B, H, W) = {expected} to match features {tuple(features.shape)}, got "
            f"{tuple(targets.shape)} (squeeze a channel axis with targets[:, 0])"
        )
    if targets.numel() and (bool((targets < 0).any()) or bool((targets > 1).any())):
        raise ValueError("targets must lie in [0, 1] (foreground probability or 0/1 label)")
    return targets


def check_valid(valid: object, features: torch.Tensor) -> torch.Tensor:
    """Validate a ``(B, H, W)`` bool mask matching ``features (B, C, H, W)``; returns it."""
    expected = (features.shape[0],) + tuple(features.shape[2:])
    if not isinstance(valid, torch.Tensor) or tuple(valid.shape) != expected:
        raise ValueError(f"valid must be a bool tensor of shape {expected}, got {tuple(getattr(valid, 'shape', ()))}")
    if valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool mask, got dtype {valid.dtype} (use valid.bool() or valid > 0)")
    return valid


def gather_pixels(
    features: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor | None,
    keep_fraction: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The valid (and, if ``keep_fraction < 1``, randomly kept) pixels as rows.

    Returns ``(phi (N, C), y (N,))`` in row-major pixel order, on the features' device and dtype (targets
    converted to that dtype). Each pixel is kept independently with probability ``keep_fraction``; the draw
    uses ``generator`` on its own device.
    """
    if valid is None and keep_fraction >= 1.0:
        n_channels = features.shape[1]
        return features.permute(0, 2, 3, 1).reshape(-1, n_channels), targets.to(features.device, features.dtype).reshape(-1)
    mask = torch.ones(targets.shape, dtype=torch.bool, device=features.device) if valid is None else valid.to(
        features.device
    )
    if keep_fraction < 1.0:
        if generator is None:
            raise ValueError("subsampling pixels needs an explicit torch.Generator (pass generator=...)")
        draw = torch.rand(targets.shape, generator=generator, device=generator.device)
        mask = mask & (draw < keep_fraction).to(features.device)
    phi = features.permute(0, 2, 3, 1)[mask]
    y = targets.to(features.device)[mask].to(features.dtype)
    return phi, y


def iter_pixel_batches(
    loader: Iterable[object], n_channels: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Validated ``(features, targets, valid or None)`` for every item of ``loader``."""
    for batch in loader:
        features, targets, valid = unpack_batch(batch)
        features = check_features(features, n_channels)
        targets = check_targets(targets, features)
        yield features, targets, None if valid is None else check_valid(valid, features)


def collect_pixels(
    loader: Iterable[object],
    n_channels: int,
    max_pixels: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All valid pixels of ``loader`` as ``(phi (N, C), y (N,))``, at most ``max_pixels`` (a random subset).

    The subset is a uniform draw without replacement from ``generator``, required when it is needed.
    """
    rows, labels = [], []
    for features, targets, valid in iter_pixel_batches(loader, n_channels):
        phi, y = gather_pixels(features, targets, valid)
        rows.append(phi)
        labels.append(y)
    if sum(r.shape[0] for r in rows) == 0:
        raise ValueError("the loader has no valid pixels (empty loader, or every valid mask is all False)")
    phi = torch.cat([r.to(rows[0].device, rows[0].dtype) for r in rows])
    y = torch.cat([t.to(rows[0].device, rows[0].dtype) for t in labels])
    if max_pixels is not None and phi.shape[0] > max_pixels:
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
        if generator is None:
            raise ValueError(
                f"keeping {max_pixels} of {phi.shape[0]} pixels needs an explicit generator=torch.Generator()"
            )
        keep = torch.randperm(phi.shape[0], generator=generator, device=generator.device)[:max_pixels]
        phi, y = phi[keep.to(phi.device)], y[keep.to(phi.device)]
    return phi, y
