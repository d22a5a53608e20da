"""Entry point MONAI Label loads from the app folder (``monailabel start_server --app <this folder>``).

MONAI Label imports this file by path and takes the class in it whose direct base is ``MONAILabelApp``; the app
itself lives in :mod:`monai_baldsam.monailabel.lib.app`. The import is absolute, so this file also works copied alone
into a work folder (``baldsam monailabel-app --copy-to DIR``, :mod:`monai_baldsam.monailabel.workdir`).
"""

from __future__ import annotations

from monai_baldsam.monailabel.lib.app import BaldSamApp

__all__ = ["BaldSamApp"]
