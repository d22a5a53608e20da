"""Active-learning strategies ``bald`` and ``usam``: the unlabeled image the model is least sure about comes next.

Each reads what the scoring method of its name wrote (image info ``"bald"`` / ``"usam"`` -> ``"score"``; for
``usam`` the score is ``1 - predicted IoU``). Among the unlabeled images with a score it picks the highest; equal scores (to 1e-9) go to the image served least recently by this strategy (MONAI
Label records ``info["strategy"][<name>]["ts"]`` when it serves one; never served counts as 0), then to the smaller
id. Without any score (nothing scored yet) it falls back to a random unlabeled image, drawn with a generator seeded by
the request's ``seed`` (default: the clock) and weighted by the time since each was last served, as MONAI Label's
``random`` strategy does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

from monai_baldsam.image_selection import Candidate, rank_candidates
from monai_baldsam.monailabel.lib.datastore_info import reload_datastore

__all__ = ["ScoreStrategy"]

logger = logging.getLogger(__name__)


class ScoreStrategy(Strategy):
    """Highest ``info[key]["score"]`` first (see the module docstring); ``key`` is ``bald`` or ``usam``."""

    def __init__(self, key: str = "bald") -> None:
        what = {"bald": "the highest BALD score", "usam": "the lowest UncertainSAM predicted IoU"}.get(key, key)
        super().__init__(f"{key}: the unlabeled image with {what} (random when nothing is scored)")
        self.key = key

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        reload_datastore(datastore)  # scores come from the scoring subprocess: read the file's latest state
        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        name = str(request.get("strategy", self.key))
        candidates = []
        for image_id in images:
            info = datastore.get_image_info(image_id)
            score = info.get(self.key, {}).get("score")
            served = info.get("strategy", {}).get(name, {}).get("ts", 0)
            candidates.append(Candidate(image_id, None if score is None else float(score), float(served or 0)))
        ranked = rank_candidates(candidates)
        if ranked:
            best = ranked[0]
            logger.info(f"{self.key} strategy: {best.image_id} (score {best.score}) of {len(ranked)} scored images")
            return {"id": best.image_id, "score": best.score, "scored": len(ranked), "fallback": False}
        seed = request.get("seed")
        rng = np.random.default_rng(int(seed) if seed is not None else time.time_ns())
        now = time.time()
        weights = np.array([max(now - c.served_ts, 1.0) for c in candidates])
        pick = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
        logger.info(f"{self.key} strategy: nothing is scored yet, random pick {pick.image_id}")
        return {"id": pick.image_id, "score": None, "scored": 0, "fallback": True}
