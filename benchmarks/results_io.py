"""Writing benchmark results: where a result came from (git commit and whether the tree was dirty, the machine, the
command), and atomic JSON and PNG files under ``benchmarks/results/``.

Imported by the benchmarks of this package (each run as ``python -m benchmarks.<name>`` from the repository root).
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from monai_baldsam.io.atomic import atomic_path, atomic_write_text

__all__ = ["REPO", "RESULTS", "git", "provenance", "device_info", "write_json", "save_png"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_info(device: str = "cpu") -> dict[str, Any]:
    info: dict[str, Any] = {"device": device, "platform": platform.platform(), "processor": platform.processor(),
                            "machine": platform.machine(), "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                            "torch": torch.__version__}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def provenance(device: str = "cpu") -> dict[str, Any]:
    """``git_commit``, ``git_dirty``, ``command`` and ``device_info`` for a results file.

    On a machine that received a copy of the tree (a GPU machine), set ``BALDSAM_GIT_COMMIT`` to the commit the
    copy was made from: it is recorded instead of what ``git`` says there (the copy's ``.git`` may be stale), and
    ``git_dirty`` is then unknown."""
    commit = git("rev-parse", "HEAD")
    if os.environ.get("BALDSAM_GIT_COMMIT"):  # set explicitly: it wins (a copied .git may be stale)
        return {"git_commit": os.environ["BALDSAM_GIT_COMMIT"], "git_dirty": None,
                "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]), "device_info": device_info(device)}
    return {"git_commit": commit,
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
            "device_info": device_info(device)}


def write_json(name: str, record: dict[str, Any]) -> Path:
    """``record`` as ``benchmarks/results/<name>.json`` (atomic; a result replaces the previous one of its name)."""
    import json

    return atomic_write_text(RESULTS / f"{name}.json", json.dumps(record, indent=1) + "\n", overwrite=True)


def save_png(figure: Any, name: str, dpi: int = 120) -> Path:
    """A matplotlib ``figure`` as ``benchmarks/results/<name>.png`` (atomic), then closed."""
    import matplotlib.pyplot as plt

    path = RESULTS / f"{name}.png"
    with atomic_path(path, overwrite=True) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)
    return path
