"""Which streams a window holds: audio and video, audio only, video only (no torch needed)."""

from __future__ import annotations

import enum


class Modality(str, enum.Enum):
    """Which streams a window was encoded from."""

    AUDIOVISUAL = "audiovisual"
    AUDIO = "audio"
    VIDEO = "video"

    @classmethod
    def of(cls, audio: object | None, video: object | None) -> "Modality":
        if audio is not None and video is not None:
            return cls.AUDIOVISUAL
        if audio is not None:
            return cls.AUDIO
        if video is not None:
            return cls.VIDEO
        raise ValueError("Social-MAE needs audio, video or both; got neither (audio=None, video=None)")
