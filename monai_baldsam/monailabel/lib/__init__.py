"""The MONAI Label app's parts: configs (one per bundle), heads (publishing fine-tuned heads), hub (shared backbone),
prompts (Slicer's request keys), infers, scoring, strategy, trainer, datastore_info, app (the MONAILabelApp),
validation (what a request may not do, answered with a 4xx), local_store and dicomweb (the datastores: a studies folder,
a PACS over DICOMweb with labels written back as DICOM SEG), durable (crash-safe writes of labels, datastore file and
heads), auth (MONAI Label's token check made to work), process (start / stop / kill a ``monailabel start_server`` by its
PID) and orthanc (start / stop a local Orthanc PACS).

All but :mod:`configs`, :mod:`heads`, :mod:`durable`, :mod:`prompts`, :mod:`validation`, :mod:`auth`, :mod:`process`
and :mod:`orthanc` import ``monailabel`` (``pip install "monai_baldsam[monailabel]"``); importing this package imports
none of them.
"""

from __future__ import annotations

__all__: list[str] = []
