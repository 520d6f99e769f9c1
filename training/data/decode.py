"""Decode one clip exactly as the live pipeline reads a file: frames at the crop rate, 16 kHz audio.

Both streams come from `MediaFileSource` (PyAV), the live pipeline's file source: BGR frames,
mono float32 audio resampled by PyAV's resampler, stamps in media time. Of the decoded frames
only those nearest a regular grid (`frame_rate`, 2 per second by default, anchored at the first
frame) are handed to a frame sink (the cropper); a grid point with no frame within half a period
gets none. A segment (`start_s`/`end_s`) keeps what lies inside it, with times relative to its
start. Failures raise `ClipSkipped` with a reason the prepare report counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, SourceError, SourceState, VideoFrame
from socialmae_rt.training.data.items import ClipItem

# Skip reasons (the prepare report counts clips by these).
UNREADABLE = "unreadable"
NO_VIDEO = "no_video"
NO_AUDIO = "no_audio"
NO_FACE = "no_face"
SKIP_REASONS = (UNREADABLE, NO_VIDEO, NO_AUDIO, NO_FACE)

# Items come ordered by stamp, but one stream may run up to 1 s ahead of the other
# (media_file.MAX_REORDER_HOLD_NS); reading this far past a segment's end catches all of it.
SEGMENT_READ_MARGIN_S = 2.0

FrameSink = Callable[[np.ndarray, float], None]  # (bgr [H, W, 3] uint8, time_s)


class ClipSkipped(Exception):
    """A clip that cannot be prepared: `reason` (one of SKIP_REASONS) and a detail for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class DecodedAudio:
    samples: np.ndarray  # float32 [S] mono at sample_rate
    start_s: float  # time of samples[0], relative to the clip (segment) start
    sample_rate: int


@dataclass
class DecodeStats:
    frames_decoded: int = 0  # video frames inside the clip (segment)
    frames_picked: int = 0  # of which handed to the frame sink
    decode_errors: int = 0  # corrupt packets skipped by the source
    video_end_s: float | None = None  # time of the last decoded frame
    has_video_track: bool = False
    has_audio_track: bool = False


class GridPicker:
    """Streams frames in time order and picks, for each grid time anchor + k / rate, the nearest frame.

    A frame is picked at most once; a grid time without a frame within half a period is left empty.
    """

    def __init__(self, rate: float, sink: FrameSink) -> None:
        self.period = 1.0 / rate
        self.tolerance = self.period / 2
        self.sink = sink
        self.picked = 0
        self._anchor: float | None = None
        self._k = 0
        self._previous: tuple[np.ndarray, float] | None = None
        self._last_picked_time: float | None = None

    def push(self, bgr: np.ndarray, time_s: float) -> None:
        if self._anchor is None:
            self._anchor = time_s
        while time_s >= self._grid_time():
            grid = self._grid_time()
            best = (bgr, time_s)
            if self._previous is not None and abs(self._previous[1] - grid) <= abs(time_s - grid):
                best = self._previous
            self._pick(best, grid)
            self._k += 1
        self._previous = (bgr, time_s)

    def flush(self) -> None:
        """The last frame may still be the nearest to the next grid time."""
        if self._previous is not None:
            self._pick(self._previous, self._grid_time())
            self._previous = None

    def _grid_time(self) -> float:
        return self._anchor + self._k * self.period

    def _pick(self, candidate: tuple[np.ndarray, float], grid: float) -> None:
        bgr, time_s = candidate
        if abs(time_s - grid) > self.tolerance + 1e-9 or time_s == self._last_picked_time:
            return
        self._last_picked_time = time_s
        self.picked += 1
        self.sink(bgr, time_s)


def decode_clip(
    item: ClipItem,
    frame_sink: FrameSink | None,
    *,
    frame_rate: float = 2.0,
    sample_rate: int = 16000,
) -> tuple[DecodedAudio | None, DecodeStats]:
    """Feed the clip's grid frames to `frame_sink` (None: skip video) and return its audio.

    Raises ClipSkipped(UNREADABLE) for files that cannot be opened or fail while decoding.
    Missing streams are not errors here: `stats` says what was found (no video track, no frame
    in the segment) and missing audio comes back as None; the caller decides what to skip.
    """
    stats = DecodeStats()
    picker = GridPicker(frame_rate, frame_sink) if frame_sink is not None and item.video is not None else None
    audio_chunks: list[AudioChunk] = []
    window = _Segment(item.start_s, item.end_s)
    if item.video is not None:
        take_audio = item.audio is None
        _read(item.video, window, sample_rate, stats, picker=picker, audio_chunks=audio_chunks if take_audio else None)
        if picker is not None:
            picker.flush()
            stats.frames_picked = picker.picked
    if item.audio is not None:
        audio_stats = DecodeStats()
        _read(item.audio, window, sample_rate, audio_stats, picker=None, audio_chunks=audio_chunks)
        stats.has_audio_track = audio_stats.has_audio_track
        stats.decode_errors += audio_stats.decode_errors
    return _join_audio(audio_chunks, window, sample_rate), stats


@dataclass
class _Segment:
    start_s: float | None
    end_s: float | None

    @property
    def offset_s(self) -> float:
        return self.start_s or 0.0

    def contains(self, time_s: float) -> bool:
        return time_s >= self.offset_s and (self.end_s is None or time_s < self.end_s)

    def past(self, time_s: float) -> bool:
        return self.end_s is not None and time_s > self.end_s + SEGMENT_READ_MARGIN_S


def _read(
    path: Path,
    segment: _Segment,
    sample_rate: int,
    stats: DecodeStats,
    *,
    picker: GridPicker | None,
    audio_chunks: list[AudioChunk] | None,
) -> None:
    source = MediaFileSource(MediaFileConfig(path=path, sample_rate=sample_rate))
    try:
        source.open()
    except SourceError as error:
        raise ClipSkipped(UNREADABLE, str(error)) from error
    stats.has_video_track |= source.has_video
    stats.has_audio_track |= source.has_audio
    try:
        for media_item in source:
            time_s = media_item.stamp_ns / NS_PER_SECOND
            if segment.past(time_s):
                break
            if isinstance(media_item, VideoFrame):
                if picker is not None and segment.contains(time_s):
                    stats.frames_decoded += 1
                    stats.video_end_s = time_s - segment.offset_s
                    picker.push(media_item.bgr, time_s - segment.offset_s)
            elif audio_chunks is not None and media_item.end_ns / NS_PER_SECOND > segment.offset_s:
                audio_chunks.append(media_item)  # chunks wholly before the segment are not kept
    finally:
        source.close()
    stats.decode_errors += source.decode_errors
    if source.status.state is SourceState.FAILED:
        raise ClipSkipped(UNREADABLE, source.status.detail)


def _join_audio(chunks: list[AudioChunk], segment: _Segment, sample_rate: int) -> DecodedAudio | None:
    """The chunks' samples inside the segment, as one array (chunks are consecutive by construction)."""
    if not chunks:
        return None
    samples = np.concatenate([chunk.samples for chunk in chunks])  # [S]
    start_s = chunks[0].stamp_ns / NS_PER_SECOND
    first = max(0, int(math.ceil((segment.offset_s - start_s) * sample_rate - 1e-6)))
    stop = samples.size if segment.end_s is None else int(math.floor((segment.end_s - start_s) * sample_rate + 1e-6))
    stop = min(samples.size, stop)
    if stop <= first:
        return None
    return DecodedAudio(
        samples=np.ascontiguousarray(samples[first:stop], dtype=np.float32),
        start_s=start_s + first / sample_rate - segment.offset_s,
        sample_rate=sample_rate,
    )
