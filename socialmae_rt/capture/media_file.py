"""Media-file source (PyAV): one file's video frames and 16 kHz mono audio, in presentation order.

Files stand in for a robot's camera and microphone (demos, datasets such as CREMA-D's .flv clips,
regression runs). Video and audio are demuxed together and decoded; video becomes BGR frames,
audio is resampled with PyAV's own resampler to mono float32 at the model rate.

Stamps: with `realtime=False` they are presentation times relative to the file's start
(`clock == "media"`, first pts of the earliest stream = 0). With `realtime=True` items are released
when the wall clock reaches their presentation time and stamped in the monotonic clock domain
(`clock == "monotonic"`), so the rest of the pipeline cannot tell the file from a live device.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import av.error
import numpy as np

from socialmae_rt.capture.base import DEFAULT_MAX_FRAME_SIDE, fitted_size
from socialmae_rt.messages import (
    NS_PER_SECOND,
    AudioChunk,
    SourceError,
    SourceState,
    SourceStatus,
    VideoFrame,
)

# How long one stream's decoded items may wait for the other stream before being released anyway.
# Muxers interleave audio and video within well under a second; the bound keeps memory small when
# one track simply has nothing for a while (audio that ends early, a long silent gap).
log = logging.getLogger(__name__)

MAX_REORDER_HOLD_NS = NS_PER_SECOND
# A file that fails this many times in a row without yielding anything is unreadable, not glitchy.
MAX_CONSECUTIVE_ERRORS = 50
AUDIO_DRIFT_TOLERANCE_NS = 10_000_000  # audio pts and sample count may part by this much (pts rounding) before re-anchoring


@dataclass
class MediaFileConfig:
    path: str | os.PathLike
    realtime: bool = False  # pace to the wall clock and stamp in the monotonic domain
    sample_rate: int = 16000  # audio output rate (Hz), mono float32
    loop: bool = False  # start again at the end, stamps continuing past the file's duration
    max_frame_side: int | None = DEFAULT_MAX_FRAME_SIDE  # larger frames are scaled down when decoded

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)) or not str(self.path):
            raise ValueError(f"MediaFileConfig.path must be a non-empty path, got {self.path!r}")
        self.path = Path(self.path)
        for name in ("realtime", "loop"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"MediaFileConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ValueError(f"MediaFileConfig.sample_rate must be a positive int (Hz), got {self.sample_rate!r}")
        if self.max_frame_side is not None and self.max_frame_side < 64:
            raise ValueError(f"MediaFileConfig.max_frame_side must be >= 64 pixels (or None), got {self.max_frame_side}")


def pts_to_ns(pts: int, time_base: Fraction) -> int:
    return round(pts * time_base * NS_PER_SECOND)


def to_mono(planar: np.ndarray) -> np.ndarray:
    """float32 [channels, N] (1 or 2 channels) -> [N], the channel mean.

    Why not let the resampler downmix to mono: for float output FFmpeg mixes stereo at -3 dB per
    channel without normalising, so identical channels come out 3 dB louder and loud stereo leaves
    [-1, 1]. The resampler still downmixes surround layouts to stereo (centre and surrounds mixed in
    properly); the mean of two channels stays within [-1, 1].
    """
    return planar.mean(axis=0, dtype=np.float32) if planar.shape[0] > 1 else planar[0].astype(np.float32)  # a copy, not a view into the frame


class _AudioTo16kMono:
    """Resamples decoded audio frames to mono and stamps the output from its running sample count.

    Stamps come from the count, anchored at an input frame's pts, because the resampler delays
    output: each output frame's own pts would leave gaps and overlaps between chunks. The count
    is checked against every input frame's pts: where they part by more than
    AUDIO_DRIFT_TOLERANCE_NS (files joined with `ffmpeg -f concat -c copy` carry each part's
    encoder priming and padding, about 40 ms a join), the resampler is drained and the count
    re-anchored at that frame's pts, so audio never drifts away from video; `on_restamp` hears
    of each correction (ns: positive when the pts is ahead of the count).
    """

    def __init__(self, sample_rate: int, on_restamp: Callable[[int], None] | None = None) -> None:
        self.sample_rate = sample_rate
        self.on_restamp = on_restamp
        self._resampler: av.AudioResampler | None = None
        self._input_signature: tuple | None = None
        self._first_stamp_ns: int | None = None
        self._samples_out = 0
        self._input_anchor_ns: int | None = None  # pts of the input frame the input count starts at
        self._samples_in = 0
        self._input_rate = 0

    @property
    def end_ns(self) -> int | None:
        if self._first_stamp_ns is None:
            return None
        return self._stamp_after(self._samples_out)

    def push(self, frame: av.AudioFrame, stamp_ns: int, has_pts: bool = True) -> list[AudioChunk]:
        if self._first_stamp_ns is None:
            self._first_stamp_ns = stamp_ns
        chunks = []
        if has_pts and self._input_anchor_ns is not None:
            drift_ns = stamp_ns - (self._input_anchor_ns + self._samples_in * NS_PER_SECOND // self._input_rate)
            if abs(drift_ns) > AUDIO_DRIFT_TOLERANCE_NS:
                chunks += self.drain()  # what the resampler holds, on the old timeline
                self._first_stamp_ns, self._samples_out = stamp_ns, 0
                self._input_anchor_ns = None
                if self.on_restamp is not None:
                    self.on_restamp(drift_ns)
        if self._input_anchor_ns is None or frame.sample_rate != self._input_rate:
            self._input_anchor_ns = stamp_ns if has_pts else self._stamp_after(self._samples_out)
            self._samples_in, self._input_rate = 0, frame.sample_rate
        self._samples_in += frame.samples
        signature = (frame.format.name, frame.layout.name, frame.sample_rate)
        if signature != self._input_signature:
            # PyAV's resampler is fixed to its first input's format; a mid-file change (new channel
            # layout, new rate) needs a fresh one, after draining what the old one still holds.
            chunks += self.drain()
            layout = "mono" if frame.layout.nb_channels == 1 else "stereo"
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.sample_rate)
            self._input_signature = signature
        return chunks + self._chunks_of(self._resampler.resample(frame))

    def drain(self) -> list[AudioChunk]:
        if self._resampler is None:
            return []
        chunks = self._chunks_of(self._resampler.resample(None))
        self._resampler = None
        self._input_signature = None
        return chunks

    def _chunks_of(self, frames: list[av.AudioFrame]) -> list[AudioChunk]:
        chunks = []
        for frame in frames:
            samples = to_mono(frame.to_ndarray())
            if samples.size == 0:
                continue
            chunks.append(AudioChunk(samples=samples, stamp_ns=self._stamp_after(self._samples_out), sample_rate=self.sample_rate))
            self._samples_out += samples.size
        return chunks

    def _stamp_after(self, num_samples: int) -> int:
        return self._first_stamp_ns + num_samples * NS_PER_SECOND // self.sample_rate


class _PresentationOrder:
    """Merges decoded video frames and audio chunks into one stream ordered by stamp.

    Demuxed packets come in file (decode) order, which only roughly follows presentation order
    across tracks; items wait here until the other track has caught up, at most MAX_REORDER_HOLD_NS.
    """

    def __init__(self, tracks: set[str]) -> None:
        self._tracks = tracks  # {"video"}, {"audio"} or both
        self._queues = {"video": collections.deque(), "audio": collections.deque()}

    def push(self, kind: str, item: VideoFrame | AudioChunk) -> None:
        self._queues[kind].append(item)

    def ready(self) -> Iterator[VideoFrame | AudioChunk]:
        while True:
            kind = self._next_ready_kind()
            if kind is None:
                return
            yield self._queues[kind].popleft()

    def drain(self) -> Iterator[VideoFrame | AudioChunk]:
        while any(self._queues.values()):
            yield self._queues[self._earliest_kind()].popleft()

    def _next_ready_kind(self) -> str | None:
        video, audio = self._queues["video"], self._queues["audio"]
        if len(self._tracks) == 1:
            return next(iter(self._tracks)) if (video or audio) else None  # nothing to wait for
        if video and audio:
            return self._earliest_kind()
        waiting = video or audio
        if waiting and waiting[-1].stamp_ns - waiting[0].stamp_ns > MAX_REORDER_HOLD_NS:
            return "video" if video else "audio"
        return None

    def _earliest_kind(self) -> str:
        heads = {kind: queue[0].stamp_ns for kind, queue in self._queues.items() if queue}
        return min(heads, key=heads.get)


class MediaFileSource:
    """Yields VideoFrame (BGR) and AudioChunk (mono float32, 16 kHz) items from one media file."""

    def __init__(self, config: MediaFileConfig | str | os.PathLike) -> None:
        if not isinstance(config, MediaFileConfig):
            config = MediaFileConfig(path=config)
        self.config = config
        self.path: Path = config.path
        self.clock = "monotonic" if config.realtime else "media"
        self.status = SourceStatus(name=f"media_file:{self.path.name}")
        for counter in ("video_frames", "audio_chunks", "decode_errors"):
            self.status.count(counter, 0)
        self.has_video = False
        self.has_audio = False
        self.duration_s: float | None = None
        self._container: av.container.InputContainer | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._iterating = False
        self._origin_ns: int | None = None  # pts (ns) that maps to stamp 0
        self._anchor_monotonic_ns: int | None = None  # monotonic time of media stamp 0 (realtime)
        self._video_frame_ns: int | None = None  # one frame's duration, where the stream says
        self._played = False  # a file plays once per source; iterating again yields nothing

    # ----- counters -----
    @property
    def video_frames(self) -> int:
        return self.status.counters.get("video_frames", 0)

    @property
    def audio_chunks(self) -> int:
        return self.status.counters.get("audio_chunks", 0)

    @property
    def decode_errors(self) -> int:
        return self.status.counters.get("decode_errors", 0)

    # ----- Source contract -----
    def open(self) -> None:
        with self._lock:
            if self._container is not None:
                return
            if self._stop.is_set():
                raise SourceError(f"media file {self.path}: source was closed")
            try:
                self._container = self._open_container()
            except SourceError as error:
                self.status.set(SourceState.FAILED, str(error))
                raise
        self._describe_tracks()

    def __iter__(self) -> Iterator[VideoFrame | AudioChunk]:
        if self._played:
            return
        self.open()
        with self._lock:
            if self._iterating:
                raise RuntimeError(f"media file {self.path}: already being iterated")
            self._iterating = True
        try:
            yield from self._play()
        finally:
            with self._lock:
                self._iterating = False
                self._played = True
                self._release_container()
            if self.status.state == SourceState.RUNNING:  # the consumer stopped iterating early
                self.status.set(SourceState.ENDED, f"consumer stopped; {self._end_detail()}")

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._iterating:
                return  # the iterating thread sees the stop flag and releases the file itself
            self._release_container()
        if self.status.state in (SourceState.STARTING, SourceState.RUNNING):
            self.status.set(SourceState.ENDED, "closed")

    # ----- opening -----
    def _open_container(self) -> av.container.InputContainer:
        if not self.path.exists():
            raise SourceError(f"media file {self.path}: no such file")
        if not self.path.is_file():
            raise SourceError(f"media file {self.path}: not a regular file")
        try:
            container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, OSError) as error:
            raise SourceError(f"media file {self.path}: cannot read it as media ({error})") from error
        video, audio = container.streams.best("video"), container.streams.best("audio")
        if video is None and audio is None:
            container.close()
            raise SourceError(f"media file {self.path}: has no video or audio track")
        for stream in (video, audio):
            if stream is not None:
                stream.thread_type = "AUTO"  # frame threads: decoding keeps up on small CPUs
        self.has_video, self.has_audio = video is not None, audio is not None
        self.duration_s = _duration_s(container)
        return container

    def _describe_tracks(self) -> None:
        video, audio = self._streams()
        parts = []
        if video is not None:
            rate = f" @{float(video.average_rate):.3g} fps" if video.average_rate else ""
            parts.append(f"video {video.codec_context.name} {video.codec_context.width}x{video.codec_context.height}{rate}")
        else:
            parts.append("no video track")
        if audio is not None:
            ctx = audio.codec_context
            parts.append(f"audio {ctx.name} {ctx.sample_rate} Hz {ctx.channels} ch -> {self.config.sample_rate} Hz mono")
        else:
            parts.append("no audio track")
        tracks = "video+audio" if video is not None and audio is not None else ("video only" if video is not None else "audio only")
        duration = f", {self.duration_s:.2f} s" if self.duration_s is not None else ""
        self.status.set(SourceState.RUNNING, f"{self.path.name}: {tracks} ({'; '.join(parts)}){duration}")

    def _streams(self) -> tuple[av.video.stream.VideoStream | None, av.audio.stream.AudioStream | None]:
        container = self._container
        return container.streams.best("video"), container.streams.best("audio")

    def _release_container(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    # ----- playing -----
    def _play(self) -> Iterator[VideoFrame | AudioChunk]:
        pass_offset_ns = 0
        while not self._stop.is_set():
            pass_end_ns = None
            for item in self._one_pass(pass_offset_ns):
                if not self._release_at_presentation_time(item):
                    break
                pass_end_ns = max(pass_end_ns or 0, self._end_ns(item))
                self._count(item)
                yield self._restamped(item)
            if self._stop.is_set() or self.status.state == SourceState.FAILED:
                break
            if not self.config.loop or pass_end_ns is None:
                self.status.set(SourceState.ENDED, self._end_detail())
                return
            pass_offset_ns = pass_end_ns
            if not self._reopen_for_next_pass():
                return
        if self.status.state != SourceState.FAILED:
            self.status.set(SourceState.ENDED, f"closed on request; {self._end_detail()}")

    def _reopen_for_next_pass(self) -> bool:
        """Opens the file again for the next loop; False (and FAILED) when it became unreadable."""
        with self._lock:
            self._release_container()
            try:
                self._container = self._open_container()
            except SourceError as error:
                self.status.set(SourceState.FAILED, f"reopening to loop: {error}")
                return False
        return True

    def _one_pass(self, offset_ns: int) -> Iterator[VideoFrame | AudioChunk]:
        """Every item of one run through the file, ordered by stamp (media clock, plus `offset_ns`)."""
        video, audio = self._streams()
        self._origin_ns = _start_ns(self._container, video, audio)
        order = _PresentationOrder({kind for kind, s in (("video", video), ("audio", audio)) if s is not None})
        audio_out = _AudioTo16kMono(self.config.sample_rate, on_restamp=self._audio_restamped)
        video_timing = _VideoTiming(video)
        self._video_frame_ns = video_timing.frame_ns
        video_index = self.video_frames
        for stream, frame in self._decoded_frames([s for s in (video, audio) if s is not None]):
            if self._stop.is_set():
                return
            stamp_ns = self._media_stamp_ns(frame, stream, video_timing if stream is video else None) + offset_ns
            if stream is video:
                order.push("video", VideoFrame(bgr=self._bgr(frame), stamp_ns=stamp_ns, index=video_index))
                video_index += 1
            else:
                for chunk in audio_out.push(frame, stamp_ns, has_pts=frame.pts is not None):
                    order.push("audio", chunk)
            yield from order.ready()
        for chunk in audio_out.drain():
            order.push("audio", chunk)
        yield from order.drain()

    def _decoded_frames(self, streams: list) -> Iterator[tuple]:
        """(stream, frame) pairs in demux order; corrupt packets are counted and skipped."""
        packets = self._container.demux(*streams)
        consecutive_errors = 0
        while not self._stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.EOFError:
                return
            except av.error.FFmpegError as error:
                consecutive_errors = self._count_error(consecutive_errors, f"demux: {error}")
                if consecutive_errors is None:
                    return
                packets = self._container.demux(*streams)  # a fresh generator resumes after the bad spot
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError as error:
                consecutive_errors = self._count_error(consecutive_errors, f"decode: {error}")
                if consecutive_errors is None:
                    return
                continue
            consecutive_errors = 0
            for frame in frames:
                yield packet.stream, frame

    def _bgr(self, frame: av.VideoFrame):
        """The frame as BGR, scaled down (area filter) when larger than max_frame_side."""
        size = fitted_size(frame.width, frame.height, self.config.max_frame_side)
        if size is None:
            return frame.to_ndarray(format="bgr24")
        return frame.reformat(width=size[0], height=size[1], format="bgr24", interpolation="AREA").to_ndarray()

    def _audio_restamped(self, drift_ns: int) -> None:
        """Audio pts and sample count parted (joined files): counted, the first one logged."""
        self.status.count("audio_restamps")
        if self.status.counters.get("audio_restamps", 0) == 1:
            log.warning("%s: audio timestamps jump by %+.1f ms against the sample count (joined files?); "
                        "audio follows its timestamps (further jumps are counted as audio_restamps)",
                        self.path.name, drift_ns / 1e6)

    def _count_error(self, consecutive_errors: int, what: str) -> int | None:
        """Counts one fault; returns the new run length, or None when the file is beyond repair."""
        self.status.count("decode_errors")
        consecutive_errors += 1
        if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
            self.status.set(SourceState.FAILED, f"{self.path.name}: {consecutive_errors} errors in a row, last {what}")
            return None
        return consecutive_errors

    def _media_stamp_ns(self, frame, stream, video_timing: "_VideoTiming | None") -> int:
        pts_ns = pts_to_ns(frame.pts, frame.time_base or stream.time_base) if frame.pts is not None else None
        if video_timing is not None:
            pts_ns = video_timing.stamp_ns(pts_ns)
        elif pts_ns is None:
            pts_ns = 0  # audio without pts: only the first frame's stamp is used (see _AudioTo16kMono)
        if self._origin_ns is None:
            self._origin_ns = pts_ns  # no start time in the container: the first decoded item is t=0
        return pts_ns - self._origin_ns

    # ----- pacing and stamps -----
    def _release_at_presentation_time(self, item: VideoFrame | AudioChunk) -> bool:
        """Waits (realtime mode) until the item is due; False when closed while waiting."""
        if not self.config.realtime:
            return not self._stop.is_set()
        if self._anchor_monotonic_ns is None:
            self._anchor_monotonic_ns = time.monotonic_ns() - item.stamp_ns
        # Like a device: a frame is there at its time, a chunk of audio once its last sample is
        # (released earlier, a window could run before its end has passed).
        due_ns = self._anchor_monotonic_ns + (item.end_ns if isinstance(item, AudioChunk) else item.stamp_ns)
        wait_ns = due_ns - time.monotonic_ns()
        if wait_ns > 0:
            return not self._stop.wait(wait_ns / NS_PER_SECOND)  # Event wait: close() interrupts it
        return not self._stop.is_set()

    def _restamped(self, item: VideoFrame | AudioChunk) -> VideoFrame | AudioChunk:
        if not self.config.realtime:
            return item
        stamp_ns = self._anchor_monotonic_ns + item.stamp_ns
        if isinstance(item, VideoFrame):
            return VideoFrame(bgr=item.bgr, stamp_ns=stamp_ns, index=item.index)
        return AudioChunk(samples=item.samples, stamp_ns=stamp_ns, sample_rate=item.sample_rate)

    def _end_ns(self, item: VideoFrame | AudioChunk) -> int:
        """Where the item ends on the media clock: the next pass of a looping file starts there."""
        if isinstance(item, AudioChunk):
            return item.end_ns
        return item.stamp_ns + (self._video_frame_ns or 0)

    def _count(self, item: VideoFrame | AudioChunk) -> None:
        self.status.count("video_frames" if isinstance(item, VideoFrame) else "audio_chunks")

    def _end_detail(self) -> str:
        return (
            f"end of {self.path.name}: {self.video_frames} video frames, {self.audio_chunks} audio chunks, "
            f"{self.decode_errors} decode errors"
        )


class _VideoTiming:
    """Video stamps from pts, filling in frames without one from the previous stamp plus one frame."""

    def __init__(self, stream) -> None:
        rate = stream.average_rate if stream is not None else None
        self.frame_ns = round(NS_PER_SECOND / rate) if rate else None
        self._last_ns: int | None = None

    def stamp_ns(self, pts_ns: int | None) -> int:
        if pts_ns is None:
            pts_ns = 0 if self._last_ns is None else self._last_ns + (self.frame_ns or 0)
        if self._last_ns is not None:
            self.frame_ns = self.frame_ns or (pts_ns - self._last_ns)
        self._last_ns = pts_ns
        return pts_ns


def _start_ns(container, video, audio) -> int | None:
    """The earliest stream's first pts (ns), or None when the container does not say."""
    starts = [pts_to_ns(s.start_time, s.time_base) for s in (video, audio) if s is not None and s.start_time is not None]
    if starts:
        return min(starts)
    if container.start_time is not None:
        return container.start_time * NS_PER_SECOND // av.time_base
    return None


def _duration_s(container) -> float | None:
    if container.duration is not None:
        return container.duration / av.time_base
    durations = [float(s.duration * s.time_base) for s in container.streams if s.duration is not None and s.time_base]
    return max(durations) if durations else None
