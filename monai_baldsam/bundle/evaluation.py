"""The click-simulation evaluation of ``baldsam evaluate`` as a bundle workflow (``evaluate.json``), on one process or
sharded over ``torchrun`` ranks (``multi_gpu_evaluate.json``).

Each rank evaluates every ``world_size``-th image (:func:`~monai_baldsam.distributed.shard`); rank 0 gathers every
rank's sessions, restores the data set's order and writes the same files as ``baldsam evaluate`` plus ``ranks.json``
(which rank evaluated which image), so a run on N GPUs gives the same numbers as a run on one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from monai_baldsam import distributed
from monai_baldsam.bundle.heads import resolve_bundle_head
from monai_baldsam.evaluation.report import check_output_dir, write_runs, write_volume_report
from monai_baldsam.evaluation.runner import evaluate
from monai_baldsam.evaluation.volumes import evaluate_volumes, summarize_volume_results
from monai_baldsam.head.click_model import load_head_click_model
from monai_baldsam.io.atomic import atomic_write_text
from monai_baldsam.io.cases import discover_cases, discover_volume_cases, validate_masks
from monai_baldsam.segmentation import Segmenter

__all__ = ["ClickEvaluation"]

PathLike = str | os.PathLike


class ClickEvaluation:
    """Simulated interactive sessions on a data set with the bundle's head.

    Args:
        dataset_dir: a folder with ``images/`` and ``masks/`` (2D), or of volumes and their masks (3D); with a
            ``datalist``, the folder its relative paths start from.
        output_dir: where rank 0 writes ``metrics.json``, curves and plots (new or empty unless ``overwrite``).
        head: a shipped head's registry name (the bundle's, e.g. ``polyp``) or a head file; ``head_sha256``: the
            SHA-256 its file must have (the bundle pins its head's; ``None`` or ``"card"``: the card's).
        spatial_dims: 2 (images) or 3 (volumes: box on the largest tumour slice, propagation, Dice per click).
        datalist: a MONAI datalist JSON (``{"testing": [{"image": ..., "label": ...}]}``); ``datalist_key`` its list.
        policies: click policies (``oracle``, ``random_error``, ``bald``, ...); ``first``: ``box`` or ``click``.
        clicks: interactions per image, the first prompt included; ``seed``: every random choice.
        limit: the first ``limit`` images only; ``device``: ``cpu``/``cuda`` (a rank uses its own GPU).
    """

    def __init__(self, dataset_dir: PathLike, output_dir: PathLike, head: str, spatial_dims: int = 2,
                 datalist: PathLike | None = None, datalist_key: str | None = None,
                 policies: Sequence[str] = ("oracle", "bald"), first: str = "box", clicks: int = 10, seed: int = 0,
                 limit: int | None = None, backbone: str = "lite_medsam", device: str | Any = "cpu",
                 overwrite: bool = False, progress: bool = True, head_sha256: str | None = None) -> None:
        if not str(dataset_dir or ""):
            raise ValueError("give the evaluation data: --dataset_dir DIR (and optionally --datalist JSON)")
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.dataset_dir = Path(dataset_dir).expanduser()
        self.output_dir = Path(output_dir).expanduser()
        self.head, self.spatial_dims = str(head), int(spatial_dims)
        self.head_file = resolve_bundle_head(head, head_sha256)
        self.datalist = Path(datalist).expanduser() if datalist else None
        self.datalist_key = datalist_key
        self.policies = [policies] if isinstance(policies, str) else list(policies)
        self.first, self.clicks, self.seed, self.limit = first, int(clicks), int(seed), limit
        self.backbone, self.device = backbone, device
        self.overwrite, self.progress = overwrite, progress

    def cases(self) -> list[Any]:
        """Every image of the data set, in its fixed order (before sharding)."""
        if self.spatial_dims == 3:
            if self.datalist is not None:
                raise ValueError("a 3D evaluation reads a folder of volumes (--dataset_dir); datalists are for 2D")

            return discover_volume_cases(self.dataset_dir, self.limit)

        source = self.datalist if self.datalist is not None else self.dataset_dir
        if self.datalist is not None and not source.is_absolute() and not source.exists():
            source = self.dataset_dir / source
        cases = discover_cases(source, self.datalist_key, self.limit,
                               base_dir=self.dataset_dir if self.datalist is not None else None)
        validate_masks(cases)
        return cases

    def run(self) -> dict[str, Any] | None:
        """Evaluate this rank's share; on rank 0 gather and write everything and return the report (other ranks
        return ``None``)."""

        start = time.perf_counter()
        rank, world = distributed.rank(), distributed.world_size()
        if rank == 0:
            check_output_dir(self.output_dir, self.overwrite)
        cases = self.cases()
        mine = distributed.shard(cases)
        show = self.progress and rank == 0
        if self.spatial_dims == 3:
            results: Any = self._run_volumes(mine, show)
        else:
            results = self._run_images(mine, show)
        gathered = distributed.gather_to_all({"rank": rank, "names": [c.name for c in mine], "results": results})
        if rank != 0:
            return None
        order = {c.name: n for n, c in enumerate(cases)}
        meta = {"backbone": self.backbone, "head": Path(self.head).name, "data": self.dataset_dir.name,
                "datalist": self.datalist.name if self.datalist else None, "seed": self.seed, "limit": self.limit,
                "world_size": world}
        if self.spatial_dims == 3:
            report = self._write_volumes(gathered, order, meta)
        else:
            report = self._write_images(gathered, order, meta)
        ranks = {"world_size": world, "n_cases": len(cases),
                 "ranks": [{"rank": g["rank"], "cases": g["names"]} for g in gathered]}
        atomic_write_text(self.output_dir / "ranks.json", json.dumps(ranks, indent=1) + "\n", overwrite=self.overwrite)
        report["seconds"] = round(time.perf_counter() - start, 2)
        return report

    def _run_images(self, cases: list[Any], show: bool) -> dict[tuple[str, str], Any]:
        found = self.head_file
        model = load_head_click_model(found.path, self.backbone, head_sha256=found.sha256, device=self.device,
                                      seed=self.seed)
        if not cases:  # more ranks than images: this rank has nothing to do
            return {}
        return evaluate(cases, model, self.policies, [self.first], self.clicks, self.seed, progress=show)

    def _write_images(self, gathered: list[dict[str, Any]], order: dict[str, int], meta: dict[str, Any]
                      ) -> dict[str, Any]:

        merged: dict[tuple[str, str], Any] = {}
        for part in gathered:
            for key, run in part["results"].items():
                if key not in merged:
                    merged[key] = run
                else:
                    merged[key].cases.extend(run.cases)
        if not merged:
            raise ValueError("no image was evaluated: the data set is empty")
        for run in merged.values():
            run.cases.sort(key=lambda c: order[c.case.name])
        return write_runs(merged, self.output_dir, meta, overwrite=self.overwrite)

    def _run_volumes(self, cases: list[Any], show: bool) -> list[Any]:
        if self.first != "box":
            raise ValueError("on volumes the first prompt is the box on the largest tumour slice: use first='box'")
        if not cases:
            return []
        segmenter = Segmenter(self.backbone, device=self.device, head=self.head, head_sha256=self.head_file.sha256)
        return evaluate_volumes(cases, segmenter, self.policies, self.clicks, self.seed,
                                progress=(lambda c: tqdm(c, desc="volumes", unit="volume")) if show else None)

    def _write_volumes(self, gathered: list[dict[str, Any]], order: dict[str, int], meta: dict[str, Any]
                       ) -> dict[str, Any]:

        results = sorted((r for part in gathered for r in part["results"]), key=lambda r: order[r.case])
        if not results:
            raise ValueError("no volume was evaluated: the data set is empty")
        meta = {**meta, "first": "box on the largest ground-truth slice, then propagation",
                "metric": "Dice over the whole volume after every interaction"}
        return write_volume_report(summarize_volume_results(results), self.output_dir, meta, overwrite=self.overwrite)
