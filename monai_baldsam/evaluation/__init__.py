"""Evaluation of interactive segmentation over many images: the standard protocol's runner, reports, plots and
paired statistics, and the volume evaluation.

One image's session (click models, policies, simulator, metrics) is :mod:`monai_baldsam.interaction`; finding the
cases is :mod:`monai_baldsam.io.cases`.

* :mod:`~monai_baldsam.evaluation.runner`: every policy on every image, sharing embeddings and first prompts.
* :mod:`~monai_baldsam.evaluation.report`: ``metrics.json``, ``curves.csv``, PNG plots, comparison tables.
* :mod:`~monai_baldsam.evaluation.statistics`: the paired bootstrap interval of a mean difference over images.
* :mod:`~monai_baldsam.evaluation.paired`: runs paired image by image, the reference policy against each other.
* :mod:`~monai_baldsam.evaluation.volumes`: 3D sessions on a folder of volumes (propagation, corrections, BALD).
"""

from monai_baldsam.evaluation.report import (
    comparison_table,
    load_run,
    plot_comparison,
    run_summary,
    write_run,
)
from monai_baldsam.evaluation.runner import CaseResult, RunResult, evaluate, session_rng
from monai_baldsam.evaluation.statistics import PairedDifference, paired_bootstrap

__all__ = [
    "comparison_table",
    "load_run",
    "plot_comparison",
    "run_summary",
    "write_run",
    "CaseResult",
    "RunResult",
    "evaluate",
    "session_rng",
    "PairedDifference",
    "paired_bootstrap",
]
