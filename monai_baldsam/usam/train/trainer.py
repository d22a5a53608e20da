"""Train UncertainSAM heads on a frozen backbone and write heads + a model card.

Pipeline of :func:`train_usam`:

1. Per folder (``images/`` + ``masks/``), a seeded draw of at most ``max_per_folder`` images; images the Bayesian
   head that makes the click states (``head``) was trained on go last, so that its masks on the chosen images are
   as good as on unseen ones where the folder allows. The first ``val_fraction`` of each folder's draw is held out
   (validation: early stopping and the card's metrics). Embeddings come from the on-disk embedding store.
2. Per image, the simulated prompt states and targets (:func:`~monai_baldsam.usam.train.data.simulate_states`),
cached in
   a :class:`~monai_baldsam.usam.train.data.StateStore` under a full signature.
3. Regression, one MLP per target (:class:`~monai_baldsam.usam.model.UsamHeads`): smooth-L1 on each target's
   finite values, AdamW, seeded initialisation and batching, the epoch with the lowest validation loss kept.
4. The heads file (:func:`~monai_baldsam.usam.checkpoint.save_usam`) and a JSON card (every image with its SHA-256,
   settings, counts, validation metrics against SAM's own IoU prediction) are written atomically.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from monai_baldsam.head.checkpoint import backbone_signature, load_head
from monai_baldsam.head.click_model import BayesianHeadClickModel
from monai_baldsam.head.registry import WEIGHTS_DIR, resolve_head
from monai_baldsam.head.train.data import TrainItem, load_items
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.optim_config import OptimConfig
from monai_baldsam.head.train.scaffold import (
    BestState,
    TrainResult,
    checked_outputs,
    config_record,
    display_data_dir,
    environment,
    training_backbone,
    write_card,
)
from monai_baldsam.interaction.model import ClickModel, SamClickModel
from monai_baldsam.io.cases import EvalCase, discover_cases
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.embedding_cache import EmbeddingCache
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.predictor import SamPredictor, SliceEmbedding
from monai_baldsam.usam.checkpoint import save_usam
from monai_baldsam.usam.metrics import ranking_auc, spearman
from monai_baldsam.usam.model import TARGETS, UsamConfig, UsamHeads
from monai_baldsam.usam.train.data import ImageStates, StateConfig, StateStore, image_rng, simulate_states

__all__ = ["UsamTrainConfig", "choose_cases", "fit_heads", "train_usam"]


@dataclass(frozen=True)
class UsamTrainConfig(OptimConfig):
    """Optimisation settings of :func:`train_usam` (recorded in the card): the shared ones of
    :class:`~monai_baldsam.head.train.optim_config.OptimConfig` with this trainer's defaults, early-stopping
    ``patience``
    (epochs) and the smooth-L1 ``beta``."""

    epochs: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-3
    patience: int = 60
    smooth_l1_beta: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")


def choose_cases(folders: Sequence[str | os.PathLike[str]], seed: int, val_fraction: float,
                 max_per_folder: int | Mapping[str, int] | None = None, seen_sha256: set[str] | None = None
                 ) -> tuple[list[tuple[str, EvalCase]], list[tuple[str, EvalCase]], set[str]]:
    """``(train, val, seen)``: per folder a seeded order with images in ``seen_sha256`` (image hashes) last, cut to
    ``max_per_folder``; the first ``ceil(val_fraction * n)`` go to validation. ``seen`` holds the chosen images'
    names that were in ``seen_sha256``."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    seen_sha256 = seen_sha256 or set()
    train: list[tuple[str, EvalCase]] = []
    val: list[tuple[str, EvalCase]] = []
    seen: set[str] = set()
    for folder in folders:
        path = Path(folder).expanduser()
        cases = discover_cases(path)
        order = list(rng.permutation(len(cases)))
        flags = {i: (file_sha256(cases[i].image) in seen_sha256) if seen_sha256 else False for i in order}
        order.sort(key=lambda i: flags[i])  # stable: unseen first, each group in the seeded order
        limit = max_per_folder.get(path.name) if isinstance(max_per_folder, Mapping) else max_per_folder
        chosen = order[:int(limit)] if limit is not None else order
        n_val = min(math.ceil(val_fraction * len(chosen)), len(chosen) - 1) if len(chosen) > 1 else 0
        for n, i in enumerate(chosen):
            (val if n < n_val else train).append((path.name, cases[i]))
            if flags[i]:
                seen.add(cases[i].name)
    if not train:
        raise ValueError(f"no training images found in {[str(f) for f in folders]}")
    return train, val, seen


def _stack(states: Sequence[ImageStates]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([s.features for s in states]), torch.cat([s.targets for s in states])


def _loss(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over targets of the smooth-L1 loss on each target's finite entries."""
    losses = []
    for t in range(pred.shape[1]):
        finite = torch.isfinite(target[:, t])
        if finite.any():
            losses.append(F.smooth_l1_loss(pred[finite, t], target[finite, t], beta=beta))
    if not losses:
        raise ValueError("no finite target to learn from")
    return torch.stack(losses).mean()


def fit_heads(config: UsamConfig, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
              options: UsamTrainConfig, seed: int, progress: bool = True) -> tuple[UsamHeads, dict[str, Any]]:
    """Train :class:`UsamHeads` on ``(features (N, F), targets (N, 4))``; returns the best epoch's heads and a log."""
    n_targets = len(config.targets)
    x_train, y_train = train[0].float(), train[1][:, :n_targets].float()
    x_val, y_val = val[0].float(), val[1][:, :n_targets].float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = UsamHeads(config)
    heads.set_normalisation(x_train)
    optimiser = torch.optim.AdamW(heads.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, options.epochs)
    generator = torch.Generator().manual_seed(seed)
    best = BestState(higher_is_better=False)
    history: list[float] = []
    for epoch in tqdm(range(options.epochs), desc="usam epochs", unit="epoch", disable=not progress):
        heads.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), options.batch_size):
            index = order[start:start + options.batch_size]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 100003 + epoch * 1009 + start)  # dropout masks, reproducible
                loss = _loss(heads.raw(x_train[index]), y_train[index], options.smooth_l1_beta)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        scheduler.step()
        heads.eval()
        with torch.no_grad():
            x_eval, y_eval = (x_val, y_val) if len(x_val) else (x_train, y_train)
            val_loss = float(_loss(heads.raw(x_eval), y_eval, options.smooth_l1_beta))
        history.append(round(val_loss, 6))
        if not best.offer(val_loss, epoch, heads.state_dict) and best.stale >= options.patience:
            break  # no better validation loss for ``patience`` epochs
    heads.load_state_dict(best.state)  # at least one epoch ran (epochs >= 1), so the first offer was kept
    return heads.eval().requires_grad_(False), {"best_epoch": best.step + 1, "epochs_run": len(history),
                                                "best_val_loss": round(float(best.score), 6), "val_loss": history}


def _metrics(heads: UsamHeads, states: Sequence[ImageStates]) -> dict[str, Any]:
    """Validation metrics: MAE per target, Spearman and ranking AUC of the predicted IoU against SAM's, per path."""
    if not states:
        return {}
    x, y = _stack(states)
    base = torch.cat([s.baselines for s in states])
    paths = np.array([p for s in states for p in s.path])
    with torch.no_grad():
        pred = heads.raw(x)
    out: dict[str, Any] = {"n_states": int(len(x))}
    for t, name in enumerate(heads.config.targets):
        finite = torch.isfinite(y[:, t])
        out[f"mae_{name}"] = round(float((pred[finite, t] - y[finite, t]).abs().mean()), 4) if finite.any() else None
    for path in sorted(set(paths.tolist())) + ["all"]:
        keep = np.ones(len(paths), dtype=bool) if path == "all" else paths == path
        true = y[keep, 0].numpy()
        out[path] = {"n": int(keep.sum()),
                     "spearman_usam": round(spearman(pred[keep, 0].numpy(), true), 4),
                     "spearman_sam_iou": round(spearman(base[keep, 0].numpy(), true), 4),
                     "rank_auc_usam": round(ranking_auc(pred[keep, 0].numpy(), true), 4),
                     "rank_auc_sam_iou": round(ranking_auc(base[keep, 0].numpy(), true), 4)}
    return out


def _head_click_model(head: str | ClickModel | None, predictor: SamPredictor) -> tuple[ClickModel | None, dict]:
    if head is None or not isinstance(head, str):
        return head, {"head": None if head is None else getattr(head, "signature", type(head).__name__)}

    found = resolve_head(head)
    trained = load_head(found.path, predictor.backbone, sha256=found.sha256)
    info = {"head": found.name, "head_file": found.path.name, "head_sha256": trained.sha256}
    return BayesianHeadClickModel.from_trained(predictor, trained), info


def _head_training_images(head_info: dict) -> set[str]:
    """Image hashes the Bayesian head trained on (from its card), to put last in the draw."""

    name = head_info.get("head_file")
    card = WEIGHTS_DIR / Path(str(name)).with_suffix(".json").name if name else None
    if card is None or not card.is_file():
        return set()
    return {d["image_sha256"] for d in json.loads(card.read_text()).get("data", {}).get("train", [])}


def train_usam(data_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
               backbone: str | SamBackbone = "lite_medsam", head: str | ClickModel | None = "general",
               large_backbone: SamBackbone | None = None, seed: int = 0, val_fraction: float = 0.15,
               max_per_folder: int | Mapping[str, int] | None = None, states: StateConfig | None = None,
               config: UsamTrainConfig | None = None, head_options: Mapping[str, Any] | None = None,
               store_dir: str | os.PathLike[str] | None = None, state_dir: str | os.PathLike[str] | None = None,
               device: str = "cpu", overwrite: bool = False, progress: bool = True,
               config_file: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train UncertainSAM heads for ``backbone`` on ``data_dirs`` and write them to ``out`` (+ ``.json`` card).

    Args:
        data_dirs: folders with ``images/`` and ``masks/``; never dev data.
        out: the heads file (``.pt``); refused when it (or its card) exists unless ``overwrite``.
        backbone: registry name or a loaded backbone (frozen).
        head: the Bayesian head whose click sessions make the ``head`` states (name, file, a click model, or None
            for plain-decoder states only).
        large_backbone: a second, larger backbone: trains the model-gap head (its images are encoded here).
        seed: seeds the draw, the states, the initialisation and the batching.
        val_fraction, max_per_folder: the held-out share and the per-folder cap (one number or name -> number).
        states: :class:`~monai_baldsam.usam.train.data.StateConfig`; config: :class:`UsamTrainConfig`;
            head_options: fields of :class:`~monai_baldsam.usam.model.UsamConfig` (hidden, depth, dropout).
        store_dir, state_dir: embedding store and state cache folders (defaults under ``$BALDSAM_CACHE``).
        config_file: the configuration file the settings came from (``configs/usam_*.json``), named in the card with
            its SHA-256.
    """
    started = time.time()
    states = states or StateConfig()
    config = config or UsamTrainConfig()
    out, card_path = checked_outputs(out, overwrite)
    model = training_backbone(backbone, device)
    predictor = SamPredictor(model, EmbeddingCache(max_items=8))
    sam_model = SamClickModel(predictor)
    head_model, head_info = _head_click_model(head, predictor)
    large_model = None
    if large_backbone is not None:
        large_model = SamClickModel(SamPredictor(large_backbone.to(device), EmbeddingCache(max_items=8)))
    train_cases, val_cases, seen = choose_cases(data_dirs, seed, val_fraction, max_per_folder,
                                                _head_training_images(head_info))
    store = EmbeddingStore(store_dir)
    state_store = StateStore(state_dir)
    keep_images = large_model is not None
    train_items = load_items(train_cases, model, store, keep_images, desc="train images", progress=progress)
    val_items = load_items(val_cases, model, store, keep_images, desc="val images", progress=progress)
    common = {"backbone": backbone_signature(model), "head": head_info,
              "large": None if large_backbone is None else backbone_signature(large_backbone),
              "states": asdict(states), "seed": seed}

    simulation = _StateSimulation(state_store, common, model, sam_model, head_model, states, seed, large_model,
                                  progress)
    train_states = simulation.states_of(train_items, "train states")
    val_states = simulation.states_of(val_items, "val states")
    usam_config = UsamConfig.for_decoder(model.mask_decoder, model_gap=large_model is not None,
                                         **dict(head_options or {}))
    x_val, y_val = _stack(val_states) if val_states else (torch.zeros((0, usam_config.in_features)),
                                                          torch.zeros((0, len(TARGETS))))
    heads, log = fit_heads(usam_config, _stack(train_states), (x_val, y_val), config, seed, progress)
    meta = {"seed": seed, "head": head_info, "states": asdict(states), "train_config": asdict(config)}
    written = save_usam(out, heads, model, meta=meta, overwrite=overwrite)
    card = {
        "usam_file": written.name, "usam_sha256": file_sha256(written), "backbone": backbone_signature(model),
        "large_backbone": common["large"], "targets": list(usam_config.targets), "usam_config": usam_config.to_dict(),
        "parameters": int(sum(p.numel() for p in heads.parameters())), "seed": seed, "val_fraction": val_fraction,
        "data_dirs": [display_data_dir(d) for d in data_dirs], "max_per_folder": max_per_folder,
        "click_states_head": head_info, "states": asdict(states), "train_config": asdict(config),
        "counts": {"train_images": len(train_items), "val_images": len(val_items),
                   "train_states": int(sum(len(s.path) for s in train_states)),
                   "val_states": int(sum(len(s.path) for s in val_states))},
        "training": log, "val_metrics": _metrics(heads, val_states),
        "data": {split: [{"domain": i.domain, "name": i.case.name, "image": i.case.image.name,
                          "image_sha256": i.sha256["image"], "mask_sha256": i.sha256["mask"],
                          "seen_by_head": i.case.name in seen} for i in items]
                 for split, items in (("train", train_items), ("val", val_items))},
        "seconds": round(time.time() - started, 1), "environment": environment(device), **config_record(config_file),
    }
    write_card(card_path, card, overwrite)
    return TrainResult(written, card_path, card)


@dataclass
class _StateSimulation:
    """Simulated click states of each image (plain decoder, head, large backbone), cached on disk by content."""

    store: StateStore
    common: dict[str, Any]
    model: SamBackbone
    sam_model: SamClickModel
    head_model: ClickModel | None
    states: StateConfig
    seed: int
    large_model: SamClickModel | None
    progress: bool

    def states_of(self, items: Sequence[TrainItem], desc: str) -> list[ImageStates]:
        found: list[ImageStates] = []
        for item in tqdm(items, desc=desc, unit="image", disable=not self.progress):
            signature = StateStore.signature(image_sha256=item.sha256["image"], mask_sha256=item.sha256["mask"],
                                             name=item.case.name, **self.common)
            cached = self.store.get(signature)
            if cached is None:
                embedding = SliceEmbedding(item.embedding.to(self.model.device), item.original_hw)
                large_embedding = None
                if self.large_model is not None and item.image is not None:
                    large_embedding = self.large_model.encode(item.image)
                cached = simulate_states(embedding, item.truth, self.sam_model, self.head_model, self.states,
                                         image_rng(self.seed, item.case.name), self.large_model, large_embedding)
                self.store.put(signature, cached)
            found.append(cached)
        return found
