"""Who is speaking: each face's mouth motion against the loudness of the window's audio.

A standard audio-visual synchrony measure: over one window, the mouth opening of a face
(faces/mouth.py, measured on every crop the tracker cuts) and the audio energy at the same
instants (RMS over `envelope_s` around each measurement, in dB) go up and down together when
that face is the one speaking. The Pearson correlation of the two series maps to a probability
through a logistic; a still mouth, too few measurements, or silence give probability 0. Among the
faces of a window the most probable one above `speaker_threshold` is the speaker (at most one:
overlapping talk goes to whoever matches best).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from socialmae_rt.messages import NS_PER_SECOND, seconds_to_ns

AUDIO_TO = ("all", "speakers")


@dataclass
class SpeakerConfig:
    enabled: bool = False  # measure mouths and judge who speaks (~6 ms per face crop)
    # "all": every face's window holds the audio, as without attribution (the default);
    # "speakers": while a visible face speaks only its window holds the audio, the other faces get
    # video-only windows; while none does, every face hears it (the sound may come from off camera).
    audio_to: str = "all"
    min_samples: int = 6  # mouth measurements a face needs in a window to be judged
    still_mouth: float = 0.01  # opening standard deviation below this: the mouth did not move
    silence_db: float = -40.0  # the loudest moment of the window below this (dBFS): nobody speaks
    envelope_s: float = 0.1  # audio RMS over this much around each mouth measurement
    correlation_midpoint: float = 0.3  # correlation at which the probability is 0.5
    correlation_slope: float = 10.0
    speaker_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.audio_to not in AUDIO_TO:
            raise ValueError(f"SpeakerConfig.audio_to must be one of {', '.join(AUDIO_TO)}, got {self.audio_to!r}")
        if self.audio_to == "speakers" and not self.enabled:
            raise ValueError("SpeakerConfig.audio_to='speakers' needs enabled=True (someone must judge who speaks)")
        if self.min_samples < 3:
            raise ValueError(f"SpeakerConfig.min_samples must be >= 3, got {self.min_samples}")
        if not 0 < self.envelope_s <= 1:
            raise ValueError(f"SpeakerConfig.envelope_s must be in (0, 1] seconds, got {self.envelope_s}")
        if not 0 <= self.speaker_threshold <= 1:
            raise ValueError(f"SpeakerConfig.speaker_threshold must be in [0, 1], got {self.speaker_threshold}")


@dataclass(frozen=True)
class Speaking:
    probability: float
    is_speaker: bool

    def to_json(self) -> dict[str, float | bool]:
        return {"probability": round(self.probability, 4), "is_speaker": self.is_speaker}


class SpeakerAttribution:
    """Mouth openings per face over time, and per window who speaks."""

    def __init__(self, config: SpeakerConfig | None = None, window_s: float = 4.0, sample_rate: int = 16000,
                 keep_s: float = 6.0) -> None:
        self.config = config or SpeakerConfig()
        self.window_ns = seconds_to_ns(window_s)
        self.sample_rate = sample_rate
        self._keep_ns = seconds_to_ns(keep_s)
        self._openings: dict[int, collections.deque[tuple[int, float]]] = {}

    def add(self, face_id: int, stamp_ns: int, opening: float | None) -> None:
        """One mouth measurement (None: no mouth found on that crop, nothing stored)."""
        if opening is None or not math.isfinite(opening):
            return
        series = self._openings.setdefault(face_id, collections.deque())
        series.append((stamp_ns, float(opening)))
        while series and stamp_ns - series[0][0] > self._keep_ns:
            series.popleft()

    def forget(self, face_id: int) -> None:
        self._openings.pop(face_id, None)

    def openings(self, face_id: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(stamps ns, openings) of one face inside the window ending at `end_ns`."""
        start_ns = end_ns - self.window_ns
        points = [(t, v) for t, v in self._openings.get(face_id, ()) if start_ns < t <= end_ns]
        if not points:
            return np.zeros(0, np.int64), np.zeros(0)
        stamps, values = zip(*points)
        return np.array(stamps, np.int64), np.array(values)

    def judge(self, end_ns: int, audio: np.ndarray | None, face_ids: list[int]) -> dict[int, Speaking]:
        """Speaking per face for the window ending at `end_ns`; `audio`: its float32 samples
        [window_s * rate] (None: no audio, nobody can be judged speaking)."""
        probabilities = {face_id: self._probability(end_ns, audio, face_id) for face_id in face_ids}
        best = max(probabilities, key=probabilities.get, default=None)
        threshold = self.config.speaker_threshold
        return {face_id: Speaking(p, face_id == best and p >= threshold and p > 0)
                for face_id, p in probabilities.items()}

    def _probability(self, end_ns: int, audio: np.ndarray | None, face_id: int) -> float:
        if audio is None:
            return 0.0
        stamps, mouth = self.openings(face_id, end_ns)
        if len(mouth) < self.config.min_samples or mouth.std() < self.config.still_mouth:
            return 0.0
        loudness = self.envelope_db(audio, end_ns, stamps)
        if loudness.max() < self.config.silence_db or loudness.std() < 1e-6:
            return 0.0
        correlation = float(np.corrcoef(mouth, loudness)[0, 1])
        if not math.isfinite(correlation):
            return 0.0
        z = self.config.correlation_slope * (correlation - self.config.correlation_midpoint)
        return 1.0 / (1.0 + math.exp(-z))

    def envelope_db(self, audio: np.ndarray, end_ns: int, stamps: np.ndarray) -> np.ndarray:
        """Audio RMS in dBFS over `envelope_s` centred on each stamp (clipped to the window)."""
        start_ns = end_ns - self.window_ns
        half = max(1, int(self.config.envelope_s * self.sample_rate / 2))
        centres = ((stamps - start_ns) * self.sample_rate // NS_PER_SECOND).astype(np.int64)
        levels = []
        for centre in centres:
            chunk = audio[max(0, centre - half): min(len(audio), centre + half)]
            rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
            levels.append(20 * math.log10(max(rms, 1e-6)))
        return np.array(levels)
