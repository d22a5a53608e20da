"""Simulated active learning over images: does the app's strategy pick the images whose labels pay most?

MONAI Label's loop, as the app runs it (:mod:`monai_baldsam.monailabel`), replayed on a labelled training pool:

1. **Seed.** ``seed_images`` images drawn at random (seeded) are labelled and the starting head (the domain's bundle
   head) is fine-tuned on them the way the app's trainer does (:class:`~monai_baldsam.monailabel.lib.trainer.
   HeadTrainer`: :func:`~monai_baldsam.head.train.trainer.train_head` with the head in use as ``init``, its
   ``max_epochs``/``max_minutes``/``val_fraction`` defaults).
2. **Rounds.** The unlabelled rest of the pool is scored by the current head as the app's scoring methods score it
   (a box over the whole picture; ``bald``: the mean mutual information in bits, :func:`~monai_baldsam.
   image_selection.mi_summary`; ``usam``: ``1 -`` UncertainSAM's predicted IoU), the top ``per_round`` are taken in
   the order of :func:`~monai_baldsam.image_selection.rank_candidates` (``random``: drawn at random, seeded), their
   ground truth joins the labels (the annotator's submitted labels), and the head is fine-tuned again from the
   current one on every label so far.
3. After the seed and after every round the head is measured on the domain's dev images: the exact ground-truth box,
   then oracle clicks, IoU after each of ``interactions`` interactions (``baldsam evaluate``'s protocol, seed 0).

Every image is encoded once (the on-disk :class:`~monai_baldsam.head.train.embedding_store.EmbeddingStore`, which
the trainer reads too). The seed round depends only on the seed, so the strategies of one seed share it.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from monai_baldsam.evaluation.runner import session_rng
from monai_baldsam.head.checkpoint import load_head
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.trainer import TrainConfig, train_head
from monai_baldsam.image_selection import SCORE_KEYS, Candidate, mi_summary, rank_candidates, whole_picture_box
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.policies import make_policy
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.io.cases import EvalCase
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.encoder_runtime import ImageEncoderRunner
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding
from monai_baldsam.usam import load_usam, resolve_usam

__all__ = ["STRATEGIES", "ActiveLearningConfig", "EncodedCase", "encode_cases", "head_click_model",
           "pool_scores", "pick_next", "interactive_iou", "fine_tune", "LabelledHead", "seed_round", "simulate",
           "labels_to_reach", "strategy_curves", "label_savings"]

#: the strategies simulated: MONAI Label's ``random`` and the app's ``bald`` and ``usam``.
STRATEGIES = ("random", "bald", "usam")


def _app_train_config() -> TrainConfig:
    """The app trainer's defaults (``max_epochs`` 5, ``max_minutes`` 10)."""
    return TrainConfig(epochs=5, max_train_seconds=600.0)


@dataclass(frozen=True)
class ActiveLearningConfig:
    """The loop's settings (recorded with the results).

    Attributes:
        seed_images: images labelled before the first round.
        per_round: images labelled per round (the strategy's top K).
        rounds: rounds after the seed.
        interactions: the dev measure is IoU after this many interactions (box + oracle clicks).
        train: the trainer's settings (the app's: 5 epochs, 10 minutes).
        val_fraction: share of the labels the trainer holds out (the app's 0.15).
        usam: the UncertainSAM heads of the ``usam`` scoring (the app's ``general``).
        top_fraction, score_key: the ``bald`` scoring's summary (the app's: the mean MI).
    """

    seed_images: int = 20
    per_round: int = 20
    rounds: int = 4
    interactions: int = 5
    train: TrainConfig = field(default_factory=_app_train_config)
    val_fraction: float = 0.15
    usam: str = "general"
    top_fraction: float = 0.01
    score_key: str = "mean_mi_bits"

    def __post_init__(self) -> None:
        if min(self.seed_images, self.per_round, self.rounds, self.interactions) < 1:
            raise ValueError("seed_images, per_round, rounds and interactions must be at least 1")
        if self.score_key not in SCORE_KEYS:
            raise ValueError(f"score_key must be one of {SCORE_KEYS}, got {self.score_key!r}")

    @property
    def labelled_counts(self) -> list[int]:
        """The number of labelled images after the seed and after each round."""
        return [self.seed_images + r * self.per_round for r in range(self.rounds + 1)]

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["train"]["temperatures"] = list(self.train.temperatures)
        return record


@dataclass(frozen=True)
class EncodedCase:
    """One image with its embedding and ground truth (SAM orientation)."""

    case: EvalCase
    embedding: SliceEmbedding
    truth: np.ndarray

    @property
    def name(self) -> str:
        return self.case.name


def encode_cases(cases: Sequence[EvalCase], backbone: SamBackbone, store: EmbeddingStore, runner: ImageEncoderRunner,
                 desc: str = "encode", progress: bool = True) -> list[EncodedCase]:
    """Load each case as the evaluation loads it and encode it once (from/into ``store``, keyed as the trainer keys
    it, so training reuses the embedding)."""
    predictor = SamPredictor(backbone, encoder=runner)
    out = []
    for case in tqdm(cases, desc=desc, unit="image", disable=not progress):
        loaded = load_case(case)
        features = store.get_or_compute(loaded.image, backbone, predictor.encode, runner.tag)
        hw = (int(loaded.truth.shape[0]), int(loaded.truth.shape[1]))
        out.append(EncodedCase(case, SliceEmbedding(features.to(backbone.device), hw), loaded.truth))
    return out


def head_click_model(backbone: SamBackbone, head_path: Path) -> BayesianHeadClickModel:
    """The head file as the click model the app serves (the head file's own settings; embeddings given)."""
    trained = load_head(head_path, backbone)
    return BayesianHeadClickModel.from_trained(SamPredictor(backbone), trained)


def pool_scores(strategy: str, model: BayesianHeadClickModel, cases: Sequence[EncodedCase],
                config: ActiveLearningConfig, progress: bool = False) -> dict[str, float]:
    """Image name -> the score the app's scoring method of ``strategy`` writes (higher: asked first); ``random``
    scores nothing."""
    if strategy == "random":
        return {}
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose among {', '.join(STRATEGIES)}")
    usam = None
    if strategy == "usam":
        heads = resolve_usam(config.usam)
        usam = load_usam(heads.path, click_model=model, sha256=heads.sha256)
    scores = {}
    for item in tqdm(cases, desc=f"{strategy} scoring", unit="image", disable=not progress):
        box = whole_picture_box(item.embedding.original_hw)
        if usam is not None:
            quality = usam.assess(item.embedding, None, None, box).quality.to_dict()
            scores[item.name] = 1.0 - float(quality["predicted_iou"])
        else:
            output = model.predict(item.embedding, None, None, box, None)
            mean_bits, top_bits = mi_summary([output.extras["mutual_information"]], config.top_fraction)
            scores[item.name] = mean_bits if config.score_key == "mean_mi_bits" else top_bits
    return scores


def pick_next(strategy: str, unlabelled: Sequence[str], scores: dict[str, float], k: int,
              rng: np.random.Generator) -> list[str]:
    """The ``k`` images the strategy offers next: ``random`` draws them; ``bald``/``usam`` take the highest scores in
    :func:`rank_candidates` order (none served yet: ties go to the smaller name)."""
    names = sorted(unlabelled)
    k = min(k, len(names))
    if strategy == "random":
        return [names[i] for i in sorted(rng.choice(len(names), size=k, replace=False))]
    missing = [n for n in names if n not in scores]
    if missing:
        raise ValueError(f"{len(missing)} unlabelled images have no {strategy} score (e.g. {missing[0]})")
    ranked = rank_candidates([Candidate(n, scores[n], 0.0) for n in names])
    return [c.image_id for c in ranked[:k]]


def interactive_iou(model: BayesianHeadClickModel, cases: Sequence[EncodedCase], interactions: int,
                    seed: int = 0) -> np.ndarray:
    """``(images, interactions)`` IoU after each interaction: the exact ground-truth box, then oracle clicks (the
    evaluation's simulator and generators)."""
    curves = []
    for item in cases:
        prompt = make_first_prompt(item.truth, "box", session_rng(seed, item.name, "first:box"))
        first = run_first_interaction(model, item.embedding, prompt)
        session = run_session(model, item.embedding, item.truth, make_policy("oracle"), first, interactions,
                              session_rng(seed, item.name, "policy:oracle"))
        curves.append(session.iou)
    return np.asarray(curves, dtype=np.float64)


def _label_folder(labelled: Sequence[EncodedCase], root: Path) -> Path:
    """``root/images`` and ``root/masks``: links to the labelled images and their ground truth (the annotators'
    submitted labels)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for item in labelled:
        for kind, path in (("images", item.case.image), ("masks", item.case.mask)):
            (root / kind / Path(path).name).symlink_to(Path(path).resolve())
    return root


def fine_tune(labelled: Sequence[EncodedCase], init: Path, out: Path, backbone: SamBackbone, store: EmbeddingStore,
              runner: ImageEncoderRunner, config: ActiveLearningConfig, seed: int) -> dict[str, Any]:
    """Fine-tune the head ``init`` on ``labelled`` as the app's trainer does, written to ``out``; returns the card."""
    result = train_head([_label_folder(labelled, out.with_suffix(".data"))], out, backbone=backbone,
                        device=str(backbone.device), seed=seed, val_fraction=config.val_fraction,
                        store_dir=store.folder, config=config.train, init=str(init), progress=False,
                        encoder=runner.tag)
    return result.card


@dataclass
class LabelledHead:
    """The state after a round: the labelled names, the head trained on them, its dev IoU curves, and from the
    trainer's card its duration, the epochs it ran and the epoch it kept (0: the starting head's weights)."""

    labelled: list[str]
    head: Path
    dev_iou: np.ndarray
    train_seconds: float
    epochs_run: int
    best_epoch: int

    def record(self, interactions: int) -> dict[str, Any]:
        return {"labelled": len(self.labelled), "images": sorted(self.labelled), "head_sha256": file_sha256(self.head),
                f"miou@{interactions}": round(float(self.dev_iou[:, interactions - 1].mean()), 4),
                "dev_iou": [[round(float(v), 4) for v in row] for row in self.dev_iou],
                "train_seconds": round(self.train_seconds, 1), "epochs_run": self.epochs_run,
                "best_epoch": self.best_epoch}


def _trained(labelled: Sequence[EncodedCase], init: Path, out: Path, dev: Sequence[EncodedCase],
             backbone: SamBackbone, store: EmbeddingStore, runner: ImageEncoderRunner, config: ActiveLearningConfig,
             seed: int) -> LabelledHead:
    card = fine_tune(labelled, init, out, backbone, store, runner, config, seed)
    model = head_click_model(backbone, out)
    epochs = max((int(h["epoch"]) for h in card.get("history", [])), default=0)
    return LabelledHead([i.name for i in labelled], out, interactive_iou(model, dev, config.interactions),
                        float(card.get("duration_s", 0.0)), epochs, int(card.get("best_epoch") or 0))


def _rng(seed: int, *stream: str | int) -> np.random.Generator:
    return np.random.default_rng([seed, *[zlib.crc32(str(s).encode()) for s in stream]])


def seed_round(pool: Sequence[EncodedCase], dev: Sequence[EncodedCase], init: Path, workdir: Path,
               backbone: SamBackbone, store: EmbeddingStore, runner: ImageEncoderRunner,
               config: ActiveLearningConfig, seed: int) -> LabelledHead:
    """The seed set (drawn with ``seed``) and the head fine-tuned on it; shared by every strategy of this seed."""
    names = sorted(item.name for item in pool)
    if len(names) < config.seed_images + config.rounds * config.per_round:
        raise ValueError(f"the pool holds {len(names)} images, fewer than the {config.seed_images} + "
                         f"{config.rounds} x {config.per_round} the loop labels")
    chosen = pick_next("random", names, {}, config.seed_images, _rng(seed, "seed set"))
    by_name = {item.name: item for item in pool}
    return _trained([by_name[n] for n in chosen], init, workdir / f"seed{seed}_round0.pt", dev, backbone, store,
                    runner, config, seed)


def simulate(strategy: str, start: LabelledHead, pool: Sequence[EncodedCase], dev: Sequence[EncodedCase],
             workdir: Path, backbone: SamBackbone, store: EmbeddingStore, runner: ImageEncoderRunner,
             config: ActiveLearningConfig, seed: int,
             on_round: Callable[[LabelledHead], None] | None = None) -> list[LabelledHead]:
    """The rounds of one strategy from the seed round ``start``: score, pick, label, fine-tune, measure. Returns every
    round's state, ``start`` first."""
    by_name = {item.name: item for item in pool}
    rounds = [start]
    for r in range(1, config.rounds + 1):
        current = rounds[-1]
        unlabelled = [n for n in sorted(by_name) if n not in set(current.labelled)]
        scores = pool_scores(strategy, head_click_model(backbone, current.head), [by_name[n] for n in unlabelled], config)
        picked = pick_next(strategy, unlabelled, scores, config.per_round, _rng(seed, strategy, r))
        labelled = [*current.labelled, *picked]
        out = workdir / f"seed{seed}_{strategy}_round{r}.pt"
        state = _trained([by_name[n] for n in labelled], current.head, out, dev, backbone, store, runner, config, seed)
        rounds.append(state)
        if on_round is not None:
            on_round(state)
    return rounds



def labels_to_reach(counts: Sequence[int], curve: Sequence[float], target: float) -> float | None:
    """The number of labelled images at which ``curve`` (mIoU at each of ``counts``, increasing counts) first reaches
    ``target``, interpolated linearly between rounds; None when it never does."""
    counts = np.asarray(counts, dtype=np.float64)
    values = np.asarray(curve, dtype=np.float64)
    if counts.shape != values.shape or counts.size == 0 or np.any(np.diff(counts) <= 0):
        raise ValueError("counts and curve must have the same length and counts must increase")
    for i, value in enumerate(values):
        if value >= target:
            if i == 0:
                return float(counts[0])
            step = values[i] - values[i - 1]
            fraction = (target - values[i - 1]) / step if step > 0 else 1.0
            return float(counts[i - 1] + fraction * (counts[i] - counts[i - 1]))
    return None


def strategy_curves(per_seed: dict[str, dict[int, np.ndarray]], counts: Sequence[int]) -> dict[str, np.ndarray]:
    """Strategy -> ``(rounds, images)`` IoU per dev image at each labelled count, averaged over the seeds
    (``per_seed[strategy][seed]``: ``(rounds, images)``)."""
    out = {}
    for strategy, seeds in per_seed.items():
        stacked = np.stack([seeds[s] for s in sorted(seeds)])
        if stacked.shape[1] != len(counts):
            raise ValueError(f"{strategy}: {stacked.shape[1]} rounds recorded for {len(counts)} labelled counts")
        out[strategy] = stacked.mean(axis=0)
    return out


def label_savings(curves: dict[str, np.ndarray], counts: Sequence[int], baseline: str = "random"
                  ) -> dict[str, dict[str, Any]]:
    """For each strategy: the labelled images at which its seed-mean mIoU reaches ``baseline``'s final mIoU, and the
    share of the baseline's final count that saves (``saving`` >= 0.25 is the issue's target; None: never reached
    within the rounds)."""
    final = float(curves[baseline][-1].mean())
    out = {}
    for strategy, curve in curves.items():
        reached = labels_to_reach(counts, curve.mean(axis=1), final)
        out[strategy] = {"target_miou": round(final, 4), "labels": None if reached is None else round(reached, 1),
                         "saving": None if reached is None else round(1.0 - reached / counts[-1], 3)}
    return out
