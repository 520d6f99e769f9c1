"""The contract every source keeps (camera, microphone, media file, ROS topics)."""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from socialmae_rt.messages import AudioChunk, SourceStatus, VideoFrame


@runtime_checkable
class Source(Protocol):
    """A producer of timestamped frames and/or audio chunks.

    - `open()` acquires the device or file; it raises SourceError with a message naming the
      device/file and the reason when that is impossible.
    - Iterating yields VideoFrame / AudioChunk items in capture order until the stream ends or
      `close()` is called (from any thread); iteration opens the source if `open()` was not called.
    - Faults after start (device unplugged, corrupt packets) never raise out of the iterator:
      they are counted in `status.counters`, and a source that cannot go on ends with
      `status.state == FAILED` and a `status.detail` saying why.
    - `close()` is idempotent and releases the device.
    - `has_video` / `has_audio` say what it delivers (for a file: known after `open()`), and
      `clock` is "monotonic" for capture-time stamps or "media" for presentation times.
    """

    status: SourceStatus
    has_video: bool
    has_audio: bool
    clock: str

    def open(self) -> None: ...

    def __iter__(self) -> Iterator[VideoFrame | AudioChunk]: ...

    def close(self) -> None: ...


# Larger frames are scaled down as they are captured, so that queues and buffers hold at most this
# many pixels on the longest side whatever the camera or file delivers (a 4000x3000 frame is 36 MB;
# detection runs on a 192 px input and the model on 224 px crops).
DEFAULT_MAX_FRAME_SIDE = 1920


def fitted_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """(width, height) scaled to fit `max_side` keeping the aspect (even numbers), or None if it fits."""
    if max_side is None or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def fit_frame(bgr, max_side: int | None):
    """`bgr` scaled down (area filter) to fit `max_side`, or as it is when it fits."""
    size = fitted_size(bgr.shape[1], bgr.shape[0], max_side)
    if size is None:
        return bgr
    import cv2

    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
