"""Window rules: the 2 fps grid picker, which window ends a clip offers, frames and audio of a window."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.stream.buffer import BufferConfig
from socialmae_rt.training.data.decode import GridPicker
from socialmae_rt.training.data.windows import (
    ClipSpan, centre_end, cut_audio, pick_frames, spaced_ends, window_ends, window_start_ns)

RATE = 16000
CONFIG = BufferConfig()


def picked_times(times) -> list[float]:
    out = []
    picker = GridPicker(2.0, lambda bgr, t: out.append(round(t, 4)))
    for t in times:
        picker.push(np.zeros((2, 2, 3), np.uint8), t)
    picker.flush()
    return out


@pytest.mark.parametrize(
    "times, expected",
    [
        # 25 fps: 0.48 and 0.52 are equally near 0.5 (the earlier wins); the last grid time 3.0 takes 2.96
        (np.arange(75) / 25, [0.0, 0.48, 1.0, 1.48, 2.0, 2.48, 2.96]),
        (np.arange(60) / 30, [0.0, 0.5, 1.0, 1.5, 1.9667]),  # 30 fps, 2 s
        (np.arange(60) * 1001 / 30000, [0.0, 0.5005, 1.001, 1.5015, 1.9686]),  # 29.97 fps: nearest, not first after
        (np.array([0.0, 1.0, 2.0]), [0.0, 1.0, 2.0]),  # 1 fps: grid times 0.5 s from any frame stay empty
        (np.array([0.0, 0.1, 0.2, 1.3, 1.4]), [0.0, 1.4]),  # a gap: no frame within 0.25 s of 0.5 and 1.0; 1.5 -> 1.4
        (np.array([0.3, 0.8]), [0.3, 0.8]),  # the grid starts at the first frame
    ],
)
def test_grid_picker(times, expected):
    assert picked_times(times) == pytest.approx(expected, abs=1e-4)


def span(crops=None, audio=None) -> ClipSpan:
    """crops: (first, last) on a 0.5 s grid; audio: (start, end) seconds."""
    times = np.arange(crops[0], crops[1] + 1e-9, 0.5) if crops else np.zeros(0)
    if audio is None:
        return ClipSpan.of(times, 0.0, 0, RATE)
    return ClipSpan.of(times, audio[0], int(round((audio[1] - audio[0]) * RATE)), RATE)


def ends_s(windows) -> list[float]:
    return (windows.ends_ns / 1e9).tolist()


@pytest.mark.parametrize(
    "clip, expected",
    [
        (span((0, 5), (0, 5.3)), [4.0, 4.5, 5.0]),
        (span((0, 5), (0, 4.6)), [4.0, 4.5]),  # audio ends first
        (span((0, 5), (0.3, 5.3)), [4.5, 5.0]),  # audio starts late
        (span((1, 5), (0, 5.3)), [4.5, 5.0]),  # video starts late: first slot T - 3.5 s on the first crop
        (span((0, 5)), [3.5, 4.0, 4.5, 5.0]),  # video only
        (span(None, (0, 5.3)), [4.0, 4.5, 5.0]),  # audio only: ends on a 0.5 s grid
    ],
)
def test_full_windows_need_the_whole_interval_covered(clip, expected):
    windows = window_ends(clip, CONFIG)
    assert windows.full and ends_s(windows) == pytest.approx(expected)


def test_short_clip_has_one_short_window():
    windows = window_ends(span((0, 2.5), (0, 2.6)), CONFIG)
    assert not windows.full and ends_s(windows) == [2.5]
    assert window_start_ns(windows, int(windows.ends_ns[0]), CONFIG) == 0


def test_centre_and_spaced_ends():
    windows = window_ends(span((0, 9), (0, 9.5)), CONFIG)  # ends 4.0 ... 9.0
    assert centre_end(windows) == 6_500_000_000
    assert (spaced_ends(windows, 2.0) / 1e9).tolist() == [4.0, 6.0, 8.0]


def test_frames_follow_the_live_buffer_rule():
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.6, 3.0, 3.5, 4.0, 4.5])  # the face was missed at 2.0 s
    frames = np.arange(times.size, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)  # frame i is all i
    window = pick_frames(frames, np.round(times * 1e9).astype(np.int64), 4_000_000_000, CONFIG)
    # Slots 0.5 ... 4.0: the crop at 0.0 is outside (T - 4 s, T] and 4.5 after T; slot 2.0 has no crop within
    # 0.25 s (1.5 and 2.6 are too far), slot 2.5 takes the crop at 2.6.
    assert [int(f[0, 0, 0]) for f in window.frames] == [1, 2, 3, 4, 5, 6, 7] and window.fill == 7 / 8
    assert pick_frames(frames, np.round(times * 1e9).astype(np.int64), 9_000_000_000, CONFIG) is None


def test_audio_cut_is_the_window_interval():
    clip = span((0, 5), (0.25, 5.3))
    samples = np.arange(clip.audio_end_ns * RATE // 10**9, dtype=np.float32)  # sample value = its index
    cut = cut_audio(samples, clip, 500_000_000, 4_500_000_000, RATE)
    assert cut.size == 64000 and cut[0] == (0.5 - 0.25) * RATE
    assert cut_audio(samples, clip, 0, 4_000_000_000, RATE).size == 60000  # clipped at the audio's start
