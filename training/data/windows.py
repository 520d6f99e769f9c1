"""Which 4 s windows a prepared clip offers, and how a window's frames and audio are cut.

The live rule, reused: for a window ending at T, the frames are the crops nearest the slot times
T - 3.5 s, ..., T (within `frame_tolerance_s`, only crops inside (T - 4 s, T]) and the audio is
[T - 4 s, T]. Frames are picked by the live AVRingBuffer itself (`pick_frames`), so training
windows cannot drift from live ones.

Window ends are crop times (the crops sit on a 2 fps grid), so every slot falls on a crop and
audio and frames cover the same interval. A full window needs its whole interval covered:
by audio ([audio start, audio end]) and by crops (first slot at or after the first crop, T at
or before the last crop). A clip too short for any full window has one short window ending at
its last crop (or the audio's end): its audio is shorter than 4 s (the filterbank is then
zero-padded at the end, as the reference loader did) and the missing frame slots repeat the
found frames cyclically (as live and the reference do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from socialmae_rt.messages import FaceBox, FaceCrop, seconds_to_ns
from socialmae_rt.stream.buffer import AVRingBuffer, BufferConfig, FaceWindow

_NO_BOX = FaceBox(0.0, 0.0, 0.0, 0.0)  # the buffer never looks at boxes


@dataclass(frozen=True)
class ClipSpan:
    """What a prepared clip covers, in ns from the clip start."""

    frame_times_ns: np.ndarray  # int64 [N] crop times (N = 0: no video)
    audio_start_ns: int | None  # None: no audio
    audio_end_ns: int | None

    @classmethod
    def of(cls, frame_times_s: np.ndarray, audio_start_s: float, num_samples: int, sample_rate: int) -> "ClipSpan":
        times = np.round(np.asarray(frame_times_s, dtype=np.float64) * 1e9).astype(np.int64)  # [N]
        if num_samples == 0:
            return cls(times, None, None)
        start = seconds_to_ns(audio_start_s)
        return cls(times, start, start + num_samples * 1_000_000_000 // sample_rate)

    @property
    def has_video(self) -> bool:
        return self.frame_times_ns.size > 0

    @property
    def has_audio(self) -> bool:
        return self.audio_start_ns is not None


@dataclass(frozen=True)
class Windows:
    ends_ns: np.ndarray  # int64 [W] possible window ends, increasing
    full: bool  # False: the clip is shorter than a window; ends_ns holds its one short window
    start_limit_ns: int  # a window never starts before this (the clip's covered start)


def window_ends(span: ClipSpan, config: BufferConfig) -> Windows:
    """The window ends a clip offers (see the module doc)."""
    if not span.has_video and not span.has_audio:
        raise ValueError("a prepared clip with neither frames nor audio has no windows")
    window_ns = seconds_to_ns(config.window_s)
    spacing_ns = seconds_to_ns(config.frame_spacing_s)
    lows, highs = [], []
    if span.has_video:
        lows.append(int(span.frame_times_ns[0]) - spacing_ns)  # first slot (T - 3.5 s) on the first crop
        highs.append(int(span.frame_times_ns[-1]))
    if span.has_audio:
        lows.append(span.audio_start_ns)
        highs.append(span.audio_end_ns)
    low, high = max(lows), min(highs)
    if span.has_video:
        ends = span.frame_times_ns[(span.frame_times_ns - window_ns >= low) & (span.frame_times_ns <= high)]
    else:
        count = (high - low - window_ns) // spacing_ns + 1
        ends = low + window_ns + spacing_ns * np.arange(max(0, count), dtype=np.int64)
    if ends.size:
        return Windows(ends.astype(np.int64), True, low)
    return Windows(np.array([_short_end(span, high)], dtype=np.int64), False, low)


def _short_end(span: ClipSpan, high: int) -> int:
    if not span.has_video:
        return high
    inside = span.frame_times_ns[span.frame_times_ns <= high]
    return int(inside[-1] if inside.size else span.frame_times_ns[-1])


def window_start_ns(windows: Windows, end_ns: int, config: BufferConfig) -> int:
    return max(windows.start_limit_ns, end_ns - seconds_to_ns(config.window_s))


def centre_end(windows: Windows) -> int:
    """The window end nearest the middle of the possible ones (the earlier on a tie)."""
    ends = windows.ends_ns
    middle = (int(ends[0]) + int(ends[-1])) / 2
    return int(ends[int(np.argmin(np.abs(ends - middle)))])


def spaced_ends(windows: Windows, hop_s: float) -> np.ndarray:
    """Window ends at least `hop_s` apart, from the first possible one (fixed evaluation windows)."""
    hop_ns = seconds_to_ns(hop_s)
    chosen = [int(windows.ends_ns[0])]
    for end in windows.ends_ns[1:]:
        if int(end) - chosen[-1] >= hop_ns:
            chosen.append(int(end))
    return np.asarray(chosen, dtype=np.int64)


def pick_frames(frames: np.ndarray, frame_times_ns: np.ndarray, end_ns: int, config: BufferConfig) -> FaceWindow | None:
    """The live buffer's choice of crops for the window ending at `end_ns` (None: no slot filled)."""
    buffer = AVRingBuffer(config)
    start_ns = end_ns - seconds_to_ns(config.window_s)
    inside = np.flatnonzero((frame_times_ns > start_ns) & (frame_times_ns <= end_ns))  # [K] crops in the window
    for index in inside:
        buffer.add_crop(FaceCrop(face_id=0, bgr=frames[index], box=_NO_BOX, stamp_ns=int(frame_times_ns[index])))
    return buffer.face_window(0, end_ns)


def cut_audio(samples: np.ndarray, span: ClipSpan, start_ns: int, end_ns: int, sample_rate: int) -> np.ndarray:
    """samples of [start, end], indexed as the live AudioRing indexes its timeline (rounded)."""
    first = _sample_index(start_ns - span.audio_start_ns, sample_rate)
    stop = _sample_index(end_ns - span.audio_start_ns, sample_rate)
    first, stop = max(0, first), min(samples.size, stop)
    return samples[first:stop]  # [<= window samples]


def _sample_index(offset_ns: int, sample_rate: int) -> int:
    return int(round(offset_ns * sample_rate / 1_000_000_000))
