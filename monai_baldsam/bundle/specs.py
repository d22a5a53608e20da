"""What differs between the shipped bundles: one :class:`BundleSpec` each, rendered by :mod:`.template`.

Everything else in a bundle's ``configs/`` (the workflows, the multi-GPU overlays, logging, most of the metadata) is
the template's and therefore the same in every bundle. ``docs/README.md`` and ``LICENSE`` are written by hand per
bundle (data, measured results, the training data's terms) and are not generated.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BundleSpec", "SPECS", "spec_by_name"]

#: the channels of an RGB picture, as ``channel_def`` lists them
RGB = ("R", "G", "B")


@dataclass(frozen=True)
class BundleSpec:
    """One bundle's own values.

    Attributes:
        name: the bundle's folder name (``baldsam_polyp``).
        head: registry name of the shipped head it runs (:data:`monai_baldsam.head.registry.SHIPPED_HEADS`).
        spatial_dims: 2 (pictures) or 3 (volumes, segmented slice by slice with propagation).
        domain: the data domain the head was measured on (``kvasir``; the shared data's folder name).
        label: the structure label 1 marks (``polyp``).
        modality: ``network_data_format`` modality of the input image (``endoscopy``, ``US``, ``MR``).
        channels: the input image's channels, in order.
        task, data_source, data_type, image_classes: the model-zoo metadata fields of the same names.
        description_extra: a sentence appended to the shared description (empty: none).
    """

    name: str
    head: str
    spatial_dims: int
    domain: str
    label: str
    modality: str
    channels: tuple[str, ...]
    task: str
    data_source: str
    data_type: str
    image_classes: str
    description_extra: str = ""

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"bundle {self.name}: spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if not self.name.startswith("baldsam_"):
            raise ValueError(f"bundle name {self.name!r} must start with 'baldsam_'")


_PICTURE = "RGB picture, any size; intensity window: whole-image min-max"
_WITH_BALD = "a Bayesian head and BALD next-click suggestions"

SPECS: tuple[BundleSpec, ...] = (
    BundleSpec(
        name="baldsam_brain_mri", head="brain_mri", spatial_dims=3, domain="brats_mri3d", label="whole tumour",
        modality="MR", channels=("FLAIR",),
        task="Interactive 3D brain-tumour (whole tumour, FLAIR) segmentation with slice-wise SAM (LiteMedSAM), "
             "propagation, a Bayesian head and BALD next-click suggestions over the volume",
        data_source="BraTS 2015 (Menze et al., IEEE TMI 2015) as shipped with DeepMedic examples",
        data_type="nifti", image_classes="single-channel MR volume, any size; intensity window: volume percentiles",
        description_extra="Volumes are segmented slice by slice with propagation from the prompted slice."),
    BundleSpec(
        name="baldsam_polyp", head="polyp", spatial_dims=2, domain="kvasir", label="polyp", modality="endoscopy",
        channels=RGB, task=f"Interactive colonoscopy polyp segmentation with SAM (LiteMedSAM), {_WITH_BALD}",
        data_source="Kvasir-SEG (Jha et al., MMM 2020), EffiSegNet 352x352 version (github.com/ivezakis/effisegnet)",
        data_type="jpg", image_classes=_PICTURE),
    BundleSpec(
        name="baldsam_skin_lesion", head="skin", spatial_dims=2, domain="ph2", label="skin lesion",
        modality="dermoscopy", channels=RGB,
        task=f"Interactive dermoscopic skin-lesion segmentation with SAM (LiteMedSAM), {_WITH_BALD}",
        data_source="PH2 dermoscopic image database (Mendonca et al., IEEE EMBC 2013), via "
                    "github.com/chelseaparlett/SkinCancerVariation",
        data_type="png", image_classes=_PICTURE),
    # the general head, not the busi-only one: it is better on busi (docs/head-and-bald.md, results on dev data)
    BundleSpec(
        name="baldsam_ultrasound", head="general", spatial_dims=2, domain="busi", label="breast lesion",
        modality="US", channels=RGB,
        task=f"Interactive breast-ultrasound lesion segmentation with SAM (LiteMedSAM), {_WITH_BALD}",
        data_source="BUSI (Al-Dhabyani et al., Data in Brief 2020), via github.com/mohit-aren/Breast_Cancer",
        data_type="png", image_classes=_PICTURE),
)


def spec_by_name(name: str) -> BundleSpec:
    """The spec of bundle ``name`` (the ``baldsam_`` prefix may be left out)."""
    for spec in SPECS:
        if name in (spec.name, spec.name[len("baldsam_"):]):
            return spec
    raise ValueError(f"unknown bundle {name!r}: choose among {', '.join(s.name for s in SPECS)}")
