"""Load test of the MONAI Label app: 20 concurrent infer requests on one server, answered correctly, p50/p95 latency.

Starts a real ``monailabel start_server`` (127.0.0.1, a free port) on a studies folder of dev busi pictures, then

1. warm-up: one request per picture, one after the other (each picture is encoded once: the cold latency);
2. load: ``--requests`` (20) clients at once, each a Slicer-style infer request (``foreground`` click inside the
   lesion, ``result_extension=.nrrd``) on one of the pictures, all released together by a barrier.

Every answer is checked against the same request answered alone beforehand (identical label and ``next_click``:
no answer is mixed up with another), the label is on the picture's grid, ``next_click`` lies inside the picture and no
encoder pass was needed; each label's Dice with the lesion is recorded. Latency is the client's wall time per request.
The server is stopped by its PID at the end, also on failure. Writes
``benchmarks/results/monailabel_load[_<variant>]_cpu.json`` and ``.png``.

    python -m benchmarks.monailabel_load [--requests 20] [--pictures 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, save_png, write_json
from monai_baldsam.data_paths import data_root
from monai_baldsam.monailabel.lib.process import ServerProcess
from monai_baldsam.monailabel.workdir import copy_app

MODEL = "baldsam_ultrasound"


def _read_nrrd(path: str) -> np.ndarray:
    import nrrd

    return np.asarray(nrrd.read(path, index_order="F")[0])


def _check(label: np.ndarray, truth: np.ndarray, params: dict[str, Any], reference: tuple[np.ndarray, dict] | None
           ) -> list[str]:
    """What is wrong with one answer (empty: correct): the label's grid, the next click, the cache, and equality with
    the same request answered alone (so no answer was mixed up with another one)."""
    if label.shape != truth.shape:
        return [f"label shape {label.shape} != picture {truth.shape}"]
    problems = []
    click = params.get("next_click") or {}
    ijk = click.get("ijk", [-1, -1, -1])
    if not (0 <= ijk[0] < truth.shape[0] and 0 <= ijk[1] < truth.shape[1] and ijk[2] == 0):
        problems.append(f"next_click {ijk} outside the picture")
    if params.get("encoded_slices") != 0:
        problems.append(f"encoded {params.get('encoded_slices')} slices (the embedding should be cached)")
    if reference is not None:
        if not np.array_equal(label, reference[0]):
            problems.append("label differs from the same request answered alone")
        if click != reference[1].get("next_click"):
            problems.append("next_click differs from the same request answered alone")
    return problems


def _dice(label: np.ndarray, truth: np.ndarray) -> float:
    return float(2 * np.logical_and(label > 0, truth).sum() / max(1, (label > 0).sum() + truth.sum()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="concurrent requests (default 20)")
    parser.add_argument("--pictures", type=int, default=5, help="busi dev pictures in the studies folder (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (default 1)")
    add_common_arguments(parser)
    args = parse_args(parser)
    from monailabel.client import MONAILabelClient

    busi = data_root() / "dev" / "busi"
    names = sorted(p.stem for p in (busi / "images").glob("*.png"))[: args.pictures]
    if len(names) < args.pictures:
        raise SystemExit(f"found {len(names)} busi dev pictures in {busi}, need {args.pictures}")
    work = Path(tempfile.mkdtemp(prefix="monailabel_load_"))
    try:
        studies, truth, clicks = _studies(busi, names, work, args.requests)
        app = copy_app(work / "app").path  # a work copy: MONAI Label writes logs/, model/, bin/ into the app folder
        server = ServerProcess(app, studies, work / "server.log", conf={"models": MODEL, "device": "cpu"},
                               env={"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
                                    "MONAI_LABEL_AUTO_UPDATE_SCORING": "false"})
        started = time.perf_counter()
        with server:
            startup_s = time.perf_counter() - started
            client = MONAILabelClient(server.url, tmpdir=str(work / "warm"), client_id="warm-up")
            cold = {}
            for name in tqdm(names, desc="warm-up (encode each picture)", unit="request"):
                x, y = (int(v) for v in clicks[name][0])
                t0 = time.perf_counter()
                client.infer(MODEL, name, {"foreground": [[x, y, 0]], "label": "lesion", "result_extension": ".nrrd"})
                cold[name] = time.perf_counter() - t0
            references: dict[int, tuple[np.ndarray, dict]] = {}
            for n in tqdm(range(args.requests), desc="references (one request at a time)", unit="request"):
                name = names[n % len(names)]
                x, y = (int(v) for v in clicks[name][n])
                path, params = client.infer(MODEL, name, {"foreground": [[x, y, 0]], "label": "lesion",
                                                          "result_extension": ".nrrd", "result_dtype": "uint8"})
                references[n] = (_read_nrrd(path), params)
            barrier = threading.Barrier(args.requests)

            def one(n: int) -> dict[str, Any]:
                name = names[n % len(names)]
                x, y = (int(v) for v in clicks[name][n])
                tmp = work / f"client{n}"
                tmp.mkdir()
                c = MONAILabelClient(server.url, tmpdir=str(tmp), client_id=f"user{n}")
                barrier.wait()
                t0 = time.perf_counter()
                path, params = c.infer(MODEL, name, {"foreground": [[x, y, 0]], "label": "lesion",
                                                     "result_extension": ".nrrd", "result_dtype": "uint8"})
                latency = time.perf_counter() - t0
                label = _read_nrrd(path)
                return {"request": n, "image": name, "click": [x, y], "latency_s": round(latency, 4),
                        "server_total_s": params.get("latencies", {}).get("total"),
                        "dice": round(_dice(label, truth[name]), 4),
                        "problems": _check(label, truth[name], params, references.get(n))}

            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.requests) as pool:
                rows = list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - t0
        exit_status = server.process.returncode if server.process else None
        latencies = np.array([r["latency_s"] for r in rows])
        failed = [r for r in rows if r["problems"]]
        record = {
            "benchmark": "monailabel_load", "model": MODEL, "requests": args.requests, "pictures": names,
            "server_torch_threads": args.threads, "startup_s": round(startup_s, 2),
            "cold_first_request_s": {k: round(v, 3) for k, v in cold.items()},
            "concurrent": _concurrent_summary(rows, failed, wall, args.requests),
            "per_request": rows, "server_exit_status": exit_status,
            "note": "MONAI Label 0.8.5 runs an infer request inside its async endpoint, so requests are served one at "
                    "a time: latency under load is queueing + one head/decoder pass each (the server's own 'total').",
            **provenance("cpu"),
        }
        out = write_json(result_path("monailabel_load", "cpu", args.variant), record, args.allow_dirty)
        _plot_latencies(latencies, args.requests, out)
        print(f"{out}: p50 {record['concurrent']['p50_s']} s, p95 {record['concurrent']['p95_s']} s, "
              f"all correct: {not failed}")
        return 0 if not failed else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _studies(busi: Path, names: list[str], work: Path, requests: int
             ) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The studies folder with the pictures, their truth masks (x, y) and ``requests`` clicks inside each object."""
    studies = work / "studies"
    studies.mkdir()
    truth, clicks = {}, {}
    for name in names:
        shutil.copy(busi / "images" / f"{name}.png", studies)
        mask = (np.asarray(Image.open(busi / "masks" / f"{name}.png").convert("L")) > 127).T
        truth[name] = mask
        inside = np.argwhere(ndimage.binary_erosion(mask, iterations=3))
        clicks[name] = inside[np.linspace(0, len(inside) - 1, requests).astype(int)]
    return studies, truth, clicks


def _concurrent_summary(rows: list[dict[str, Any]], failed: list[dict[str, Any]], wall: float, requests: int
                        ) -> dict[str, Any]:
    """Correctness, throughput and latency percentiles of the concurrent requests."""
    latencies = np.array([r["latency_s"] for r in rows])
    return {"all_correct": not failed, "failed": failed, "wall_s": round(wall, 3),
            "throughput_rps": round(requests / wall, 3),
            "p50_s": round(float(np.percentile(latencies, 50)), 4),
            "p95_s": round(float(np.percentile(latencies, 95)), 4),
            "max_s": round(float(latencies.max()), 4),
            "server_total_mean_s": round(float(np.mean([r["server_total_s"] for r in rows])), 4),
            "dice_mean": round(float(np.mean([r["dice"] for r in rows])), 4)}


def _plot_latencies(latencies: np.ndarray, requests: int, out: Path) -> None:
    """The sorted client latencies with p50 and p95, as the PNG beside the record."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(latencies) + 1), np.sort(latencies), "o-", label="client latency (sorted)")
    for q, style in ((50, "--"), (95, ":")):
        ax.axhline(np.percentile(latencies, q), linestyle=style, color="grey", label=f"p{q}")
    ax.set_xlabel("request (sorted by latency)")
    ax.set_ylabel("seconds")
    ax.set_title(f"{requests} concurrent infer requests, {MODEL} (CPU)")
    ax.legend()
    fig.tight_layout()
    save_png(fig, out)


if __name__ == "__main__":
    sys.exit(main())
