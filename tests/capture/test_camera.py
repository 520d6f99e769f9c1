"""CameraSource through OpenCV's VideoCapture on real video files and a FIFO (there is no camera here).

VideoCapture on a file goes through the same API as on a camera; a FIFO fed by a thread stands in
for a live device that stops delivering (it is not a regular file, so it is treated as live).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from socialmae_rt.capture.base import Source
from socialmae_rt.capture.camera import CameraConfig, CameraSource
from socialmae_rt.messages import NS_PER_SECOND, SourceError, SourceState, VideoFrame


def test_config_validates_and_normalises_the_device():
    assert CameraConfig(device="2").device == 2  # an index typed on a command line
    assert CameraConfig(device="/dev/video0").device == "/dev/video0"
    with pytest.raises(ValueError, match="device"):
        CameraConfig(device=-1)
    with pytest.raises(ValueError, match="width"):
        CameraConfig(width=0)
    with pytest.raises(ValueError, match="fps"):
        CameraConfig(fps=-5.0)
    with pytest.raises(ValueError, match="stall_timeout_s"):
        CameraConfig(stall_timeout_s=0)


def test_camera_source_keeps_the_source_contract():
    assert isinstance(CameraSource(CameraConfig()), Source)


def test_file_frames_come_out_in_order_with_capture_stamps(write_clip):
    clip = write_clip("camera.mp4", audio=False)
    source = CameraSource(CameraConfig(device=str(clip.path), pace_files=False))
    before_ns = time.monotonic_ns()
    frames = list(source)
    after_ns = time.monotonic_ns()

    assert len(frames) == clip.num_frames == source.frames
    assert [clip.frame_number(f.bgr) for f in frames] == list(range(clip.num_frames))
    assert [f.index for f in frames] == list(range(clip.num_frames))
    stamps = [f.stamp_ns for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert before_ns <= stamps[0] and stamps[-1] <= after_ns  # monotonic clock, taken at capture
    assert source.status.state == SourceState.ENDED and "end of file" in source.status.detail
    assert source.read_failures == 0


def test_status_reports_what_the_device_gave(write_clip):
    clip = write_clip("camera.mp4", audio=False)
    source = CameraSource(CameraConfig(device=str(clip.path)))
    source.open()
    assert source.status.state == SourceState.RUNNING
    assert "160x120" in source.status.detail and "10 fps" in source.status.detail
    assert (source.actual_width, source.actual_height, source.actual_fps) == (160, 120, 10.0)
    source.close()
    assert source.status.state == SourceState.ENDED


def test_file_is_paced_to_its_frame_rate_like_a_camera(write_clip):
    clip = write_clip("paced.mp4", seconds=1.0, fps=10, audio=False)
    source = CameraSource(CameraConfig(device=str(clip.path), pace_files=True))
    frames = list(source)
    spacings_s = np.diff([f.stamp_ns for f in frames]) / NS_PER_SECOND

    assert len(frames) == clip.num_frames
    assert np.median(spacings_s) == pytest.approx(0.1, abs=0.02)
    assert 0.8 <= (frames[-1].stamp_ns - frames[0].stamp_ns) / NS_PER_SECOND <= 1.5


def test_frames_of_odd_size_pass_through_unchanged(write_clip):
    clip = write_clip("odd.avi", audio=False, video_codec="ffv1", pix_fmt="bgr0", size=(161, 121), seconds=0.5)
    frames = list(CameraSource(CameraConfig(device=str(clip.path), pace_files=False)))
    assert len(frames) == clip.num_frames
    assert all(f.bgr.shape == (121, 161, 3) for f in frames)


def test_frames_larger_than_the_limit_are_scaled_down_as_they_are_read(write_clip):
    clip = write_clip("big.mp4", audio=False, size=(2400, 1800), seconds=0.3)
    frames = list(CameraSource(CameraConfig(device=str(clip.path), pace_files=False)))
    assert frames and all(f.bgr.shape == (1440, 1920, 3) for f in frames)
    small = list(CameraSource(CameraConfig(device=str(clip.path), pace_files=False, max_frame_side=800)))
    assert all(f.bgr.shape == (600, 800, 3) for f in small)


def test_bad_index_raises_naming_it_within_the_open_timeout():
    source = CameraSource(CameraConfig(device=99, open_timeout_s=3.0))
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"camera 99\b.*ls /dev/video"):
        source.open()
    assert time.monotonic() - started < 3.0
    assert source.status.state == SourceState.FAILED


@pytest.mark.parametrize("device", ["/dev/video42", "missing_recording.mp4"])
def test_missing_path_raises_naming_it(tmp_path, device):
    path = device if device.startswith("/dev/") else str(tmp_path / device)
    with pytest.raises(SourceError, match=os.path.basename(path)):
        list(CameraSource(CameraConfig(device=path)))  # iterating opens, and raises the same way


def test_close_from_another_thread_ends_iteration_promptly(write_clip):
    clip = write_clip("long.mp4", seconds=5.0, audio=False)
    source = CameraSource(CameraConfig(device=str(clip.path), pace_files=True))
    first_frame = threading.Event()
    received: list[VideoFrame] = []

    def consume() -> None:
        for frame in source:
            received.append(frame)
            first_frame.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert first_frame.wait(timeout=5.0)
    source.close()
    worker.join(timeout=0.5)
    assert not worker.is_alive(), "iteration still running 0.5 s after close()"
    assert len(received) < clip.num_frames
    assert source.status.state == SourceState.ENDED


@pytest.fixture
def stalling_device(tmp_path, write_clip):
    """A FIFO that delivers the first half of a stream, then nothing (a camera that stops delivering)."""
    clip = write_clip("stream.mkv", seconds=10.0, audio=False, video_codec="mpeg4")
    data = clip.path.read_bytes()
    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    release = threading.Event()

    def feed() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(data[: len(data) // 2])
            pipe.flush()
            release.wait(timeout=30)  # holds the pipe open, silent, until the test is done

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    yield str(fifo)
    release.set()
    feeder.join(timeout=5)


def test_device_that_stops_delivering_ends_with_failed(stalling_device):
    source = CameraSource(CameraConfig(device=stalling_device, stall_timeout_s=0.5, open_timeout_s=5.0))
    frames = list(source)  # returns by itself: the stall ends the iteration
    assert len(frames) > 0
    assert source.status.state == SourceState.FAILED
    assert "no frame for" in source.status.detail and "camera.fifo" in source.status.detail
