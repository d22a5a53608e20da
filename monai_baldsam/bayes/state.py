"""The saved form of a posterior: format checks and signatures tying it to its features.

:meth:`LastLayerLaplace.state_dict` writes a flat dict of tensors, numbers and strings (so it loads with
``torch.load(..., weights_only=True)``), versioned by :data:`STATE_FORMAT_VERSION`. Its ``signature``
identifies the features the posterior was fitted on (backbone, checkpoint hash, ...). A signature is a flat ``dict`` of ``str`` keys to ``str``/``int``/``float``/``bool``/``None`` values, so a
saved state loads with ``torch.load(..., weights_only=True)``. A mismatch is an error, never a silent reuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = [
    "STATE_FORMAT_VERSION",
    "STATE_KEYS",
    "SignatureValue",
    "check_signature_dict",
    "compare_signatures",
    "check_state",
]

STATE_FORMAT_VERSION = 1
"""Version of the dictionary written by :meth:`LastLayerLaplace.state_dict`."""

STATE_KEYS = frozenset(
    {"format_version", "structure", "mean", "prior_precision", "temperature", "hessian", "loss", "n_data", "signature"}
)

SignatureValue = str | int | float | bool | None


def check_signature_dict(signature: Mapping[str, Any] | None) -> dict[str, SignatureValue]:
    """A plain-dict copy of ``signature`` (``{}`` for None); ValueError for non-primitive entries."""
    if signature is None:
        return {}
    if not isinstance(signature, Mapping):
        raise ValueError(f"signature must be a dict of str -> str/int/float/bool, got {type(signature).__name__}")
    for key, value in signature.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool, type(None))):
            raise ValueError(
                f"signature entries must be str -> str/int/float/bool/None (so the state loads with "
                f"weights_only=True), got {key!r}: {type(value).__name__}"
            )
    return dict(signature)


def compare_signatures(stored: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Raise ValueError, naming both, unless every entry of ``expected`` is in ``stored`` with an equal value.

    Extra entries of ``stored`` (e.g. a creation date) do not count as a mismatch.
    """
    mismatched = sorted(key for key in expected if key not in stored or stored[key] != expected[key])
    if mismatched:
        raise ValueError(
            f"posterior signature mismatch on {mismatched}: stored {dict(stored)!r}, expected {dict(expected)!r}; "
            "refit the posterior for these features (or load the one that matches)"
        )


def check_state(state: Mapping[str, Any], structure: str, n_params: int, hessian_key: str,
                hessian_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``state`` is a current-format state of a posterior with this structure and size."""
    if not isinstance(state, Mapping):
        raise ValueError(f"a posterior state must be a dict, got {type(state).__name__}")
    missing = STATE_KEYS - set(state)
    if missing:
        raise ValueError(f"not a LastLayerLaplace state: missing keys {sorted(missing)}")
    if state["format_version"] != STATE_FORMAT_VERSION:
        raise ValueError(f"state format {state['format_version']} is not supported (expected {STATE_FORMAT_VERSION})")
    if state["structure"] != structure:
        raise ValueError(f"state has structure {state['structure']!r} but this posterior is {structure!r}")
    mean = state["mean"]
    if not isinstance(mean, torch.Tensor) or tuple(mean.shape) != (n_params,):
        stored = mean.numel() - 1 if isinstance(mean, torch.Tensor) else "?"
        raise ValueError(f"state is for {stored} channels but this posterior has {n_params - 1}")
    hessian = state["hessian"].get(hessian_key) if isinstance(state["hessian"], Mapping) else None
    if not isinstance(hessian, torch.Tensor) or tuple(hessian.shape) != hessian_shape:
        raise ValueError(f"state lacks a {hessian_key!r} Hessian of shape {hessian_shape}")
    check_signature_dict(state["signature"])
