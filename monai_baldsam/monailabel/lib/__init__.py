"""The MONAI Label app's parts: configs (one per bundle), heads (publishing fine-tuned heads), hub (shared backbone),
prompts (Slicer's request keys), infers, scoring, strategy, trainer, datastore_info, app (the MONAILabelApp) and
process (start / stop a ``monailabel start_server`` by its PID).

All but :mod:`configs`, :mod:`heads`, :mod:`prompts` and :mod:`process` import ``monailabel`` (``pip install
"monai_baldsam[monailabel]"``); importing this package imports none of them.
"""

from __future__ import annotations

__all__: list[str] = []
