"""The MONAI Label app: a registry of task configs, one per monai_baldsam bundle.

Options (``monailabel start_server ... --conf KEY VALUE``):

* ``models``: comma-separated bundle names to serve (default ``all``; the ``baldsam_`` prefix may be left out).
* ``device``: ``cpu`` or ``cuda`` (default: ``cuda`` when available).
* ``model_dir``: where fine-tuned heads are published (default ``<studies>/.baldsam/models``, a folder MONAI Label's
  local datastore does not list; for a DICOMweb studies URL, ``<app>/model``).
* ``score_key``: what the ``bald`` score is, ``mean_mi_bits`` (default) or ``topk_mean_mi_bits``; ``top_fraction``
  (0.01) and ``scoring_slices`` (3, per volume) tune the scoring.
* ``usam``: UncertainSAM heads for the ``usam`` scoring method and strategy (lowest predicted IoU first), a shipped
  name (``general``, the default) or a file; ``none`` turns them off.
* ``threads``: torch CPU threads of the server process (default: torch's).
* ``auth_algorithms``: with MONAI Label's authentication on (``MONAI_LABEL_AUTH_ENABLE=true``), the token signature
  algorithms accepted (default ``RS256``, Keycloak's); see :mod:`~monai_baldsam.monailabel.lib.auth`.

A DICOMweb ``--studies`` URL (a PACS such as Orthanc) is served by
:class:`~monai_baldsam.monailabel.lib.dicomweb.BaldSamDicomWebDatastore`; a studies folder by
:class:`~monai_baldsam.monailabel.lib.local_store.BaldSamLocalDatastore`. Bad requests are answered with a 4xx that
says what is wrong (:mod:`~monai_baldsam.monailabel.lib.validation`).

Tasks: an infer task per model (2D bundles: pictures or one slice; 3D bundle: volumes with propagation), a trainer
per model, the ``bald`` (and ``usam``) scoring methods and strategies (plus MONAI Label's ``random``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.scoring import ScoringMethod
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.random import Random

from monai_baldsam import __version__
from monai_baldsam.monailabel.lib.auth import fix_token_algorithms
from monai_baldsam.monailabel.lib.configs import discover_configs, select_configs
from monai_baldsam.monailabel.lib.dicomweb import dicomweb_datastore
from monai_baldsam.monailabel.lib.heads import HeadStore
from monai_baldsam.monailabel.lib.hub import ModelHub
from monai_baldsam.monailabel.lib.infers import BaldSamInfer
from monai_baldsam.monailabel.lib.local_store import BaldSamLocalDatastore
from monai_baldsam.monailabel.lib.scoring import BaldScoring, UsamScoring
from monai_baldsam.monailabel.lib.strategy import ScoreStrategy
from monai_baldsam.monailabel.lib.trainer import HeadTrainer
from monai_baldsam.monailabel.lib.validation import RequestError, check_image_id, is_upload, to_http
from monai_baldsam.usam import resolve_usam

__all__ = ["BaldSamApp", "default_model_dir"]

logger = logging.getLogger(__name__)


def default_model_dir(app_dir: str, studies: str) -> Path:
    """Where fine-tuned heads go unless ``--conf model_dir`` says otherwise."""
    if studies.startswith(("http://", "https://")):
        return Path(app_dir) / "model"
    return Path(studies) / ".baldsam" / "models"


#: the embedding cache's budget when ``--conf embedding_cache_mb`` is not given (MiB)
DEFAULT_EMBEDDING_CACHE_MB = 2048


def embedding_cache_bytes(conf: dict[str, str]) -> int:
    """``--conf embedding_cache_mb N``: the memory the server may keep image embeddings in (a LiteMedSAM slice takes
    4 MiB; least recently used dropped first), in bytes; default 2048 MiB."""
    value = conf.get("embedding_cache_mb") or DEFAULT_EMBEDDING_CACHE_MB
    try:
        megabytes = float(value)
    except (TypeError, ValueError):
        megabytes = float("nan")
    if not megabytes > 0:
        raise ValueError(f"--conf embedding_cache_mb must be a positive number of MiB, got {value!r}")
    return int(megabytes * (1 << 20))


def _usam_heads(name: str, backbone: str) -> str | None:
    """The UncertainSAM heads for the ``usam`` scoring method and strategy, or ``None`` (``--conf usam none``, or none
    shipped for the served backbone)."""
    if name.strip().lower() in ("", "none", "off", "false"):
        return None
    if backbone != "lite_medsam" and not name.endswith(".pt"):
        return None  # the shipped heads are LiteMedSAM's

    try:
        resolve_usam(name)
    except FileNotFoundError as err:
        logger.warning(f"usam scoring is off: {err}")
        return None
    return name


class BaldSamApp(MONAILabelApp):
    """SAM + Bayesian head + BALD as a MONAI Label app (see the module docstring)."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = dict(conf or {})
        if settings.MONAI_LABEL_AUTH_ENABLE:  # MONAI Label 0.8.5 refuses every token otherwise (lib/auth.py)
            fix_token_algorithms([a.strip() for a in conf.get("auth_algorithms", "RS256").split(",") if a.strip()])
        if conf.get("threads"):
            torch.set_num_threads(int(conf["threads"]))
        self.model_configs = select_configs(discover_configs(), conf.get("models"))
        device = conf.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model_dir = Path(conf["model_dir"]) if conf.get("model_dir") else default_model_dir(app_dir, studies)
        backbones = {c.backbone for c in self.model_configs}
        if len(backbones) != 1:
            raise ValueError(f"the served models use different backbones {sorted(backbones)}: serve models of one "
                             "backbone per server (--conf models ...)")
        backbone = next(iter(backbones))
        self.hub = ModelHub(backbone=backbone, device=device, cache_bytes=embedding_cache_bytes(conf))
        self.stores = {c.name: HeadStore(self.model_dir / c.name, c.head_path, c.head_sha256)
                       for c in self.model_configs}
        self.footprint = float(conf["footprint"]) if conf.get("footprint") else None
        self.gate = float(conf["gate"]) if conf.get("gate") else None
        self.scoring_options = {"score_key": conf.get("score_key", "mean_mi_bits"),
                                "top_fraction": float(conf.get("top_fraction", 0.01)),
                                "slices": int(conf.get("scoring_slices", 3))}
        self.usam = _usam_heads(conf.get("usam", "general"), backbone)
        self._infer_tasks: dict[str, BaldSamInfer] = {}
        super().__init__(app_dir=app_dir, studies=studies, conf=conf, name="monai_baldsam",
                         description="Interactive SAM (LiteMedSAM) with a Bayesian head: BALD next-click "
                                     "suggestions, BALD scoring and active learning",
                         version=__version__, labels=None)

    def init_infers(self) -> dict[str, InferTask]:
        self._infer_tasks = {c.name: BaldSamInfer(c, self.hub, self.stores[c.name], self.footprint, self.gate,
                                                  usam=self.usam) for c in self.model_configs}
        return dict(self._infer_tasks)

    def init_trainers(self) -> dict[str, TrainTask]:
        return {c.name: HeadTrainer(c, self.stores[c.name], self.hub) for c in self.model_configs}

    def init_strategies(self) -> dict[str, Strategy]:
        strategies: dict[str, Strategy] = {"bald": ScoreStrategy("bald"), "random": Random()}
        if self.usam is not None:
            strategies["usam"] = ScoreStrategy("usam")
        return strategies

    def init_scoring_methods(self) -> dict[str, ScoringMethod]:
        methods: dict[str, ScoringMethod] = {"bald": BaldScoring(self._infer_tasks, **self.scoring_options)}
        if self.usam is not None:
            methods["usam"] = UsamScoring(self._infer_tasks, self.usam, slices=self.scoring_options["slices"])
        return methods

    def init_datastore(self) -> Datastore:
        """A studies folder: :class:`~monai_baldsam.monailabel.lib.local_store.BaldSamLocalDatastore` (MONAI
        Label's, with the request checks); a URL: :meth:`init_remote_datastore`."""
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()
        return BaldSamLocalDatastore(self.studies, extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
                                     auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
                                     read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY)

    def infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> dict[str, Any]:
        """MONAI Label's infer, with a bad request answered by a 4xx that says what is wrong
        (:mod:`~monai_baldsam.monailabel.lib.validation`): an unknown model (404), an image id that is a path or not
        in the datastore (400 / 404; only the file uploaded with the request, or a session's, is read by path), and
        whatever the infer task refuses with ``ValueError`` (an unreadable image, points outside it, too many)."""
        try:
            model = request.get("model")
            if model not in self._infers:
                raise RequestError(f"unknown model {str(model)[:80]!r}: this server serves "
                                   f"{', '.join(sorted(self._infers))} (GET /info/ lists them)", status=404)
            image = request.get("image")
            sessions = (settings.MONAI_LABEL_SESSION_PATH or "").strip() or Path.home() / ".cache/monailabel/sessions"
            if not (isinstance(image, str) and is_upload(image, sessions)):
                store = datastore or self.datastore()
                check_image_id(image, store.list_images())
            return super().infer(request, datastore)
        except ValueError as err:
            raise to_http(err) from None

    def init_remote_datastore(self) -> Datastore:
        """A DICOMweb studies URL: :class:`~monai_baldsam.monailabel.lib.dicomweb.BaldSamDicomWebDatastore` (SEG
        written in Python); XNAT / DSA (``MONAI_LABEL_DATASTORE``): MONAI Label's."""
        if settings.MONAI_LABEL_DATASTORE.lower() in ("xnat", "dsa") or "googleapis.com" in self.studies:
            return super().init_remote_datastore()
        logger.info(f"DICOMweb datastore: {self.studies}")
        return dicomweb_datastore(self.studies)

    def _download_dcmqi_tools(self) -> None:
        """Nothing to download: this app writes DICOM SEG without dcmqi (MONAI Label would fetch it from GitHub at
        start-up)."""

    def info(self) -> dict[str, Any]:
        data = super().info()
        data["baldsam"] = {"model_dir": str(self.model_dir), "device": str(self.hub.device)}
        return data
