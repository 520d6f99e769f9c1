"""Records what the demo shows: the annotated frames plus the microphone audio, to an mp4 (PyAV).

The render loop hands over every rendered canvas (write_frame, render thread) and the audio
consumer hands over every AudioChunk (write_audio, capture thread); one lock serialises them.
Both carry nanosecond stamps from the same capture clock, and the file's time 0 is the first
stamp seen of either stream (or an explicit origin), so picture and sound stay in sync:

- video pts come from the stamps (VIDEO_TIME_BASE), not from a frame counter, so a stalled
  render loop shows up as a held frame rather than as drift. Stamps that do not move forward are
  dropped and counted.
- audio is laid on a continuous sample timeline: a chunk that starts after the previous one ended
  is preceded by silence (a gap), one that starts before it has its head trimmed (an overlap);
  both are counted. AAC needs fixed-size frames, so samples are cut into encoder-sized blocks.

Codecs and encoder settings are sample_media's (the project's other mp4 writer).

    with AnnotatedRecorder(RecorderConfig("out.mp4"), width=640, height=480) as recorder:
        recorder.write_frame(canvas, frame.stamp_ns)    # render thread
        recorder.write_audio(chunk)                     # capture thread
    # leaving the block flushes both encoders and finishes the file
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.codec.codec
import av.error
import numpy as np

from socialmae_rt.media.sample import (
    AUDIO_CODEC, AUDIO_FRAME_SAMPLES, ENCODER_THREADS, VIDEO_CODECS, first_available_encoder)
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk

CONTAINER_FORMAT = "mp4"
VIDEO_TIME_BASE = Fraction(1, 90_000)  # the MPEG clock: fine enough that stamp rounding never collides frames
KEYFRAME_INTERVAL_S = 2.0  # a key frame every 2 s: quick seeking in players, as sample_media does
INT16_FULL_SCALE = 32768.0


@dataclass
class RecorderConfig:
    """How the demo recording is written. Every default lives here."""

    path: str
    fps: float = 30.0  # nominal rate for the stream header and key-frame spacing; pts come from stamps
    sample_rate: int = 16000  # audio is mono at this rate; chunks at any other rate are refused
    audio: bool = True  # False: video only (write_audio ignores chunks)
    video_codec: str | None = None  # None: the first of sample_media.VIDEO_CODECS the bundled ffmpeg has
    audio_codec: str = AUDIO_CODEC
    preset: str = "veryfast"  # libx264 speed/size trade-off: recording must keep up with the render loop
    crf: int = 23  # libx264 constant quality (lower is better and bigger)
    video_bit_rate: int = 2_000_000  # only for encoders without CRF (the mpeg4 fallback)
    audio_bit_rate: int = 64_000
    # Audio stamps within this of the sample timeline count as contiguous (stamp rounding, jitter);
    # beyond it, silence is inserted or samples are trimmed to bring audio back in sync.
    audio_sync_tolerance_s: float = 0.005

    def __post_init__(self) -> None:
        if not str(self.path):
            raise ValueError("RecorderConfig.path must name the .mp4 to write, got an empty path")
        if not self.fps > 0:
            raise ValueError(f"RecorderConfig.fps must be > 0, got {self.fps!r}")
        for name in ("sample_rate", "crf", "video_bit_rate", "audio_bit_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "crf" else 1):
                raise ValueError(f"RecorderConfig.{name} must be a {'non-negative' if name == 'crf' else 'positive'} int, got {value!r}")
        if not self.audio_sync_tolerance_s >= 0:
            raise ValueError(f"RecorderConfig.audio_sync_tolerance_s must be >= 0 s, got {self.audio_sync_tolerance_s!r}")


@dataclass(frozen=True)
class RecordingSummary:
    """What went into the file."""

    path: Path
    frames: int  # video frames encoded
    frames_dropped: int  # stamps that did not move forward, or came before the origin
    audio_seconds: float  # length of the audio track, inserted silence included
    audio_gaps: int  # chunks that started late: silence was inserted before them
    audio_gap_seconds: float
    audio_overlaps: int  # chunks that started early: their head (or all of them) was trimmed
    audio_overlap_seconds: float


class AnnotatedRecorder:
    """Writes BGR frames and mono audio chunks, stamped on one clock, into one mp4. Thread-safe."""

    def __init__(self, config: RecorderConfig, width: int, height: int, origin_ns: int | None = None) -> None:
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"recorder: {name} must be a positive int, got {value!r}")
        self.config = config
        self.path = Path(config.path)
        self.width, self.height = width, height
        # yuv420p stores colour at half resolution, so the encoder needs even sizes: odd frames are
        # padded by one row/column repeating the edge (invisible) rather than refused.
        self._encoded_size = (width + width % 2, height + height % 2)
        self._padded = None if self._encoded_size == (width, height) else np.empty((*self._encoded_size[::-1], 3), np.uint8)
        self._origin_ns = origin_ns
        self._lock = threading.Lock()
        self._closed = False
        self._summary: RecordingSummary | None = None
        self._frames = self._frames_dropped = 0
        self._last_pts: int | None = None
        self._audio_started = False
        self._audio_next = 0  # timeline position (samples from the origin) of the next sample to encode
        self._gaps = self._gap_samples = self._overlaps = self._overlap_samples = 0
        self._container = self._open_container()
        try:
            self._video = self._add_video_stream()
            self._audio = self._add_audio_stream() if config.audio else None
            # Writing the header now opens the file and the encoders: a bad path or codec fails
            # here, with the recorder's message, not at the first frame in the render thread.
            self._container.start_encoding()
        except av.error.FFmpegError as error:
            self._abandon()
            raise OSError(f"recorder: cannot write {self.path}: {error}") from error
        except Exception:
            self._abandon()
            raise
        frame_size = self._audio.codec_context.frame_size if self._audio is not None else 0
        self._audio_frame_size = frame_size or AUDIO_FRAME_SAMPLES  # 0: the codec takes any size
        self._audio_block = np.zeros((1, self._audio_frame_size), np.float32)  # [1 channel, frame size]
        self._audio_filled = 0

    # ----- setup -----

    def _open_container(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return av.open(str(self.path), mode="w", format=CONTAINER_FORMAT)
        except OSError as error:  # av.error.* are OSErrors too
            raise OSError(f"recorder: cannot open {self.path} for writing: {error}") from error

    def _abandon(self) -> None:
        """Closes a container whose setup failed; its own close error would only hide the first."""
        try:
            self._container.close()
        except OSError:
            pass

    def _add_video_stream(self):
        config = self.config
        codec = config.video_codec or first_available_encoder(VIDEO_CODECS)
        stream = self._container.add_stream(codec, rate=Fraction(config.fps).limit_denominator(1001))
        stream.width, stream.height = self._encoded_size
        stream.pix_fmt = "yuv420p"
        stream.time_base = VIDEO_TIME_BASE
        stream.codec_context.time_base = VIDEO_TIME_BASE
        stream.codec_context.thread_count = ENCODER_THREADS  # leave the cores to the perception pipeline
        stream.codec_context.gop_size = max(1, round(KEYFRAME_INTERVAL_S * config.fps))
        if codec == "libx264":
            stream.options = {"preset": config.preset, "crf": str(config.crf)}
        else:
            stream.bit_rate = config.video_bit_rate
        return stream

    def _add_audio_stream(self):
        stream = self._container.add_stream(self.config.audio_codec, rate=self.config.sample_rate, layout="mono")
        stream.bit_rate = self.config.audio_bit_rate
        stream.format = "fltp"  # AAC's native sample format; our blocks are float [1 channel, N]
        return stream

    # ----- writing -----

    @property
    def origin_ns(self) -> int | None:
        """The capture-clock stamp of the file's time 0 (None until the first write)."""
        return self._origin_ns

    def write_frame(self, bgr: np.ndarray, stamp_ns: int) -> None:
        """Encodes one rendered canvas, uint8 [height, width, 3] BGR, shown from stamp_ns on."""
        if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8 or bgr.shape != (self.height, self.width, 3):
            got = f"{bgr.dtype} {list(bgr.shape)}" if isinstance(bgr, np.ndarray) else type(bgr).__name__
            raise ValueError(f"recorder: expected a uint8 BGR frame of {self.width}x{self.height} "
                             f"(shape [{self.height}, {self.width}, 3]), got {got}")
        with self._lock:
            self._check_open()
            origin = self._set_origin(stamp_ns)
            pts = (stamp_ns - origin) * VIDEO_TIME_BASE.denominator // (NS_PER_SECOND * VIDEO_TIME_BASE.numerator)
            if pts < 0 or (self._last_pts is not None and pts <= self._last_pts):
                self._frames_dropped += 1  # the mp4 needs rising pts: a repeated or late frame cannot go in
                return
            frame = av.VideoFrame.from_ndarray(self._even_sized(bgr), format="bgr24")
            frame.pts, frame.time_base = pts, VIDEO_TIME_BASE
            self._container.mux(self._video.encode(frame))  # converted to yuv420p by the encoder
            self._last_pts = pts
            self._frames += 1

    def _even_sized(self, bgr: np.ndarray) -> np.ndarray:
        if self._padded is None:
            return np.ascontiguousarray(bgr)
        padded = self._padded  # [H + H % 2, W + W % 2, 3]
        padded[: self.height, : self.width] = bgr
        padded[: self.height, self.width :] = bgr[:, -1:]  # repeat the last column (if padded)
        padded[self.height :] = padded[self.height - 1]  # repeat the last row (if padded)
        return padded

    def write_audio(self, chunk: AudioChunk) -> None:
        """Lays a mono chunk on the audio timeline at its stamp (ignored when recording video only)."""
        if self._audio is None:
            return
        if chunk.sample_rate != self.config.sample_rate:
            raise ValueError(f"recorder: audio must be {self.config.sample_rate} Hz mono (RecorderConfig.sample_rate), "
                             f"got a chunk at {chunk.sample_rate} Hz")
        samples = as_float_mono(chunk.samples)
        if samples.size == 0:
            return
        with self._lock:
            self._check_open()
            origin = self._set_origin(chunk.stamp_ns)
            rate = self.config.sample_rate
            start = ((chunk.stamp_ns - origin) * rate + NS_PER_SECOND // 2) // NS_PER_SECOND  # nearest sample
            if not self._audio_started:
                # The first audio: silence from the origin up to it (the video may have started
                # first), and anything before the origin cut. Neither is a gap or an overlap.
                trim = max(0, -start)
                if trim >= samples.size:
                    return
                self._append_silence(start - self._audio_next)
                self._append_samples(samples[trim:])
                self._audio_started = True
                return
            offset = start - self._audio_next
            if abs(offset) <= round(self.config.audio_sync_tolerance_s * rate):
                offset = 0  # close enough: stay contiguous rather than click
            if offset > 0:
                self._gaps += 1
                self._gap_samples += offset
                self._append_silence(offset)
            elif offset < 0:
                self._overlaps += 1
                self._overlap_samples += min(-offset, samples.size)
            self._append_samples(samples[max(0, -offset):])

    def _append_silence(self, count: int) -> None:
        # In encoder-sized steps: a long gap costs encoding time, never a gap-sized allocation.
        while count > 0:
            step = min(count, self._audio_frame_size - self._audio_filled)
            self._audio_block[0, self._audio_filled : self._audio_filled + step] = 0.0
            self._advance_audio(step)
            count -= step

    def _append_samples(self, samples: np.ndarray) -> None:
        done = 0
        while done < samples.size:
            step = min(samples.size - done, self._audio_frame_size - self._audio_filled)
            self._audio_block[0, self._audio_filled : self._audio_filled + step] = samples[done : done + step]
            self._advance_audio(step)
            done += step

    def _advance_audio(self, step: int) -> None:
        self._audio_filled += step
        self._audio_next += step
        if self._audio_filled == self._audio_frame_size:
            self._encode_audio_block(self._audio_block)
            self._audio_filled = 0

    def _encode_audio_block(self, block: np.ndarray) -> None:
        """block: float32 [1 channel, N], the N samples that end at the timeline's current position."""
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")  # copies the samples
        frame.sample_rate = self.config.sample_rate
        frame.pts = self._audio_next - block.shape[1]  # in samples from the origin
        frame.time_base = Fraction(1, self.config.sample_rate)
        self._container.mux(self._audio.encode(frame))

    def _set_origin(self, stamp_ns: int) -> int:
        if self._origin_ns is None:
            self._origin_ns = stamp_ns
        return self._origin_ns

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"recorder: {self.path} is already closed")

    # ----- finishing -----

    def summary(self) -> RecordingSummary:
        """Counts so far (the final ones once closed)."""
        with self._lock:
            return self._summary or self._count()

    def _count(self) -> RecordingSummary:
        rate = self.config.sample_rate
        return RecordingSummary(
            path=self.path,
            frames=self._frames,
            frames_dropped=self._frames_dropped,
            audio_seconds=self._audio_next / rate,
            audio_gaps=self._gaps,
            audio_gap_seconds=self._gap_samples / rate,
            audio_overlaps=self._overlaps,
            audio_overlap_seconds=self._overlap_samples / rate,
        )

    def close(self) -> RecordingSummary:
        """Flushes both encoders and finishes the file. Safe to call again: returns the same summary."""
        with self._lock:
            if self._summary is not None:
                return self._summary
            self._closed = True  # no further writes, even if finishing fails below
            try:
                self._flush_audio()
                self._container.mux(self._video.encode(None))
            finally:
                self._container.close()  # writes the index: without it the mp4 is unreadable
            self._summary = self._count()
            return self._summary

    def _flush_audio(self) -> None:
        if self._audio is None:
            return
        if self._audio_filled:
            block = self._audio_block[:, : self._audio_filled]
            if not self._audio.codec_context.codec.capabilities & av.codec.codec.Capabilities.small_last_frame:
                # This encoder takes only whole frames: finish the last one with silence.
                self._append_silence(self._audio_frame_size - self._audio_filled)
            else:
                self._encode_audio_block(np.ascontiguousarray(block))
                self._audio_filled = 0
        self._container.mux(self._audio.encode(None))

    def __enter__(self) -> "AnnotatedRecorder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()  # also after an error: a finished file of what was recorded beats a broken one


def as_float_mono(samples: np.ndarray) -> np.ndarray:
    """float32 [N] in [-1, 1] from a chunk's samples (float, or int16 as some sources deliver)."""
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"recorder: audio samples must be mono [N], got shape {list(samples.shape)}")
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / INT16_FULL_SCALE
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"recorder: audio samples must be float32 in [-1, 1] or int16, got {samples.dtype}")
    return samples.astype(np.float32, copy=False)
