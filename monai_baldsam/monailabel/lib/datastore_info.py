"""Write image info into MONAI Label's datastore without losing what another process wrote meanwhile.

MONAI Label runs scoring in a subprocess with its own :class:`LocalDatastore`, whose ``update_image_info`` rewrites
the whole ``datastore_v2.json`` from the copy that process loaded at start. A label the annotator saved through
the server after that would then vanish from the file. :func:`update_image_info_fresh` re-reads the file and writes
it under the datastore's file lock in one step, so every label and info entry written before stays.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from filelock import FileLock
from monailabel.datastore.local import LocalDatastore, LocalDatastoreModel
from monailabel.interfaces.datastore import Datastore

__all__ = ["update_image_info_fresh", "reload_datastore"]


def _reload_unlocked(datastore: LocalDatastore) -> None:
    path = datastore._datastore_config_path
    if os.path.exists(path):
        with open(path) as fp:
            model = LocalDatastoreModel.model_validate_json(fp.read())
        model.base_path = datastore._datastore_path
        datastore._datastore = model
        datastore._config_ts = os.stat(path).st_mtime


def reload_datastore(datastore: Datastore) -> None:
    """Bring a local datastore's in-memory copy up to date with its file (other datastores: nothing to do)."""
    if isinstance(datastore, LocalDatastore):
        with FileLock(datastore._lock_file):
            _reload_unlocked(datastore)


def update_image_info_fresh(datastore: Datastore, image_id: str, info: Mapping[str, Any]) -> None:
    """``datastore.update_image_info(image_id, info)``, re-reading a local datastore's file under its lock first."""
    if not isinstance(datastore, LocalDatastore):
        datastore.update_image_info(image_id, dict(info))
        return
    with FileLock(datastore._lock_file):
        _reload_unlocked(datastore)
        obj = datastore._datastore.objects.get(image_id)
        if obj is None:
            raise ValueError(f"image {image_id!r} is no longer in the datastore: it was removed while being scored")
        obj.image.info.update(dict(info))
        datastore._update_datastore_file(lock=False)
