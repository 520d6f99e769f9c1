"""AVRingBuffer: bounded, timestamp-indexed face crops per track and one shared audio ring.

For a window ending at T it returns the audio of [T - 4 s, T] and, per face, the crops nearest
to T - 3.5 s, T - 3.0 s, ..., T (2 fps). Memory is fixed by configuration: the audio ring is a
preallocated array of `history_s` seconds, each face keeps at most `max_crops_per_face` crops,
and at most `max_faces` faces are held. Not thread-safe by itself: the pipeline holds a lock.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, FaceCrop, seconds_to_ns


@dataclass
class BufferConfig:
    window_s: float = 4.0  # the model's window: 8 frames at 2 fps
    num_frames: int = 8
    sample_rate: int = 16000
    history_s: float = 6.0  # kept beyond the newest data: one window plus scheduling slack
    max_faces: int = 4
    max_crops_per_face: int = 64  # 6 s at 10 Hz detection, with room for faster rates
    frame_tolerance_s: float = 0.25  # a crop counts for a frame slot only this close to its time
    # Audio stamps that move by more than this against the samples held: forward = a gap (filled with
    # silence), back = an overlap (the repeated part dropped). Every source stamps its audio on a
    # continuous sample count already, so only real jumps (lost audio, joined files) reach this.
    gap_tolerance_s: float = 0.01

    def __post_init__(self) -> None:
        for name in ("window_s", "sample_rate", "num_frames", "history_s", "max_faces", "max_crops_per_face"):
            if not getattr(self, name) > 0:
                raise ValueError(f"BufferConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.history_s < self.window_s:
            raise ValueError(
                f"BufferConfig.history_s ({self.history_s}) must be at least window_s ({self.window_s})"
            )
        if not 0 < self.frame_tolerance_s <= self.frame_spacing_s:
            raise ValueError(
                f"BufferConfig.frame_tolerance_s must be in (0, {self.frame_spacing_s}] (the frame spacing), "
                f"got {self.frame_tolerance_s}"
            )

    @property
    def frame_spacing_s(self) -> float:
        return self.window_s / self.num_frames

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))


@dataclass
class FaceWindow:
    face_id: int
    frames: list[np.ndarray]  # the crops found, in time order (1..num_frames of them)
    fill: float  # found / num_frames


class AudioRing:
    """Mono samples on a fixed timeline: sample k was captured at origin_ns + k / rate."""

    def __init__(self, capacity: int, sample_rate: int, gap_tolerance_ns: int) -> None:
        self.capacity = capacity
        self.sample_rate = sample_rate
        self.gap_tolerance_ns = gap_tolerance_ns
        self._ring = np.zeros(capacity, dtype=np.float32)
        self._valid = np.ones(capacity, dtype=bool)  # False where a NaN/Inf sample arrived
        self.reset()

    def reset(self) -> None:
        self.origin_ns: int | None = None
        self.written = 0  # samples ever written (the ring holds the last `capacity` of them)
        self.gaps = 0
        self.dropped_overlap = 0
        self.nonfinite = 0  # NaN/Inf samples received (held as missing audio)

    def time_of(self, sample_index: int) -> int:
        return self.origin_ns + sample_index * NS_PER_SECOND // self.sample_rate

    def index_at(self, stamp_ns: int) -> int:
        return int(round((stamp_ns - self.origin_ns) * self.sample_rate / NS_PER_SECOND))

    @property
    def end_ns(self) -> int | None:
        """Time just after the newest sample."""
        return None if self.origin_ns is None else self.time_of(self.written)

    def write(self, chunk: AudioChunk) -> None:
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(f"audio chunk at {chunk.sample_rate} Hz; the buffer holds {self.sample_rate} Hz")
        samples = chunk.samples
        if self.origin_ns is None:
            self.origin_ns = chunk.stamp_ns
        expected = self.index_at(chunk.stamp_ns)  # where this chunk's first sample belongs
        tolerance = self.gap_tolerance_ns * self.sample_rate // NS_PER_SECOND
        if expected - self.written > tolerance:  # audio was lost: keep the timeline with silence
            self.gaps += 1
            gap = expected - self.written
            if gap >= self.capacity:
                self._ring[:] = 0.0
                self.written = expected
            else:
                self._append(np.zeros(gap, dtype=np.float32))
        elif self.written - expected > tolerance:  # overlaps what we hold: keep only the new part
            overlap = min(self.written - expected, samples.shape[0])
            self.dropped_overlap += overlap
            samples = samples[overlap:]
        finite = np.isfinite(samples)
        if not finite.all():  # a broken decoder or device: that stretch counts as missing audio
            self.nonfinite += int((~finite).sum())
            samples = np.where(finite, samples, 0.0).astype(np.float32)
        self._append(samples, finite)

    def _append(self, samples: np.ndarray, valid: np.ndarray | None = None) -> None:
        n = samples.shape[0]
        if n == 0:
            return
        valid = np.ones(n, dtype=bool) if valid is None else valid
        if n > self.capacity:  # only the newest `capacity` samples can be held
            self.written += n - self.capacity
            samples, valid, n = samples[-self.capacity :], valid[-self.capacity :], self.capacity
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self._ring[start : start + first] = samples[:first]
        self._ring[: n - first] = samples[first:]
        self._valid[start : start + first] = valid[:first]
        self._valid[: n - first] = valid[first:]
        self.written += n

    def _positions(self, end_ns: int, num_samples: int) -> np.ndarray | None:
        if self.origin_ns is None:
            return None
        stop = self.index_at(end_ns)
        start = stop - num_samples
        if stop > self.written or start < max(0, self.written - self.capacity):
            return None
        return np.arange(start, stop) % self.capacity  # [num_samples]

    def read(self, end_ns: int, num_samples: int) -> np.ndarray | None:
        """The `num_samples` samples ending at `end_ns`, or None if not all are held (or some
        arrived as NaN/Inf: see `invalid_in`)."""
        positions = self._positions(end_ns, num_samples)
        if positions is None or not self._valid[positions].all():
            return None
        return self._ring[positions]

    def invalid_in(self, end_ns: int, num_samples: int) -> int:
        """How many samples of that stretch arrived as NaN/Inf (0 if it is not held)."""
        positions = self._positions(end_ns, num_samples)
        return 0 if positions is None else int((~self._valid[positions]).sum())


class AVRingBuffer:
    def __init__(self, config: BufferConfig | None = None) -> None:
        self.config = config or BufferConfig()
        cfg = self.config
        self.audio = AudioRing(
            capacity=int(math.ceil(cfg.history_s * cfg.sample_rate)),
            sample_rate=cfg.sample_rate,
            gap_tolerance_ns=seconds_to_ns(cfg.gap_tolerance_s),
        )
        self._faces: dict[int, collections.deque[FaceCrop]] = {}
        self.video_until_ns: int | None = None  # stamp of the newest video frame seen
        self.dropped_faces = 0

    def reset(self) -> None:
        self.audio.reset()
        self._faces.clear()
        self.video_until_ns = None

    # Writing ---------------------------------------------------------------------------------
    def add_audio(self, chunk: AudioChunk) -> None:
        self.audio.write(chunk)

    def mark_video(self, stamp_ns: int) -> None:
        """A frame was processed at this time (with or without faces): video is complete up to it."""
        self.video_until_ns = stamp_ns if self.video_until_ns is None else max(self.video_until_ns, stamp_ns)

    def add_crop(self, crop: FaceCrop) -> None:
        crops = self._faces.get(crop.face_id)
        if crops is None:
            if len(self._faces) >= self.config.max_faces:
                self.dropped_faces += 1
                return
            crops = self._faces[crop.face_id] = collections.deque(maxlen=self.config.max_crops_per_face)
        crops.append(crop)
        self._forget_before(crop.stamp_ns - seconds_to_ns(self.config.history_s))

    def drop_face(self, face_id: int) -> None:
        self._faces.pop(face_id, None)

    def _forget_before(self, stamp_ns: int) -> None:
        for face_id in list(self._faces):
            crops = self._faces[face_id]
            while crops and crops[0].stamp_ns < stamp_ns:
                crops.popleft()
            if not crops:
                del self._faces[face_id]

    # Reading ----------------------------------------------------------------------------------
    @property
    def audio_until_ns(self) -> int | None:
        return self.audio.end_ns

    def audio_problem(self, end_ns: int) -> str | None:
        """Why the audio of the window ending at `end_ns` is missing although it was delivered."""
        start_ns = end_ns - seconds_to_ns(self.config.window_s)
        if self.audio.origin_ns is not None and self.audio.origin_ns > start_ns:
            return (f"audio began {(self.audio.origin_ns - start_ns) / NS_PER_SECOND:.2f} s into this window "
                    f"(its stream started after the first data)")
        bad = self.audio.invalid_in(end_ns, self.config.window_samples)
        if not bad:
            return None
        return f"audio held {bad} NaN/Inf samples ({bad / self.config.sample_rate:.2f} s) in this window"

    def audio_window(self, end_ns: int) -> np.ndarray | None:
        """float32 [window_samples] of [end - window, end], or None if not all of it is held."""
        return self.audio.read(end_ns, self.config.window_samples)

    def frame_times(self, end_ns: int) -> list[int]:
        """The 8 slot times T - 3.5 s, ..., T of a window ending at T."""
        spacing = seconds_to_ns(self.config.frame_spacing_s)
        n = self.config.num_frames
        return [end_ns - (n - 1 - i) * spacing for i in range(n)]

    def face_window(self, face_id: int, end_ns: int) -> FaceWindow | None:
        """The crops nearest each slot time (within tolerance), in order; None if no slot is filled."""
        start_ns = end_ns - seconds_to_ns(self.config.window_s)
        # Only crops inside the window (start, end]: never one captured after its end.
        crops = [c for c in self._faces.get(face_id, ()) if start_ns < c.stamp_ns <= end_ns]
        if not crops:
            return None
        stamps = np.fromiter((c.stamp_ns for c in crops), dtype=np.int64, count=len(crops))  # [K]
        tolerance = seconds_to_ns(self.config.frame_tolerance_s)
        frames = []
        for slot in self.frame_times(end_ns):
            nearest = int(np.argmin(np.abs(stamps - slot)))
            if abs(int(stamps[nearest]) - slot) <= tolerance:
                frames.append(crops[nearest].bgr)
        if not frames:
            return None
        return FaceWindow(face_id, frames, len(frames) / self.config.num_frames)

    def face_ids(self) -> list[int]:
        return sorted(self._faces)

    def face_windows(self, end_ns: int, min_fill: float) -> list[FaceWindow]:
        windows = (self.face_window(face_id, end_ns) for face_id in self.face_ids())
        return [w for w in windows if w is not None and w.fill >= min_fill]

    def held_crops(self) -> int:
        return sum(len(c) for c in self._faces.values())
