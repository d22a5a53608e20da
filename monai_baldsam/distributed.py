"""Process-group helpers for ``torchrun`` runs (bundles' ``multi_gpu_*.json`` overlays).

Every helper is a no-op in a single process, so the same code path serves one process and many: a distributed run
shards its items by rank, each rank works on its share, and rank 0 gathers the results and writes them.
"""

from __future__ import annotations

import os
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "rank", "world_size", "init_process_group", "destroy_process_group", "local_device",
           "shard", "gather_to_all", "broadcast_flag", "barrier"]

T = TypeVar("T")


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def init_process_group(backend: str | None = None) -> bool:
    """Join the process group ``torchrun`` describes in the environment (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``).
    ``backend``: ``nccl`` when every rank has a GPU of its own, else ``gloo`` (CPUs, or more ranks than GPUs).
    Returns whether a group is running."""
    if dist.is_initialized():
        return True
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        raise RuntimeError("the multi-GPU overlay must be started by torchrun (WORLD_SIZE and RANK are not set): "
                           "torchrun --nproc_per_node N -m monai.bundle run ...")
    own_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= int(os.environ["WORLD_SIZE"])
    chosen = backend or ("nccl" if own_gpu else "gloo")
    dist.init_process_group(backend=chosen)
    return True


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device() -> torch.device:
    """This rank's device: ``cuda:<LOCAL_RANK>`` when CUDA is available (made current; ranks share GPUs round-robin
    when there are more ranks than GPUs), else the CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def shard(items: Sequence[T], index: int | None = None, count: int | None = None) -> list[T]:
    """Rank ``index`` of ``count``'s share of ``items`` (every ``count``-th item from ``index``), like
    ``DistributedSampler`` without padding, so nothing is evaluated twice."""
    index = rank() if index is None else index
    count = world_size() if count is None else count
    if not 0 <= index < count:
        raise ValueError(f"rank {index} is not in [0, {count})")
    return list(items[index::count])


def gather_to_all(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` in a single process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (decisions that must agree, such as stopping on a time budget)."""
    if not is_distributed():
        return bool(flag)
    box = [bool(flag)]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def barrier() -> None:
    if is_distributed():
        dist.barrier()
