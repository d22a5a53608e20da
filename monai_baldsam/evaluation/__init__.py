"""Click simulation and evaluation of interactive segmentation: the standard protocol, metrics, reports and plots.

* :mod:`~monai_baldsam.evaluation.metrics`: IoU, Dice, NoC@t, mIoU@k, AUC (pure functions of masks and curves).
* :mod:`~monai_baldsam.evaluation.geometry`: padded distance transforms, first click, oracle/random clicks, boxes.
* :mod:`~monai_baldsam.evaluation.model`: the :class:`ClickModel` protocol and the plain-SAM :class:`SamClickModel`.
* :mod:`~monai_baldsam.evaluation.policies`: :class:`ClickPolicy`, its context, and the registry (``oracle``,
  ``random_error``, ``random``).
* :mod:`~monai_baldsam.evaluation.simulator`: first prompts and one image's session.
* :mod:`~monai_baldsam.evaluation.data`: (image, mask) pairs from a folder or a MONAI datalist.
* :mod:`~monai_baldsam.evaluation.runner`: every policy on every image, sharing embeddings and first prompts.
* :mod:`~monai_baldsam.evaluation.report`: ``metrics.json``, ``curves.csv``, PNG plots, comparison tables.
"""

from monai_baldsam.evaluation.data import (
    DATALIST_KEYS,
    EvalCase,
    LoadedCase,
    discover_cases,
    load_case,
    validate_masks,
)
from monai_baldsam.evaluation.metrics import (
    MIOU_AT,
    NOC_THRESHOLDS,
    area_under_curve,
    dice_score,
    failures_at_budget,
    iou_score,
    mean_curve,
    miou_at,
    number_of_clicks,
    summarize_curves,
)
from monai_baldsam.evaluation.model import ClickModel, ModelOutput, SamClickModel, load_click_model
from monai_baldsam.evaluation.policies import (
    Click,
    ClickContext,
    ClickPolicy,
    OraclePolicy,
    Prompt,
    RandomErrorPolicy,
    RandomPolicy,
    available_policies,
    make_policy,
    parse_policy_names,
    register_policy,
)
from monai_baldsam.evaluation.report import (
    comparison_table,
    load_run,
    plot_comparison,
    run_summary,
    write_run,
)
from monai_baldsam.evaluation.runner import CaseResult, RunResult, evaluate, session_rng
from monai_baldsam.evaluation.simulator import (
    FirstInteraction,
    FirstPrompt,
    SessionResult,
    make_first_prompt,
    run_first_interaction,
    run_session,
)

__all__ = [
    "DATALIST_KEYS",
    "EvalCase",
    "LoadedCase",
    "discover_cases",
    "load_case",
    "validate_masks",
    "MIOU_AT",
    "NOC_THRESHOLDS",
    "area_under_curve",
    "dice_score",
    "failures_at_budget",
    "iou_score",
    "mean_curve",
    "miou_at",
    "number_of_clicks",
    "summarize_curves",
    "ClickModel",
    "ModelOutput",
    "SamClickModel",
    "load_click_model",
    "Click",
    "ClickContext",
    "ClickPolicy",
    "OraclePolicy",
    "Prompt",
    "RandomErrorPolicy",
    "RandomPolicy",
    "available_policies",
    "make_policy",
    "parse_policy_names",
    "register_policy",
    "comparison_table",
    "load_run",
    "plot_comparison",
    "run_summary",
    "write_run",
    "CaseResult",
    "RunResult",
    "evaluate",
    "session_rng",
    "FirstInteraction",
    "FirstPrompt",
    "SessionResult",
    "make_first_prompt",
    "run_first_interaction",
    "run_session",
]
