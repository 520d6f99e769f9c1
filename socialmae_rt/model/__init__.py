"""Social-MAE model: configuration, encoder with task heads, checkpoints (loaded on first use)."""

from socialmae_rt.util.lazy import lazy_exports

_HOMES = {
    "CheckpointError": "checkpoint",
    "LoadedCheckpoint": "checkpoint",
    "load_any_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_official_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "MODEL_VARIANTS": "config",
    "SocialMAEConfig": "config",
    "Modality": "modality",
    "SocialMAE": "social_mae",
    "SocialMAEOutput": "social_mae",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
