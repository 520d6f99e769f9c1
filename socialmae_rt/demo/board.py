"""PerceptionBoard: what the demo overlay shows, gathered from the pipeline's threads.

The pipeline writes to it from two sides, and the render loop reads a consistent snapshot:
- as an ingest observer (capture threads): the newest frame, the tracker's boxes on that frame,
  the audio level, and each audio chunk handed on to a recorder;
- as a sink (inference thread): the newest record per face, laughter onsets (which make that
  face's meter flash for `flash_s` of capture time) and status records.

Nothing here waits on inference, so the overlay runs at camera rate however slow the model is.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from socialmae_rt.demo.overlay import FaceView
from socialmae_rt.demo.timeline import Timeline, TimelineView
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, FaceBox, VideoFrame
from socialmae_rt.results import SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind
from socialmae_rt.stream.status import PipelineStatus

SILENCE_DBFS = -120.0  # level of an all-zero chunk (log of 0 has no value)
PENDING_AUDIO_S = 2.0  # audio kept for a recorder that starts at the first frame
# A track is boxed while its last detection is this recent. The tracker keeps a lost face for a
# while to re-identify it, but a box on an empty spot would lie; 0.25 s spans a missed detection
# at 10 Hz.
BOX_HOLD_S = 0.25


@dataclass(frozen=True)
class BoardSnapshot:
    """One consistent view for the render loop."""

    frame: VideoFrame | None
    frame_seq: int  # frames seen so far (0: none yet)
    faces: tuple[FaceView, ...]
    last_record: SocialPerception | None
    mic_level_dbfs: float | None  # None: no audio has arrived
    status: PipelineStatus | None
    timeline: TimelineView | None = None  # the last seconds per face


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of float samples in [-1, 1], in dB relative to full scale."""
    if samples.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


class PerceptionBoard:
    def __init__(self, tracker=None, flash_s: float = 1.0, box_hold_s: float = BOX_HOLD_S,
                 timeline: Timeline | None = None) -> None:
        self.tracker = tracker  # the pipeline's FaceTracker: boxes come from its live tracks
        self.timeline = timeline or Timeline()
        self.flash_ns = int(flash_s * NS_PER_SECOND)
        self.box_hold_ns = int(box_hold_s * NS_PER_SECOND)
        self._lock = threading.Lock()
        self._new_frame = threading.Condition(self._lock)
        self._frame: VideoFrame | None = None
        self._frame_seq = 0
        self._boxes: dict[int, FaceBox] = {}
        self._results: dict[int | None, SocialPerception] = {}
        self._latest_window_end_ns: int | None = None
        self._last_record: SocialPerception | None = None
        self._flash_until_ns: dict[int | None, int] = {}
        self._level_dbfs: float | None = None
        self._status: PipelineStatus | None = None
        self._audio_consumer: Callable[[AudioChunk], None] | None = None
        self._pending_audio: collections.deque[AudioChunk] = collections.deque()
        self._latest_stamp_ns: int | None = None  # newest capture stamp of either stream

    # Observer side (capture threads) ------------------------------------------------------------
    def on_frame(self, frame: VideoFrame) -> None:
        boxes = {}
        if self.tracker is not None:
            min_hits = self.tracker.config.min_hits
            boxes = {t.face_id: t.box for t in self.tracker.active_tracks()
                     if t.hits >= min_hits and frame.stamp_ns - t.last_seen_ns <= self.box_hold_ns}
        with self._new_frame:
            self._frame = frame
            self._frame_seq += 1
            self._boxes = boxes
            self._latest_stamp_ns = max(frame.stamp_ns, self._latest_stamp_ns or frame.stamp_ns)
            self._new_frame.notify_all()

    def on_audio(self, chunk: AudioChunk) -> None:
        level = level_dbfs(chunk.samples)
        with self._lock:
            self._level_dbfs = level
            self._latest_stamp_ns = max(chunk.stamp_ns, self._latest_stamp_ns or chunk.stamp_ns)
            consumer = self._audio_consumer
            if consumer is None:
                self._keep_pending(chunk)
        if consumer is not None:
            consumer(chunk)

    def _keep_pending(self, chunk: AudioChunk) -> None:
        self._pending_audio.append(chunk)
        horizon = chunk.stamp_ns - int(PENDING_AUDIO_S * NS_PER_SECOND)
        while self._pending_audio and self._pending_audio[0].stamp_ns < horizon:
            self._pending_audio.popleft()

    def hand_audio_to(self, consumer: Callable[[AudioChunk], None]) -> None:
        """From now on every audio chunk goes to `consumer` (a recorder), starting with the last
        PENDING_AUDIO_S already received."""
        with self._lock:
            pending, self._pending_audio = list(self._pending_audio), collections.deque()
            self._audio_consumer = consumer
        for chunk in pending:
            consumer(chunk)

    # Sink side (inference thread) ---------------------------------------------------------------
    def write_result(self, result: SocialPerception) -> None:
        self.timeline.add(result)
        with self._lock:
            self._results[result.face_id] = result
            self._last_record = result
            if self._latest_window_end_ns is None or result.window_end_ns > self._latest_window_end_ns:
                self._latest_window_end_ns = result.window_end_ns

    def write_event(self, event: LaughterEvent) -> None:
        if event.kind is not LaughterEventKind.ONSET:
            return
        self.timeline.onset(event.face_id, event.time_ns)
        with self._lock:
            # Flash from when the onset reaches the screen, on the capture clock (also right offline).
            now = self._latest_stamp_ns if self._latest_stamp_ns is not None else event.window_end_ns
            self._flash_until_ns[event.face_id] = now + self.flash_ns

    def write_status(self, status: PipelineStatus) -> None:
        with self._lock:
            self._status = status

    def close(self) -> None:
        pass

    # Render side -----------------------------------------------------------------------------------
    def wait_for_frame(self, after_seq: int, timeout_s: float) -> bool:
        """True once a frame newer than `after_seq` is in, False after `timeout_s` without one."""
        with self._new_frame:
            return self._new_frame.wait_for(lambda: self._frame_seq > after_seq, timeout=timeout_s)

    def snapshot(self, now_ns: int | None = None) -> BoardSnapshot:
        """The faces to draw: every tracked face on the newest frame with its newest record, and
        the audio-only stream when the newest window was audio-only. `now_ns` (capture clock)
        decides flashing; by default the newest stamp seen."""
        with self._lock:
            now = now_ns if now_ns is not None else (self._latest_stamp_ns or 0)
            tracked = sorted(self._boxes)
            for face_id in [f for f in self._results if f is not None and f not in self._boxes]:
                del self._results[face_id]  # the tracker let it go: so does the overlay
            faces = [FaceView(face_id, self._boxes[face_id], self._results.get(face_id),
                              flash=now < self._flash_until_ns.get(face_id, -1)) for face_id in tracked]
            audio_only = self._results.get(None)
            if audio_only is not None and audio_only.window_end_ns == self._latest_window_end_ns:
                faces.append(FaceView(None, None, audio_only, flash=now < self._flash_until_ns.get(None, -1)))
            snapshot = BoardSnapshot(self._frame, self._frame_seq, tuple(faces), self._last_record,
                                     self._level_dbfs, self._status)
        # The timeline runs on window ends: `now` is the newest one (records come a window late).
        return dataclasses.replace(snapshot, timeline=self.timeline.view())
