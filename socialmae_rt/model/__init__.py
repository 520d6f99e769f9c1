"""Social-MAE model: configuration, encoder with task heads, checkpoints."""

from .checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_any_checkpoint,
    load_checkpoint,
    load_official_checkpoint,
    save_checkpoint,
)
from .config import MODEL_VARIANTS, SocialMAEConfig
from .social_mae import Modality, SocialMAE, SocialMAEOutput

__all__ = [
    "MODEL_VARIANTS",
    "CheckpointError",
    "LoadedCheckpoint",
    "Modality",
    "SocialMAE",
    "SocialMAEConfig",
    "SocialMAEOutput",
    "load_any_checkpoint",
    "load_checkpoint",
    "load_official_checkpoint",
    "save_checkpoint",
]
