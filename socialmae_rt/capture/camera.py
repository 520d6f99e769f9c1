"""Camera source (OpenCV VideoCapture): BGR frames stamped with the monotonic clock at capture.

The device may be a camera index, a /dev/video path, a video file or a stream URL; VideoCapture
takes them all. Frames are read on a dedicated thread so that a read() that hangs (a camera
unplugged mid-stream) cannot hang the consumer: the iterator notices the stall and ends with FAILED.
Files are paced to their frame rate by default, so a recording behaves like the camera it replaces.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import cv2

from socialmae_rt.capture.base import DEFAULT_MAX_FRAME_SIDE, fit_frame
from socialmae_rt.messages import NS_PER_SECOND, SourceError, SourceState, SourceStatus, VideoFrame
from socialmae_rt.util.native_logs import opencv_logs_muted

# How often the iterator wakes while waiting for a frame, to notice close() and stalls.
POLL_INTERVAL_S = 0.02
# Pause between retries after a failed read from a live device (it usually recovers or stalls).
READ_RETRY_INTERVAL_S = 0.01
# Frames buffered between the reader thread and the consumer. Live devices drop the oldest when
# the consumer falls behind (stale frames are worse than missing ones); files wait instead.
LIVE_QUEUE_SIZE = 2
FILE_QUEUE_SIZE = 4
DEFAULT_FILE_FPS = 30.0  # for files whose container does not state a frame rate


@dataclass
class CameraConfig:
    device: int | str = 0  # index, /dev/video path, file path or URL
    width: int | None = 640  # requested size; None keeps the device's default
    height: int | None = 480
    fps: float | None = 30.0  # requested rate; None keeps the device's default
    open_timeout_s: float = 5.0  # for opening, and for the first frame to arrive
    stall_timeout_s: float = 2.0  # no frame for this long after the first -> FAILED
    pace_files: bool = True  # release a file's frames at its frame rate, like a camera
    max_frame_side: int | None = DEFAULT_MAX_FRAME_SIDE  # larger frames are scaled down as they are read

    def __post_init__(self) -> None:
        if isinstance(self.device, bool) or not isinstance(self.device, (int, str)):
            raise ValueError(f"CameraConfig.device must be an index or a path/URL string, got {self.device!r}")
        if isinstance(self.device, str):
            if not self.device.strip():
                raise ValueError("CameraConfig.device must not be an empty string")
            if self.device.strip().isdigit():
                self.device = int(self.device)  # "0" from a command line means camera index 0
        if isinstance(self.device, int) and self.device < 0:
            raise ValueError(f"CameraConfig.device index must be >= 0, got {self.device}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"CameraConfig.{name} must be a positive int or None, got {value!r}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"CameraConfig.fps must be > 0 or None, got {self.fps!r}")
        for name in ("open_timeout_s", "stall_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CameraConfig.{name} must be > 0 s, got {getattr(self, name)!r}")
        if not isinstance(self.pace_files, bool):
            raise ValueError(f"CameraConfig.pace_files must be a bool, got {self.pace_files!r}")

    @property
    def is_file(self) -> bool:
        """A regular file on disk (a recording, also as a file:// URL), as opposed to a device node,
        index or network URL."""
        if not isinstance(self.device, str):
            return False
        return os.path.isfile(self.device.removeprefix("file://"))

    @property
    def looks_like_local_path(self) -> bool:
        """A string naming something on this machine (URLs and GStreamer pipelines do not)."""
        return isinstance(self.device, str) and "://" not in self.device and "!" not in self.device


class _EndOfFile:
    """Queued by the reader after a file's last frame."""


class _ReaderFault:
    """Queued by the reader when OpenCV raises; carries the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class CameraSource:
    """Yields VideoFrame items from an OpenCV VideoCapture device (or file, paced like one)."""

    def __init__(self, config: CameraConfig | None = None) -> None:
        self.config = config or CameraConfig()
        self.status = SourceStatus(name=f"camera:{self.config.device}")
        for counter in ("frames", "read_failures", "dropped_frames"):
            self.status.count(counter, 0)
        self.clock = "monotonic"  # stamped at capture
        self.has_video = True
        self.has_audio = False
        self.actual_width: int | None = None
        self.actual_height: int | None = None
        self.actual_fps: float | None = None
        self._capture: cv2.VideoCapture | None = None
        self._frames: queue.Queue = queue.Queue(maxsize=FILE_QUEUE_SIZE if self.config.is_file else LIVE_QUEUE_SIZE)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._last_read_ns = 0  # monotonic time of the reader's last good frame (0: none yet)
        self._played = False

    @property
    def frames(self) -> int:
        return self.status.counters.get("frames", 0)

    @property
    def read_failures(self) -> int:
        return self.status.counters.get("read_failures", 0)

    # ----- Source contract -----
    def open(self) -> None:
        with self._lock:
            if self._capture is not None:
                return
            if self._stop.is_set():
                raise SourceError(f"camera {self._device_name()}: source was closed")
            try:
                self._capture = self._open_capture()
            except SourceError as error:
                self.status.set(SourceState.FAILED, str(error))
                raise
            self._apply_requested_format()
            self._read_actual_format()
        self.status.set(SourceState.RUNNING, self._format_detail())

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._played:
            return
        self.open()
        with self._lock:
            if self._reader is not None:
                raise RuntimeError(f"camera {self._device_name()}: already being iterated")
            self._played = True
            self._reader = threading.Thread(target=self._read_frames, name=f"camera-reader:{self.config.device}", daemon=True)
            self._reader.start()
        try:
            yield from self._frames_until_end()
        finally:
            self._stop.set()  # the reader releases the device when it sees this
            if self.status.state == SourceState.RUNNING:  # the consumer stopped iterating early
                self.status.set(SourceState.ENDED, f"consumer stopped after {self.frames} frames")

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._reader is None and self._capture is not None:
                self._capture.release()  # never started reading: nobody else holds the device
                self._capture = None
        if self.status.state in (SourceState.STARTING, SourceState.RUNNING):
            self.status.set(SourceState.ENDED, f"closed after {self.frames} frames")

    # ----- opening -----
    def _device_name(self) -> str:
        return repr(self.config.device) if isinstance(self.config.device, str) else str(self.config.device)

    def _open_capture(self) -> cv2.VideoCapture:
        if self.config.looks_like_local_path and not os.path.exists(self.config.device):
            raise SourceError(f"camera {self._device_name()}: no such file or device{self._listing_hint()}")
        capture = _open_within(self.config.device, self.config.open_timeout_s)
        if capture is None:
            raise SourceError(
                f"camera {self._device_name()}: did not open within {self.config.open_timeout_s:g} s{self._listing_hint()}"
            )
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"camera {self._device_name()}: OpenCV could not open it{self._listing_hint()}")
        return capture

    def _listing_hint(self) -> str:
        device = self.config.device
        if isinstance(device, int) or str(device).startswith("/dev/video"):
            return " (list the cameras this machine has with `ls /dev/video*`)"
        return ""

    def _apply_requested_format(self) -> None:
        if self.config.is_file:
            return  # a recording has the size and rate it was made with
        # Drivers take the nearest mode they support, or ignore the request: report what they gave.
        requests = ((cv2.CAP_PROP_FRAME_WIDTH, self.config.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.config.height), (cv2.CAP_PROP_FPS, self.config.fps))
        for prop, value in requests:
            if value is not None:
                self._capture.set(prop, float(value))

    def _read_actual_format(self) -> None:
        self.actual_width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
        self.actual_height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.actual_fps = fps if fps > 0 else None  # 0 or NaN: the backend does not know

    def _format_detail(self) -> str:
        size = f"{self.actual_width}x{self.actual_height}" if self.actual_width else "unknown size"
        fps = f"{self.actual_fps:.3g} fps" if self.actual_fps else "unknown fps"
        backend = self._capture.getBackendName()
        if self.config.is_file:
            count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
            pacing = f"paced at {self._file_fps():.3g} fps" if self.config.pace_files else "unpaced"
            return f"file {self.config.device} ({backend}): {size} @{fps}, {count} frames, {pacing}"
        asked = f"{self.config.width or 'default'}x{self.config.height or 'default'} @{self.config.fps or 'default'} fps"
        return f"device {self._device_name()} ({backend}): asked {asked}, got {size} @{fps}"

    def _file_fps(self) -> float:
        return self.actual_fps or self.config.fps or DEFAULT_FILE_FPS

    # ----- reader thread -----
    def _read_frames(self) -> None:
        try:
            self._read_until_stopped()
        except cv2.error as error:
            self._queue_until_stopped(_ReaderFault(f"OpenCV error while reading: {error}"))
        finally:
            with self._lock:
                self._capture.release()
                self._capture = None

    def _read_until_stopped(self) -> None:
        is_file = self.config.is_file
        pace_ns = round(NS_PER_SECOND / self._file_fps()) if is_file and self.config.pace_files else 0
        next_due_ns = time.monotonic_ns()
        while not self._stop.is_set():
            if pace_ns and not self._wait_until(next_due_ns):
                return
            ok, bgr = self._capture.read()
            stamp_ns = time.monotonic_ns()  # capture time: right after the device handed the frame over
            if not ok or bgr is None:
                if is_file:
                    self._queue_until_stopped(_EndOfFile())
                    return
                self.status.count("read_failures")
                self._stop.wait(READ_RETRY_INTERVAL_S)
                continue
            self._last_read_ns = stamp_ns
            self._queue_frame(fit_frame(bgr, self.config.max_frame_side), stamp_ns, is_file)
            next_due_ns += pace_ns

    def _wait_until(self, due_ns: int) -> bool:
        """False when closed while waiting (Event wait, so close() is not held up)."""
        wait_ns = due_ns - time.monotonic_ns()
        return not self._stop.wait(wait_ns / NS_PER_SECOND) if wait_ns > 0 else not self._stop.is_set()

    def _queue_frame(self, bgr, stamp_ns: int, is_file: bool) -> None:
        if is_file:
            self._queue_until_stopped((bgr, stamp_ns))
            return
        while True:
            try:
                self._frames.put_nowait((bgr, stamp_ns))
                return
            except queue.Full:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        try:
            self._frames.get_nowait()
            self.status.count("dropped_frames")
        except queue.Empty:
            pass  # the consumer took it meanwhile: there is room now

    def _queue_until_stopped(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=POLL_INTERVAL_S)
                return
            except queue.Full:
                continue

    # ----- consumer side -----
    def _frames_until_end(self) -> Iterator[VideoFrame]:
        started_ns = time.monotonic_ns()
        while not self._stop.is_set():
            try:
                item = self._frames.get(timeout=POLL_INTERVAL_S)
            except queue.Empty:
                if self._stalled(started_ns):
                    return
                continue
            if isinstance(item, _EndOfFile):
                self.status.set(SourceState.ENDED, f"end of file after {self.frames} frames")
                return
            if isinstance(item, _ReaderFault):
                self.status.set(SourceState.FAILED, item.reason)
                return
            bgr, stamp_ns = item
            yield VideoFrame(bgr=bgr, stamp_ns=stamp_ns, index=self.frames)
            self.status.count("frames")
        if self.status.state == SourceState.RUNNING:
            self.status.set(SourceState.ENDED, f"closed after {self.frames} frames")

    def _stalled(self, started_ns: int) -> bool:
        """True (and FAILED) when the device has delivered nothing for too long."""
        now_ns = time.monotonic_ns()
        if self._last_read_ns == 0:
            silent_s, limit_s, what = (now_ns - started_ns) / NS_PER_SECOND, self.config.open_timeout_s, "no first frame"
        else:
            silent_s, limit_s, what = (now_ns - self._last_read_ns) / NS_PER_SECOND, self.config.stall_timeout_s, "no frame"
        if silent_s < limit_s:
            return False
        self.status.set(
            SourceState.FAILED,
            f"camera {self._device_name()}: {what} for {silent_s:.1f} s after {self.frames} frames "
            f"({self.read_failures} failed reads); unplugged or in use by another program?",
        )
        return True


def _open_within(device: int | str, timeout_s: float) -> cv2.VideoCapture | None:
    """cv2.VideoCapture(device) on a helper thread; None when it takes longer than timeout_s.

    Opening a network stream or a wedged driver can block for a long time inside OpenCV; the
    helper releases a capture that opens after we gave up on it.
    """
    result: dict[str, cv2.VideoCapture] = {}
    done = threading.Event()
    lock = threading.Lock()
    abandoned = False

    def attempt() -> None:
        try:
            with opencv_logs_muted():  # our error says what failed; OpenCV's lines would only repeat it
                capture = cv2.VideoCapture(device)
        except cv2.error:
            capture = cv2.VideoCapture()  # an unopened capture: the caller reports "could not open"
        with lock:
            if abandoned:
                capture.release()
            else:
                result["capture"] = capture
        done.set()

    threading.Thread(target=attempt, name=f"camera-open:{device}", daemon=True).start()
    if done.wait(timeout_s):
        return result["capture"]
    with lock:
        abandoned = True
        if "capture" in result:
            return result["capture"]  # finished in the instant between the timeout and the lock
    return None
