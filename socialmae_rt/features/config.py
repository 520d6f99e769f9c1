"""Preprocessing settings: exactly what the released Social-MAE weights saw.

These dataclasses are the one source of preprocessing defaults. A checkpoint we save carries
them beside the weights, so a model is always fed the way it was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

CHANNEL_ORDERS = ("BGR", "RGB")


def _check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{owner}.{name} must be > 0, got {value!r}")


def dataclass_from_dict(cls, data: Mapping[str, Any], where: str):
    """Build dataclass `cls` from a mapping, refusing unknown keys with the list of valid ones."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} field(s) {unknown}; valid fields are {sorted(valid)}")
    return cls(**data)


@dataclass
class AudioFeatureConfig:
    """Kaldi filterbank as the reference loader computed it (torchaudio.compliance.kaldi.fbank)."""

    sample_rate: int = 16000
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0 means an offset from Nyquist, as in Kaldi
    target_length: int = 1024  # frames after zero-padding / cutting
    norm_mean: float = -6.2943
    norm_std: float = 12.26344  # the reference divides by this (already twice the dataset std)

    def __post_init__(self) -> None:
        _check_positive(
            "AudioFeatureConfig",
            sample_rate=self.sample_rate,
            num_mel_bins=self.num_mel_bins,
            frame_length_ms=self.frame_length_ms,
            frame_shift_ms=self.frame_shift_ms,
            target_length=self.target_length,
            norm_std=self.norm_std,
        )
        if not 0.0 <= self.preemphasis < 1.0:
            raise ValueError(f"AudioFeatureConfig.preemphasis must be in [0, 1), got {self.preemphasis}")
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not 0.0 <= self.low_freq < high <= nyquist:
            raise ValueError(
                f"AudioFeatureConfig: need 0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz); "
                f"got low_freq={self.low_freq}, high_freq={self.high_freq} (resolved to {high})"
            )

    @property
    def frame_length(self) -> int:
        """Samples per analysis frame (400 at 16 kHz)."""
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def frame_shift(self) -> int:
        """Samples between frame starts (160 at 16 kHz)."""
        return int(self.sample_rate * self.frame_shift_ms / 1000)


@dataclass
class VideoFeatureConfig:
    """Face frames as the reference loader fed them: ToTensor, bicubic resize, ImageNet mean/std."""

    image_size: int = 224
    num_frames: int = 8
    fps: float = 2.0  # 8 frames at 2 fps = the 4 s window
    channel_order: str = "BGR"  # the reference read frames with OpenCV and never converted
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        _check_positive("VideoFeatureConfig", image_size=self.image_size, num_frames=self.num_frames, fps=self.fps)
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"VideoFeatureConfig.channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}"
            )
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"VideoFeatureConfig.mean and .std need 3 values each, got {self.mean} and {self.std}")
        if min(self.std) <= 0:
            raise ValueError(f"VideoFeatureConfig.std must be > 0, got {self.std}")

    @property
    def window_seconds(self) -> float:
        return self.num_frames / self.fps


@dataclass
class PreprocessConfig:
    """Audio and video preprocessing together, as saved beside a checkpoint."""

    audio: AudioFeatureConfig = field(default_factory=AudioFeatureConfig)
    video: VideoFeatureConfig = field(default_factory=VideoFeatureConfig)

    def __post_init__(self) -> None:
        if isinstance(self.audio, Mapping):
            self.audio = dataclass_from_dict(AudioFeatureConfig, self.audio, "PreprocessConfig.audio")
        if isinstance(self.video, Mapping):
            self.video = dataclass_from_dict(VideoFeatureConfig, self.video, "PreprocessConfig.video")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreprocessConfig":
        return dataclass_from_dict(cls, data, "PreprocessConfig")
