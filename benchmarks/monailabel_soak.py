"""Soak test of the MONAI Label app: 5 clients x 20 mixed 2D/3D requests, twice, every answer correct, p50/p95 per
kind, and the server's memory after 200 requests within the embedding cache's budget plus a stated margin.

Starts a real ``monailabel start_server`` (127.0.0.1, a free port) serving ``baldsam_ultrasound`` (2D) and
``baldsam_brain_mri`` (3D) on a studies folder of dev busi pictures and crops of dev brain MR volumes (the slices
around each tumour's largest one), with the embedding cache bounded by ``--cache-mb`` (the app's
``embedding_cache_mb`` setting).

1. warm-up: one request per image, one after the other (each image is encoded once);
2. references: every request of the load answered alone, one after the other;
3. load, two rounds: ``--clients`` (5) clients released together, each sending ``--per-client`` (20) requests one
   after the other: 2D requests are one Slicer-style click inside the lesion; every ``--every-3d``-th request is a 3D
   one (Slicer's ROI on the tumour's largest slice and one click, ``reset_state`` so that an answer depends on its
   request alone).

Every answer is checked against the same request answered alone (identical label and ``next_click``: nothing mixed up
across clients or kinds), on the image's grid. The server's resident memory (the process and its children) is read
after the warm-up and after each round. The memory criterion: growth from the warm-up to the end <= the cache budget
+ ``--margin-mb``, and growth between the two rounds (a leak would show there) <= ``--margin-mb`` / 2. Writes
``benchmarks/results/monailabel_soak[_<variant>]_cpu.json`` and ``.png``.

    python -m benchmarks.monailabel_soak [--clients 5] [--per-client 20] [--cache-mb 256] [--margin-mb 300]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import psutil
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import data_root
from monai_baldsam.monailabel.lib.process import ServerProcess
from monai_baldsam.monailabel.workdir import copy_app

MODEL_2D, MODEL_3D = "baldsam_ultrasound", "baldsam_brain_mri"
VOLUMES = ("brats_2013_pat0001_1", "brats_2013_pat0002_1")
MIB = 1 << 20


@dataclass(frozen=True)
class Request:
    """One infer request: its kind (``2d``/``3d``), model, image name and Slicer-style parameters."""

    kind: str
    model: str
    image: str
    params: dict[str, Any]


def _read_nrrd(path: str) -> np.ndarray:
    import nrrd

    return np.asarray(nrrd.read(path, index_order="F")[0])


def _studies(work: Path, pictures: int) -> tuple[Path, dict[str, np.ndarray]]:
    """The studies folder (busi pictures, brain MR crops) and each image's truth in its own (x, y[, k]) grid."""
    root = data_root() / "dev"
    studies = work / "studies"
    studies.mkdir()
    truth = {}
    for path in sorted((root / "busi" / "images").glob("*.png"))[:pictures]:
        shutil.copy(path, studies / path.name)
        truth[path.stem] = (np.asarray(Image.open(root / "busi" / "masks" / path.name).convert("L")) > 127).T
    for name in VOLUMES:
        image = nib.load(root / "brats_mri3d" / "images" / f"{name}.nii.gz")
        mask = np.asarray(nib.load(root / "brats_mri3d" / "masks" / f"{name}.nii.gz").dataobj) > 0
        k = int(mask.sum(axis=(0, 1)).argmax())
        affine = image.affine.copy()
        affine[:3, 3] += affine[:3, 2] * (k - 3)
        crop = f"{name}_crop"
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:, :, k - 3:k + 3].astype(np.float32), affine),
                 studies / f"{crop}.nii.gz")
        truth[crop] = mask[:, :, k - 3:k + 3]
    return studies, truth


def _requests(truth: dict[str, np.ndarray], clients: int, per_client: int, every_3d: int
              ) -> list[list[Request]]:
    """Each client's requests: clicks deep inside the object, 3D ones with Slicer's ROI on the largest slice."""
    pictures = sorted(n for n, t in truth.items() if t.ndim == 2)
    volumes = sorted(n for n, t in truth.items() if t.ndim == 3)
    plan = []
    for c in range(clients):
        rows = []
        for r in range(per_client):
            n = c * per_client + r
            if (r + 1) % every_3d == 0:
                name = volumes[n % len(volumes)]
                mask = truth[name]
                k = int(mask.sum(axis=(0, 1)).argmax())
                ii, jj = np.nonzero(mask[:, :, k])
                inside = np.argwhere(ndimage.binary_erosion(mask[:, :, k], iterations=2))
                i, j = (int(v) for v in inside[(7 * n) % len(inside)])
                params = {"foreground": [[i, j, k]], "background": [], "label": "tumour", "reset_state": True,
                          "roi": [int(ii.min()), int(ii.max()), int(jj.min()), int(jj.max()), k, k],
                          "result_extension": ".nrrd", "result_dtype": "uint8"}
                rows.append(Request("3d", MODEL_3D, name, params))
            else:
                name = pictures[n % len(pictures)]
                inside = np.argwhere(ndimage.binary_erosion(truth[name], iterations=3))
                x, y = (int(v) for v in inside[(11 * n) % len(inside)])
                rows.append(Request("2d", MODEL_2D, name, {"foreground": [[x, y, 0]], "label": "lesion",
                                                           "result_extension": ".nrrd", "result_dtype": "uint8"}))
        plan.append(rows)
    return plan


def _rss_mib(pid: int) -> float:
    """Resident memory of the process and its children, MiB."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / MIB


def _answer(client: Any, request: Request) -> tuple[np.ndarray, dict[str, Any], float]:
    """The request's label, its parameters and the client's wall time."""
    started = time.perf_counter()
    path, params = client.infer(request.model, request.image, dict(request.params))
    return _read_nrrd(path), params, time.perf_counter() - started


def _problems(label: np.ndarray, params: dict[str, Any], reference: tuple[np.ndarray, dict[str, Any]],
              truth: np.ndarray) -> list[str]:
    """What is wrong with one answer (empty: correct)."""
    if label.shape != truth.shape:
        return [f"label shape {label.shape} != image {truth.shape}"]
    problems = []
    if not np.array_equal(label, reference[0]):
        problems.append("label differs from the same request answered alone")
    if params.get("next_click") != reference[1].get("next_click"):
        problems.append("next_click differs from the same request answered alone")
    return problems


def _round(url: str, plan: list[list[Request]], references: dict, truth: dict, work: Path, tag: str) -> list[dict]:
    """All clients at once, each its requests in order; one row per answer."""
    from monailabel.client import MONAILabelClient

    barrier = threading.Barrier(len(plan))

    def client_run(c: int) -> list[dict]:
        tmp = work / f"{tag}_client{c}"
        tmp.mkdir()
        client = MONAILabelClient(url, tmpdir=str(tmp), client_id=f"{tag}-user{c}")
        barrier.wait()
        rows = []
        for r, request in enumerate(plan[c]):
            label, params, seconds = _answer(client, request)
            rows.append({"client": c, "request": r, "kind": request.kind, "image": request.image,
                         "latency_s": round(seconds, 4),
                         "problems": _problems(label, params, references[(c, r)], truth[request.image])})
        return rows

    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        return [row for rows in pool.map(client_run, range(len(plan))) for row in rows]


def _latencies(rows: list[dict]) -> dict[str, dict[str, float]]:
    """p50, p95 and the maximum of the client latencies, by kind and over all."""
    out = {}
    for kind in ("2d", "3d", "all"):
        values = np.array([r["latency_s"] for r in rows if kind == "all" or r["kind"] == kind])
        if values.size:
            out[kind] = {"n": int(values.size), "p50_s": round(float(np.percentile(values, 50)), 4),
                         "p95_s": round(float(np.percentile(values, 95)), 4), "max_s": round(float(values.max()), 4)}
    return out


def _plot(rows: list[dict], memory: dict[str, float], out: Path) -> None:
    """Latency percentiles by kind and the server's memory at each checkpoint, as the PNG beside the record."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for kind, marker in (("2d", "o"), ("3d", "s")):
        values = np.sort([r["latency_s"] for r in rows if r["kind"] == kind])
        left.plot(np.linspace(0, 100, len(values)), values, marker, ms=3, label=f"{kind} ({len(values)})")
    left.set_xlabel("percentile of requests")
    left.set_ylabel("client latency (s)")
    left.legend()
    right.bar(list(memory), list(memory.values()), color="grey")
    right.set_ylabel("server resident memory (MiB)")
    fig.tight_layout()
    save_png(fig, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5, help="clients at once (default 5)")
    parser.add_argument("--per-client", type=int, default=20, help="requests per client and round (default 20)")
    parser.add_argument("--every-3d", type=int, default=3, help="every N-th request of a client is 3D (default 3)")
    parser.add_argument("--pictures", type=int, default=5, help="busi dev pictures in the studies (default 5)")
    parser.add_argument("--cache-mb", type=int, default=256, help="the server's embedding cache budget (MiB)")
    parser.add_argument("--margin-mb", type=int, default=300, help="memory allowed beyond the cache budget (MiB)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server (default 2)")
    add_common_arguments(parser)
    args = parse_args(parser)
    from monailabel.client import MONAILabelClient

    work = Path(tempfile.mkdtemp(prefix="monailabel_soak_"))
    try:
        studies, truth = _studies(work, args.pictures)
        plan = _requests(truth, args.clients, args.per_client, args.every_3d)
        server = ServerProcess(copy_app(work / "app").path, studies, work / "server.log",
                               conf={"models": f"{MODEL_2D},{MODEL_3D}", "device": "cpu",
                                     "embedding_cache_mb": str(args.cache_mb)},
                               env={"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
                                    "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"})
        with server:
            pid = server.process.pid
            client = MONAILabelClient(server.url, tmpdir=str(work / "alone"), client_id="alone")
            firsts = {}
            for request in (r for rows in plan for r in rows):
                firsts.setdefault(request.image, request)
            for name in tqdm(sorted(firsts), desc="warm-up (encode each image)", unit="image"):
                _answer(client, firsts[name])
            memory = {"after warm-up": _rss_mib(pid)}
            references = {}
            for c, rows in enumerate(tqdm(plan, desc="references (each request alone)", unit="client")):
                for r, request in enumerate(rows):
                    label, params, _ = _answer(client, request)
                    references[(c, r)] = (label, params)
            memory["after references"] = _rss_mib(pid)
            rounds = []
            for n in (1, 2):
                started = time.perf_counter()
                rows = _round(server.url, plan, references, truth, work, f"round{n}")
                rounds.append({"round": n, "wall_s": round(time.perf_counter() - started, 2),
                               "latency": _latencies(rows), "rows": rows})
                memory[f"after round {n}"] = _rss_mib(pid)
        all_rows = [row for r in rounds for row in r["rows"]]
        failed = [row for row in all_rows if row["problems"]]
        growth = memory["after round 2"] - memory["after warm-up"]
        leak = memory["after round 2"] - memory["after round 1"]
        within = growth <= args.cache_mb + args.margin_mb and leak <= args.margin_mb / 2
        record = {
            "benchmark": "monailabel_soak", "models": [MODEL_2D, MODEL_3D], "clients": args.clients,
            "per_client": args.per_client, "requests": len(all_rows), "every_3d": args.every_3d,
            "images": sorted(truth), "server_torch_threads": args.threads, "all_correct": not failed,
            "failed": failed, "latency": _latencies(all_rows),
            "memory_mib": {k: round(v, 1) for k, v in memory.items()},
            "memory_check": {"cache_budget_mib": args.cache_mb, "margin_mib": args.margin_mb,
                             "growth_mib": round(growth, 1), "growth_between_rounds_mib": round(leak, 1),
                             "within_budget": bool(within)},
            "rounds": rounds, **provenance("cpu"),
        }
        out = write_json(result_path("monailabel_soak", "cpu", args.variant), record, args.allow_dirty)
        _plot(all_rows, memory, out)
        print(f"{out}: {len(all_rows)} requests, all correct: {not failed}, latency {record['latency']}, memory "
              f"{record['memory_check']}")
        return 0 if not failed and within else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
