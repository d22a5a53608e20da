"""Scaffolding of the cost benchmarks (``click_latency.py``, ``usam_cost.py``): their shared options, the
Bayesian head with a plain decoder on the same backbone, each dev image's inputs (embedding computed once), and
interleaved timing compared by medians.

Imported by the benchmarks of this package (each run as ``python -m benchmarks.<name>`` from the repository root).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.results_io import add_common_arguments, parse_args
from monai_baldsam.data_paths import domain_dir
from monai_baldsam.head.click_model import BayesianHeadClickModel, load_head_click_model
from monai_baldsam.head.registry import HeadFile, resolve_head
from monai_baldsam.interaction.cases import load_case
from monai_baldsam.interaction.geometry import mask_boxes
from monai_baldsam.interaction.model import SamClickModel
from monai_baldsam.io.cases import discover_cases
from monai_baldsam.sam.predictor import SliceEmbedding

__all__ = ["add_cost_arguments", "parse_cost_args", "CostModels", "load_cost_models", "CostCase", "cost_cases",
           "interleaved_medians", "sync", "synchronized", "matmul_gflops", "encoder_gflop"]


def add_cost_arguments(parser: argparse.ArgumentParser, repeats: int) -> None:
    """Add ``--head``, ``--domains``, ``--limit`` (dev images per domain), ``--repeats``, ``--threads`` and
    ``--device``, and the options of every benchmark (:func:`~benchmarks.results_io.add_common_arguments`)."""
    parser.add_argument("--head", default="general")
    parser.add_argument("--domains", nargs="+", default=["busi", "kvasir", "ph2"])
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    add_common_arguments(parser)


def parse_cost_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (checking the tree, :func:`~benchmarks.results_io.parse_args`) and set torch's CPU
    threads to ``--threads``."""
    args = parse_args(parser, argv)
    torch.set_num_threads(args.threads)
    return args


@dataclass(frozen=True)
class CostModels:
    """The resolved head file, its click model, and the plain SAM decoder on the same backbone and embedding cache."""

    found: HeadFile
    head: BayesianHeadClickModel
    plain: SamClickModel


def load_cost_models(head: str, device: str = "cpu") -> CostModels:
    """The shipped head ``head`` on the decoder it was trained with, and that plain decoder, on ``device``."""
    found = resolve_head(head)
    head_model = load_head_click_model(found.path, head_sha256=found.sha256, device=device)
    return CostModels(found=found, head=head_model, plain=SamClickModel(head_model.predictor))


@dataclass(frozen=True)
class CostCase:
    """One dev image's inputs, in SAM's orientation: the embedding, the ground-truth box ``(4,)`` (x0, y0, x1, y1),
    one foreground click ``clicks_xy`` ``(1, 2)`` at the middle foreground pixel (row-major order) with ``labels``
    ``(1,)``, and ``previous``, the plain decoder's low-res logits on the box."""

    domain: str
    name: str
    image_hw: list[int]
    embedding: SliceEmbedding
    box_xy: np.ndarray
    clicks_xy: np.ndarray
    labels: np.ndarray
    previous: torch.Tensor

    def row(self) -> dict[str, Any]:
        """The keys that open each result row: ``domain``, ``image``, ``image_hw``."""
        return {"domain": self.domain, "image": self.name, "image_hw": self.image_hw}


def cost_cases(models: CostModels, domains: Sequence[str], limit: int) -> Iterator[CostCase]:
    """The first ``limit`` dev images of each domain, each encoded once (outside any timing)."""
    for domain in domains:
        for case in discover_cases(domain_dir(domain), limit=limit):
            loaded = load_case(case)
            embedding = models.head.encode(loaded.image)
            box = mask_boxes(loaded.truth[None])[0].astype(np.float64)
            ys, xs = np.nonzero(loaded.truth)
            clicks = np.array([[xs[len(xs) // 2], ys[len(ys) // 2]]], dtype=np.float64)
            previous = models.plain.predict(embedding, None, None, box, None).low_res_logits
            yield CostCase(domain=domain, name=case.name, image_hw=list(loaded.truth.shape), embedding=embedding,
                           box_xy=box, clicks_xy=clicks, labels=np.array([1]), previous=previous)


def interleaved_medians(calls: Mapping[str, Callable[[], object]], repeats: int,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds of each call: ``repeats`` rounds, each running every call once in the mapping's order, so that
    load from other processes hits every call alike. On a GPU, pass calls that end with
    :func:`torch.cuda.synchronize` (:func:`synchronized`), or the clock stops before the kernels do."""
    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = clock()
            call()
            times[name].append(clock() - start)
    return {name: float(np.median(seconds)) for name, seconds in times.items()}


def sync(device: str | torch.device) -> None:
    """Wait for ``device``'s queued kernels (a GPU); nothing to wait for on a CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def synchronized(call: Callable[[], object], device: str | torch.device) -> Callable[[], object]:
    """``call`` followed by :func:`sync` when ``device`` is a GPU (the call itself on a CPU)."""
    if torch.device(device).type != "cuda":
        return call

    def run() -> object:
        result = call()
        sync(device)
        return result

    return run


def matmul_gflops(device: str | torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """The sustained rate (GFLOP/s) of one large matrix product in ``dtype`` on ``device`` (torch's threads on a
    CPU): the roofline a network's runtimes are held against."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def encoder_gflop(encoder: torch.nn.Module, size: int, device: str | torch.device = "cpu") -> float:
    """GFLOP of one pass of ``encoder`` on a ``1 x 3 x size x size`` input (a multiply-add counts 2), by torch."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        encoder(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops() / 1e9
