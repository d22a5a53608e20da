"""Collect the runs of ``benchmarks/eval_head_dev_subset.sh`` into one JSON under ``benchmarks/results/``.

Usage: ``python benchmarks/summarize_head_eval.py RUNS_DIR OUT_JSON`` where RUNS_DIR holds ``<domain>_<first>/``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from monai_baldsam.io.atomic import atomic_write_text


def main(runs_dir: str, out_json: str) -> int:
    runs = Path(runs_dir)
    table: dict[str, dict[str, dict[str, dict]]] = {}
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        domain, first = run.name.rsplit("_", 1)
        for metrics in sorted(run.glob("*/metrics.json")):
            m = json.loads(metrics.read_text())
            table.setdefault(domain, {}).setdefault(first, {})[m["policy"]] = {
                "n_images": m["n_images"], "miou_at": m["miou_at"], "noc85": m["noc85"],
                "failures_at_budget": m.get("failures_at_budget"), "auc": m["auc"],
                "seconds_per_click": m["seconds_per_click"],
            }
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "benchmark": "head_general_v0_dev_subset",
        "command": "bash benchmarks/eval_head_dev_subset.sh (out dirs under /tmp/headeval) && "
                   f"python benchmarks/summarize_head_eval.py {runs_dir} {out_json}",
        "git_commit": commit,
        "device": {"device": "cpu", "machine": platform.machine(), "threads": 1, "python": platform.python_version()},
        "head": "monai_baldsam/head/weights/general_v0.pt",
        "protocol": "first 12 dev images per domain (sorted), 5 interactions, seed 0; see README 'Evaluating click policies'",
        "written": datetime.now(timezone.utc).isoformat(),
        "domains": table,
    }
    atomic_write_text(out_json, json.dumps(result, indent=1), overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
