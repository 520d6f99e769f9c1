"""SocialMAEConfig: the one source of model defaults (the released ViT-B fine-tuned model)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from socialmae_rt.features.config import dataclass_from_dict

# Named sizes. `base` is the released model; the others are students for small CPUs and tests.
MODEL_VARIANTS: dict[str, dict[str, Any]] = {
    "base": {"embed_dim": 768, "num_heads": 12},
    "small": {"embed_dim": 384, "num_heads": 6},
    "tiny": {"embed_dim": 192, "num_heads": 3},
}
MODEL_NAMES = tuple(MODEL_VARIANTS)  # base, small, tiny: the choices of every --model flag

# Head names with a fixed meaning downstream (postprocess picks softmax / sigmoid by name).
PRIMARY_HEAD = "emotion"


@dataclass
class SocialMAEConfig:
    """Social-MAE encoder and task heads.

    The defaults load a released fine-tuned checkpoint (ViT-B, 6 emotion classes) strictly.
    `num_classes` sizes the official single head (`mlp_head`, answered under `primary_head`);
    `extra_heads` adds further heads on the same encoder, e.g. {"laughter": 1, "personality": 5}.
    """

    embed_dim: int = 768
    num_heads: int = 12
    modality_specific_depth: int = 11  # blocks_a and blocks_v each
    joint_depth: int = 1  # blocks_u, shared by both modalities
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-5  # nn.LayerNorm's default, as in the reference
    patch_size: int = 16
    # Audio: Kaldi fbank frames x mel bins.
    audio_length: int = 1024
    num_mel_bins: int = 128
    # Video: num_frames frames of image_size^2, time last; tubelets of temporal_stride frames.
    image_size: int = 224
    num_frames: int = 8
    temporal_stride: int = 2
    in_chans: int = 3
    # Heads.
    num_classes: int = 6
    primary_head: str = PRIMARY_HEAD
    extra_heads: dict[str, int] = field(default_factory=dict)
    # What each output of a head means, in output order (optional; written by `weights import`
    # and fine-tuning), e.g. {"laughter": ["no_laughter", "laughter"]}. Travels with the weights
    # into ONNX manifests, so no backend guesses which class means what.
    head_labels: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "modality_specific_depth": self.modality_specific_depth,
            "joint_depth": self.joint_depth,
            "patch_size": self.patch_size,
            "audio_length": self.audio_length,
            "num_mel_bins": self.num_mel_bins,
            "image_size": self.image_size,
            "num_frames": self.num_frames,
            "temporal_stride": self.temporal_stride,
            "in_chans": self.in_chans,
            "num_classes": self.num_classes,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"SocialMAEConfig.{name} must be a positive integer, got {value!r}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"SocialMAEConfig.mlp_ratio must be > 0, got {self.mlp_ratio!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"SocialMAEConfig.embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.embed_dim % 4:
            raise ValueError(
                f"SocialMAEConfig.embed_dim must be a multiple of 4 for the 2-D sin-cos position embedding, "
                f"got {self.embed_dim}"
            )
        for name in ("audio_length", "num_mel_bins", "image_size"):
            if getattr(self, name) % self.patch_size:
                raise ValueError(
                    f"SocialMAEConfig.{name} ({getattr(self, name)}) must be a multiple of patch_size ({self.patch_size})"
                )
        if self.num_frames % self.temporal_stride:
            raise ValueError(
                f"SocialMAEConfig.num_frames ({self.num_frames}) must be a multiple of "
                f"temporal_stride ({self.temporal_stride})"
            )
        if not self.primary_head or not self.primary_head.isidentifier():
            raise ValueError(f"SocialMAEConfig.primary_head must be a Python identifier, got {self.primary_head!r}")
        self.extra_heads = dict(self.extra_heads)
        for name, size in self.extra_heads.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"SocialMAEConfig.extra_heads: head names must be identifiers, got {name!r}")
            if name == self.primary_head:
                raise ValueError(
                    f"SocialMAEConfig.extra_heads: {name!r} is already the primary head (num_classes); "
                    "give the extra head another name"
                )
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"SocialMAEConfig.extra_heads[{name!r}] must be a positive integer, got {size!r}")
        self.head_labels = {name: list(labels) for name, labels in dict(self.head_labels).items()}
        sizes = self.head_sizes
        for name, labels in self.head_labels.items():
            if name not in sizes:
                raise ValueError(f"SocialMAEConfig.head_labels names head {name!r}, but the heads are {list(sizes)}")
            if len(labels) != sizes[name] or len(set(labels)) != len(labels) or not all(
                isinstance(label, str) and label for label in labels
            ):
                raise ValueError(
                    f"SocialMAEConfig.head_labels[{name!r}] must be {sizes[name]} distinct non-empty names "
                    f"(one per output of the head), got {labels!r}"
                )

    # Token geometry ------------------------------------------------------------------------
    @property
    def audio_grid(self) -> tuple[int, int]:
        """(mel rows, time columns) of audio patches: (8, 64) for the released model."""
        return self.num_mel_bins // self.patch_size, self.audio_length // self.patch_size

    @property
    def video_grid(self) -> tuple[int, int, int]:
        """(rows, columns, time slices) of video tubelets: (14, 14, 4) for the released model."""
        side = self.image_size // self.patch_size
        return side, side, self.num_frames // self.temporal_stride

    @property
    def num_audio_patches(self) -> int:
        return math.prod(self.audio_grid)

    @property
    def num_video_patches(self) -> int:
        return math.prod(self.video_grid)

    @property
    def head_sizes(self) -> dict[str, int]:
        """Every head by name, the primary (official `mlp_head`) first."""
        return {self.primary_head: self.num_classes, **self.extra_heads}

    # Construction ---------------------------------------------------------------------------
    @classmethod
    def variant(cls, name: str, **overrides: Any) -> "SocialMAEConfig":
        """A named size (`base`, `small`, `tiny`) with optional field overrides."""
        if name not in MODEL_VARIANTS:
            raise ValueError(f"unknown model variant {name!r}; choose one of {sorted(MODEL_VARIANTS)}")
        return cls.from_dict({**MODEL_VARIANTS[name], **overrides})

    def with_heads(self, **extra_heads: int) -> "SocialMAEConfig":
        return replace(self, extra_heads={**self.extra_heads, **extra_heads})

    def labels_of(self, head: str) -> tuple[str, ...] | None:
        """The output names of `head`, when the checkpoint recorded them."""
        labels = self.head_labels.get(head)
        return None if labels is None else tuple(labels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SocialMAEConfig":
        return dataclass_from_dict(cls, data, "SocialMAEConfig")
