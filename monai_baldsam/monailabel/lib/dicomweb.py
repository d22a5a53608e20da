"""The app's DICOMweb datastore (``--studies http://<pacs>/dicom-web``): labels go back to the PACS as DICOM SEG,
written here in Python, without MONAI Label's downloaded ``dcmqi`` tool.

MONAI Label 0.8.5's :class:`~monailabel.datastore.dicom.DICOMWebDatastore` lists the PACS's series (image id = the
``SeriesInstanceUID``), downloads a series into a local cache on first use and converts it to NIfTI, which is what
the infer tasks read. A ``final`` label is converted to DICOM SEG with ``itkimage2segimage`` (dcmqi), which the app
would download from GitHub at start-up when it is not on the ``PATH``. A PACS server often cannot reach the internet,
and a start-up must not depend on it, so this datastore writes the SEG with ``pydicom-seg`` (installed with MONAI
Label) and :meth:`BaldSamApp._download_dcmqi_tools` downloads nothing.

The SEG references the cached series' instances: it has the image's ``FrameOfReferenceUID``, one frame per image
slice in the image's geometry (empty slices kept, so frame ``n`` lies on the image's ``n``-th slice), segment 1 named
after the request's ``label_info`` (default ``label``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pydicom
import SimpleITK as sitk
from monailabel.datastore.dicom import DICOMWebDatastore
from monailabel.datastore.utils.convert import binary_to_image
from monailabel.datastore.utils.dicom import dicom_web_upload_dcm
from monailabel.interfaces.datastore import DefaultLabelTag

from monai_baldsam.io.atomic import atomic_path
from monai_baldsam.monailabel.lib.local_store import DurableStoreMixin
from monai_baldsam.monailabel.lib.validation import RequestError, check_image_id, check_label_tag, to_http

__all__ = ["seg_template", "write_dicom_seg", "BaldSamDicomWebDatastore", "dicomweb_datastore"]

logger = logging.getLogger(__name__)


def seg_template(labels: Sequence[int], label_info: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """The dcmqi-style metadata of a SEG with one segment per label value in ``labels`` (named from
    ``label_info[i]["name"]`` when given)."""
    info = list(label_info or [])
    segments = []
    for n, value in enumerate(labels):
        item = info[n] if n < len(info) else {}
        name = str(item.get("name", "label"))
        rgb = [int(c) for c in list(item.get("color", (255, 0, 0)))[:3]]
        segments.append({
            "labelID": int(value), "SegmentLabel": name, "SegmentDescription": name,
            "SegmentAlgorithmType": "SEMIAUTOMATIC", "SegmentAlgorithmName": "monai_baldsam",
            "SegmentedPropertyCategoryCodeSequence": {"CodeValue": "49755003", "CodingSchemeDesignator": "SCT",
                                                      "CodeMeaning": "Morphologically Altered Structure"},
            "SegmentedPropertyTypeCodeSequence": {"CodeValue": "4147007", "CodingSchemeDesignator": "SCT",
                                                  "CodeMeaning": "Mass"},
            "recommendedDisplayRGBValue": rgb})
    return {"ContentCreatorName": "MONAILabel", "ClinicalTrialSeriesID": "Session1", "ClinicalTrialTimePointID": "1",
            "SeriesDescription": "monai_baldsam label", "SeriesNumber": "300", "InstanceNumber": "1",
            "segmentAttributes": [segments], "ContentLabel": "SEGMENTATION",
            "ContentDescription": "monai_baldsam (MONAI Label) segmentation", "ClinicalTrialCoordinatingCenterName": "",
            "BodyPartExamined": ""}


def write_dicom_seg(series_dir: str | os.PathLike[str], label_file: str | os.PathLike[str],
                    label_info: Sequence[Mapping[str, Any]] | None, out_file: str | os.PathLike[str]) -> Path:
    """Write ``label_file`` (a label volume on the series' grid, e.g. the infer task's ``.nii.gz``) as a DICOM SEG
    referencing the DICOM files in ``series_dir``, to ``out_file`` (atomically; replaced if it exists).

    Raises:
        ValueError: the label is empty (nothing to send), or its grid differs from the series'.
    """
    import pydicom_seg

    mask = sitk.Cast(sitk.ReadImage(str(label_file)), sitk.sitkUInt16)
    values = np.unique(sitk.GetArrayViewFromImage(mask))
    values = [int(v) for v in values if v != 0]
    if not values:
        raise ValueError("the label is empty: segment something before submitting it (an empty label is not sent "
                         "to the PACS)")
    files = sorted(str(p) for p in Path(series_dir).iterdir() if p.is_file())
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(series_dir))
    reference = sitk.ReadImage(list(names)) if len(names) > 1 else sitk.ReadImage(files[0])
    if mask.GetSize() != reference.GetSize() or not np.allclose(mask.GetOrigin(), reference.GetOrigin(), atol=1e-3) \
            or not np.allclose(mask.GetDirection(), reference.GetDirection(), atol=1e-4):
        raise ValueError(f"the label's grid (size {mask.GetSize()}, origin {mask.GetOrigin()}) is not the image's "
                         f"(size {reference.GetSize()}, origin {reference.GetOrigin()}): save the label the infer "
                         "task returned, or one made on the same image")
    writer = pydicom_seg.MultiClassWriter(template=pydicom_seg.template.from_dcmqi_metainfo(
        seg_template(values, label_info)), inplane_cropping=False, skip_empty_slices=False,
        skip_missing_segment=False)
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    frames_of_reference = {str(d.get("FrameOfReferenceUID", "")) for d in datasets}
    if len(frames_of_reference) != 1 or "" in frames_of_reference:
        raise ValueError(f"the series in {series_dir} has {len(frames_of_reference)} frames of reference "
                         f"({sorted(frames_of_reference)}): a SEG needs the one frame of reference of its series")
    seg = writer.write(mask, datasets)
    seg.FrameOfReferenceUID = frames_of_reference.pop()  # pydicom-seg makes a new one: the SEG lies on the image's
    out = Path(out_file)
    with atomic_path(out, overwrite=True) as tmp:
        seg.save_as(str(tmp))
    return out


class BaldSamDicomWebDatastore(DurableStoreMixin, DICOMWebDatastore):
    """MONAI Label's DICOMweb datastore with the SEG written by :func:`write_dicom_seg` (see the module docstring)
    and its local cache's labels and ``datastore_v2.json`` written crash-safely
    (:class:`~monai_baldsam.monailabel.lib.local_store.DurableStoreMixin`); every other behaviour (listing, caching,
    conversion to NIfTI) is MONAI Label's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch_renames()

    def get_image_uri(self, image_id: str) -> str:
        """The cached NIfTI of series ``image_id`` (downloaded and converted on first use); an id holding a path
        is refused (``fastapi.HTTPException`` 400) before it reaches the cache's folder names."""
        try:
            check_image_id(image_id)
        except RequestError as err:
            raise to_http(err) from None
        return super().get_image_uri(image_id)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any],
                   label_id: str = "") -> str:
        try:
            check_label_tag(label_tag)
            check_image_id(image_id, self.list_images())
        except RequestError as err:
            raise to_http(err) from None
        image_uri = self.get_image_uri(image_id)
        converted = ""
        if "".join(Path(label_filename).suffixes) == ".bin":  # OHIF sends the raw voxels
            converted = binary_to_image(image_uri, label_filename)
            label_filename = converted
        try:
            if label_tag == DefaultLabelTag.FINAL:
                image_dir = os.path.realpath(os.path.join(self._datastore.image_path(), image_id))
                with tempfile.TemporaryDirectory(prefix="baldsam_seg_") as tmp:
                    try:
                        seg_file = write_dicom_seg(image_dir, label_filename, label_info.get("label_info"),
                                                   Path(tmp) / "seg.dcm")
                    except ValueError as err:  # an empty label, or one on another grid: the client's to fix
                        raise to_http(err) from None
                    series_uid = dicom_web_upload_dcm(str(seg_file), self._client)
                if not series_uid:
                    raise RuntimeError(f"the PACS at {self._client.base_url} did not acknowledge the DICOM SEG of "
                                       f"{image_id}: check its log")
                image_info = self.get_image_info(image_id)
                label_info.update({"SeriesInstanceUID": series_uid, "Modality": "SEG",
                                   "PatientID": image_info.get("PatientID"),
                                   "StudyInstanceUID": image_info.get("StudyInstanceUID")})
                logger.info(f"label of {image_id} stored in the PACS as SEG series {series_uid}")
            return DurableStoreMixin.save_label(self, image_id, label_filename, label_tag, label_info)
        finally:
            if converted:
                os.unlink(converted)


def dicomweb_datastore(studies: str) -> BaldSamDicomWebDatastore:
    """The datastore for a DICOMweb ``studies`` URL, configured from MONAI Label's settings as MONAI Label 0.8.5
    configures its own (``MONAI_LABEL_DICOMWEB_SEARCH_FILTER`` picks the series, default ``{"Modality": "CT"}``;
    ``MONAI_LABEL_DICOMWEB_USERNAME`` / ``_PASSWORD`` for basic authentication; ``MONAI_LABEL_DICOMWEB_CACHE_PATH``
    for the local cache, default ``~/.cache/monailabel/dicom``)."""
    from dicomweb_client.session_utils import create_session_from_user_pass
    from monailabel.config import settings
    from monailabel.datastore.dicom import DICOMwebClientX

    session = None
    if settings.MONAI_LABEL_DICOMWEB_USERNAME and settings.MONAI_LABEL_DICOMWEB_PASSWORD:
        session = create_session_from_user_pass(settings.MONAI_LABEL_DICOMWEB_USERNAME,
                                                settings.MONAI_LABEL_DICOMWEB_PASSWORD)
    client = DICOMwebClientX(url=studies, session=session, qido_url_prefix=settings.MONAI_LABEL_QIDO_PREFIX,
                             wado_url_prefix=settings.MONAI_LABEL_WADO_PREFIX,
                             stow_url_prefix=settings.MONAI_LABEL_STOW_PREFIX)
    cache_path = (settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or settings.MONAI_LABEL_DATASTORE_CACHE_PATH or "").strip()
    return BaldSamDicomWebDatastore(client=client, search_filter=settings.MONAI_LABEL_DICOMWEB_SEARCH_FILTER,
                                    cache_path=cache_path or None,
                                    fetch_by_frame=settings.MONAI_LABEL_DICOMWEB_FETCH_BY_FRAME,
                                    convert_to_nifti=settings.MONAI_LABEL_DICOMWEB_CONVERT_TO_NIFTI)
