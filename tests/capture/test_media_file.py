"""MediaFileSource on real files written by PyAV (fixtures in tests/conftest.py)."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest

from socialmae_rt.capture.base import Source
from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, SourceError, SourceState, VideoFrame

MS = 1_000_000  # ns
ONE_SAMPLE_NS = NS_PER_SECOND // 16000
# Containers/codecs whose encoders delay audio (MP3 in FLV has no way to say "skip the priming
# samples", so the muxer shifts video by the encoder delay) or pad the last frame (AAC, MP3).
MAX_VIDEO_START_NS = {".flv": 50 * MS}
MAX_AUDIO_EXCESS_S = 0.05
ALL_CONTAINERS = [".mp4", ".mkv", ".webm", ".flv", ".avi"]


def read_all(source: MediaFileSource) -> tuple[list[VideoFrame], list[AudioChunk], list]:
    items = list(source)
    return [i for i in items if isinstance(i, VideoFrame)], [i for i in items if isinstance(i, AudioChunk)], items


def dominant_frequency_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def iterate_in_thread(source: MediaFileSource) -> tuple[threading.Thread, threading.Event, list]:
    """Iterates `source` on a worker thread; the event is set once the first item arrived."""
    received: list = []
    first_item = threading.Event()

    def consume() -> None:
        for item in source:
            received.append(item)
            first_item.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    return worker, first_item, received


# ----- config -----


def test_config_validates_its_fields(tmp_path):
    with pytest.raises(ValueError, match="sample_rate"):
        MediaFileConfig(tmp_path / "a.mp4", sample_rate=0)
    with pytest.raises(ValueError, match="realtime"):
        MediaFileConfig(tmp_path / "a.mp4", realtime="yes")
    with pytest.raises(ValueError, match="path"):
        MediaFileConfig("")


def test_source_keeps_the_source_contract_and_says_its_clock(tmp_path):
    assert isinstance(MediaFileSource(tmp_path / "a.mp4"), Source)
    assert MediaFileSource(MediaFileConfig(tmp_path / "a.mp4")).clock == "media"
    assert MediaFileSource(MediaFileConfig(tmp_path / "a.mp4", realtime=True)).clock == "monotonic"


# ----- video and audio content, every container -----


@pytest.mark.parametrize("suffix", ALL_CONTAINERS)
def test_video_frames_match_what_was_written(write_clip, suffix):
    clip = write_clip(f"clip{suffix}")
    source = MediaFileSource(clip.path)
    video, _, _ = read_all(source)

    assert len(video) == clip.num_frames == source.video_frames
    assert [clip.frame_number(f.bgr) for f in video] == list(range(clip.num_frames))
    assert [f.index for f in video] == list(range(clip.num_frames))
    assert all(f.bgr.shape == (clip.size[1], clip.size[0], 3) and f.bgr.dtype == np.uint8 for f in video)
    first_ns = video[0].stamp_ns
    assert 0 <= first_ns <= MAX_VIDEO_START_NS.get(suffix, 1 * MS)
    for i, frame in enumerate(video):
        assert abs(frame.stamp_ns - first_ns - i * NS_PER_SECOND // clip.fps) <= 1 * MS
    assert source.status.state == SourceState.ENDED
    assert source.decode_errors == 0


@pytest.mark.parametrize("suffix", ALL_CONTAINERS)
def test_audio_is_contiguous_16k_mono_with_the_written_tone(write_clip, suffix):
    clip = write_clip(f"clip{suffix}")
    source = MediaFileSource(clip.path)
    _, audio, _ = read_all(source)

    assert len(audio) == source.audio_chunks > 0
    assert all(c.sample_rate == 16000 and c.samples.dtype == np.float32 and c.samples.ndim == 1 for c in audio)
    assert audio[0].stamp_ns == 0  # audio is the earliest stream in every fixture file
    for previous, chunk in zip(audio, audio[1:]):
        assert abs(chunk.stamp_ns - previous.end_ns) <= ONE_SAMPLE_NS
    samples = np.concatenate([c.samples for c in audio])
    assert 0 <= samples.size / 16000 - clip.seconds <= MAX_AUDIO_EXCESS_S
    steady = samples[1600 : samples.size - 1600]  # 0.1 s in from either end: no codec edge effects
    assert dominant_frequency_hz(steady, 16000) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_items_come_in_presentation_order(write_clip):
    clip = write_clip("clip.mkv")
    _, _, items = read_all(MediaFileSource(clip.path))
    stamps = [item.stamp_ns for item in items]
    assert stamps == sorted(stamps)
    assert {type(item) for item in items[:20]} == {VideoFrame, AudioChunk}  # interleaved, not one track then the other


def test_status_detail_and_duration_describe_the_file(write_clip):
    clip = write_clip("clip.mp4")
    source = MediaFileSource(clip.path)
    source.open()
    assert source.has_video and source.has_audio
    assert "video+audio" in source.status.detail and "h264" in source.status.detail
    assert source.status.state == SourceState.RUNNING
    assert source.duration_s == pytest.approx(clip.seconds, abs=0.05)
    source.close()


# ----- one track only -----


def test_video_only_file_yields_only_frames(write_clip):
    clip = write_clip("silent.mp4", audio=False)
    source = MediaFileSource(clip.path)
    source.open()
    assert (source.has_video, source.has_audio) == (True, False)
    assert "video only" in source.status.detail and "no audio track" in source.status.detail
    video, audio, _ = read_all(source)
    assert len(video) == clip.num_frames and audio == []


@pytest.mark.parametrize("name", ["tone.wav", "tone.mkv"])
def test_audio_only_file_yields_only_chunks(write_clip, name):
    clip = write_clip(name, video=False)
    source = MediaFileSource(clip.path)
    source.open()
    assert (source.has_video, source.has_audio) == (False, True)
    assert "audio only" in source.status.detail and "no video track" in source.status.detail
    video, audio, _ = read_all(source)
    assert video == [] and sum(c.samples.size for c in audio) / 16000 == pytest.approx(clip.seconds, abs=MAX_AUDIO_EXCESS_S)


# ----- bad files -----


def test_missing_file_raises_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere.mp4"
    source = MediaFileSource(missing)
    with pytest.raises(SourceError, match="nowhere.mp4.*no such file"):
        source.open()
    assert source.status.state == SourceState.FAILED


def test_non_media_file_raises_naming_the_path(not_media_file):
    with pytest.raises(SourceError, match=f"{not_media_file.name}.*cannot read it as media"):
        MediaFileSource(not_media_file).open()


def test_truncated_file_raises_naming_the_path(truncated_clip):
    with pytest.raises(SourceError, match=truncated_clip.name):
        list(MediaFileSource(truncated_clip))  # iterating opens, and raises the same way


def test_corrupt_packet_mid_file_is_counted_and_skipped(write_clip):
    # MPEG-4 part 2 rejects a garbage packet outright (H.264 would conceal it silently).
    clip = write_clip("glitch.avi", corrupt_frames=(12,))
    source = MediaFileSource(clip.path)
    video, audio, _ = read_all(source)
    numbers = [clip.frame_number(f.bgr) for f in video]
    assert source.decode_errors >= 1
    assert 12 not in numbers and numbers[-1] == clip.num_frames - 1  # playback went on past the glitch
    assert len(video) == clip.num_frames - 1 and audio
    assert source.status.state == SourceState.ENDED


# ----- realtime pacing -----


def test_realtime_takes_the_clip_duration_and_stamps_in_the_monotonic_clock(write_clip):
    clip = write_clip("two_seconds.mp4", seconds=2.0)
    source = MediaFileSource(MediaFileConfig(clip.path, realtime=True))
    lags_ns = []
    started = time.monotonic()
    for item in source:
        lags_ns.append(time.monotonic_ns() - item.stamp_ns)  # how long ago, on the monotonic clock, it was due
    elapsed = time.monotonic() - started

    assert 1.8 <= elapsed <= 3.5
    assert all(-1 * MS <= lag <= 200 * MS for lag in lags_ns)
    assert source.status.state == SourceState.ENDED


def test_close_from_another_thread_stops_realtime_pacing_promptly(write_clip):
    clip = write_clip("long.mp4", seconds=5.0)
    source = MediaFileSource(MediaFileConfig(clip.path, realtime=True))
    worker, first_item, received = iterate_in_thread(source)
    assert first_item.wait(timeout=5.0)

    closed_at = time.monotonic()
    source.close()
    worker.join(timeout=0.5)
    assert not worker.is_alive(), "iteration still running 0.5 s after close()"
    assert time.monotonic() - closed_at < 0.5
    assert len([i for i in received if isinstance(i, VideoFrame)]) < clip.num_frames
    assert source.status.state == SourceState.ENDED and "closed" in source.status.detail


# ----- looping -----


def test_loop_restarts_with_stamps_continuing_past_the_end(write_clip):
    clip = write_clip("short.mkv", seconds=1.0)
    source = MediaFileSource(MediaFileConfig(clip.path, loop=True))
    video = []
    for item in source:
        if isinstance(item, VideoFrame):
            video.append(item)
        if len(video) == 2 * clip.num_frames + 1:
            break
    source.close()

    numbers = [clip.frame_number(f.bgr) for f in video]
    assert numbers == list(range(clip.num_frames)) * 2 + [0]
    stamps = [f.stamp_ns for f in video]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert stamps[clip.num_frames] == pytest.approx(NS_PER_SECOND * clip.seconds, abs=2 * MS)


def test_consumer_stopping_early_releases_the_file_and_ends(write_clip):
    clip = write_clip("clip.mp4")
    source = MediaFileSource(clip.path)
    for item in source:
        if isinstance(item, VideoFrame):
            break
    assert source.status.state == SourceState.ENDED
    source.close()  # idempotent after the end
    assert source.status.state == SourceState.ENDED


def test_audio_stays_with_video_across_the_joins_of_a_concatenated_file(tmp_path):
    """Ten 3 s parts joined with `ffmpeg -f concat -c copy`: every part carries its own AAC priming and
    padding (about 42 ms a join). Each part flashes a white frame and clicks at 0.5 s; through the
    source and the audio ring, every click stays within 40 ms of its flash (the old sample-counting
    stamps were 377 ms late by the tenth)."""
    import shutil
    import subprocess
    from fractions import Fraction

    from socialmae_rt.stream.buffer import AVRingBuffer, BufferConfig

    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg command is missing (apt-get install ffmpeg; scripts/install_system_deps.sh)")
    rate, fps, seconds = 44100, 10, 3.0
    part = tmp_path / "part.mp4"
    with av.open(str(part), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i in range(int(seconds * fps)):
            picture = np.full((120, 160, 3), 255 if i == 5 else 40, np.uint8)  # the flash at 0.5 s
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        sound = np.zeros(int(seconds * rate), np.float32)
        click = int(0.05 * rate)
        sound[int(0.5 * rate):int(0.5 * rate) + click] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(click) / rate)
        for start in range(0, sound.size, 1024):
            frame = av.AudioFrame.from_ndarray(sound[start:start + 1024][None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    listing = tmp_path / "parts.txt"
    listing.write_text("".join(f"file '{part}'\n" for _ in range(10)))
    joined = tmp_path / "joined.mp4"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(joined)], check=True)
    source = MediaFileSource(MediaFileConfig(path=str(joined)))
    ring = AVRingBuffer(BufferConfig(history_s=40.0))
    flashes = []
    for item in source:
        if isinstance(item, VideoFrame) and item.bgr.mean() > 200:
            flashes.append(item.stamp_ns)
        elif isinstance(item, AudioChunk):
            ring.add_audio(item)
    assert len(flashes) == 10
    offsets_ms = []
    for flash_ns in flashes:
        heard = ring.audio.read(flash_ns + NS_PER_SECOND // 2, 16000)  # [flash - 0.5 s, flash + 0.5 s]
        onset = int(np.argmax(np.abs(heard) > 0.25))
        offsets_ms.append((onset - 8000) / 16)
    assert max(abs(x) for x in offsets_ms) < 40, offsets_ms
    assert source.status.counters["audio_restamps"] >= 9  # at least one correction a join, each counted


def test_frames_larger_than_the_limit_are_scaled_down_when_decoded(write_clip):
    """A 2400x1800 file comes out at 1920x1440 (the default limit): queues and buffers never hold
    more, whatever the input. The picture is the same, only smaller."""
    clip = write_clip("big.mp4", seconds=0.5, audio=False, size=(2400, 1800))
    frames = [item for item in MediaFileSource(MediaFileConfig(clip.path)) if isinstance(item, VideoFrame)]
    assert frames and all(f.bgr.shape == (1440, 1920, 3) for f in frames)
    full = [item for item in MediaFileSource(MediaFileConfig(clip.path, max_frame_side=None))
            if isinstance(item, VideoFrame)]
    assert full[0].bgr.shape == (1800, 2400, 3)
    import cv2

    shrunk = cv2.resize(full[0].bgr, (1920, 1440), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - frames[0].bgr.astype(int)).mean() < 3.0
