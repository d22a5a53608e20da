"""Entry point MONAI Label loads from the app folder (``monailabel start_server --app <this folder>``).

MONAI Label imports this file by path and takes the class in it whose direct base is ``MONAILabelApp``; the app
itself lives in :mod:`monai_baldsam.monailabel.lib.app`.
"""

from __future__ import annotations

from monai_baldsam.monailabel.lib.app import BaldSamApp

__all__ = ["BaldSamApp"]
