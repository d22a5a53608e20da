"""Evaluate click policies over a data set in stages: each image is loaded and encoded once, each first prompt is
made and decoded once, and every policy continues from that same first interaction on the same embedding.

Randomness is derived per image, never global: the first prompt's generator (box jitter) is seeded by
``(seed, image name, "first:<kind>")`` and each policy's generator by ``(seed, image name, "policy:<name>")``. So a
result does not depend on which other policies run, on their order, or on ``--limit``.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.model import ClickModel
from monai_baldsam.interaction.policies import make_policy, parse_policy_names
from monai_baldsam.interaction.simulator import (
    FirstPrompt,
    SessionResult,
    make_first_prompt,
    run_first_interaction,
    run_session,
)
from monai_baldsam.io.cases import EvalCase

__all__ = ["CaseResult", "RunResult", "session_rng", "evaluate"]


def session_rng(seed: int, case_name: str, stream: str) -> np.random.Generator:
    """The generator of one stream (``"first:box"``, ``"policy:random"``, ...) of one image under ``seed``."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"the seed must be a non-negative integer, got {seed!r}")
    entropy = [int(seed), zlib.crc32(case_name.encode()), zlib.crc32(stream.encode())]
    return np.random.default_rng(np.random.SeedSequence(entropy))


@dataclass(frozen=True)
class CaseResult:
    """One image's session under one run, with the image's size ``(H, W)`` and its (shared) encoding time."""

    case: EvalCase
    image_hw: tuple[int, int]
    encode_seconds: float
    session: SessionResult


@dataclass
class RunResult:
    """Every image's session for one (first prompt, policy) pair."""

    policy: str
    first: str
    n_interactions: int
    box_jitter: float
    seed: int
    model: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.first, self.policy

    def iou_curves(self) -> np.ndarray:
        """``(B, N)`` IoU after each interaction."""
        return np.stack([c.session.iou for c in self.cases]) if self.cases else np.zeros((0, self.n_interactions))

    def dice_curves(self) -> np.ndarray:
        """``(B, N)`` Dice after each interaction."""
        return np.stack([c.session.dice for c in self.cases]) if self.cases else np.zeros((0, self.n_interactions))


def evaluate(cases: Sequence[EvalCase], model: ClickModel, policies: Sequence[str], firsts: Sequence[FirstPrompt | str],
             n_interactions: int = 20, seed: int = 0, box_jitter: float = 0.0, progress: bool = True
             ) -> dict[tuple[str, str], RunResult]:
    """Run every policy after every kind of first prompt on every case.

    Args:
        cases: from :func:`~monai_baldsam.io.cases.discover_cases`.
        model: the click model; each image is encoded once and shared by every run.
        policies: registered policy names.
        firsts: kinds of first prompt (``"box"``, ``"click"``).
        n_interactions: the budget ``N``, first prompt included.
        seed: base seed of every generator (see :func:`session_rng`).
        box_jitter: fraction of the box size by which a box first prompt is jittered (0: the exact box).
        progress: show a tqdm bar of images done (on stderr).
    Returns:
        ``(first, policy)`` -> :class:`RunResult`, in the order of ``firsts`` then ``policies``.
    """
    names = parse_policy_names(list(policies))
    kinds = [FirstPrompt(f) for f in dict.fromkeys(firsts)]
    if not kinds:
        raise ValueError("give at least one kind of first prompt: 'box' or 'click'")
    if not cases:
        raise ValueError("no cases to evaluate")
    if n_interactions < 1:
        raise ValueError(f"the number of interactions (--clicks) must be at least 1, got {n_interactions}")
    session_rng(seed, "", "")  # validates the seed before any work
    if box_jitter and FirstPrompt.BOX not in kinds:
        raise ValueError("box jitter applies to a box first prompt (--first box)")
    runs = {(kind.value, name): RunResult(name, kind.value, n_interactions, box_jitter if kind is FirstPrompt.BOX
                                          else 0.0, seed, model.signature) for kind in kinds for name in names}
    bar = tqdm(cases, desc="evaluate", unit="image", disable=not progress, dynamic_ncols=True)
    for case in bar:
        loaded = load_case(case)
        start = time.perf_counter()
        embedding = model.encode(loaded.image)
        encode_seconds = time.perf_counter() - start
        hw = (int(loaded.truth.shape[0]), int(loaded.truth.shape[1]))
        for kind in kinds:
            jitter = box_jitter if kind is FirstPrompt.BOX else 0.0
            prompt = make_first_prompt(loaded.truth, kind, session_rng(seed, case.name, f"first:{kind.value}"), jitter)
            first = run_first_interaction(model, embedding, prompt)
            for name in names:
                session = run_session(model, embedding, loaded.truth, make_policy(name), first, n_interactions,
                                      session_rng(seed, case.name, f"policy:{name}"))
                runs[(kind.value, name)].cases.append(CaseResult(case, hw, encode_seconds, session))
    return runs
