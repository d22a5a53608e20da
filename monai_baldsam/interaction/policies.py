"""Click policies: where the simulated user clicks next, behind one interface and a registry by name.

A policy sees a :class:`ClickContext` (the current prediction with the model's optional extra maps, the clicks so
far, the pixels still allowed, a seeded RNG, and the ground truth only if it declares ``uses_ground_truth``) and
returns a :class:`Click` or ``None`` (no click: the session ends and keeps its IoU). A click whose ``label`` is
``None`` is answered by the simulated user from the ground truth at that pixel, so model-driven policies (entropy,
BALD) pick a location without ever seeing the truth.

:meth:`ClickPolicy.next_prompt` turns the click into the model's next prompt, micro-sam's generator shape
``(coords, labels, boxes, masks)``: the first box if any, every click so far, and the previous low-resolution
logits as ``mask_input`` (as SAM's interactive loop does).

Registered here: ``oracle`` (RITM/f-BRS), ``random_error``, ``random``, and the model-driven ``bald`` and
``entropy``, which need a model that returns uncertainty maps (the Bayesian head). Variants kept to reproduce
the ablations in the README (chosen against on validation images of the training split): ``bald_pixel`` and
``entropy_pixel`` (plain pixel argmax), ``expected_error`` (``min(p, 1 - p)``) and ``bald_lookahead`` (BALD proposes,
the model's expected entropy after each answer picks). ``epig`` ranks by the expected predictive information gain
over the image (:mod:`monai_baldsam.bayes.epig`; a head made with ``epig=True``), the issue-17 candidate against
BALD's pointwise mutual information. The one-shot baseline ``one_shot`` (points drawn at once
from the ground-truth interior, no feedback) is registered by :mod:`~monai_baldsam.interaction.one_shot`. Others
register with :func:`register_policy`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple

import numpy as np
import torch

from monai_baldsam.bayes.acquisition import best_click, best_region_click, exclude_squares
from monai_baldsam.interaction.geometry import NO_CLICK, oracle_clicks, random_error_clicks
from monai_baldsam.interaction.model import ClickModel, ModelOutput
from monai_baldsam.sam.predictor import SliceEmbedding

__all__ = [
    "Click",
    "Prompt",
    "ClickContext",
    "ClickPolicy",
    "OraclePolicy",
    "RandomErrorPolicy",
    "RandomPolicy",
    "UncertaintyPolicy",
    "BaldPolicy",
    "EntropyPolicy",
    "EpigPolicy",
    "ExpectedErrorPolicy",
    "LookaheadBaldPolicy",
    "accumulate_prompt",
    "register_policy",
    "make_policy",
    "available_policies",
    "parse_policy_names",
]


@dataclass(frozen=True)
class Click:
    """A click at ``xy`` = ``(x, y)`` slice pixels; ``label`` 1 foreground, 0 background, ``None`` = ask the user."""

    xy: tuple[int, int]
    label: int | None = None


class Prompt(NamedTuple):
    """The model's prompt for one interaction (micro-sam's ``(coords, labels, boxes, masks)``).

    ``points_xy`` ``(K, 2)`` slice pixels, ``labels`` ``(K,)`` 1/0, ``box_xy`` ``(4,)`` or None, ``mask_input``
    ``(1, 1, h, w)`` previous low-resolution logits or None.
    """

    points_xy: np.ndarray
    labels: np.ndarray
    box_xy: np.ndarray | None
    mask_input: torch.Tensor | None


def accumulate_prompt(box_xy: np.ndarray | None, clicks_xy: np.ndarray, labels: np.ndarray,
                      mask_input: torch.Tensor | None) -> Prompt:
    """The prompt after some clicks: the (first) box, every click so far in order, and the previous logits."""
    points = np.asarray(clicks_xy, dtype=np.float64).reshape(-1, 2)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(points) != len(lab):
        raise ValueError(f"got {len(points)} clicks but {len(lab)} labels")
    box = None if box_xy is None else np.asarray(box_xy, dtype=np.float64).reshape(4)
    return Prompt(points, lab, box, mask_input)


@dataclass(frozen=True)
class ClickContext:
    """What a policy may look at before placing interaction ``interaction`` (2..N).

    Attributes:
        prediction: the model's current prediction (mask, probability, low-res logits, extra maps by name).
        clicks_xy: ``(K, 2)`` int64 clicks so far (``(x, y)``), the first click included when the session began
            with one; ``click_labels`` ``(K,)`` their labels.
        box_xy: the first box, or None.
        valid: ``(H, W)`` bool, pixels that may be clicked: inside the image and not clicked yet.
        rng: this session's generator (seeded per image and policy).
        interaction: the number of the interaction being placed (the first prompt is interaction 1).
        ground_truth: ``(H, W)`` bool, given only to policies with ``uses_ground_truth = True``.
        prompt: the prompt that produced ``prediction``.
        model, embedding: the click model and this image's embedding, for policies that score candidate clicks
            by asking the model (time spent there counts as the policy's).
    """

    prediction: ModelOutput
    clicks_xy: np.ndarray
    click_labels: np.ndarray
    box_xy: np.ndarray | None
    valid: np.ndarray
    rng: np.random.Generator
    interaction: int
    ground_truth: np.ndarray | None = None
    prompt: Prompt | None = None
    model: ClickModel | None = None
    embedding: SliceEmbedding | None = None


class ClickPolicy(ABC):
    """Base class of click policies.

    Class attributes:
        name: registry name.
        uses_ground_truth: the policy reads :attr:`ClickContext.ground_truth` (a simulated user, e.g. the oracle);
            False for policies a real system could run (entropy, BALD), which never receive it.
        requires_extras: names of :attr:`ModelOutput.extras` maps the policy needs from the model.
    """

    name: ClassVar[str] = "policy"
    uses_ground_truth: ClassVar[bool] = False
    requires_extras: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def choose(self, context: ClickContext) -> Click | None:
        """The next click, or None to place no more (e.g. no error left)."""

    def next_prompt(self, context: ClickContext, answer: Callable[[tuple[int, int]], int]) -> Prompt | None:
        """Choose a click, have ``answer(xy)`` give its label when the policy leaves it open, and return the next
        prompt (box, all clicks so far plus this one, previous logits), or None when the policy places no click."""
        click = self.choose(context)
        if click is None:
            return None
        x, y = (int(v) for v in click.xy)
        height, width = context.valid.shape
        if not (0 <= x < width and 0 <= y < height) or not context.valid[y, x]:
            raise RuntimeError(f"policy {self.name!r} chose pixel (x, y) = ({x}, {y}), which is outside the image of "
                               f"size (W, H) = ({width}, {height}) or already clicked: choose among context.valid")
        label = answer((x, y)) if click.label is None else int(click.label)
        if label not in (0, 1):
            raise RuntimeError(f"policy {self.name!r} gave click label {label}: use 1 (foreground) or 0 (background)")
        clicks = np.concatenate([context.clicks_xy.reshape(-1, 2), [[x, y]]])
        labels = np.concatenate([context.click_labels.reshape(-1), [label]])
        return accumulate_prompt(context.box_xy, clicks, labels, context.prediction.low_res_logits)


def _truth(context: ClickContext, name: str) -> np.ndarray:
    if context.ground_truth is None:
        raise RuntimeError(f"policy {name!r} needs the ground truth but the context has none")
    return context.ground_truth


def _single(points: np.ndarray, labels: np.ndarray) -> Click | None:
    if int(labels[0]) == NO_CLICK:
        return None
    return Click((int(points[0, 0]), int(points[0, 1])), int(labels[0]))


class OraclePolicy(ClickPolicy):
    """The RITM/f-BRS simulated user: the centre (farthest from the boundary) of the larger error region,
    deterministic (see :func:`monai_baldsam.interaction.geometry.oracle_clicks` for the tie rules)."""

    name = "oracle"
    uses_ground_truth = True

    def choose(self, context: ClickContext) -> Click | None:
        truth = _truth(context, self.name)
        return _single(*oracle_clicks(context.prediction.mask[None], truth[None], context.valid[None]))


class RandomErrorPolicy(ClickPolicy):
    """A uniformly random pixel of the error region (false negatives or false positives), seeded."""

    name = "random_error"
    uses_ground_truth = True

    def choose(self, context: ClickContext) -> Click | None:
        truth = _truth(context, self.name)
        return _single(*random_error_clicks(context.prediction.mask[None], truth[None], context.rng,
                                            context.valid[None]))


class RandomPolicy(ClickPolicy):
    """A uniformly random pixel of the image, seeded; the simulated user answers its polarity from the truth.

    Blind to errors: the lower bound any useful policy must beat.
    """

    name = "random"
    uses_ground_truth = False

    def choose(self, context: ClickContext) -> Click | None:
        candidates = np.flatnonzero(context.valid)
        if candidates.size == 0:
            return None
        index = int(candidates[context.rng.integers(candidates.size)])
        width = context.valid.shape[1]
        return Click((index % width, index // width), None)


class UncertaintyPolicy(ClickPolicy):
    """A click where one of the model's uncertainty maps is high, around the click and at it; the user answers the
    polarity. Never sees the ground truth.

    Args:
        footprint: half-width of the neighbourhood as a fraction of the image's shorter side (0: the single most
            uncertain pixel). A click corrects a region, not a pixel: the single most uncertain pixel tends to be a
            point of a thin boundary band where a click changes little, while the neighbourhood mean prefers wide
            uncertain regions.
        gate: only pixels whose own score reaches this fraction of the image's highest score are candidates, so the
            click is not placed in the confident middle of a small object ringed by boundary uncertainty.
        exclusion: half-width, as a fraction of the shorter side, of the square around each earlier click whose
            pixels are no longer candidates (0: only the clicked pixels). A click answers its neighbourhood, so asking
            again right next to it repeats the question; when the exclusion leaves nothing, it is dropped.

    The defaults were chosen on validation images of the training split (``benchmarks/tune_footprint.py``), never
    on dev data: footprint 0.03 and gate 0.5 with ``general_v0``; an exclusion equal to the footprint with
    ``general_v1`` (``tune_footprint_exclusion_general_cpu.json``: click first, mIoU@10 0.850 against 0.826 without;
    mIoU@5 the same). See :func:`~monai_baldsam.bayes.acquisition.best_click`; deterministic (ties: row-major order).
    """

    score_map: ClassVar[str] = ""
    default_footprint: ClassVar[float] = 0.03
    default_gate: ClassVar[float] = 0.5
    default_exclusion: ClassVar[float] = 0.03

    def __init__(self, footprint: float | None = None, gate: float | None = None,
                 exclusion: float | None = None, region: bool = False) -> None:
        footprint = self.default_footprint if footprint is None else float(footprint)
        gate = self.default_gate if gate is None else float(gate)
        if not 0.0 <= footprint < 0.5:
            raise ValueError(f"footprint is a fraction of the image's shorter side in [0, 0.5), got {footprint}")
        if not 0.0 <= gate <= 1.0:
            raise ValueError(f"gate is a fraction of the highest score in [0, 1], got {gate}")
        exclusion = self.default_exclusion if exclusion is None else float(exclusion)
        if not 0.0 <= exclusion < 0.5:
            raise ValueError(f"exclusion is a fraction of the image's shorter side in [0, 0.5), got {exclusion}")
        if region and gate == 0.0:
            raise ValueError("the region rule needs a gate in (0, 1]: it defines the uncertain regions")
        self.footprint = footprint
        self.gate = gate
        self.exclusion = exclusion
        self.region = bool(region)

    def radius_px(self, shape: tuple[int, ...]) -> int:
        """The neighbourhood half-width in pixels for slices of ``shape`` ``(..., H, W)``."""
        return int(round(self.footprint * min(shape[-2:])))

    def candidates(self, valid: np.ndarray, clicks_xy: np.ndarray) -> np.ndarray:
        """``valid`` ``(H, W)`` without the squares of half-width ``exclusion`` around ``clicks_xy`` ``(K, 2)``
        (``(x, y)``); ``valid`` itself when the exclusion is 0 or would leave no pixel."""
        centres = np.asarray(clicks_xy, dtype=np.int64).reshape(-1, 2)[:, ::-1]  # (x, y) -> (row, column)
        return exclude_squares(valid, centres, self.exclusion_px(valid.shape))

    def exclusion_px(self, shape: tuple[int, ...]) -> int:
        """The exclusion's half-width in pixels for slices of ``shape`` ``(..., H, W)``."""
        return int(round(self.exclusion * min(shape[-2:])))

    def pick(self, score: np.ndarray, valid: np.ndarray, mask: np.ndarray | None) -> tuple[tuple[int, ...], float] | None:
        """This policy's rule over ``score`` ``(..., H, W)`` among the ``valid`` pixels (earlier clicks already
        excluded): the region rule (needs the current ``mask``) or the pooled neighbourhood; ``(index, score)`` or
        None. Shared by the simulator's policy, ``baldsam suggest`` and the volume BALD."""
        if not self.region:
            return best_click(score, valid, self.radius_px(score.shape), self.gate)
        if mask is None:
            raise ValueError("the region rule needs the current mask")
        return best_region_click(score, valid, mask, self.gate)

    def score(self, context: ClickContext) -> np.ndarray:
        """The ``(H, W)`` map this policy ranks pixels by (the model's ``score_map`` extra)."""
        return np.asarray(context.prediction.extras[self.score_map])

    def choose(self, context: ClickContext) -> Click | None:
        score = self.score(context)
        if score.shape != context.valid.shape:
            raise ValueError(f"the {self.name!r} score map has shape {score.shape}, the image {context.valid.shape}")
        found = self.pick(score, self.candidates(context.valid, context.clicks_xy), context.prediction.mask)
        if found is None:
            return None
        (y, x), _ = found
        return Click((x, y), None)


class BaldPolicy(UncertaintyPolicy):
    """BALD: where the mutual information between prediction and head weights, H[E p] - E H[p], is highest
    around the click (see :class:`UncertaintyPolicy` for the neighbourhood)."""

    name = "bald"
    score_map = "mutual_information"
    requires_extras = ("mutual_information",)


class EntropyPolicy(UncertaintyPolicy):
    """Where the predictive entropy H[E p] (total uncertainty, aleatoric included) is highest around the click,
    with the same neighbourhood as :class:`BaldPolicy`."""

    name = "entropy"
    score_map = "predictive_entropy"
    requires_extras = ("predictive_entropy",)


class EpigPolicy(UncertaintyPolicy):
    """EPIG: where one answer would remove the most predictive variance over the whole image (the expected
    predictive information gain of :mod:`monai_baldsam.bayes.epig`), with the neighbourhood rules of
    :class:`UncertaintyPolicy`. Needs a head made with ``epig=True``. A candidate against BALD's pointwise mutual
    information, which peaks on the predicted boundary (issue 17)."""

    name = "epig"
    score_map = "epig"
    requires_extras = ("epig",)


class ExpectedErrorPolicy(UncertaintyPolicy):
    """Where the current mask is most likely wrong: ``min(p, 1 - p)`` of the predictive probability (the chance
    that the user's answer contradicts the mask there, for a calibrated model), with the neighbourhood rules of
    :class:`UncertaintyPolicy`."""

    name = "expected_error"

    def score(self, context: ClickContext) -> np.ndarray:
        probability = np.asarray(context.prediction.probability, dtype=np.float32)
        return np.minimum(probability, 1.0 - probability)


class LookaheadBaldPolicy(BaldPolicy):
    """BALD proposes, the model checks: the ``candidates`` best BALD clicks (the neighbourhood rule of
    :class:`UncertaintyPolicy`, each next one outside the exclusion square of those before it) are each tried with
    both answers, and the click whose expected answer leaves the least predictive entropy over the image wins
    (expected error reduction, Roy and McCallum 2001; the answer's probability is the model's own at the pixel).

    It costs ``2 x candidates`` extra decoder + head calls per click: a policy for GPUs or for annotators who wait
    for the suggestion anyway, not the default ``bald``.
    """

    name = "bald_lookahead"
    requires_extras = ("mutual_information", "predictive_entropy")

    def __init__(self, candidates: int = 4, score_map: str = "mutual_information", **kwargs: float) -> None:
        super().__init__(**kwargs)
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        if score_map not in self.requires_extras:
            raise ValueError(f"the proposals rank by one of {', '.join(self.requires_extras)}, got {score_map!r}")
        self.n_candidates = int(candidates)
        self.score_map = score_map  # which map proposes (BALD's by default; "predictive_entropy" for the ablation)

    def proposals(self, context: ClickContext) -> list[tuple[int, int]]:
        """Up to ``candidates`` BALD clicks ``(x, y)``, each outside the exclusion squares of the ones before."""
        score = self.score(context)
        valid = self.candidates(context.valid, context.clicks_xy)
        radius = max(1, self.exclusion_px(score.shape))
        found: list[tuple[int, int]] = []
        for _ in range(self.n_candidates):
            best = best_click(score, valid, self.radius_px(score.shape), self.gate)
            if best is None or (best[0][1], best[0][0]) in found:  # nothing new left to propose
                break
            (y, x), _ = best
            found.append((x, y))
            valid = exclude_squares(valid, [[y, x]], radius)
        return found

    def choose(self, context: ClickContext) -> Click | None:
        proposals = self.proposals(context)
        if len(proposals) <= 1 or context.model is None or context.embedding is None:
            return Click(proposals[0], None) if proposals else None
        probability = np.asarray(context.prediction.probability)
        best_xy, best_entropy = proposals[0], np.inf
        for x, y in proposals:
            p_fg = float(np.clip(probability[y, x], 0.0, 1.0))
            expected = 0.0
            for label, weight in ((1, p_fg), (0, 1.0 - p_fg)):
                if weight <= 0.0:
                    continue
                prompt = accumulate_prompt(context.box_xy, np.concatenate([context.clicks_xy.reshape(-1, 2), [[x, y]]]),
                                           np.concatenate([context.click_labels.reshape(-1), [label]]),
                                           context.prediction.low_res_logits)
                output = context.model.predict(context.embedding, prompt.points_xy, prompt.labels, prompt.box_xy,
                                               prompt.mask_input)
                expected += weight * float(np.sum(output.extras["predictive_entropy"]))
            if expected < best_entropy:
                best_xy, best_entropy = (x, y), expected
        return Click(best_xy, None)


_POLICIES: dict[str, Callable[[], ClickPolicy]] = {}


def register_policy(name: str, factory: Callable[[], ClickPolicy], overwrite: bool = False) -> None:
    """Register a policy factory under ``name`` (letters, digits and ``_``)."""
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"policy names are lower-case letters, digits and '_', got {name!r}")
    if name in _POLICIES and not overwrite:
        raise ValueError(f"policy {name!r} is already registered: pass overwrite=True to replace it")
    _POLICIES[name] = factory


def available_policies() -> tuple[str, ...]:
    """Registered policy names, sorted."""
    return tuple(sorted(_POLICIES))


def make_policy(name: str) -> ClickPolicy:
    """A new instance of the policy registered as ``name``."""
    if name not in _POLICIES:
        raise ValueError(f"unknown click policy {name!r}: choose one of {', '.join(available_policies())}")
    return _POLICIES[name]()


def parse_policy_names(values: list[str] | tuple[str, ...] | str) -> list[str]:
    """``["oracle,random", "bald"]`` -> ``["oracle", "random", "bald"]``: split, strip, drop duplicates (keeping
    order) and check every name is registered."""
    items = [values] if isinstance(values, str) else list(values)
    names: list[str] = []
    for item in items:
        for name in (part.strip() for part in item.split(",")):
            if name and name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"no click policy given: choose one or more of {', '.join(available_policies())}")
    for name in names:
        if name not in _POLICIES:
            raise ValueError(f"unknown click policy {name!r}: choose one of {', '.join(available_policies())}")
    return names


for _cls in (OraclePolicy, RandomErrorPolicy, RandomPolicy, BaldPolicy, EntropyPolicy, EpigPolicy, ExpectedErrorPolicy,
             LookaheadBaldPolicy):
    register_policy(_cls.name, _cls)
del _cls
register_policy("bald_pixel", lambda: BaldPolicy(footprint=0.0, gate=0.0, exclusion=0.0))
register_policy("entropy_pixel", lambda: EntropyPolicy(footprint=0.0, gate=0.0, exclusion=0.0))
