"""AnnotatedRecorder: real mp4 files written in tmp_path and read back with PyAV (no mocks)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import av
import numpy as np
import pytest

from socialmae_rt.media.recorder import AnnotatedRecorder, RecorderConfig
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk

WIDTH, HEIGHT = 160, 120
FPS = 30
RATE = 16000
T0_NS = 5 * NS_PER_SECOND  # capture clocks do not start at zero
FRAME_NS = NS_PER_SECOND // FPS
TONE_HZ = 440.0
TONE_AMPLITUDE = 0.5
AAC_FRAME = 1024  # samples: the decoded track is whole AAC frames, so lengths agree within one
COLOUR_TOLERANCE = 6.0  # grey levels: BGR -> yuv420p -> BGR round trip of flat colours
QUIET_RMS = 0.01  # inserted silence decodes as (near) digital zero
# Flat colours away from the extremes (limited-range YUV clips those), all far apart.
PALETTE = ((200, 60, 30), (30, 180, 90), (90, 40, 220), (128, 128, 128), (60, 200, 200))


@dataclass
class Decoded:
    frames: list[np.ndarray]  # BGR [H, W, 3] each
    frame_times: list[float]  # seconds
    audio: np.ndarray | None  # float32 [N], None when the file has no audio stream
    audio_rate: int | None


def read_back(path) -> Decoded:
    frames, times = [], []
    with av.open(str(path)) as container:
        # An mp4 keeps only streams that got packets: a recording without frames has no video.
        for frame in container.decode(video=0) if container.streams.video else ():
            frames.append(frame.to_ndarray(format="bgr24"))
            times.append(float(frame.time))
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return Decoded(frames, times, None, None)
        blocks = [frame.to_ndarray()[0] for frame in container.decode(audio=0)]  # fltp mono [1, n] -> [n]
        rate = container.streams.audio[0].codec_context.sample_rate
    return Decoded(frames, times, np.concatenate(blocks).astype(np.float32), rate)


def colour_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = PALETTE[index % len(PALETTE)]
    return frame


def tone_at(start_sample: int, num_samples: int) -> np.ndarray:
    """The tone over [start, start + n) of one continuous timeline: pieces join without clicks."""
    t = (start_sample + np.arange(num_samples)) / RATE
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def chunk_at(seconds: float, num_samples: int) -> AudioChunk:
    start = int(round(seconds * RATE))
    return AudioChunk(samples=tone_at(start, num_samples), stamp_ns=T0_NS + start * NS_PER_SECOND // RATE, sample_rate=RATE)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def seconds_slice(start_s: float, end_s: float) -> slice:
    return slice(int(start_s * RATE), int(end_s * RATE))


@pytest.fixture
def recorder_at(tmp_path):
    """Factory: recorder_at(name="out.mp4", width=160, height=120, origin_ns=None, **config)."""

    def make(name: str = "out.mp4", width: int = WIDTH, height: int = HEIGHT, origin_ns: int | None = None, **config):
        return AnnotatedRecorder(RecorderConfig(path=str(tmp_path / name), **config), width, height, origin_ns=origin_ns)

    return make


def test_frames_and_tone_round_trip(recorder_at):
    num_frames = 45
    chunk_sizes = (160, 1000, 2731, 512, 1600, 37)  # not multiples of the AAC frame, nor of each other
    audio_samples = num_frames * RATE // FPS
    with recorder_at() as recorder:
        written = 0
        for index in range(num_frames):
            recorder.write_frame(colour_frame(index), T0_NS + index * FRAME_NS)
            # Audio runs ahead of and behind the frames by turns, as a capture thread would.
            while written < min(audio_samples, (index + 1) * RATE // FPS + 800):
                size = min(chunk_sizes[(written // 7) % len(chunk_sizes)], audio_samples - written)
                recorder.write_audio(chunk_at(written / RATE, size))
                written += size
    summary = recorder.close()

    assert (summary.frames, summary.frames_dropped) == (num_frames, 0)
    assert (summary.audio_gaps, summary.audio_overlaps) == (0, 0)
    assert summary.audio_seconds == pytest.approx(audio_samples / RATE)
    decoded = read_back(summary.path)
    assert len(decoded.frames) == num_frames
    assert decoded.frame_times == pytest.approx([i * FRAME_NS / NS_PER_SECOND for i in range(num_frames)], abs=1e-3)
    for index, frame in enumerate(decoded.frames):
        assert frame.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_allclose(frame.reshape(-1, 3).mean(axis=0), PALETTE[index % len(PALETTE)], atol=COLOUR_TOLERANCE)
    assert decoded.audio_rate == RATE
    assert abs(decoded.audio.size - audio_samples) <= AAC_FRAME
    assert dominant_hz(decoded.audio[:audio_samples], RATE) == pytest.approx(TONE_HZ, abs=2.0)
    assert rms(decoded.audio[seconds_slice(0.1, 1.4)]) == pytest.approx(TONE_AMPLITUDE / np.sqrt(2), rel=0.1)


def test_audio_gap_is_filled_with_silence(recorder_at):
    with recorder_at() as recorder:
        recorder.write_audio(chunk_at(0.0, RATE // 2))  # 0 - 0.5 s
        recorder.write_audio(chunk_at(1.0, RATE // 2))  # 1.0 - 1.5 s: half a second went missing
        recorder.write_frame(colour_frame(0), T0_NS)
    summary = recorder.close()

    assert (summary.audio_gaps, summary.audio_overlaps) == (1, 0)
    assert summary.audio_gap_seconds == pytest.approx(0.5)
    assert summary.audio_seconds == pytest.approx(1.5)
    audio = read_back(summary.path).audio
    assert abs(audio.size - int(1.5 * RATE)) <= AAC_FRAME  # the track covers the gap
    assert rms(audio[seconds_slice(0.55, 0.95)]) < QUIET_RMS
    for tone_part in (seconds_slice(0.05, 0.45), seconds_slice(1.05, 1.45)):  # tone stays where it was stamped
        assert rms(audio[tone_part]) == pytest.approx(TONE_AMPLITUDE / np.sqrt(2), rel=0.1)


def test_audio_overlap_is_trimmed(recorder_at):
    with recorder_at() as recorder:
        recorder.write_audio(chunk_at(0.0, RATE // 2))  # 0 - 0.5 s
        recorder.write_audio(chunk_at(0.4, RATE // 2))  # 0.4 - 0.9 s: its first 0.1 s is already written
        recorder.write_audio(chunk_at(0.5, RATE // 10))  # 0.5 - 0.6 s: wholly written already
        recorder.write_audio(chunk_at(0.9, RATE // 10))  # 0.9 - 1.0 s: contiguous again
    summary = recorder.close()

    assert (summary.audio_gaps, summary.audio_overlaps) == (0, 2)
    assert summary.audio_overlap_seconds == pytest.approx(0.2)
    assert summary.audio_seconds == pytest.approx(1.0)
    audio = read_back(summary.path).audio
    assert abs(audio.size - RATE) <= AAC_FRAME
    # The tone is phase-continuous on the timeline, so a correct trim leaves one clean 440 Hz tone.
    assert dominant_hz(audio[:RATE], RATE) == pytest.approx(TONE_HZ, abs=2.0)
    assert rms(audio[seconds_slice(0.05, 0.95)]) == pytest.approx(TONE_AMPLITUDE / np.sqrt(2), rel=0.1)


def test_audio_stamp_jitter_within_tolerance_stays_contiguous(recorder_at):
    with recorder_at(audio_sync_tolerance_s=0.005) as recorder:
        first = chunk_at(0.0, 1600)
        recorder.write_audio(first)
        late = chunk_at(0.1, 1600)
        recorder.write_audio(AudioChunk(late.samples, late.stamp_ns + 2_000_000, RATE))  # 2 ms late
    summary = recorder.close()
    assert (summary.audio_gaps, summary.audio_overlaps, summary.audio_seconds) == (0, 0, pytest.approx(0.2))


def test_audio_before_the_origin_is_trimmed_and_late_audio_starts_after_silence(recorder_at):
    with recorder_at(origin_ns=T0_NS + NS_PER_SECOND // 4) as recorder:  # time 0 is 0.25 s into the tone
        recorder.write_audio(chunk_at(0.0, RATE // 2))
    early = recorder.close()
    assert early.audio_seconds == pytest.approx(0.25)
    assert (early.audio_gaps, early.audio_overlaps) == (0, 0)

    with recorder_at("late.mp4") as recorder:
        recorder.write_frame(colour_frame(0), T0_NS)  # the video starts the clock
        recorder.write_audio(chunk_at(0.2, RATE // 2))
    late = recorder.close()
    assert late.audio_seconds == pytest.approx(0.7)
    audio = read_back(late.path).audio
    assert rms(audio[seconds_slice(0.0, 0.18)]) < QUIET_RMS
    assert rms(audio[seconds_slice(0.25, 0.65)]) == pytest.approx(TONE_AMPLITUDE / np.sqrt(2), rel=0.1)


def test_backwards_and_repeated_video_stamps_are_skipped(recorder_at):
    stamps_ms = (0, 33, 33, 20, 66, 100)  # a repeat and a step back
    with recorder_at(origin_ns=T0_NS, audio=False) as recorder:
        recorder.write_frame(colour_frame(0), T0_NS - 10_000_000)  # before the explicit origin
        for index, stamp_ms in enumerate(stamps_ms):
            recorder.write_frame(colour_frame(index), T0_NS + stamp_ms * 1_000_000)
    summary = recorder.close()

    assert (summary.frames, summary.frames_dropped) == (4, 3)
    decoded = read_back(summary.path)
    assert decoded.frame_times == pytest.approx([0.0, 0.033, 0.066, 0.1], abs=1e-3)
    kept = (0, 1, 4, 5)  # indices of the frames that went in
    for frame, index in zip(decoded.frames, kept):
        np.testing.assert_allclose(frame.reshape(-1, 3).mean(axis=0), PALETTE[index % len(PALETTE)], atol=COLOUR_TOLERANCE)


def test_video_only_has_no_audio_stream(recorder_at):
    with recorder_at(audio=False) as recorder:
        for index in range(5):
            recorder.write_frame(colour_frame(index), T0_NS + index * FRAME_NS)
        recorder.write_audio(chunk_at(0.0, 1600))  # ignored, not an error
    summary = recorder.close()
    assert summary.audio_seconds == 0.0
    with av.open(str(summary.path)) as container:
        assert [stream.type for stream in container.streams] == ["video"]
    assert len(read_back(summary.path).frames) == 5


def test_odd_frame_size_is_padded_to_even(recorder_at):
    with recorder_at(width=161, height=121, audio=False) as recorder:
        recorder.write_frame(colour_frame(2, 161, 121), T0_NS)
    frames = read_back(recorder.close().path).frames
    assert len(frames) == 1 and frames[0].shape == (122, 162, 3)
    np.testing.assert_allclose(frames[0].reshape(-1, 3).mean(axis=0), PALETTE[2], atol=COLOUR_TOLERANCE)


def test_wrong_inputs_name_what_was_expected(recorder_at):
    recorder = recorder_at()
    with pytest.raises(ValueError, match="160x120"):
        recorder.write_frame(np.zeros((480, 640, 3), np.uint8), T0_NS)
    with pytest.raises(ValueError, match="uint8"):
        recorder.write_frame(np.zeros((HEIGHT, WIDTH, 3), np.float32), T0_NS)
    with pytest.raises(ValueError, match="16000 Hz"):
        recorder.write_audio(AudioChunk(np.zeros(441, np.float32), T0_NS, sample_rate=44100))
    with pytest.raises(ValueError, match="mono"):
        recorder.write_audio(AudioChunk(np.zeros((160, 2), np.float32), T0_NS, sample_rate=RATE))
    assert recorder.origin_ns is None  # refused input does not start the clock
    with pytest.raises(ValueError, match="fps"):
        RecorderConfig(path="x.mp4", fps=0)


def test_close_twice_returns_the_same_summary_and_later_writes_fail(recorder_at):
    recorder = recorder_at()
    recorder.write_frame(colour_frame(0), T0_NS)
    recorder.write_audio(AudioChunk(np.zeros(1600, np.int16), T0_NS, RATE))  # int16 chunks are accepted too
    first = recorder.close()
    assert recorder.close() == first
    assert (first.frames, first.audio_seconds) == (1, pytest.approx(0.1))
    with pytest.raises(RuntimeError, match="closed"):
        recorder.write_frame(colour_frame(0), T0_NS + FRAME_NS)


def test_empty_recording_is_still_a_readable_file(recorder_at):
    summary = recorder_at().close()
    assert (summary.frames, summary.audio_seconds) == (0, 0.0)
    decoded = read_back(summary.path)  # the mp4 keeps no empty streams, but it opens
    assert decoded.frames == [] and decoded.audio is None


def test_missing_folders_are_created_and_unwritable_paths_name_the_path(tmp_path):
    nested = tmp_path / "new" / "deeper" / "out.mp4"
    with AnnotatedRecorder(RecorderConfig(path=str(nested)), WIDTH, HEIGHT) as recorder:
        recorder.write_frame(colour_frame(0), T0_NS)
    assert nested.is_file() and len(read_back(nested).frames) == 1

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="a_file"):
        AnnotatedRecorder(RecorderConfig(path=str(blocker / "out.mp4")), WIDTH, HEIGHT)


def test_frames_and_audio_from_two_threads(recorder_at):
    num_frames, seconds = 60, 2.0
    recorder = recorder_at(origin_ns=T0_NS)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def guarded(work):
        def run():
            start.wait()
            try:
                work()
            except Exception as error:  # surfaced by the assertion below
                errors.append(error)

        return threading.Thread(target=run)

    def frames():
        for index in range(num_frames):
            recorder.write_frame(colour_frame(index), T0_NS + index * FRAME_NS)

    def audio():
        for start_sample in range(0, int(seconds * RATE), 320):  # 20 ms chunks
            recorder.write_audio(chunk_at(start_sample / RATE, 320))

    threads = [guarded(frames), guarded(audio)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    summary = recorder.close()

    assert not errors
    assert (summary.frames, summary.frames_dropped, summary.audio_gaps, summary.audio_overlaps) == (num_frames, 0, 0, 0)
    decoded = read_back(summary.path)
    assert len(decoded.frames) == num_frames
    assert abs(decoded.audio.size - int(seconds * RATE)) <= AAC_FRAME
    assert dominant_hz(decoded.audio[: int(seconds * RATE)], RATE) == pytest.approx(TONE_HZ, abs=2.0)
