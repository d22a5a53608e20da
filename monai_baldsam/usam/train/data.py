"""Simulated prompt states for the UncertainSAM heads: per image, the heads' inputs and their regression targets.

Per image (seeded by ``(seed, image name)``), with the models of the evaluation (:class:`~monai_baldsam.evaluation.
model.ClickModel`), every mask at slice size:

* **plain decoder** (``path = "sam"``): the ground-truth box and ``sam_jitters`` boxes jittered by a uniform
  fraction up to ``max_jitter`` of their size;
* **Bayesian head** (``path = "head"``, when a head is given; LiteMedSAM alone ignores clicks): the exact box, then
  one session of the evaluation's simulator, a first click (deepest point, or a jittered box with probability
  ``head_box_first``) and ``head_rounds - 1`` clicks of the ``oracle`` or ``random_error`` user (drawn per image)
  with mask feedback; every interaction is a state.

Targets per state (true IoUs against the ground truth at slice size):

* ``iou``: of the judged mask;
* ``prompt_gap``: the IoU of the same model with *dense* prompts minus ``iou``: the better of the ground-truth box
  alone and the box plus ``dense_clicks`` positive clicks deep inside and as many negative clicks just outside the
  object (LiteMedSAM's plain decoder gets worse with clicks, so the box alone can be its best full prompt);
* ``task_gap``: the best of SAM's multimask outputs of the same decoder call (the judged mask included) minus
  ``iou`` (>= 0);
* ``model_gap``: the IoU of a second (larger) backbone's plain decoder on the same prompt minus ``iou``, or NaN
  without one.

Baselines recorded beside (for the benchmark): SAM's own predicted IoU of its mask 0, the mean predictive entropy
(nats) over the image (the head's map; for the plain decoder the entropy of its probability), and the head's mean
BALD (mutual information; NaN for the plain decoder).

:class:`StateStore` caches each image's states on disk, keyed by a full signature (image and mask content, models,
settings, seed), bounded in items and bytes, with atomic writes; a stored signature that differs is an error.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from monai_baldsam.bayes.acquisition import binary_entropy
from monai_baldsam.interaction.geometry import jitter_boxes, mask_boxes
from monai_baldsam.interaction.metrics import iou_score
from monai_baldsam.interaction.model import ClickModel, ModelOutput
from monai_baldsam.interaction.policies import make_policy
from monai_baldsam.interaction.simulator import make_first_prompt, run_first_interaction, run_session
from monai_baldsam.io.atomic import atomic_write_bytes
from monai_baldsam.sam.checkpoints import CACHE_ENV_VAR
from monai_baldsam.sam.geometry import postprocess_low_res_logits
from monai_baldsam.sam.predictor import SliceEmbedding
from monai_baldsam.usam.features import quality_features, valid_low_res
from monai_baldsam.usam.tokens import DecoderTokens, TokenCapture, decoder_readout

__all__ = ["STATE_FORMAT", "BASELINES", "StateConfig", "ImageStates", "RecordingModel", "dense_prompt",
           "simulate_states", "image_rng", "StateStore", "default_state_dir"]

STATE_FORMAT = "monai_baldsam.usam_states/2"
BASELINES: tuple[str, ...] = ("sam_iou", "mean_entropy", "mean_bald")


@dataclass(frozen=True)
class StateConfig:
    """Which prompt states are simulated per image (recorded in the card and in the cache signature)."""

    sam_jitters: int = 3
    max_jitter: float = 0.4
    head_rounds: int = 4
    head_box_first: float = 0.3
    dense_clicks: int = 3

    def __post_init__(self) -> None:
        if self.sam_jitters < 0 or self.head_rounds < 0 or self.dense_clicks < 0:
            raise ValueError(f"sam_jitters, head_rounds and dense_clicks must be >= 0, got {self}")
        if not 0.0 <= self.max_jitter <= 1.0 or not 0.0 <= self.head_box_first <= 1.0:
            raise ValueError(f"max_jitter and head_box_first must be in [0, 1], got {self}")


@dataclass
class ImageStates:
    """The states of one image: ``features (S, F)``, ``targets (S, 4)`` (:data:`~monai_baldsam.usam.model.TARGETS`
    order, NaN for a missing model gap), ``baselines (S, 3)`` (``sam_iou, mean_entropy, mean_bald``), and per state
    ``path`` ("sam"/"head"), ``kind`` (e.g. "box", "jitter", "click1") and ``interaction``."""

    features: torch.Tensor
    targets: torch.Tensor
    baselines: torch.Tensor
    path: list[str]
    kind: list[str]
    interaction: list[int]

    def to_payload(self) -> dict[str, Any]:
        return {"features": self.features, "targets": self.targets, "baselines": self.baselines,
                "path": list(self.path), "kind": list(self.kind), "interaction": [int(i) for i in self.interaction]}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImageStates:
        return cls(payload["features"], payload["targets"], payload["baselines"], list(payload["path"]),
                   list(payload["kind"]), [int(i) for i in payload["interaction"]])


class RecordingModel:
    """A click model that records, for every ``predict``, the prompt, the output and the decoder's tokens."""

    def __init__(self, model: ClickModel) -> None:
        self.model = model
        self.records: list[tuple[tuple[Any, ...], ModelOutput, DecoderTokens]] = []

    @property
    def signature(self) -> str:
        return self.model.signature

    @property
    def predictor(self) -> Any:
        return self.model.predictor  # type: ignore[attr-defined]

    def encode(self, image: torch.Tensor) -> SliceEmbedding:
        return self.model.encode(image)

    def predict(self, embedding: SliceEmbedding, point_coords_xy: np.ndarray | None, point_labels: np.ndarray | None,
                box_xy: np.ndarray | None, mask_input: torch.Tensor | None) -> ModelOutput:
        with TokenCapture(self.predictor.backbone.mask_decoder) as capture:
            output = self.model.predict(embedding, point_coords_xy, point_labels, box_xy, mask_input)
        self.records.append(((point_coords_xy, point_labels, box_xy), output, capture.last()))
        return output


def image_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of one image: seeded by ``seed`` and a stable digest of its name."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def dense_prompt(truth: np.ndarray, rng: np.random.Generator, n_clicks: int
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(box_xy, clicks_xy (2n, 2) or None, labels)``: the ground-truth box, ``n`` positive clicks among the
    deepest interior points (the deepest first) and ``n`` negative clicks within 5 % of the box size outside the
    object (inside the image)."""
    truth = np.asarray(truth, dtype=bool)
    box = mask_boxes(truth[None])[0]
    if n_clicks == 0:
        return box, None, None
    depth = ndimage.distance_transform_edt(np.pad(truth, 1))[1:-1, 1:-1]
    ys, xs = np.nonzero(depth >= 0.5 * depth.max())
    order = rng.permutation(len(ys))[:n_clicks - 1]
    deepest = np.unravel_index(int(np.argmax(depth)), depth.shape)
    positives = [(deepest[1], deepest[0])] + [(xs[i], ys[i]) for i in order]
    ring_px = max(2, int(0.05 * max(box[2] - box[0], box[3] - box[1])))
    ring = ndimage.binary_dilation(truth, iterations=ring_px) & ~truth
    ry, rx = np.nonzero(ring)
    negatives = [(rx[i], ry[i]) for i in rng.permutation(len(ry))[:n_clicks]] if len(ry) else []
    clicks = np.asarray(positives + negatives, dtype=np.float64)
    labels = np.asarray([1] * len(positives) + [0] * len(negatives), dtype=np.int64)
    return box, clicks, labels


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float(iou_score(np.asarray(mask)[None], truth[None])[0])


def _multimask_ious(model: Any, tokens: DecoderTokens, hw: tuple[int, int], truth: np.ndarray) -> list[float]:
    backbone = model.predictor.backbone
    _, masks = decoder_readout(backbone.mask_decoder, tokens)
    full = postprocess_low_res_logits(masks[:, 1:], backbone.img_size, hw)[0] > 0
    return [_iou(m.cpu().numpy(), truth) for m in full]


def _baselines(output: ModelOutput, tokens: DecoderTokens, decoder: torch.nn.Module) -> list[float]:
    sam_iou = float(decoder.iou_prediction_head(tokens.iou_token)[0, 0])
    if "predictive_entropy" in output.extras:
        entropy = float(np.mean(output.extras["predictive_entropy"]))
        bald = float(np.mean(output.extras["mutual_information"])) if "mutual_information" in output.extras \
            else float("nan")
    else:
        entropy = float(binary_entropy(torch.as_tensor(output.probability, dtype=torch.float64)).mean())
        bald = float("nan")
    return [sam_iou, entropy, bald]


@torch.no_grad()
def simulate_states(embedding: SliceEmbedding, truth: np.ndarray, sam_model: ClickModel, head_model: ClickModel | None,
                    config: StateConfig, rng: np.random.Generator, large_model: ClickModel | None = None,
                    large_embedding: SliceEmbedding | None = None) -> ImageStates:
    """The states of one image (see the module docstring).

    Args:
        embedding: the image's embedding for ``sam_model`` and ``head_model`` (one backbone).
        truth: ``(H, W)`` bool ground truth (SAM orientation).
        sam_model: the plain decoder (:class:`~monai_baldsam.interaction.model.SamClickModel`).
        head_model: a Bayesian head click model on the same backbone, or None (no head states).
        config: :class:`StateConfig`; rng: this image's generator.
        large_model, large_embedding: a second backbone's plain decoder and the image's embedding through it (model
            gap); both or neither.
    """
    if (large_model is None) != (large_embedding is None):
        raise ValueError("give the larger backbone's model and the image's embedding through it together")
    truth = np.asarray(truth, dtype=bool)
    if not truth.any():
        raise ValueError("the ground truth is empty: a prompt state needs an object")
    hw = embedding.original_hw
    box = mask_boxes(truth[None])[0]
    dense_box, dense_clicks, dense_labels = dense_prompt(truth, rng, config.dense_clicks)
    rows: list[tuple[torch.Tensor, list[float], list[float], str, str, int]] = []

    def add(recorder: RecordingModel, path: str, kinds: list[tuple[str, int]], dense_iou: float) -> None:
        backbone = recorder.predictor.backbone
        valid = valid_low_res(hw, backbone.img_size, int(backbone.low_res_hw[0]), backbone.device)
        for (prompt, output, tokens), (kind, interaction) in zip(recorder.records, kinds):
            logits = torch.as_tensor(output.low_res_logits).to(backbone.device, torch.float32)
            features = quality_features(backbone.mask_decoder, tokens, logits.reshape(1, 1, *valid.shape), valid,
                                        path == "head")[0].cpu()
            iou = _iou(output.mask, truth)
            task = max([iou, *_multimask_ious(recorder, tokens, hw, truth)]) - iou
            gap = float("nan")
            if large_model is not None:
                points, labels, box_xy = prompt
                gap = _iou(large_model.predict(large_embedding, points, labels, box_xy, None).mask, truth) - iou
            rows.append((features, [iou, dense_iou - iou, task, gap],
                         _baselines(output, tokens, backbone.mask_decoder), path, kind, interaction))

    sam = RecordingModel(sam_model)
    sam_box_iou = _iou(sam.predict(embedding, None, None, box, None).mask, truth)
    sam_dense = max(sam_box_iou, _iou(sam_model.predict(embedding, dense_clicks, dense_labels, dense_box, None).mask,
                                      truth))
    kinds = [("box", 1)]
    for _ in range(config.sam_jitters):
        jittered = jitter_boxes(box[None], hw, float(rng.uniform(0.05, config.max_jitter)), rng)[0]
        sam.predict(embedding, None, None, jittered, None)
        kinds.append(("jitter", 1))
    add(sam, "sam", kinds, sam_dense)

    if head_model is not None:
        head = RecordingModel(head_model)
        head_box_iou = _iou(head.predict(embedding, None, None, box, None).mask, truth)
        head_dense = max(head_box_iou, _iou(head_model.predict(embedding, dense_clicks, dense_labels, dense_box,
                                                               None).mask, truth))
        kinds = [("box", 1)]
        if config.head_rounds > 0:
            box_first = rng.random() < config.head_box_first
            first = make_first_prompt(truth, "box" if box_first else "click", rng,
                                      box_jitter=float(rng.uniform(0.05, config.max_jitter)) if box_first else 0.0)
            policy = make_policy("oracle" if rng.random() < 0.5 else "random_error")
            start = len(head.records)
            run_session(head, embedding, truth, policy, run_first_interaction(head, embedding, first),
                        config.head_rounds, rng)
            done = len(head.records) - start
            name = "jitter" if box_first else "click"
            kinds += [(f"{name}+{policy.name}", k + 1) for k in range(done)]
        add(head, "head", kinds, head_dense)

    return ImageStates(features=torch.stack([r[0] for r in rows]).float(),
                       targets=torch.tensor([r[1] for r in rows], dtype=torch.float32),
                       baselines=torch.tensor([r[2] for r in rows], dtype=torch.float32),
                       path=[r[3] for r in rows], kind=[r[4] for r in rows], interaction=[r[5] for r in rows])


def default_state_dir() -> Path:
    """``$BALDSAM_CACHE/usam_states``, else ``~/.cache/monai_baldsam/usam_states``."""
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "monai_baldsam"
    return base / "usam_states"


class StateStore:
    """Signature-checked state files in ``folder``, at most ``max_items`` files and ``max_bytes`` bytes (least
    recently used first out); :meth:`clear` empties it."""

    def __init__(self, folder: str | os.PathLike[str] | None = None, max_items: int = 8192,
                 max_bytes: int = 2 << 30) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"store bounds must be positive, got max_items={max_items}, max_bytes={max_bytes}")
        self.folder = Path(folder).expanduser() if folder is not None else default_state_dir()
        self.max_items, self.max_bytes = int(max_items), int(max_bytes)

    @staticmethod
    def signature(**parts: Any) -> dict[str, Any]:
        """A JSON-able signature: the format plus ``parts`` (content hashes, model signatures, config, seed)."""
        return json.loads(json.dumps({"format": STATE_FORMAT, **parts}, sort_keys=True, default=str))

    def path(self, signature: dict[str, Any]) -> Path:
        digest = hashlib.blake2b(json.dumps(signature, sort_keys=True).encode(), digest_size=16).hexdigest()
        return self.folder / f"{digest}.pt"

    def get(self, signature: dict[str, Any]) -> ImageStates | None:
        path = self.path(signature)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
            raise ValueError(f"state file {path} is unreadable ({err}): delete it or clear {self.folder}") from None
        if not isinstance(entry, dict) or entry.get("signature") != signature:
            raise ValueError(f"state file {path} holds another signature than {signature}: it is stale; clear the "
                             f"store ({self.folder}) or use another folder")
        os.utime(path)
        return ImageStates.from_payload(entry["states"])

    def put(self, signature: dict[str, Any], states: ImageStates) -> Path:
        buffer = io.BytesIO()
        torch.save({"signature": signature, "states": states.to_payload()}, buffer)
        path = atomic_write_bytes(self.path(signature), buffer.getvalue(), overwrite=True)
        files = sorted((p.stat().st_mtime_ns, p.stat().st_size, p) for p in self.folder.glob("*.pt"))
        total = sum(size for _, size, _ in files)
        while files and (len(files) > self.max_items or total > self.max_bytes):
            _, size, old = files.pop(0)
            old.unlink(missing_ok=True)
            total -= size
        return path

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.pt"))) if self.folder.is_dir() else 0

    def clear(self) -> None:
        if self.folder.is_dir():
            for path in self.folder.glob("*.pt"):
                path.unlink(missing_ok=True)
