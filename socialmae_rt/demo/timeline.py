"""The last seconds per face, for the demo's timeline: top emotion, laughter probability, onsets,
speaking.

`Timeline` keeps what the records said, per face, over `span_s` of capture time (the board writes
it from the inference thread; the render loop takes a `TimelineView`). Times are window ends,
the capture clock the records carry, so a recording shows the same timeline however fast it was
drawn. The overlay draws it (overlay.py, `_draw_timeline`).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.results import SocialPerception


@dataclass(frozen=True)
class Moment:
    """What one record said, at its window's end."""

    time_ns: int
    top_emotion: str | None
    laughter: float | None
    laughing: bool
    speaking: bool | None  # None: speaker attribution off


@dataclass(frozen=True)
class Lane:
    face_id: int | None  # None: the audio-only stream
    moments: tuple[Moment, ...]  # oldest first
    onsets_ns: tuple[int, ...]


@dataclass(frozen=True)
class TimelineView:
    now_ns: int
    span_ns: int
    lanes: tuple[Lane, ...]


class Timeline:
    """Per-face history over the last `span_s` seconds; faces not heard of for that long are dropped."""

    def __init__(self, span_s: float = 30.0, max_faces: int = 3) -> None:
        if not span_s > 0:
            raise ValueError(f"timeline span must be > 0 seconds, got {span_s}")
        if max_faces < 1:
            raise ValueError(f"timeline max_faces must be >= 1, got {max_faces}")
        self.span_ns = int(span_s * NS_PER_SECOND)
        self.max_faces = max_faces
        self._lock = threading.Lock()
        self._moments: dict[int | None, collections.deque[Moment]] = {}
        self._onsets: dict[int | None, collections.deque[int]] = {}
        self._latest_ns: int | None = None

    def add(self, record: SocialPerception) -> None:
        top = record.top_emotion
        speaking = None if record.speaking is None else bool(record.speaking.is_speaker)
        moment = Moment(record.window_end_ns, None if top is None else top[0], record.laughter_probability,
                        bool(record.laughing), speaking)
        with self._lock:
            self._moments.setdefault(record.face_id, collections.deque()).append(moment)
            self._latest_ns = max(record.window_end_ns, self._latest_ns or record.window_end_ns)
            self._forget_before(self._latest_ns - self.span_ns)

    def onset(self, face_id: int | None, time_ns: int) -> None:
        with self._lock:
            self._onsets.setdefault(face_id, collections.deque()).append(time_ns)

    def view(self, now_ns: int | None = None) -> TimelineView:
        """The lanes up to `now_ns` (default: the newest window end): the faces heard of most
        recently first, at most `max_faces`, each oldest moment first."""
        with self._lock:
            now = now_ns if now_ns is not None else (self._latest_ns or 0)
            start = now - self.span_ns
            lanes = []
            for face_id, moments in self._moments.items():
                inside = [m for m in moments if m.time_ns <= now]
                if not inside or inside[-1].time_ns < start:
                    continue
                # the last moment before the left edge fills the band up to its successor
                first = next(i for i, m in enumerate(inside) if m.time_ns >= start)
                kept = tuple(inside[max(0, first - 1):])
                if kept:
                    onsets = tuple(t for t in self._onsets.get(face_id, ()) if start <= t <= now)
                    lanes.append(Lane(face_id, kept, onsets))
        lanes.sort(key=lambda lane: -lane.moments[-1].time_ns)
        # most recent first, then shown in face order so lanes do not swap places as people talk
        shown = sorted(lanes[: self.max_faces], key=lambda lane: (lane.face_id is None, lane.face_id or 0))
        return TimelineView(now, self.span_ns, tuple(shown))

    def _forget_before(self, horizon_ns: int) -> None:
        for face_id in list(self._moments):
            moments = self._moments[face_id]
            # keep one moment before the horizon: it still fills the band from the left edge
            while len(moments) > 1 and moments[1].time_ns < horizon_ns:
                moments.popleft()
            if moments and moments[-1].time_ns < horizon_ns:
                del self._moments[face_id]
        for face_id in list(self._onsets):
            onsets = self._onsets[face_id]
            while onsets and onsets[0] < horizon_ns:
                onsets.popleft()
