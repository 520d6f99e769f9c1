"""Calibrate int8 on site: record the robot's own camera and microphone, calibrate on one part,
gate on a later part.

`SiteRecorder` is an ingest observer (pipeline.IngestObserver): it sees every frame and audio
chunk the pipeline takes in, wherever they come from (a camera and microphone, a file, ROS
topics), and writes the first `seconds` of input into two clips, both stamped on the input's own
clock:

    <directory>/calibrate.mp4   the first `calibrate_share` of the time: what NNCF calibrates on
    <directory>/gate.mp4        the rest: scored by the int8 gate beside the held-out suite

The two parts share no instant, so no gate window holds calibration content (windows are cut
inside each clip). Frames are written at most `fps` per second (the model samples 2 fps). Once
both clips are written, `wait()` returns them; the int8 build then treats them as ordinary
calibration and held-out clips (engines/openvino_ir.py keys the IR by their sha256).

`prepare-backend --calibrate-live SECONDS` records from the sources of a run (record_sources);
`run`, `demo` and the ROS node do it at a first start with `calibrate_live_s`, running the float
backend meanwhile (engines/adaptive.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, VideoFrame
from socialmae_rt.stream.buffer import BufferConfig

log = logging.getLogger(__name__)

CALIBRATE_CLIP = "calibrate.mp4"
GATE_CLIP = "gate.mp4"


class SiteRecordingError(RuntimeError):
    """The site recording could not give both clips (no sound, no picture, stopped early)."""


@dataclass
class SiteCalibrationConfig:
    """How much live input to record for int8 calibration, and how it is split. Every default lives here."""

    seconds: float  # input to record (the input's own clock: real time live, media time for a file)
    directory: str | None = None  # where the clips go (None: $SOCIALMAE_RT_CACHE/site/<date-time>)
    calibrate_share: float = 0.6  # the first 60 % calibrates, the last 40 % is gated on
    fps: float = 5.0  # frames written per second, at most

    def __post_init__(self) -> None:
        window_s = BufferConfig().window_s
        if not 0.2 <= self.calibrate_share <= 0.8:
            raise ValueError(f"calibrate_share must be in [0.2, 0.8], got {self.calibrate_share}")
        shortest = min(self.calibrate_share, 1 - self.calibrate_share) * self.seconds
        if not shortest >= window_s:
            needed = window_s / min(self.calibrate_share, 1 - self.calibrate_share)
            raise ValueError(f"a site calibration of {self.seconds:g} s (--calibrate-live, calibrate_live_s) is too short: each part needs at least one "
                             f"{window_s:g} s window, so at least {needed:g} s are needed (60 s or more recommended)")
        if not self.fps > 0:
            raise ValueError(f"SiteCalibrationConfig.fps must be > 0, got {self.fps}")

    def folder(self) -> Path:
        if self.directory:
            return Path(self.directory)
        from socialmae_rt.engines.engine_cache import cache_root

        return cache_root() / "site" / time.strftime("%Y%m%d-%H%M%S")

    @property
    def boundary_s(self) -> float:
        return self.seconds * self.calibrate_share


@dataclass(frozen=True)
class SiteClips:
    calibrate: Path
    gate: Path
    frames: tuple[int, int]  # frames written to each clip
    audio_s: tuple[float, float]  # seconds of audio in each clip

    def describe(self) -> str:
        return (f"{self.calibrate} ({self.frames[0]} frames, {self.audio_s[0]:.1f} s of sound) to calibrate, "
                f"{self.gate} ({self.frames[1]} frames, {self.audio_s[1]:.1f} s of sound) to gate on")


class SiteRecorder:
    """Writes the first `config.seconds` of what the pipeline ingests into the two clips. Thread-safe:
    video and audio arrive on different capture threads."""

    def __init__(self, config: SiteCalibrationConfig, on_status: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.directory = config.folder()
        self.calibrate_path, self.gate_path = self.directory / CALIBRATE_CLIP, self.directory / GATE_CLIP
        self._say = on_status or (lambda message: log.info("%s", message))
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._origin_ns: int | None = None
        self._recorders: list = [None, None]  # one AnnotatedRecorder per part, opened at its first frame
        self._last_frame_ns = [None, None]
        self._frames = [0, 0]
        self._pending_audio: list[list[AudioChunk]] = [[], []]  # sound before a part's first frame opened its clip
        self._audio_seen = False
        self._latest_s = 0.0  # the latest input time seen, from the origin
        self._next_report_s = 10.0
        self.error: str | None = None
        self.cancelled: str | None = None
        self.clips: SiteClips | None = None

    # The ingest observer ------------------------------------------------------------------------
    def on_frame(self, frame: VideoFrame) -> None:
        with self._lock:
            part = self._part_of(frame.stamp_ns)
            if part is None:
                return
            last = self._last_frame_ns[part]
            if last is not None and frame.stamp_ns - last < NS_PER_SECOND / self.config.fps * 0.999:
                return
            recorder = self._recorder(part, frame.bgr.shape[1], frame.bgr.shape[0])
            bgr = frame.bgr
            if bgr.shape[:2] != (recorder.height, recorder.width):  # a camera that changed size mid-run
                import cv2

                bgr = cv2.resize(bgr, (recorder.width, recorder.height))
            recorder.write_frame(np.ascontiguousarray(bgr), frame.stamp_ns)
            self._last_frame_ns[part] = frame.stamp_ns
            self._frames[part] += 1

    def on_audio(self, chunk: AudioChunk) -> None:
        with self._lock:
            if self._done.is_set() or self.cancelled:
                return
            origin = self._origin(chunk.stamp_ns)
            boundary = origin + round(self.config.boundary_s * NS_PER_SECOND)
            samples, stamp, rate = chunk.samples, chunk.stamp_ns, chunk.sample_rate
            cut = int(np.clip((boundary - stamp) * rate // NS_PER_SECOND, 0, samples.size))  # samples before the boundary
            for part, piece, at in ((0, samples[:cut], stamp), (1, samples[cut:], max(stamp, boundary))):
                if not piece.size:
                    continue
                self._audio_seen = True
                if self._recorders[part] is None:
                    self._pending_audio[part].append(AudioChunk(piece, at, rate))
                else:
                    self._recorders[part].write_audio(AudioChunk(piece, at, rate))
            self._part_of(chunk.end_ns)  # the end of the recording may be reached by sound alone

    # Results --------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, stop: threading.Event | None = None, poll_s: float = 0.5) -> SiteClips:
        """Blocks until both clips are written (or `stop` is set: SiteRecordingError)."""
        while not self._done.wait(poll_s):
            if stop is not None and stop.is_set():
                self.close()  # the partial clips are removed
                raise SiteRecordingError("the site recording was stopped before it was complete")
        if self.error or self.clips is None:
            raise SiteRecordingError(self.error or f"site recording cancelled: {self.cancelled}")
        return self.clips

    def cancel(self, why: str) -> None:
        """Not needed after all (an int8 model is cached already): record nothing."""
        with self._lock:
            self.cancelled = why
            self._close_recorders()
            self._done.set()
        self._say(f"site calibration not done: {why}")

    def close(self) -> None:
        """Stops an unfinished recording (nothing is kept)."""
        with self._lock:
            if not self._done.is_set():
                self._close_recorders()
                self.error = (f"the site recording stopped after {self._elapsed_s():.0f} of {self.config.seconds:g} s "
                              "(the input ended or the run was stopped)")
                for path in (self.calibrate_path, self.gate_path):
                    path.unlink(missing_ok=True)
                self._done.set()

    # Inside ------------------------------------------------------------------------------------------
    def _origin(self, stamp_ns: int) -> int:
        if self._origin_ns is None:
            self._origin_ns = stamp_ns
            self._say(f"site calibration: recording {self.config.seconds:g} s of input into {self.directory}")
        return self._origin_ns

    def _elapsed_s(self) -> float:
        return 0.0 if self._origin_ns is None else self._latest_s

    def _part_of(self, stamp_ns: int) -> int | None:
        """0 or 1 for a stamp inside the recording; None once it is over (and finishes it then)."""
        if self._done.is_set() or self.cancelled:
            return None
        offset_s = (stamp_ns - self._origin(stamp_ns)) / NS_PER_SECOND
        self._latest_s = max(self._latest_s, offset_s)
        if offset_s >= self.config.seconds:
            self._finish()
            return None
        if offset_s >= self._next_report_s:
            self._next_report_s += 10.0
            self._say(f"site calibration: {offset_s:.0f}/{self.config.seconds:g} s recorded")
        return 0 if offset_s < self.config.boundary_s else 1

    def _recorder(self, part: int, width: int, height: int):
        if self._recorders[part] is None:
            from socialmae_rt.media.recorder import AnnotatedRecorder, RecorderConfig

            origin = self._origin_ns + (0 if part == 0 else round(self.config.boundary_s * NS_PER_SECOND))
            path = self.calibrate_path if part == 0 else self.gate_path
            if part == 1 and self._recorders[0] is not None:
                width, height = self._recorders[0].width, self._recorders[0].height
            self._recorders[part] = AnnotatedRecorder(RecorderConfig(str(path), fps=self.config.fps), width, height,
                                                      origin_ns=origin)
            for chunk in self._pending_audio[part]:
                self._recorders[part].write_audio(chunk)
            self._pending_audio[part] = []
        return self._recorders[part]

    def _close_recorders(self) -> list:
        summaries = [recorder.close() if recorder is not None else None for recorder in self._recorders]
        self._recorders = [None, None]
        return summaries

    def _finish(self) -> None:
        summaries = self._close_recorders()
        missing = [name for name, summary in zip((CALIBRATE_CLIP, GATE_CLIP), summaries)
                   if summary is None or summary.frames == 0]
        if missing:
            self.error = (f"the site recording of {self.config.seconds:g} s holds no picture in {', '.join(missing)}: "
                          "calibration needs a camera (or video frames) throughout")
        elif not self._audio_seen or not all(summary.audio_seconds for summary in summaries):
            self.error = (f"the site recording of {self.config.seconds:g} s holds no sound: calibration needs a "
                          "microphone (or an audio stream) as well as a camera")
        else:
            self.clips = SiteClips(self.calibrate_path, self.gate_path, (summaries[0].frames, summaries[1].frames),
                                   (summaries[0].audio_seconds, summaries[1].audio_seconds))
            self._say(f"site calibration: recorded {self.clips.describe()}")
        if self.error:
            for path in (self.calibrate_path, self.gate_path):
                path.unlink(missing_ok=True)
            self._say(f"site calibration: {self.error}")
        self._done.set()


def record_sources(sources: Sequence, recorder: SiteRecorder, stop: threading.Event | None = None) -> SiteClips:
    """Feed opened sources (capture/: camera, microphone, file) into `recorder` until it has both
    clips; each source is read on its own thread, as the pipeline reads them."""
    stop = stop or threading.Event()
    failures: list[str] = []

    def read(source) -> None:
        try:
            for item in source:
                if recorder.done or stop.is_set():
                    return
                if isinstance(item, VideoFrame):
                    recorder.on_frame(item)
                elif isinstance(item, AudioChunk):
                    recorder.on_audio(item)
        except Exception as err:  # noqa: BLE001 - reported as the recording's one error below
            failures.append(f"{getattr(source, 'status', source)}: {type(err).__name__}: {err}")
            stop.set()

    threads = [threading.Thread(target=read, args=(source,), name="site-recording", daemon=True) for source in sources]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads) and not recorder.done and not stop.is_set():
            time.sleep(0.2)
    finally:
        stop.set()
        recorder.close()  # a no-op once the clips are written
        for thread in threads:
            thread.join(timeout=10.0)
    if failures:
        raise SiteRecordingError("reading the input failed: " + "; ".join(failures))
    return recorder.wait()
