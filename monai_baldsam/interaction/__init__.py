"""The interaction layer: a click model, the click policies, metrics and one image's simulated session.

Everything that runs or simulates clicks builds on it (the head, the decoder trainer, suggestions, evaluation, the
MONAI Label app); it imports only the SAM wrappers, the transforms, the inferer, the Bayesian acquisition rules and
``io``.

* :mod:`~monai_baldsam.interaction.model`: the :class:`ClickModel` protocol and the plain-SAM :class:`SamClickModel`.
* :mod:`~monai_baldsam.interaction.metrics`: IoU, Dice, NoC@t, mIoU@k, AUC (pure functions of masks and curves).
* :mod:`~monai_baldsam.interaction.geometry`: padded distance transforms, first click, oracle/random clicks, boxes.
* :mod:`~monai_baldsam.interaction.policies`: :class:`ClickPolicy`, its context, and the registry (``oracle``,
  ``random_error``, ``random``, ``entropy``, ``bald``, ...).
* :mod:`~monai_baldsam.interaction.one_shot`: the one-shot baseline (``one_shot``: points drawn at once from the
  ground-truth interior, no feedback), registered as a policy.
* :mod:`~monai_baldsam.interaction.simulator`: first prompts and one image's session.
* :mod:`~monai_baldsam.interaction.cases`: one (image, mask) case loaded for the simulator (finding cases is
  :mod:`monai_baldsam.io.cases`).
"""

from monai_baldsam.interaction.cases import LoadedCase, load_case
from monai_baldsam.interaction.metrics import (
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
from monai_baldsam.interaction.model import ClickModel, ModelOutput, SamClickModel, load_click_model
from monai_baldsam.interaction.one_shot import OneShotPolicy, one_shot_points
from monai_baldsam.interaction.policies import (
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
from monai_baldsam.interaction.simulator import (
    FirstInteraction,
    FirstPrompt,
    SessionResult,
    make_first_prompt,
    run_first_interaction,
    run_session,
)

__all__ = [
    "LoadedCase",
    "load_case",
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
    "OneShotPolicy",
    "one_shot_points",
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
    "FirstInteraction",
    "FirstPrompt",
    "SessionResult",
    "make_first_prompt",
    "run_first_interaction",
    "run_session",
]
