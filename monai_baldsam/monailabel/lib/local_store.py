"""MONAI Label's local datastore (a studies folder) with the app's request checks on what writes into it, made
crash-safe.

Request checks: MONAI Label 0.8.5's :class:`~monailabel.datastore.local.LocalDatastore` joins the label tag of
``PUT /datastore/label`` into a folder path (a tag ``../../x`` writes outside the studies folder) and answers an
unknown image id with a ``500``. :class:`BaldSamLocalDatastore` checks both first
(:mod:`~monai_baldsam.monailabel.lib.validation`) and answers a 4xx that says what is wrong.

Crash safety (:class:`DurableStoreMixin`, also under the DICOMweb datastore's local cache): MONAI Label copies a
submitted label (or an uploaded image) straight onto its final name and rewrites ``datastore_v2.json`` in place, so a
server killed mid-write leaves a half-written label that is served after the restart, or a truncated
``datastore_v2.json`` the server then refuses to start on. Here every such write goes through a temporary file in the
same folder, fsync and rename (:mod:`~monai_baldsam.monailabel.lib.durable`), under the datastore's lock; a label is
acknowledged only once it is whole under its name. Temporary files are never listed, and those a killed server left
are deleted (under the lock) on the next start. A ``datastore_v2.json`` that cannot be read (left by an older
version) is moved aside with a warning and the datastore rebuilt from the files in the folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from filelock import FileLock
from monailabel.datastore.local import DataModel, ImageLabelModel, LocalDatastore, LocalDatastoreModel
from monailabel.interfaces.exception import ImageNotFoundException

from monai_baldsam.io.atomic import TEMP_PREFIX
from monai_baldsam.monailabel.lib.durable import atomic_copy, atomic_write_text_paused, remove_stale_temps
from monai_baldsam.monailabel.lib.validation import RequestError, check_image_id, check_label_tag, to_http

__all__ = ["DurableStoreMixin", "BaldSamLocalDatastore"]

logger = logging.getLogger(__name__)


class DurableStoreMixin:
    """Crash-safe writes for a :class:`~monailabel.datastore.local.LocalDatastore` subclass (put it first in the
    bases); see the module docstring. Methods are MONAI Label 0.8.5's with each write made atomic."""

    _datastore: LocalDatastoreModel
    _datastore_config_path: str
    _lock_file: str

    def _watch_renames(self) -> None:
        """MONAI Label's file watcher reloads on a *modified* ``datastore_v2.json``; an atomic write *renames* a
        temporary file onto it (another process's scores included), so renames are handled too."""
        handler = getattr(self, "_handler", None)
        if handler is not None:
            handler.on_moved = self._on_moved_event

    def _on_moved_event(self, event: Any) -> None:
        if os.fsdecode(event.dest_path) == self._datastore_config_path:
            self._init_from_datastore_file()
        elif not Path(os.fsdecode(event.dest_path)).name.startswith(TEMP_PREFIX):
            self._on_any_event(event)  # type: ignore[attr-defined]  # a label or image renamed into place

    def _list_files(self, path: str, patterns: list[str]) -> dict[str, str]:
        files = super()._list_files(path, patterns)  # type: ignore[misc]
        return {k: v for k, v in files.items() if not k.startswith(TEMP_PREFIX)}

    def _reconcile_datastore(self) -> None:
        with FileLock(self._lock_file):  # writers hold it while their temporary file exists: these are stale
            labels = Path(self._datastore.label_path(None))
            tags = [p for p in labels.iterdir() if p.is_dir()] if labels.is_dir() else []
            for folder in {Path(self._datastore_config_path).parent, Path(self._datastore.image_path()), *tags}:
                remove_stale_temps(folder)
        super()._reconcile_datastore()  # type: ignore[misc]

    def _init_from_datastore_file(self, throw_exception: bool = False) -> None:
        try:
            super()._init_from_datastore_file(throw_exception=True)  # type: ignore[misc]
        except ValueError as err:
            self._set_aside_unreadable(err)

    def _set_aside_unreadable(self, err: Exception) -> None:
        path = Path(self._datastore_config_path)
        with FileLock(self._lock_file):
            try:
                LocalDatastoreModel.model_validate_json(path.read_text())
                return  # rewritten by another process meanwhile
            except FileNotFoundError:
                return
            except ValueError:
                pass
            aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
        logger.warning(f"{path} cannot be read ({str(err)[:200]}); moved to {aside.name}. The datastore is rebuilt "
                       "from the images and labels in the folder (their info, such as scores, is lost: rescore)")

    def _update_datastore_file(self, lock: bool = True) -> None:
        if lock:
            with FileLock(self._lock_file):
                self._write_datastore_file()
        else:
            self._write_datastore_file()

    def _write_datastore_file(self) -> None:
        text = json.dumps(self._datastore.model_dump(exclude={"base_path"}), indent=2, default=str)
        atomic_write_text_paused(self._datastore_config_path, text, what="datastore")
        self._config_ts = os.stat(self._datastore_config_path).st_mtime

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        file_id, image_ext = self._to_id(os.path.basename(image_filename))  # type: ignore[attr-defined]
        image_id = image_id or file_id
        name = self._filename(image_id, image_ext)  # type: ignore[attr-defined]
        logger.info(f"Adding Image: {image_id} => {image_filename}")
        with FileLock(self._lock_file):
            atomic_copy(image_filename, Path(self._datastore.image_path()) / name, what="image")
            info = dict(image_info or {}, ts=int(time.time()), name=name)
            self._datastore.objects[image_id] = ImageLabelModel(image=DataModel(info=info, ext=image_ext))
            self._update_datastore_file(lock=False)
        return image_id

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        """Copy ``label_filename`` atomically to ``labels/<tag>/<image_id><ext>`` and record it; returns the label id
        (the image id). When this returns, the label is whole on disk under its name."""
        _, label_ext = self._to_id(os.path.basename(label_filename))  # type: ignore[attr-defined]
        label_path = Path(self._datastore.label_path(label_tag))
        name = self._filename(image_id, label_ext)  # type: ignore[attr-defined]
        logger.info(f"Saving Label for Image: {image_id}; Tag: {label_tag} => {label_path / name}")
        with FileLock(self._lock_file):
            obj = self._datastore.objects.get(image_id)
            if not obj:
                raise ImageNotFoundException(f"Image {image_id} not found")
            label_path.mkdir(parents=True, exist_ok=True)
            atomic_copy(label_filename, label_path / name, what="label")
            label_info = label_info if label_info else {}
            label_info.update(ts=int(time.time()), name=name)  # MONAI Label's keys, in the caller's dict as there
            obj.labels[label_tag] = DataModel(info=label_info, ext=label_ext)
            self._update_datastore_file(lock=False)
        return image_id


class BaldSamLocalDatastore(DurableStoreMixin, LocalDatastore):
    """A crash-safe local datastore whose ``save_label`` refuses a tag that is not a plain name and an image id that
    is a path or not in the datastore (``fastapi.HTTPException`` 400 / 404)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch_renames()

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        try:
            check_label_tag(label_tag)
            check_image_id(image_id, self.list_images())
        except RequestError as err:
            raise to_http(err) from None
        return super().save_label(image_id, label_filename, label_tag, label_info)
