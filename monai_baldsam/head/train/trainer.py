"""Train a prediction head on a frozen backbone, fit its last-layer Laplace posterior and write head + model card.

Pipeline of :func:`train_head`:

1. Images of each folder (``images/`` + ``masks/``) are split by image, seeded, into training and validation
   (:func:`~monai_baldsam.head.train.data.split_cases`), loaded as the evaluation loads them and encoded once
   through the on-disk :class:`~monai_baldsam.head.train.embedding_store.EmbeddingStore`.
2. Each step simulates a batch of interactive sessions (:mod:`~monai_baldsam.head.train.simulation`): a jittered
   ground-truth box or a deep first click, then error-driven clicks with mask feedback; BCE + Dice on the
   low-resolution grid at every round (as SAM trains; previous logits detached), AdamW with cosine decay.
3. After every epoch the validation images run deterministic sessions (exact box / deepest click, then the
   RITM oracle) on the low-resolution grid; the best epoch's weights are kept (early stopping with patience).
4. The Laplace posterior of the last layer is fitted on subsampled pixels of simulated training states; the
   likelihood temperature is picked by the validation pixels' probit NLL, the prior precision by the evidence.
5. The head file (:func:`~monai_baldsam.head.checkpoint.save_head`) and a JSON card are written atomically; the
   card's metrics come from the evaluation's own simulator at full resolution (oracle clicks) on the validation
   images, for the head and for the plain decoder.

Under ``torchrun`` (a bundle's ``multi_gpu_train.json``) the head is wrapped in ``DistributedDataParallel``, each
epoch's images are dealt to the ranks by a ``DistributedSampler`` (padded so every rank takes as many steps), the
first-prompt kind and number of rounds of each step come from a generator shared by all ranks, every rank validates
on the same images (so early stopping agrees), and rank 0 gathers the ranks' last-layer pixels, fits the posterior
and writes the head and its card.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from monai_baldsam import distributed
from monai_baldsam.bayes import LastLayerLaplace
from monai_baldsam.head.checkpoint import backbone_signature, load_head, save_head
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.head.features import FeatureConfig, FeatureExtractor
from monai_baldsam.head.model import HeadConfig, PredictionHead
from monai_baldsam.head.train.data import TrainItem, load_items, split_cases
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.optim_config import OptimConfig
from monai_baldsam.head.train.scaffold import (
    BestState,
    TimeBudget,
    TrainResult,
    checked_outputs,
    config_record,
    cosine_factor,
    display_data_dir,
    environment,
    training_backbone,
    write_card,
)
from monai_baldsam.head.train.simulation import FirstKind, run_session_rounds, start_sessions
from monai_baldsam.head.train.volume_slices import VolumeSliceCase
from monai_baldsam.interaction.model import ClickModel, SamClickModel
from monai_baldsam.interaction.policies import make_policy
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.encoder_runtime import ImageEncoderRunner, make_encoder
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding

__all__ = ["TrainConfig", "TrainResult", "segmentation_loss", "validate_low_res", "train_head",
           "collect_last_layer_rows"]


@dataclass(frozen=True)
class TrainConfig(OptimConfig):
    """Optimisation and simulation settings of :func:`train_head` (recorded in the card); ``epochs``,
    ``batch_size``, ``lr`` and ``weight_decay`` (defaults 20, 4, 2e-3, 1e-4) come from :class:`OptimConfig`."""

    min_rounds: int = 2
    max_rounds: int = 6
    box_probability: float = 0.5
    box_jitter: float = 0.1
    click_spread: float = 0.3
    uncertain_click_fraction: float = 0.3
    patience: int = 4
    val_rounds: int = 5
    laplace_structure: str = "full"
    laplace_pixels_per_state: int = 1024
    laplace_rounds: int = 4
    temperatures: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
    eval_interactions: int = 5
    max_train_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"1 <= min_rounds <= max_rounds must hold, got {self.min_rounds}..{self.max_rounds}")
        if not 0.0 <= self.box_probability <= 1.0:
            raise ValueError(f"box_probability must be in [0, 1], got {self.box_probability}")
        if not 0.0 <= self.uncertain_click_fraction <= 1.0:
            raise ValueError(f"uncertain_click_fraction must be in [0, 1], got {self.uncertain_click_fraction}")


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BCE (mean over valid pixels) + soft Dice (per image, averaged) of ``logits (B, 1, L, L)`` against
    ``target (B, L, L)`` in [0, 1], counting only ``valid (B, L, L)`` pixels."""
    logit = logits[:, 0]
    weight = valid.float()
    bce = (F.binary_cross_entropy_with_logits(logit, target, reduction="none") * weight).sum() / weight.sum()
    prob = torch.sigmoid(logit) * weight
    inter = (prob * target).sum(dim=(1, 2))
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum(dim=(1, 2)) + (target * weight).sum(dim=(1, 2)) + 1.0)
    return bce + dice.mean()


def _targets(items: Sequence[TrainItem], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.as_tensor(np.stack([i.target for i in items]), dtype=torch.float32, device=device)
    valid = torch.as_tensor(np.stack([i.valid for i in items]), device=device)
    return target, valid


def _batches(items: Sequence[TrainItem], size: int) -> list[list[TrainItem]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


@torch.no_grad()
def validate_low_res(extractor: FeatureExtractor, head: PredictionHead, items: Sequence[TrainItem], n_rounds: int,
                     batch_size: int = 8) -> dict[str, list[float]]:
    """Mean IoU on the low-resolution grid (valid pixels) after each of ``n_rounds`` interactions of deterministic
    sessions (exact box or deepest click first, then the RITM oracle), per first-prompt kind."""
    head.eval()
    out: dict[str, list[float]] = {}
    for kind in FirstKind:
        ious = np.zeros((len(items), n_rounds))
        row = 0
        for batch in _batches(items, batch_size):
            state = start_sessions(batch, kind, None, extractor.img_size, extractor.low_res)
            target, valid = _targets(batch, extractor.backbone.device)
            for r, _, output in run_session_rounds(extractor, head, state, n_rounds, None):
                pred = (output.logits[:, 0] > 0) & valid
                truth = target.bool() & valid
                inter = (pred & truth).flatten(1).sum(1).float()
                union = (pred | truth).flatten(1).sum(1).float().clamp_min(1.0)
                ious[row:row + len(batch), r] = (inter / union).cpu().numpy()
            row += len(batch)
        out[kind.value] = ious.mean(axis=0).round(4).tolist()
    return out


def collect_last_layer_rows(extractor: FeatureExtractor, head: PredictionHead, items: Sequence[TrainItem],
                  rng: np.random.Generator, n_rounds: int, per_state: int, batch_size: int
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Subsampled pixels ``(features (1, C+1, 1, n), targets (1, 1, n))`` of the last layer over simulated sessions."""
    head.eval()
    rows: list[tuple[torch.Tensor, torch.Tensor]] = []
    for n, batch in enumerate(_batches(items, batch_size)):
        kind = FirstKind.BOX if n % 2 == 0 else FirstKind.CLICK
        state = start_sessions(batch, kind, rng, extractor.img_size, extractor.low_res, 0.1, 0.3)
        with torch.no_grad():
            for _, _, output in run_session_rounds(extractor, head, state, n_rounds, rng, click_spread=0.3):
                features = PredictionHead.last_layer_features(output)
                for b, item in enumerate(batch):
                    index = np.flatnonzero(item.valid.reshape(-1))
                    chosen = torch.as_tensor(rng.choice(index, size=min(per_state, index.size), replace=False))
                    feats = features[b].flatten(1)[:, chosen.to(features.device)].cpu()
                    target = torch.as_tensor(item.target.reshape(-1)[chosen.numpy()], dtype=torch.float32)
                    rows.append((feats[None, :, None, :], target[None, None, :]))
    return rows


def _fit_laplace(head: PredictionHead, backbone: SamBackbone, train_rows: list, val_rows: list, structure: str,
                 temperatures: Sequence[float]) -> tuple[LastLayerLaplace, dict[str, Any]]:
    laplace = LastLayerLaplace.from_module(head.last_layer, structure=structure,
                                           signature=backbone_signature(backbone))
    laplace.fit(train_rows)
    scores: dict[str, float] = {}
    best: tuple[float, float, torch.Tensor] | None = None
    for temperature in temperatures:
        laplace.temperature = float(temperature)
        prior = laplace.optimize_prior_precision("marglik")
        nll = float(laplace.validation_nll(prior.reshape(1), val_rows or train_rows)[0])
        scores[f"{temperature:g}"] = round(nll, 6)
        if best is None or nll < best[0]:
            best = (nll, float(temperature), prior.clone())
    if best is None:
        raise ValueError("no likelihood temperature to choose from: give at least one")
    laplace.temperature = best[1]
    laplace.prior_precision = best[2]
    info = {"structure": structure, "temperature": best[1], "prior_precision": float(best[2]),
            "val_probit_nll_by_temperature": scores, "fitted_pixels": int(laplace.n_data)}
    return laplace, info


def _evaluate_full_res(model: ClickModel, items: Sequence[TrainItem], n_interactions: int, seed: int
                       ) -> dict[str, Any]:
    """The evaluation's own simulator (oracle clicks) at slice size on ``items``; mIoU after each interaction."""
    policy = make_policy("oracle")
    out: dict[str, Any] = {}
    for kind in ("box", "click"):
        curves = []
        for n, item in enumerate(items):
            if item.image is None:
                raise ValueError("full-resolution evaluation needs the validation images (keep_images=True)")
            embedding = SliceEmbedding(item.embedding.to(_model_device(model)), item.original_hw)
            rng = np.random.default_rng([seed, n])
            prompt = make_first_prompt(item.truth, kind, rng)
            first = run_first_interaction(model, embedding, prompt)
            result = run_session(model, embedding, item.truth, policy, first, n_interactions, rng)
            curves.append(result.iou)
        curve = np.mean(curves, axis=0) if curves else np.zeros(n_interactions)
        out[kind] = {"miou_per_interaction": [round(float(v), 4) for v in curve],
                     f"miou@{n_interactions}": round(float(curve[-1]), 4)}
    return out


def _model_device(model: ClickModel) -> torch.device:
    predictor = getattr(model, "predictor", None)
    return predictor.device if predictor is not None else torch.device("cpu")


def _with_object(items: Sequence[TrainItem]) -> list[TrainItem]:
    """The items that hold the object (validation sessions need a box and a first click inside it)."""
    return [item for item in items if not item.is_empty]


def _per_domain(items: Sequence[TrainItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.domain] = counts.get(item.domain, 0) + 1
    return counts


def train_head(data_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
               backbone: str | SamBackbone = "lite_medsam", epochs: int | None = None, device: str = "cpu",
               seed: int = 0, val_fraction: float = 0.15, store_dir: str | os.PathLike[str] | None = None,
               max_per_folder: int | Mapping[str, int] | None = None, config: TrainConfig | None = None,
               head_options: dict[str, Any] | None = None, overwrite: bool = False, progress: bool = True,
               init: str | os.PathLike[str] | None = None, config_file: str | os.PathLike[str] | None = None,
               decoder: str = "original", encoder: str = "torch") -> TrainResult:
    """Train a head for ``backbone`` on the images of ``data_dirs`` and write it to ``out`` (+ ``out`` with
    ``.json``: the card). See the module docstring for the steps.

    Args:
        data_dirs: folders with ``images/`` and ``masks/`` (matching stems; or of 3D volumes, trained on their
            slices, split by volume: :mod:`~monai_baldsam.head.train.volume_slices`); never the dev data.
        out: the head file (``.pt``); refused if it exists unless ``overwrite``.
        backbone: registry name or a loaded :class:`SamBackbone`.
        decoder: the decoder a backbone given by name is loaded with (``original``, ``clicks_v1``), recorded.
        encoder: the runtime computing missing embeddings (the store is keyed by it: ``openvino-bf16`` reuses
            the ``clicks_v1`` decoder's training store).
        epochs: overrides ``config.epochs``.
        device: where training runs.
        seed: seeds the split, the head's initialisation, the simulation and the batching.
        val_fraction: fraction of each folder's images held out (validation, early stopping, temperature).
        store_dir: embedding store folder (default ``$BALDSAM_CACHE/embeddings``).
        max_per_folder: at most this many images per folder (seeded draw): a number, or folder name -> number.
        config: :class:`TrainConfig`; ``head_options``: fields of :class:`HeadConfig`.
        init: a head file (same backbone) whose weights and config start the training (fine-tuning; e.g. a domain
            head from the general head, or a head moved to another decoder); ``head_options`` may then only give
            ``features`` (how the decoder is prompted). Its SHA-256 goes into the card.
        config_file: the configuration the settings came from (``configs/head_*.json``), in the card with its hash.
    """
    start_time = time.time()
    config = config or TrainConfig()
    if epochs is not None:
        config = TrainConfig(**{**asdict(config), "epochs": int(epochs)})
    if not config.temperatures:
        raise ValueError("config.temperatures must list at least one likelihood temperature")
    out, card_path = checked_outputs(out, overwrite)
    model = training_backbone(backbone, device, decoder)
    runner = make_encoder(model, encoder)
    train_items, val_items = _training_items(data_dirs, model, EmbeddingStore(store_dir), runner, val_fraction, seed,
                                             max_per_folder, progress)
    start = _starting_head(model, device, seed, init, head_options, train_items, val_items)
    train_items, val_items = start.train_items, start.val_items
    extractor = FeatureExtractor(model, start.config.features)
    fit = _fit_head(extractor, start.head, train_items, val_items, config, seed, start.init is not None, progress)
    head = start.head
    head.load_state_dict(fit.best_state)
    head.eval()  # the best epoch
    train_rows = collect_last_layer_rows(extractor, head, distributed.shard(train_items), fit.rng, config.laplace_rounds,
                                         config.laplace_pixels_per_state, config.batch_size)
    train_rows = [row for rows in distributed.gather_to_all(train_rows) for row in rows]
    if distributed.rank() != 0:  # rank 0 fits the posterior and writes the files
        return TrainResult(out, card_path, {})
    val_rows = collect_last_layer_rows(extractor, head, val_items, np.random.default_rng(seed + 1),
                                       config.laplace_rounds, config.laplace_pixels_per_state, config.batch_size)
    laplace, laplace_info = _fit_laplace(head, model, train_rows, val_rows, config.laplace_structure,
                                         config.temperatures)
    head.requires_grad_(False)
    metrics = _validation_metrics(model, head, laplace, val_items, config, seed)
    data_names = [display_data_dir(d) for d in data_dirs]
    meta = {"seed": seed, "best_epoch": fit.best_epoch, "data_dirs": data_names, "init": start.init,
            "decoder": model.decoder_name, "world_size": distributed.world_size()}
    save_head(out, head, laplace, model, meta=meta, overwrite=overwrite)
    card = {
        "head_file": out.name, "head_sha256": file_sha256(out), "backbone": backbone_signature(model),
        "decoder": model.signature, "encoder_runtime": runner.tag,
        "head_config": start.config.to_dict(), "train_config": {**asdict(config), "temperatures":
                                                                list(config.temperatures)},
        "parameters": int(sum(p.numel() for p in head.parameters())), "seed": seed, "val_fraction": val_fraction,
        "data_dirs": data_names, "init": start.init,
        "max_per_folder": dict(max_per_folder) if isinstance(max_per_folder, Mapping) else max_per_folder,
        "counts": {"train": _per_domain(train_items), "val": _per_domain(val_items)},
        "data": {"train": [_describe(i) for i in train_items], "val": [_describe(i) for i in val_items]},
        "history": fit.history, "best_epoch": fit.best_epoch, "laplace": laplace_info,
        "validation_full_res_oracle": metrics,
        "environment": {**environment(device), "world_size": distributed.world_size()},
        "duration_s": round(time.time() - start_time, 1), **config_record(config_file),
    }
    write_card(card_path, card, overwrite)
    return TrainResult(out, card_path, card)


def _training_items(data_dirs: Sequence[str | os.PathLike[str]], model: SamBackbone, store: EmbeddingStore,
                    runner: ImageEncoderRunner, val_fraction: float, seed: int,
                    max_per_folder: int | Mapping[str, int] | None, progress: bool
                    ) -> tuple[list[TrainItem], list[TrainItem]]:
    """The training and validation items of ``data_dirs`` (split by image, or by volume), embeddings from ``store``
    or computed by ``runner``."""
    train_cases, val_cases = split_cases(data_dirs, val_fraction, seed, max_per_folder)
    train_items = load_items(train_cases, model, store, keep_images=False, desc="train images", progress=progress,
                             encoder=runner)
    val_items = load_items(val_cases, model, store, keep_images=True, desc="val images", progress=progress,
                           encoder=runner)
    return train_items, val_items


@dataclass
class _StartingHead:
    """The head training starts from, its config, the ``init`` file's record, and the (possibly re-dealt) items."""

    head: PredictionHead
    config: HeadConfig
    init: dict[str, str] | None
    train_items: list[TrainItem]
    val_items: list[TrainItem]


def _starting_head(model: SamBackbone, device: str, seed: int, init: str | os.PathLike[str] | None,
                   head_options: dict[str, Any] | None, train_items: list[TrainItem], val_items: list[TrainItem]
                   ) -> _StartingHead:
    """A new seeded head, or the ``init`` head's weights and config (fine-tuning). Validation stays unseen: the
    validation images the starting head trained on move to training."""
    if init is None:
        head_config = HeadConfig.for_backbone(model, **(head_options or {}))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = PredictionHead(head_config).to(device)
        return _StartingHead(head, head_config, None, train_items, val_items)
    if set(head_options or {}) - {"features"}:
        raise ValueError(f"with init, head_options may only set 'features' (a fine-tuned head keeps its layers), got "
                         f"{sorted(head_options or {})}")
    start = load_head(init, model, device=device)
    config = start.config
    if head_options:
        config = replace(config, features=FeatureConfig(**{**config.features.to_dict(), **head_options["features"]}))
    head = PredictionHead(config).to(device)
    head.load_state_dict(start.head.state_dict())
    init_info = {"file": Path(init).name, "sha256": str(start.sha256)}
    seen = _trained_on(Path(init))
    moved = [i for i in val_items if i.sha256["image"] in seen]
    if moved:
        val_items = [i for i in val_items if i.sha256["image"] not in seen]
        train_items = train_items + moved
        tqdm.write(f"{len(moved)} validation images were training images of {Path(init).name}: moved to training")
    return _StartingHead(head, config, init_info, train_items, val_items)


@dataclass
class _FitResult:
    """The best epoch's weights, its number, the per-epoch history and the clicks' generator (it goes on to the
    Laplace rows, as in one run)."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, Any]]
    rng: np.random.Generator


@dataclass
class _Optimisation:
    """What one epoch's steps need besides the data: the (possibly DDP-wrapped) head, optimiser, schedule and the
    generators of clicks and of the step schedule."""

    model_head: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: torch.utils.data.DistributedSampler | None
    rng: np.random.Generator
    schedule_rng: np.random.Generator


def _optimisation(head: PredictionHead, device: torch.device, n_items: int, config: TrainConfig, seed: int
                  ) -> _Optimisation:
    """One process: a single generator, as before; several: clicks per rank, the step schedule shared by all ranks."""
    rank, world = distributed.rank(), distributed.world_size()
    rng = np.random.default_rng(seed) if world == 1 else np.random.default_rng([seed, rank])
    schedule_rng = rng if world == 1 else np.random.default_rng([seed, world])
    sampler = None if world == 1 else torch.utils.data.DistributedSampler(
        range(n_items), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    model_head = head if world == 1 else torch.nn.parallel.DistributedDataParallel(
        head, device_ids=[device] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil((n_items if sampler is None else len(sampler)) / config.batch_size)
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_factor(s, total_steps))
    return _Optimisation(model_head, optimizer, scheduler, sampler, rng, schedule_rng)


def _fit_head(extractor: FeatureExtractor, head: PredictionHead, train_items: list[TrainItem],
              val_items: list[TrainItem], config: TrainConfig, seed: int, from_init: bool, progress: bool
              ) -> _FitResult:
    """Epochs of simulated sessions with validation after each; early stopping and the time budget."""
    opt = _optimisation(head, extractor.backbone.device, len(train_items), config, seed)
    val_set = val_items or _with_object(train_items)[:16]
    history: list[dict[str, Any]] = []
    best = BestState(score=-1.0, state=copy.deepcopy(head.state_dict()), step=0)
    if from_init:  # a fine-tune keeps its starting point unless an epoch beats it on validation
        val = validate_low_res(extractor, head, val_set, config.val_rounds)
        best.score = float(np.mean([curve[-1] for curve in val.values()]))
        history.append({"epoch": 0, "val_miou": val, "score": round(best.score, 4)})
        tqdm.write(f"epoch 0 (init): val mIoU box {val['box']}, click {val['click']}")
    budget = TimeBudget(config.max_train_seconds)  # counts training, not the (cached) encoding before it
    progress = progress and distributed.rank() == 0
    for epoch in tqdm(range(1, config.epochs + 1), desc="epochs", unit="epoch", disable=not progress):
        loss = _train_epoch(extractor, head, opt, train_items, config, epoch, progress)
        val = validate_low_res(extractor, head, val_set, config.val_rounds)
        score = float(np.mean([curve[-1] for curve in val.values()]))
        history.append({"epoch": epoch, "train_loss": round(loss, 5), "val_miou": val, "score": round(score, 4)})
        if progress:
            tqdm.write(f"epoch {epoch}: loss {loss:.4f}, val mIoU box {val['box']}, click {val['click']}")
        spent = budget.spent()
        if not best.offer(score, epoch, head.state_dict) and best.stale >= config.patience:
            tqdm.write(f"early stop after epoch {epoch}: no improvement for {config.patience} epochs")
            break
        if distributed.broadcast_flag(spent):
            tqdm.write(f"stopping after epoch {epoch}: the time budget of {config.max_train_seconds:.0f} s is spent")
            break
    return _FitResult(best.state, best.step, history, opt.rng)


def _train_epoch(extractor: FeatureExtractor, head: PredictionHead, opt: _Optimisation, train_items: list[TrainItem],
                 config: TrainConfig, epoch: int, progress: bool) -> float:
    """One epoch of steps, each a batch of simulated sessions; returns the mean step loss."""
    head.train()
    losses = []
    if opt.sampler is None:
        order = opt.rng.permutation(len(train_items))
    else:
        opt.sampler.set_epoch(epoch)
        order = np.fromiter(iter(opt.sampler), dtype=np.int64)
    batch_bar = tqdm(_batches([train_items[i] for i in order], config.batch_size), desc=f"epoch {epoch}",
                     unit="batch", leave=False, disable=not progress)
    for batch in batch_bar:
        kind = FirstKind.BOX if opt.schedule_rng.random() < config.box_probability else FirstKind.CLICK
        n_rounds = int(opt.schedule_rng.integers(config.min_rounds, config.max_rounds + 1))
        state = start_sessions(batch, kind, opt.rng, extractor.img_size, extractor.low_res, config.box_jitter,
                               config.click_spread)
        target, valid = _targets(batch, extractor.backbone.device)
        batch_loss = 0.0
        for r, _, output in run_session_rounds(extractor, opt.model_head, state, n_rounds, opt.rng, lambda r: True,
                                               config.click_spread, config.uncertain_click_fraction):
            loss = segmentation_loss(output.logits, target, valid) / n_rounds
            with _no_sync(opt.model_head, last=r == n_rounds - 1):  # gradients are averaged once per step
                loss.backward()
            batch_loss += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.optimizer.step()
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scheduler.step()
        losses.append(batch_loss)
        batch_bar.set_postfix(loss=f"{np.mean(losses):.4f}")
    return float(np.mean(losses))


def _validation_metrics(model: SamBackbone, head: PredictionHead, laplace: LastLayerLaplace,
                        val_items: list[TrainItem], config: TrainConfig, seed: int) -> dict[str, Any]:
    """Full-resolution oracle sessions on the validation images, for the head and for the plain decoder."""
    if not val_items:
        return {}
    click_model = BayesianHeadClickModel(SamPredictor(model), head, laplace)
    return {"head": _evaluate_full_res(click_model, val_items, config.eval_interactions, seed),
            "sam_decoder": _evaluate_full_res(SamClickModel(SamPredictor(model)), val_items, config.eval_interactions,
                                              seed)}


def _no_sync(model: torch.nn.Module, last: bool) -> Any:
    """DDP's ``no_sync`` for every backward of a step but the last (gradients accumulate locally, then one
    all-reduce); a plain module needs nothing."""
    if last or not isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def _trained_on(head_path: Path) -> set[str]:
    """Image SHA-256s a head was trained on, from its card (empty when it has none)."""
    card = head_path.with_suffix(".json")
    if not card.is_file():
        return set()
    return {d["image_sha256"] for d in json.loads(card.read_text()).get("data", {}).get("train", [])}


def _describe(item: TrainItem) -> dict[str, Any]:
    entry: dict[str, Any] = {"domain": item.domain, "name": item.case.name, "image": item.case.image.name,
                             "image_sha256": item.sha256["image"], "mask_sha256": item.sha256["mask"]}
    if isinstance(item.case, VolumeSliceCase):  # a volume's slice: which one, and what prompts an empty one
        entry.update(volume=item.case.volume, axis=item.case.axis, slice=item.case.index)
        if item.case.neighbour is not None:
            entry["neighbour"] = item.case.neighbour
    return entry
