"""MONAI Label's local datastore (a studies folder) with the app's request checks on what writes into it.

MONAI Label 0.8.5's :class:`~monailabel.datastore.local.LocalDatastore` joins the label tag of ``PUT /datastore/label``
into a folder path (a tag ``../../x`` writes outside the studies folder) and answers an unknown image id with a
``500``. :class:`BaldSamLocalDatastore` checks both first (:mod:`~monai_baldsam.monailabel.lib.validation`) and
answers a 4xx that says what is wrong; everything else is MONAI Label's.
"""

from __future__ import annotations

from typing import Any

from monailabel.datastore.local import LocalDatastore

from monai_baldsam.monailabel.lib.validation import RequestError, check_image_id, check_label_tag, to_http

__all__ = ["BaldSamLocalDatastore"]


class BaldSamLocalDatastore(LocalDatastore):
    """A local datastore whose ``save_label`` refuses a tag that is not a plain name and an image id that is a path
    or not in the datastore (``fastapi.HTTPException`` 400 / 404)."""

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        try:
            check_label_tag(label_tag)
            check_image_id(image_id, self.list_images())
        except RequestError as err:
            raise to_http(err) from None
        return super().save_label(image_id, label_filename, label_tag, label_info)
