"""What flows between pipeline stages: timestamped frames, audio chunks, face crops, source status.

Timestamps are integer nanoseconds. Live devices stamp with time.monotonic_ns() at capture;
files stamp with presentation time (or, when paced in real time, with the monotonic time the
presentation time maps to). Every stage passes stamps through unchanged.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field

import numpy as np

NS_PER_SECOND = 1_000_000_000


def seconds_to_ns(seconds: float) -> int:
    return int(round(seconds * NS_PER_SECOND))


@dataclass(frozen=True)
class VideoFrame:
    """One camera/file frame."""

    bgr: np.ndarray  # uint8 [H, W, 3], OpenCV channel order
    stamp_ns: int
    index: int = 0  # frame counter of its source


@dataclass(frozen=True)
class AudioChunk:
    """Consecutive mono samples; `stamp_ns` is the time of the first sample."""

    samples: np.ndarray  # float32 [N] in [-1, 1]
    stamp_ns: int
    sample_rate: int = 16000

    @property
    def duration_ns(self) -> int:
        return self.samples.shape[0] * NS_PER_SECOND // self.sample_rate

    @property
    def end_ns(self) -> int:
        return self.stamp_ns + self.duration_ns


@dataclass(frozen=True)
class FaceBox:
    """Pixel box in frame coordinates (x0, y0 inclusive; x1, y1 exclusive) with detector score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def iou(self, other: "FaceBox") -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FaceCrop:
    """A tracked face cut out of one frame, ready for the model's video preprocessing."""

    face_id: int
    bgr: np.ndarray  # uint8 [S, S, 3], S = crop size (224)
    box: FaceBox
    stamp_ns: int


@dataclass(frozen=True)
class DetectedFaces:
    """One moment's faces as a face detector upstream of us found them (a ROS4HRI detector,
    `faces:=hri`): it stands in for a camera frame and our own detector and tracker."""

    stamp_ns: int
    crops: list[FaceCrop]  # the faces whose image came for this moment, square, at the model's crop size
    tracked: list[int]  # every face the detector tracks now (some may lack an image this time)
    gone: list[int]  # faces the detector no longer tracks: their windows and estimates end
    lost: list[int] = field(default_factory=list)  # windows end, but the face may come back (re-identification)
    names: dict[int, str] = field(default_factory=dict)  # face id -> the detector's id for it


class SourceState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    ENDED = "ended"  # end of file, or closed on request
    FAILED = "failed"  # could not open, or stopped delivering
    SILENT = "silent"  # a subscribed stream with no data for a while; RUNNING again when data returns


@dataclass
class SourceStatus:
    """Health of one source, safe to read from another thread (counters only grow)."""

    name: str
    state: SourceState = SourceState.STARTING
    detail: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def set(self, state: SourceState, detail: str = "") -> None:
        with self._lock:
            self.state = state
            self.detail = detail

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + amount

    def snapshot(self) -> SourceSnapshot:
        with self._lock:
            return SourceSnapshot(self.name, self.state, self.detail, dict(self.counters))


@dataclass(frozen=True)
class SourceSnapshot:
    """One source's health at one moment (SourceStatus.snapshot)."""

    name: str
    state: SourceState
    detail: str
    counters: dict[str, int]

    def to_dict(self) -> dict:
        return {"name": self.name, "state": self.state.value, "detail": self.detail, "counters": dict(self.counters)}


class SourceError(RuntimeError):
    """A source that cannot start (device missing, file unreadable); the message says which and why."""
