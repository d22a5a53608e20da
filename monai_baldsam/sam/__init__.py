"""SAM backbones, their checkpoints, the encode-once/prompt-many predictor and the embedding cache."""

from monai_baldsam.sam.backbones import (
    BACKBONES,
    DEFAULT_BACKBONE,
    BackboneSpec,
    build_sam_vit,
    get_backbone_spec,
    load_backbone,
    register_backbone,
)
from monai_baldsam.sam.checkpoints import CheckpointError
from monai_baldsam.sam.embedding_cache import EmbeddingCache, EmbeddingKey, content_hash
from monai_baldsam.sam.model import SamBackbone
from monai_baldsam.sam.predictor import Prediction, SamPredictor, SliceEmbedding

__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "BackboneSpec",
    "SamBackbone",
    "build_sam_vit",
    "get_backbone_spec",
    "load_backbone",
    "register_backbone",
    "CheckpointError",
    "EmbeddingCache",
    "EmbeddingKey",
    "content_hash",
    "Prediction",
    "SamPredictor",
    "SliceEmbedding",
]
