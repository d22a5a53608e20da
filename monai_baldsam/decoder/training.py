"""``train_decoder``: LiteMedSAM's prompt encoder and mask decoder trained for clicks, the image encoder frozen.

The recipe is SAM's interactive one (:mod:`monai_baldsam.decoder.sessions`) on cached embeddings
(:class:`~monai_baldsam.head.train.embedding_store.EmbeddingStore`): per step a batch of simulated sessions, 2 to 6
rounds
each, the loss (:func:`~monai_baldsam.decoder.losses.decoder_loss`) at every round with the previous logits fed back
detached, gradients summed over the rounds and one AdamW step per batch (cosine decay after a linear warm-up,
gradient clipping). Validation runs deterministic sessions (exact box or deepest click, then the RITM oracle) on the
held-out images of each training folder every ``eval_every`` steps; the weights of the best validation score (mean
mIoU over the box-first and click-first curves) are kept. Training stops after ``max_steps`` or ``time_budget_s``,
whichever comes first; the card records which, with the device.

A box alone stays with the checkpoint's own decoder (the routing of
:meth:`~monai_baldsam.sam.model.SamBackbone.decoder_modules`): in a box-first session the first round is decoded
by it without a loss, and the trained decoder learns every round that holds a click, fed the original's mask. With
``train_boxes`` (a domain decoder, e.g. small MR structures where the original's box masks are poor) the trained
decoder learns the box rounds too, including the empty volume slices prompted by their neighbour's box (so that
propagation stops at the structure's ends), and its file says that it answers a box alone as well. Training may
start from a shipped decoder (``init_decoder``, e.g. ``clicks_v1``) instead of the checkpoint's own.

Never train or tune on ``dev/``: it is for measuring only.
"""

from __future__ import annotations

import copy
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from monai_baldsam.decoder.data import DecoderDataConfig, select_cases
from monai_baldsam.decoder.losses import decoder_loss, mask_ious
from monai_baldsam.decoder.sessions import decode, has_clicks, is_single_click, start_decoder_sessions
from monai_baldsam.head.train.data import TrainItem, load_items
from monai_baldsam.head.train.embedding_store import EmbeddingStore
from monai_baldsam.head.train.scaffold import (
    BestState,
    TimeBudget,
    TrainResult,
    checked_outputs,
    config_record,
    cosine_factor,
    device_name,
    training_backbone,
    write_card,
)
from monai_baldsam.head.train.simulation import FirstKind, add_error_clicks
from monai_baldsam.sam.checkpoints import file_sha256
from monai_baldsam.sam.decoders import save_decoder
from monai_baldsam.sam.encoder_runtime import EncoderRuntime, make_encoder
from monai_baldsam.sam.model import SamBackbone

__all__ = ["DecoderTrainConfig", "DecoderTrainResult", "validate_decoder", "choose_mask_feedback", "train_decoder"]


@dataclass(frozen=True)
class DecoderTrainConfig:
    """Settings of :func:`train_decoder` (recorded in the card)."""

    batch_size: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_steps: int = 50
    max_steps: int = 3000
    time_budget_s: float = 3600.0
    eval_every: int = 150
    max_val_images: int = 64
    min_rounds: int = 2
    max_rounds: int = 6
    box_probability: float = 0.5
    box_jitter: float = 0.1
    click_spread: float = 0.5
    no_click_probability: float = 0.3
    max_first_clicks: int = 3
    focal_weight: float = 20.0
    iou_weight: float = 1.0
    grad_clip: float = 1.0
    val_rounds: int = 5
    seed: int = 0
    #: the trained decoder also learns (and then answers) a box alone
    train_boxes: bool = False
    #: the decoder training starts from: ``original`` (the checkpoint's own) or a shipped decoder (``clicks_v1``)
    init_decoder: str = "original"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.eval_every < 1:
            raise ValueError("batch_size, max_steps and eval_every must be at least 1")
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"1 <= min_rounds <= max_rounds must hold, got {self.min_rounds}..{self.max_rounds}")
        if self.time_budget_s <= 0 or self.lr <= 0:
            raise ValueError("time_budget_s and lr must be positive")


#: the decoder file, its card's path and the card (the result every trainer of the package returns)
DecoderTrainResult = TrainResult


def _targets(items: Sequence[TrainItem], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.as_tensor(np.stack([i.target for i in items]), dtype=torch.float32, device=device)
    valid = torch.as_tensor(np.stack([i.valid for i in items]), device=device)
    return target, valid


def _route(backbone: SamBackbone, trainable: tuple[torch.nn.Module, torch.nn.Module], clicks: bool,
           boxes_too: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The pair that answers a prompt during training and validation: ``trainable`` for a prompt with clicks (and
    for a box alone when ``boxes_too``), else the backbone's own (a box alone)."""
    return trainable if clicks or boxes_too else (backbone.prompt_encoder, backbone.mask_decoder)


def _embeddings(items: Sequence[TrainItem], device: torch.device) -> torch.Tensor:
    return torch.cat([i.embedding for i in items]).to(device, torch.float32)


@torch.no_grad()
def validate_decoder(backbone: SamBackbone, prompt_encoder: torch.nn.Module, mask_decoder: torch.nn.Module,
                     items: Sequence[TrainItem], n_rounds: int, batch_size: int = 16,
                     feed_mask: bool = True, boxes_too: bool = False) -> dict[str, list[float]]:
    """Mean IoU after each of ``n_rounds`` interactions on the low-resolution grid, box first and click first
    (deterministic first prompts, oracle error clicks, previous logits fed back); images without the object are
    left out. Prompts with clicks go to ``prompt_encoder`` / ``mask_decoder``, a box alone to the backbone's own
    (the routing of :meth:`~monai_baldsam.sam.model.SamBackbone.decoder_modules`; with ``boxes_too`` the given pair
    answers a box alone too); with ``feed_mask`` False the click decoder is not given the previous logits."""
    items = [i for i in items if not i.is_empty]
    if not items:
        raise ValueError("validation needs at least one image with the object")
    device = backbone.device
    img_size, low_res = int(backbone.img_size), int(backbone.low_res_hw[0])
    curves: dict[str, list[float]] = {}
    for kind in (FirstKind.BOX, FirstKind.CLICK):
        sums = np.zeros(n_rounds)
        for start in range(0, len(items), batch_size):
            batch = list(items[start:start + batch_size])
            state = start_decoder_sessions(batch, kind, None, img_size, low_res, 0.0, 0.0)
            embeddings = _embeddings(batch, device)
            target, valid = _targets(batch, device)
            for r in range(n_rounds):
                clicks, previous = has_clicks(state), state.prev_logits
                modules = _route(backbone, (prompt_encoder, mask_decoder), clicks, boxes_too)
                if clicks and not feed_mask:
                    state.prev_logits = None
                out = decode(*modules, embeddings, state, is_single_click(state))
                state.prev_logits = previous
                logits = out.best()
                sums[r] += float(mask_ious(logits, target, valid)[:, 0].sum())
                if r + 1 < n_rounds:
                    add_error_clicks(state, logits, None, img_size)
        curves[kind.value] = (sums / len(items)).round(5).tolist()
    return curves


def choose_mask_feedback(backbone: SamBackbone, prompt_encoder: torch.nn.Module, mask_decoder: torch.nn.Module,
                         val: Sequence[TrainItem], n_rounds: int, boxes_too: bool = False
                         ) -> tuple[bool, dict[str, dict[str, list[float]]]]:
    """Whether the click decoder should be given the previous logits (SAM's mask feedback), chosen on the validation
    images by the mean of the box-first and click-first curves; returns ``(choice, curves of both)``."""
    curves = {name: validate_decoder(backbone, prompt_encoder, mask_decoder, val, n_rounds, feed_mask=on,
                                     boxes_too=boxes_too)
              for name, on in (("on", True), ("off", False))}
    return _score(curves["on"]) >= _score(curves["off"]), curves


def _score(curves: dict[str, list[float]]) -> float:
    return float(np.mean([np.mean(c) for c in curves.values()]))


def _train_step(backbone: SamBackbone, modules: tuple[torch.nn.Module, torch.nn.Module], items: Sequence[TrainItem],
                config: DecoderTrainConfig, rng: np.random.Generator) -> float:
    """One batch of simulated sessions; gradients accumulate over its rounds. Returns the mean round loss."""
    prompt_encoder, mask_decoder = modules
    device = backbone.device
    img_size, low_res = int(backbone.img_size), int(backbone.low_res_hw[0])
    kind = FirstKind.BOX if rng.random() < config.box_probability else FirstKind.CLICK
    pool = [i for i in items if kind is FirstKind.BOX or not i.is_empty]
    batch = [pool[int(n)] for n in rng.choice(len(pool), size=min(config.batch_size, len(pool)), replace=False)]
    state = start_decoder_sessions(batch, kind, rng, img_size, low_res, config.box_jitter, config.click_spread,
                                   config.max_first_clicks)
    embeddings = _embeddings(batch, device)
    target, valid = _targets(batch, device)
    n_rounds = int(rng.integers(config.min_rounds, config.max_rounds + 1))
    first_quiet = 2 if kind is FirstKind.BOX else 1  # a quiet round follows a click (a box alone is not trained)
    quiet_round = int(rng.integers(first_quiet, n_rounds)) \
        if n_rounds > first_quiet and rng.random() < config.no_click_probability else -1
    total, counted = 0.0, 0
    for r in range(n_rounds):
        if not has_clicks(state) and not config.train_boxes:  # a box alone: the original decoder answers it
            with torch.no_grad():
                out = decode(backbone.prompt_encoder, backbone.mask_decoder, embeddings, state, False)
        else:
            out = decode(prompt_encoder, mask_decoder, embeddings, state, is_single_click(state))
            loss, _ = decoder_loss(out.logits, out.iou, target, valid, config.focal_weight, config.iou_weight)
            (loss / n_rounds).backward()
            total, counted = total + float(loss.detach()), counted + 1
        if r + 1 < n_rounds:
            logits = out.best().detach().float()
            if r + 1 == quiet_round:
                state.prev_logits = logits  # a round with the mask prompt alone
            else:
                add_error_clicks(state, logits, rng, img_size, config.click_spread)
    return total / max(1, counted)


def _data_card(items: Sequence[TrainItem]) -> list[dict[str, str]]:
    return [{"domain": i.domain, "name": i.case.name, **i.sha256} for i in items]


def _fit(backbone: SamBackbone, train: list[TrainItem], val: list[TrainItem], config: DecoderTrainConfig,
         progress: bool, log: Callable[[str], None]) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Train a copy of the backbone's click decoder (its own when none is loaded); returns ``(best state, validation
    history, stop reason)``."""
    start_pe, start_md = backbone.decoder_modules(True)
    prompt_encoder = copy.deepcopy(start_pe).train().requires_grad_(True)
    mask_decoder = copy.deepcopy(start_md).train().requires_grad_(True)
    params = [*prompt_encoder.parameters(), *mask_decoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_factor(s, config.max_steps, config.warmup_steps))
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    best = BestState(score=-1.0)
    budget, losses, reason = TimeBudget(config.time_budget_s), [], "max_steps"

    def evaluate(step: int) -> None:
        prompt_encoder.eval(), mask_decoder.eval()
        curves = validate_decoder(backbone, prompt_encoder, mask_decoder, val, config.val_rounds,
                                  boxes_too=config.train_boxes)
        prompt_encoder.train(), mask_decoder.train()
        entry = {"step": step, "seconds": round(budget.elapsed, 1), "score": round(_score(curves), 5),
                 "train_loss": round(float(np.mean(losses)), 5) if losses else None, **curves}
        history.append(entry)
        losses.clear()
        log(f"step {step}: validation box {curves['box']} click {curves['click']}")
        best.offer(entry["score"], step, lambda: (prompt_encoder.state_dict(), mask_decoder.state_dict()))

    bar = tqdm(total=config.max_steps, desc="training decoder", unit="step", disable=not progress)
    done = 0
    for step in range(config.max_steps):
        if budget.spent():
            reason = "time_budget"
            break
        done = step + 1
        optimizer.zero_grad(set_to_none=True)
        losses.append(_train_step(backbone, (prompt_encoder, mask_decoder), train, config, rng))
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % config.eval_every == 0:
            evaluate(step + 1)
    bar.close()
    if not history or history[-1]["step"] != done:
        evaluate(done)
    return {"prompt_encoder": best.state[0], "mask_decoder": best.state[1], "step": best.step}, history, reason


def train_decoder(data: DecoderDataConfig, out: str | Path, config: DecoderTrainConfig | None = None,
                  backbone: str | SamBackbone = "lite_medsam", device: str | torch.device = "cpu",
                  store: EmbeddingStore | None = None, encoder: EncoderRuntime | str = EncoderRuntime.AUTO,
                  overwrite: bool = False, progress: bool = True, log: Callable[[str], None] = print,
                  config_file: str | Path | None = None) -> DecoderTrainResult:
    """Train the prompt encoder and mask decoder of ``backbone`` for clicks; write ``out`` (``.pt``) and its card
    (``.json`` beside it). Embeddings come from ``store`` (default folder: :func:`~monai_baldsam.head.
    embedding_store.default_store_dir`), computed by the ``encoder`` runtime when missing. ``config_file``: the
    configuration file the settings came from, named in the card with its SHA-256."""
    config = config or DecoderTrainConfig()
    if Path(out).suffix != ".pt":
        raise ValueError(f"the decoder file must end in .pt, got {out}")
    out, card_path = checked_outputs(out, overwrite)
    model = training_backbone(backbone, device, config.init_decoder)
    if model.decoder_name != config.init_decoder:
        raise ValueError(f"training starts from decoder {config.init_decoder!r} (init_decoder) but the backbone runs "
                         f"{model.decoder_name!r}")
    started = time.monotonic()
    train_cases, val_cases = select_cases(data)
    runner = make_encoder(model, encoder)
    store = store or EmbeddingStore()
    val = load_items(val_cases, model, store, False, "encoding validation", progress, runner, torch.bfloat16)
    train = load_items(train_cases, model, store, False, "encoding training", progress, runner, torch.bfloat16)
    if len(val) > config.max_val_images:  # every k-th: validation runs full sessions at every evaluation
        val = [val[int(i)] for i in np.linspace(0, len(val) - 1, config.max_val_images).round()]
    log(f"{len(train)} training and {len(val)} validation images ({time.monotonic() - started:.0f} s)")
    baseline = validate_decoder(model, model.prompt_encoder, model.mask_decoder, val, config.val_rounds)
    log(f"original decoder: validation box {baseline['box']} click {baseline['click']}")
    start = None
    if config.init_decoder != "original":
        start = validate_decoder(model, *model.decoder_modules(True), val, config.val_rounds)
        log(f"{config.init_decoder} (start): validation box {start['box']} click {start['click']}")
    fit_started = time.monotonic()
    best, history, reason = _fit(model, train, val, config, progress, log)
    trained_pe, trained_md = (copy.deepcopy(m) for m in model.decoder_modules(True))
    trained_pe.load_state_dict(best["prompt_encoder"])
    trained_md.load_state_dict(best["mask_decoder"])
    feedback, feedback_curves = choose_mask_feedback(model, trained_pe, trained_md, val, config.val_rounds,
                                                     config.train_boxes)
    log(f"mask feedback to the click decoder: {'on' if feedback else 'off'} ({feedback_curves})")
    meta = {"train_config": asdict(config), "best_step": best["step"], "mask_feedback": feedback,
            "answers_boxes": config.train_boxes, "init_decoder": config.init_decoder}
    written = save_decoder(out, model, trained_pe, trained_md, meta, overwrite=overwrite)
    card = {
        "decoder_file": written.name, "decoder_sha256": file_sha256(written), "backbone": model.name,
        "checkpoint_sha256": model.checkpoint_sha256, "img_size": int(model.img_size),
        "train_config": asdict(config), "data_config": data.to_dict(), "encoder_runtime": runner.tag,
        "device": device_name(model.device),
        "host": platform.machine(), "torch": torch.__version__, "stop_reason": reason, "best_step": best["step"],
        "train_seconds": round(time.monotonic() - fit_started, 1),
        **config_record(config_file),
        "validation": {"original_decoder": baseline, **({"init_decoder": start} if start else {}),
                       "history": history, "mask_feedback": feedback_curves},
        "mask_feedback": feedback, "answers_boxes": config.train_boxes,
        "init_decoder": {"name": config.init_decoder, "sha256": model.decoder_sha256},
        "data": {"train": _data_card(train), "val": _data_card(val)},
    }
    write_card(card_path, card, overwrite=True)
    return TrainResult(written, card_path, card)
