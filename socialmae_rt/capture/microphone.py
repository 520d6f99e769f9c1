"""Microphone source: a PyAudio (PortAudio) input stream -> mono float32 AudioChunks at the model rate.

PortAudio calls our callback from its own thread each time a buffer of `chunk_ms` fills. The
callback only copies the bytes and the capture time into a bounded queue; converting to float,
downmixing, resampling (a stateful soxr stream, so chunk boundaries do not click) and stamping
happen in the thread that iterates the source.

Stamps come from a running sample count anchored at the first buffer's capture time, so chunks
are exactly contiguous unless audio was lost; CaptureClock says when the anchor has to move.

pyaudio is imported inside functions: it is a heavy, optional import that only this source needs.
"""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
import soxr

from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, SourceError, SourceState, SourceStatus, seconds_to_ns
from socialmae_rt.util.native_logs import native_stderr_muted

# soxr quality, as socialmae_rt.features.audio uses (not imported from there: that package pulls torch)
RESAMPLE_QUALITY = "HQ"
PYAUDIO_INSTALL_HINT = "install it with `apt-get install portaudio19-dev` then `pip install pyaudio`"
INT16_FULL_SCALE = 32768.0
QUEUE_SECONDS = 2.0  # captured audio that may wait for a slow consumer before the oldest is dropped
POLL_INTERVAL_S = 0.05  # how often the iterator looks up from its queue to notice close() and stalls
DRIFT_TOLERANCE_NS = seconds_to_ns(0.100)  # sample count vs capture clock; beyond this, re-anchor
LATE_PERSIST_NS = seconds_to_ns(1.0)  # late this long with nothing flagged: re-anchor anyway
# A stream whose last callback is older than this (or than 4 chunks) counts as no longer delivering
DELIVERING_WITHIN_S = 0.25


@dataclass
class MicConfig:
    """Which input device to open and how to deliver its audio; the one source of defaults."""

    device: int | str | None = None  # None: default input; int: PyAudio index; str: name substring
    sample_rate: int = 16000  # output rate (what the model wants)
    native_rate: int | None = None  # capture rate; None: the device's default sample rate
    chunk_ms: float = 32.0  # audio per device buffer (frames_per_buffer)
    channels: int | None = None  # None: mono if the device supports it, else all its channels
    stall_timeout_s: float = 2.0  # no audio for this long while running = the device stopped

    def __post_init__(self) -> None:
        self._check_device()
        _check_whole_positive("sample_rate", self.sample_rate, "Hz")
        if self.native_rate is not None:
            _check_whole_positive("native_rate", self.native_rate, "Hz (or None for the device's default)")
        if self.channels is not None:
            _check_whole_positive("channels", self.channels, "(or None to pick automatically)")
        if not self.chunk_ms > 0:
            raise ValueError(f"MicConfig.chunk_ms must be > 0 ms, got {self.chunk_ms!r} (32 ms is typical)")
        if not self.stall_timeout_s * 1000.0 > self.chunk_ms:
            raise ValueError(
                f"MicConfig.stall_timeout_s ({self.stall_timeout_s!r} s) must be longer than one chunk "
                f"(chunk_ms={self.chunk_ms} ms), or every chunk would look like a stall"
            )

    def _check_device(self) -> None:
        if self.device is None or (isinstance(self.device, str) and self.device.strip()):
            return
        if isinstance(self.device, int) and not isinstance(self.device, bool) and self.device >= 0:
            return
        raise ValueError(
            f"MicConfig.device must be None (default input), a PyAudio device index >= 0, or a non-empty "
            f"part of the device name; got {self.device!r} (see `socialmae-rt --help` under --mic for the list)"
        )


def _check_whole_positive(name: str, value, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"MicConfig.{name} must be a whole number > 0 {unit}, got {value!r}")


class InputDevice(NamedTuple):
    """One capture-capable PortAudio device, as list_input_devices() reports it."""

    index: int
    name: str
    max_input_channels: int
    default_rate: float

    def describe(self) -> str:
        return f"{self.index}: {self.name} ({self.max_input_channels} ch, default {self.default_rate:g} Hz)"


def import_pyaudio():
    try:
        import pyaudio
    except ImportError as error:
        raise SourceError(
            f"microphone capture needs PyAudio, which failed to import ({error}); {PYAUDIO_INSTALL_HINT}"
        ) from error
    return pyaudio


def list_input_devices() -> list[InputDevice]:
    """[(index, name, max_input_channels, default_rate)] for every device that can capture."""
    pyaudio = import_pyaudio()
    with native_stderr_muted():  # PortAudio probes every ALSA/JACK device and prints each failure
        pa = pyaudio.PyAudio()
    try:
        return input_devices(pa)
    finally:
        pa.terminate()


def input_devices(pa) -> list[InputDevice]:
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if int(info["maxInputChannels"]) > 0:
            devices.append(
                InputDevice(index, str(info["name"]), int(info["maxInputChannels"]), float(info["defaultSampleRate"]))
            )
    return devices


def describe_devices(devices: list[InputDevice]) -> str:
    return "; ".join(device.describe() for device in devices)


def resolve_device(pa, wanted: int | str | None) -> InputDevice:
    """The input device MicConfig.device names; SourceError listing the choices when none fits."""
    devices = input_devices(pa)
    if not devices:
        raise SourceError(
            f"microphone (MicConfig.device={wanted!r}): PortAudio finds no audio input devices at all "
            "(no sound card, or no permission to open it: is the user in the 'audio' group?)"
        )
    found = _find_device(pa, devices, wanted)
    if found is None:
        raise SourceError(f"microphone: {_describe_wanted(wanted)}; input devices are: {describe_devices(devices)}")
    return found


def _describe_wanted(wanted: int | str | None) -> str:
    if wanted is None:
        return "PortAudio has no default input device; set MicConfig.device"
    if isinstance(wanted, int):
        return f"no input device has index {wanted}"
    return f"no input device name contains {wanted!r}"


def _find_device(pa, devices: list[InputDevice], wanted: int | str | None) -> InputDevice | None:
    if wanted is None:
        try:
            wanted = int(pa.get_default_input_device_info()["index"])
        except OSError:  # PortAudio has no default input device
            return None
    if isinstance(wanted, int):
        return next((device for device in devices if device.index == wanted), None)
    needle = wanted.casefold()
    # devices holds only input-capable ones, in index order: the first match is the one we want
    return next((device for device in devices if needle in device.name.casefold()), None)


def choose_channels(pa, device: InputDevice, wanted: int | None, rate: int) -> int:
    """Mono when the device can capture it (saves the downmix), else all of its channels."""
    if wanted is not None:
        if wanted > device.max_input_channels:
            raise SourceError(
                f"microphone {device.describe()}: MicConfig.channels={wanted} but the device has at most "
                f"{device.max_input_channels}; leave channels=None to pick automatically"
            )
        return wanted
    pyaudio = import_pyaudio()
    try:
        pa.is_format_supported(rate, input_device=device.index, input_channels=1, input_format=pyaudio.paInt16)
    except ValueError:  # PyAudio's answer for "this combination is not supported"
        return device.max_input_channels
    return 1


def int16_to_mono(data: bytes, channels: int) -> np.ndarray:
    """Interleaved int16 bytes -> float32 [frames] in [-1, 1], channels averaged."""
    samples = np.frombuffer(data, dtype=np.int16).astype(np.float32) / INT16_FULL_SCALE
    if channels == 1:
        return samples
    return samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)


class StreamingResampler:
    """soxr.ResampleStream for one continuous stretch of audio; a pass-through at equal rates.

    soxr compensates its filter delay: output sample j is the signal at input time j / out_rate
    from the stretch's start, so output sample counts can be turned straight into stamps.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)

    def finish_stretch(self) -> np.ndarray:
        """What the filter still holds of the stretch that just ended; then start afresh."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream = self._new_stream()
        return tail


class Continuity(enum.Enum):
    FIRST = "first"  # the first buffer: anchors the timeline
    CONTINUOUS = "continuous"  # stamped from the frame count
    LOST_AUDIO = "lost audio"  # audio is missing before this buffer: stamps jump forward
    CLOCK_RESYNC = "clock resync"  # the anchor was too late (device clock fast): stamps step back


class CaptureClock:
    """Places device buffers on the monotonic clock from a running frame count.

    A buffer's measured start is its capture time minus its duration; it can only be later than
    the truth (the callback runs after the audio was captured, sometimes much later). Counting
    frames from an anchor gives stamps without that jitter. The anchor moves only when:
    - frames were dropped before the reader saw them (their length is known exactly);
    - PortAudio flagged an input overflow and the buffer is later than the count by more than
      the tolerance (the device lost that much audio);
    - a buffer is earlier than the count by more than the tolerance, which only a late anchor or
      a device clock running fast can explain;
    - buffers have been later than the count for `persist_ns` on end with nothing flagged (a
      device clock running slow, or a loss the host did not report).
    Late buffers alone are not lost audio: after the process stalls, the host hands over what it
    buffered meanwhile in a burst that catches up with the count.
    """

    def __init__(self, rate: int, tolerance_ns: int = DRIFT_TOLERANCE_NS, persist_ns: int = LATE_PERSIST_NS) -> None:
        self.rate = rate
        self.tolerance_ns = tolerance_ns
        self.persist_ns = persist_ns
        self.anchor_ns: int | None = None  # time of frame `anchor_frame`
        self.anchor_frame = 0
        self.next_frame = 0  # device frame index the next buffer should start at
        self.late_since_ns: int | None = None  # capture time of the first of a run of late buffers

    def place(self, first_frame: int, frames: int, capture_ns: int, overflowed: bool = False) -> Continuity:
        measured_start_ns = capture_ns - frames * NS_PER_SECOND // self.rate
        if self.anchor_ns is None:
            continuity = Continuity.FIRST
            self._anchor(first_frame, measured_start_ns)
        elif first_frame != self.next_frame:
            continuity = Continuity.LOST_AUDIO
            self._anchor(first_frame, self.time_of(first_frame))
        else:
            continuity = self._judge_drift(measured_start_ns - self.time_of(first_frame), capture_ns, overflowed)
            if continuity is not Continuity.CONTINUOUS:
                self._anchor(first_frame, measured_start_ns)
        self.next_frame = first_frame + frames
        return continuity

    def _judge_drift(self, drift_ns: int, capture_ns: int, overflowed: bool) -> Continuity:
        if drift_ns < -self.tolerance_ns:
            return Continuity.CLOCK_RESYNC
        if drift_ns <= self.tolerance_ns:
            self.late_since_ns = None
            return Continuity.CONTINUOUS
        if self.late_since_ns is None:
            self.late_since_ns = capture_ns
        if overflowed or capture_ns - self.late_since_ns >= self.persist_ns:
            return Continuity.LOST_AUDIO
        return Continuity.CONTINUOUS

    def time_of(self, frame: int) -> int:
        return self.anchor_ns + (frame - self.anchor_frame) * NS_PER_SECOND // self.rate

    def _anchor(self, frame: int, stamp_ns: int) -> None:
        self.anchor_frame = frame
        self.anchor_ns = stamp_ns
        self.late_since_ns = None


class OutputStamper:
    """Stamps output chunks from the count of output samples since the stretch's anchor."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.anchor_ns = 0
        self.count = 0

    def restart(self, anchor_ns: int) -> None:
        self.anchor_ns = anchor_ns
        self.count = 0

    def chunk(self, samples: np.ndarray) -> AudioChunk:
        stamp_ns = self.anchor_ns + self.count * NS_PER_SECOND // self.rate
        self.count += samples.shape[0]
        return AudioChunk(samples=samples, stamp_ns=stamp_ns, sample_rate=self.rate)


class CapturedBuffer(NamedTuple):
    """What the PortAudio callback hands over: raw bytes and when they arrived."""

    data: bytes  # interleaved int16
    capture_ns: int  # time.monotonic_ns() in the callback, i.e. just after the last frame
    first_frame: int  # device frame index of the first frame (counting frames later dropped)
    frames: int
    overflowed: bool  # PortAudio says the device lost audio just before this buffer


class MicSource:
    """Live microphone through PyAudio in callback mode, yielding AudioChunk at config.sample_rate.

    status.counters: chunks (device buffers read), samples (output samples yielded), overflows
    (PortAudio input overflows: the device lost audio before we saw it), dropped_chunks (buffers
    the reader was too slow for), gaps (stamps jumped forward over lost audio), clock_resyncs
    (stamps stepped back: the device delivered more audio than the clock allows).
    """

    def __init__(self, config: MicConfig | None = None, name: str = "microphone") -> None:
        self.config = config or MicConfig()
        self.status = SourceStatus(name=name)
        self.has_video, self.has_audio = False, True
        self.clock = "monotonic"  # stamps derive from monotonic capture times
        self.device: InputDevice | None = None
        self.native_rate: int | None = None
        self.channels: int | None = None
        self._lock = threading.Lock()  # guards the PortAudio objects between close() and the reader
        self._closed = threading.Event()
        self._pa = None
        self._stream = None
        self._queue: queue.Queue[CapturedBuffer] | None = None
        self._frames_seen = 0  # written only by the callback thread
        self._last_callback_ns: int | None = None  # written only by the callback thread
        self._overflow_flag = 0  # pyaudio's constants, kept so the callback needs no import
        self._continue = 0
        for counter in ("chunks", "samples", "overflows", "dropped_chunks", "gaps", "clock_resyncs"):
            self.status.count(counter, 0)

    # -- opening -------------------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            if self._closed.is_set():
                raise SourceError(f"{self.status.name}: already closed; make a new MicSource to capture again")
            if self._stream is not None:
                return
            try:
                self._open_locked()
            except SourceError as error:
                self.status.set(SourceState.FAILED, str(error))
                raise
            rates = f"{self.channels} ch at {self.native_rate} Hz -> mono {self.config.sample_rate} Hz"
            self.status.set(SourceState.RUNNING, f"{self.device.describe()}: {rates}")

    def _open_locked(self) -> None:
        pyaudio = import_pyaudio()
        with contextlib.ExitStack() as undo:
            with native_stderr_muted():  # PortAudio's ALSA/JACK probing notices (see native_logs)
                pa = pyaudio.PyAudio()
            undo.callback(pa.terminate)
            device = resolve_device(pa, self.config.device)
            native_rate = self.config.native_rate or int(round(device.default_rate))
            channels = choose_channels(pa, device, self.config.channels, native_rate)
            frames_per_buffer = max(1, int(round(self.config.chunk_ms * native_rate / 1000.0)))
            self._queue = queue.Queue(maxsize=max(4, int(QUEUE_SECONDS * 1000.0 / self.config.chunk_ms)))
            self._overflow_flag = pyaudio.paInputOverflow
            self._continue = pyaudio.paContinue
            try:
                stream = pa.open(
                    format=pyaudio.paInt16,
                    channels=channels,
                    rate=native_rate,
                    input=True,
                    input_device_index=device.index,
                    frames_per_buffer=frames_per_buffer,
                    stream_callback=self._on_audio,
                )
            except (OSError, ValueError) as error:  # PyAudio raises OSError for PortAudio errors
                raise SourceError(
                    f"microphone {device.describe()}: cannot open a {channels}-channel int16 input stream at "
                    f"{native_rate} Hz ({error}); try another MicConfig.native_rate or channels"
                ) from error
            undo.pop_all()
        self._pa, self._stream = pa, stream
        self.device, self.native_rate, self.channels = device, native_rate, channels

    # -- the PortAudio thread --------------------------------------------------------------------

    def _on_audio(self, in_data, frame_count, time_info, status_flags):
        # time.monotonic_ns(), not time_info: PortAudio's times are in the stream's own clock,
        # which is not the monotonic clock every other stage stamps with.
        overflowed = bool(status_flags & self._overflow_flag)
        captured = CapturedBuffer(in_data, time.monotonic_ns(), self._frames_seen, frame_count, overflowed)
        self._frames_seen += frame_count
        self._last_callback_ns = captured.capture_ns
        if overflowed:
            self.status.count("overflows")
        self._put_dropping_oldest(captured)
        return (None, self._continue)

    def _put_dropping_oldest(self, captured: CapturedBuffer) -> None:
        """Never blocks: a full queue loses its oldest buffer (the reader notices the frame jump)."""
        try:
            self._queue.put_nowait(captured)
            return
        except queue.Full:
            pass
        try:
            self._queue.get_nowait()
            self.status.count("dropped_chunks")
        except queue.Empty:  # the reader emptied it meanwhile
            pass
        try:
            self._queue.put_nowait(captured)
        except queue.Full:  # cannot happen with one producer; losing this buffer is still safe
            self.status.count("dropped_chunks")

    # -- the reader ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[AudioChunk]:
        try:
            self.open()
        except SourceError:
            if self._closed.is_set():  # close() came first: nothing to read, nothing wrong
                return
            raise
        try:
            yield from self._read_chunks()
        finally:
            self._release()

    def _read_chunks(self) -> Iterator[AudioChunk]:
        clock = CaptureClock(self.native_rate)
        resampler = StreamingResampler(self.native_rate, self.config.sample_rate)
        stamper = OutputStamper(self.config.sample_rate)
        last_audio_ns = time.monotonic_ns()
        while not self._closed.is_set():
            try:
                captured = self._queue.get(timeout=POLL_INTERVAL_S)
            except queue.Empty:
                problem = self._health_problem(last_audio_ns)
                if problem:
                    self._fail(problem)
                    return
                continue
            last_audio_ns = time.monotonic_ns()
            continuity = clock.place(captured.first_frame, captured.frames, captured.capture_ns, captured.overflowed)
            if continuity not in (Continuity.FIRST, Continuity.CONTINUOUS):
                yield from self._emit(stamper, resampler.finish_stretch())  # on the old timeline
                self.status.count("gaps" if continuity is Continuity.LOST_AUDIO else "clock_resyncs")
            if continuity is not Continuity.CONTINUOUS:
                stamper.restart(clock.time_of(captured.first_frame))
            self.status.count("chunks")
            yield from self._emit(stamper, resampler.process(int16_to_mono(captured.data, self.channels)))

    def _emit(self, stamper: OutputStamper, samples: np.ndarray) -> Iterator[AudioChunk]:
        if samples.shape[0] == 0:  # the resampler's filter is still filling
            return
        self.status.count("samples", samples.shape[0])
        yield stamper.chunk(samples)

    def _health_problem(self, last_audio_ns: int) -> str | None:
        """Why the device stopped delivering, or None while all is well (or close() was called)."""
        with self._lock:
            if self._stream is None:
                return None
            try:
                active = self._stream.is_active()
            except OSError as error:
                return f"PortAudio lost the input stream of {self.device.describe()} ({error})"
        if not active:
            return f"PortAudio stopped the input stream of {self.device.describe()} (device error or unplugged)"
        silent_s = (time.monotonic_ns() - last_audio_ns) / NS_PER_SECOND
        if silent_s > self.config.stall_timeout_s:
            return (
                f"no audio from {self.device.describe()} for {silent_s:.1f} s "
                f"(stall_timeout_s={self.config.stall_timeout_s}): the device stopped delivering"
            )
        return None

    def _fail(self, reason: str) -> None:
        self.status.set(SourceState.FAILED, reason)
        self._release()

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Idempotent, from any thread: the iterator ends within POLL_INTERVAL_S."""
        self._closed.set()
        self._release()

    def _release(self) -> None:
        self._closed.set()
        with self._lock:
            stream, pa = self._stream, self._pa
            self._stream = self._pa = None
            problems = _shut_stream(stream, graceful=self._still_delivering()) + _terminate(pa)
        if self.status.state is not SourceState.FAILED:
            self.status.set(SourceState.ENDED, "closed" + (f" ({'; '.join(problems)})" if problems else ""))

    def _still_delivering(self) -> bool:
        last_ns = self._last_callback_ns
        if last_ns is None:
            return False
        within_s = max(DELIVERING_WITHIN_S, 4 * self.config.chunk_ms / 1000.0)
        return time.monotonic_ns() - last_ns < seconds_to_ns(within_s)


def _shut_stream(stream, graceful: bool) -> list[str]:
    """Stop a stream that still delivers; abort one that does not.

    Pa_StopStream lets the callback thread finish its current buffer, but that thread only looks
    at the stop request between buffers: on a device that stopped delivering it would wait
    forever. Pa_CloseStream on a running stream aborts it: it cancels the thread where it waits
    for the device. That is safe when no callback is running, i.e. when nothing has arrived for a
    while; cancelling a thread inside the Python callback could leave the GIL locked.
    """
    if stream is None:
        return []
    problems = []
    steps = (stream.stop_stream, stream.close) if graceful else (stream.close,)
    for step in steps:
        try:
            step()
        except OSError as error:  # the device may already be gone; still release the rest
            problems.append(f"{step.__name__}: {error}")
    return problems


def _terminate(pa) -> list[str]:
    if pa is None:
        return []
    try:
        pa.terminate()
    except OSError as error:
        return [f"terminate: {error}"]
    return []
