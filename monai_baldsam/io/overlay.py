"""Quick-look PNG of a 2D slice with its mask, clicks and box, drawn in the picture's natural orientation."""

from __future__ import annotations

import io as _stdlib_io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from monai_baldsam.io.atomic import atomic_write_bytes, check_output_path
from monai_baldsam.io.writers import reference_inputs

__all__ = ["render_overlay", "save_overlay_png"]

PathLike = str | os.PathLike
ArrayLike = np.ndarray | torch.Tensor

_FG_COLOUR = (0, 220, 0)
_BG_COLOUR = (230, 0, 0)
_BOX_COLOUR = (0, 160, 255)


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _display_rgb(image_xy: np.ndarray, intensity_range: tuple[float, float] | None) -> np.ndarray:
    """(C, X, Y) or (X, Y) -> uint8 (rows, cols, 3).

    Without a range: 8-bit data as is, else the slice's 0.5-99.5 percentiles.
    """
    img = image_xy.astype(np.float32)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or img.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"image_2d must be (C, X, Y) with C in (1, 3) or (X, Y), got shape {tuple(image_xy.shape)}: pass one slice"
        )
    img = img[:3]
    if intensity_range is not None:
        lo, hi = float(intensity_range[0]), float(intensity_range[1])
    elif img.size and img.min() >= 0.0 and img.max() <= 255.0 and img.max() > 1.0:
        lo, hi = 0.0, 255.0
    else:
        finite = img[np.isfinite(img)]
        lo, hi = (np.percentile(finite, [0.5, 99.5]).tolist() if finite.size else (0.0, 1.0))
    scaled = np.clip((np.nan_to_num(img) - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * 255.0
    rgb = np.repeat(scaled, 3, axis=0) if scaled.shape[0] == 1 else scaled
    return np.rint(rgb).astype(np.uint8).transpose(2, 1, 0)  # (C, X, Y) -> (Y, X, C) = rows, cols, channels


def _boundary(mask_rc: np.ndarray) -> np.ndarray:
    """Foreground pixels with a 4-neighbour in the background (or on the picture's edge)."""
    padded = np.pad(mask_rc, 1, constant_values=False)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask_rc & ~interior


def render_overlay(
    image_2d: ArrayLike,
    mask_2d: ArrayLike | None,
    points_xy: ArrayLike | Sequence[Sequence[float]] | None = None,
    point_labels: ArrayLike | Sequence[int] | None = None,
    box_xyxy: ArrayLike | Sequence[float] | None = None,
    intensity_range: tuple[float, float] | None = None,
    colour: tuple[int, int, int] = (255, 200, 0),
    alpha: float = 0.4,
) -> Any:
    """Build the overlay as a PIL RGB image of size (cols=X, rows=Y). Arguments as :func:`save_overlay_png`."""

    rgb = _display_rgb(_to_numpy(image_2d), intensity_range)
    rows, cols = rgb.shape[:2]
    if mask_2d is not None:
        m = _to_numpy(mask_2d)
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        if m.shape != (cols, rows):
            raise ValueError(f"mask_2d has shape {m.shape}, expected (X, Y) = {(cols, rows)} like image_2d")
        m_rc = (m > 0).T
        out = rgb.astype(np.float32)
        out[m_rc] = (1.0 - alpha) * out[m_rc] + alpha * np.asarray(colour, np.float32)
        out[_boundary(m_rc)] = colour
        rgb = np.rint(out).astype(np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    draw = ImageDraw.Draw(pil)
    width = max(1, round(min(rows, cols) / 256))
    if box_xyxy is not None:
        box = np.asarray(_to_numpy(box_xyxy), float).reshape(-1)
        if box.size != 4:
            raise ValueError(f"box_xyxy must be (x0, y0, x1, y1), got {box.tolist()}")
        draw.rectangle([float(box[0]), float(box[1]), float(box[2]), float(box[3])], outline=_BOX_COLOUR, width=width)
    if points_xy is not None:
        pts = np.asarray(_to_numpy(points_xy), float).reshape(-1, 2)
        labels = np.ones(len(pts), int) if point_labels is None else _to_numpy(point_labels).reshape(-1)
        if len(labels) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(labels)} point_labels: give one label (1 fg, 0 bg) per point")
        radius = max(2.0, min(rows, cols) / 80.0)
        for (x, y), label in zip(pts, labels):
            fill = _FG_COLOUR if int(label) > 0 else _BG_COLOUR
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill, outline=(255, 255, 255))
    return pil


def save_overlay_png(
    image_2d: ArrayLike,
    mask_2d: ArrayLike | None,
    out_path: PathLike,
    points_xy: ArrayLike | Sequence[Sequence[float]] | None = None,
    point_labels: ArrayLike | Sequence[int] | None = None,
    box_xyxy: ArrayLike | Sequence[float] | None = None,
    overwrite: bool = False,
    protected: Sequence[PathLike] = (),
    intensity_range: tuple[float, float] | None = None,
    colour: tuple[int, int, int] = (255, 200, 0),
    alpha: float = 0.4,
) -> Path:
    """Save a PNG of the slice (rows = y, cols = x) with the mask as a translucent fill plus contour.

    Args:
        image_2d: ``(C, X, Y)`` (C = 1 or 3) or ``(X, Y)`` slice in MONAI order.
        mask_2d: ``(X, Y)`` or ``(1, X, Y)``; values > 0 are foreground. ``None`` draws no mask.
        out_path: the ``.png`` to write (atomically; refused if it is the image's own file or ``protected``).
        points_xy: ``(N, 2)`` clicks as ``(x, y)`` pixels in the slice (x = column, y = row).
        point_labels: ``(N,)`` 1 = foreground (green dot), 0 = background (red dot); default all foreground.
        box_xyxy: ``(x0, y0, x1, y1)`` box in slice pixels.
        overwrite: replace an existing ``out_path``.
        protected: more paths never to write onto.
        intensity_range: display window (lo, hi); pass the volume's window so slices look alike. Default:
            8-bit data as is, else the slice's 0.5-99.5 percentiles.
        colour: RGB of the mask fill and contour. alpha: fill opacity in [0, 1].

    Returns:
        The absolute path written.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = check_output_path(out_path, reference_inputs(image_2d), protected, overwrite)
    if out.suffix.lower() != ".png":
        raise ValueError(f"overlay path {out} must end in .png")
    pil = render_overlay(image_2d, mask_2d, points_xy, point_labels, box_xyxy, intensity_range, colour, alpha)
    buf = _stdlib_io.BytesIO()
    pil.save(buf, format="PNG")
    return atomic_write_bytes(out, buf.getvalue(), overwrite=overwrite)
