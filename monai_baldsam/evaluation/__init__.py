"""Click simulation and evaluation of interactive segmentation: the standard protocol, metrics, reports and plots.

* :mod:`~monai_baldsam.evaluation.metrics`: IoU, Dice, NoC@t, mIoU@k, AUC (pure functions of masks and curves).
* :mod:`~monai_baldsam.evaluation.geometry`: padded distance transforms, first click, oracle/random clicks, boxes.
* :mod:`~monai_baldsam.evaluation.model`: the :class:`ClickModel` protocol and the plain-SAM :class:`SamClickModel`.
* :mod:`~monai_baldsam.evaluation.policies`: :class:`ClickPolicy`, its context, and the registry (``oracle``,
  ``random_error``, ``random``).
* :mod:`~monai_baldsam.evaluation.one_shot`: the one-shot baseline (``one_shot``: points drawn at once from the
  ground-truth interior, no feedback), registered as a policy.
* :mod:`~monai_baldsam.evaluation.simulator`: first prompts and one image's session.
* :mod:`~monai_baldsam.evaluation.data`: (image, mask) pairs from a folder or a MONAI datalist.
* :mod:`~monai_baldsam.evaluation.runner`: every policy on every image, sharing embeddings and first prompts.
* :mod:`~monai_baldsam.evaluation.report`: ``metrics.json``, ``curves.csv``, PNG plots, comparison tables.
* :mod:`~monai_baldsam.evaluation.statistics`: the paired bootstrap interval of a mean difference over images.
* :mod:`~monai_baldsam.evaluation.paired`: runs paired image by image, the reference policy against each other.
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
from monai_baldsam.evaluation.one_shot import OneShotPolicy, one_shot_points
from monai_baldsam.evaluation.report import (
    comparison_table,
    load_run,
    plot_comparison,
    run_summary,
    write_run,
)
from monai_baldsam.evaluation.runner import CaseResult, RunResult, evaluate, session_rng
from monai_baldsam.evaluation.statistics import PairedDifference, paired_bootstrap
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
    "OneShotPolicy",
    "one_shot_points",
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
    "FirstInteraction",
    "FirstPrompt",
    "SessionResult",
    "make_first_prompt",
    "run_first_interaction",
    "run_session",
]
