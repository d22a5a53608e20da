"""monai_baldsam as a MONAI Label app: interactive SAM + Bayesian head with BALD next-click suggestions, BALD
scoring and active learning, and fine-tuning of the head on the annotators' labels.

Start a server on a folder of images (pictures and/or NIfTI volumes)::

    pip install "monai_baldsam[monailabel]"          # SAM2_BUILD_CUDA=0 on machines without CUDA
    monailabel start_server --app "$(baldsam monailabel-app)" --studies /path/to/images --host 127.0.0.1 \\
        [--conf models baldsam_ultrasound,baldsam_brain_mri] [--conf device cpu] [--conf model_dir DIR]

(``--host 127.0.0.1``: MONAI Label's default, ``0.0.0.0``, opens the server to the network.) ``--studies`` may also
be a PACS's DICOMweb URL, e.g. Orthanc's ``http://127.0.0.1:8042/dicom-web``: see ``docs/deploying.md``.

``baldsam monailabel-app`` prints :func:`app_dir`, the folder of this package that holds ``main.py``. MONAI Label
creates ``logs/``, ``bin/``, ``lib/`` and ``model/`` in the app folder, so to keep them out of the installed package
copy the app (once) to a folder of your own and start that one (:mod:`monai_baldsam.monailabel.workdir`)::

    baldsam monailabel-app --copy-to ~/baldsam-app
    monailabel start_server --app ~/baldsam-app --studies /path/to/images --host 127.0.0.1

Importing this module does not import ``monailabel``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP_DIR", "app_dir"]

#: The app folder (holds ``main.py``), inside the installed package.
APP_DIR = Path(__file__).resolve().parent


def app_dir() -> Path:
    """The folder to pass as ``monailabel start_server --app``."""
    return APP_DIR
