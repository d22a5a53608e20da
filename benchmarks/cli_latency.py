"""What an annotator waits for from the command line on CPU: ``baldsam segment`` on a 2D picture and the first
``baldsam suggest`` on a BraTS volume, from the command to the answer, with the import cost that precedes every run.

Each command runs as its own process (as a user runs it), ``--repeats`` times, the median wall time kept; the
report's own ``seconds`` (the run after start-up) is recorded beside it. ``python -X importtime`` gives the import
time of :mod:`monai_baldsam.segmentation` and the share of ``import monai``. The first ``suggest`` is measured with
each encoder of ``--encoders`` (the embedding cache is per process, so every run encodes the slices it reaches), with
the command's own breakdown of its run (``timings``: propagation, the encoder's share and slices, BALD scoring).
Writes ``benchmarks/results/cli_latency[_<variant>]_cpu.json``.

    python -m benchmarks.cli_latency --config configs/benchmarks/cli_latency.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.results_io import add_common_arguments, parse_args, provenance, result_path, write_json
from monai_baldsam.data_paths import data_root

BALDSAM = [sys.executable, "-m", "monai_baldsam.cli.main"]


def _timed(command: list[str], repeats: int) -> dict[str, Any]:
    """Median wall time of ``command`` over ``repeats`` runs, and the last run's JSON report."""
    walls, report = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        report = json.loads(done.stdout)
    return {"wall_s": round(float(np.median(walls)), 2), "walls_s": [round(w, 2) for w in walls],
            "run_s": report.get("seconds"), "report": report}


def _import_times() -> dict[str, float]:
    """Cumulative import seconds of monai_baldsam.segmentation, monai and torch (``-X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import monai_baldsam.segmentation"],
                          capture_output=True, text=True, check=True)
    cumulative: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            cumulative[parts[2]] = int(parts[1]) / 1e6
    return {name: round(cumulative.get(name, float("nan")), 2)
            for name in ("monai_baldsam.segmentation", "monai", "torch")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picture", default="dev/busi/images/benign_001.png", help="relative to the data root")
    parser.add_argument("--box-2d", default="215,107,265,132")
    parser.add_argument("--volume", default="dev/brats2018/images/Brats18_TCIA02_471_1.nii.gz")
    parser.add_argument("--box-3d", default="113,85,73,183,177", help="I0,J0,K,I1,J1 on the largest tumour slice")
    parser.add_argument("--head", default="general")
    parser.add_argument("--encoders", nargs="+", default=["openvino-f32", "openvino-bf16"])
    parser.add_argument("--repeats", type=int, default=3, help="runs of segment (suggest runs once per encoder)")
    add_common_arguments(parser)
    args = parse_args(parser)
    root = data_root()
    with tempfile.TemporaryDirectory(prefix="cli_latency_") as tmp:
        segment = _timed([*BALDSAM, "segment", str(root / args.picture), "--box", args.box_2d, "--out",
                          str(Path(tmp) / "mask.png"), "--overwrite"], args.repeats)
    suggest = {}
    for encoder in args.encoders:
        found = _timed([*BALDSAM, "suggest", str(root / args.volume), "--box", args.box_3d, "--head", args.head,
                        "--encoder", encoder], 1)
        report = found.pop("report")
        found["suggestion"] = report.get("suggestion")
        found["timings"] = report.get("timings")  # where the run went: propagation, encoding, scoring
        suggest[encoder] = found
    segment.pop("report")
    record = {"benchmark": "cli_latency", "picture": args.picture, "volume": args.volume, "head": args.head,
              "imports_s": _import_times(), "segment_2d": segment, "first_suggest_3d": suggest,
              "targets_s": {"segment_2d": 4.0, "first_suggest_3d": 30.0}, **provenance("cpu")}
    out = write_json(result_path("cli_latency", "cpu", args.variant), record, args.allow_dirty)
    print(out, json.dumps({k: record[k] for k in ("imports_s",)}),
          {"segment_wall_s": segment["wall_s"], **{e: s["wall_s"] for e, s in suggest.items()}})


if __name__ == "__main__":
    main()
