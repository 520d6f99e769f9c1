"""ROS input topics as pipeline sources: `image`, `image/compressed` and `audio`.

Subscription callbacks only convert and queue (they never wait on the pipeline); the pipeline's
capture thread iterates a `TopicSource` like any camera or microphone. Stamps are the messages'
header stamps (ROS time; a zero stamp is replaced by the arrival time), so the source's clock is
"realtime" and cannot be mixed with local devices, which stamp on CLOCK_MONOTONIC.

Audio comes as audio_common_msgs/AudioDataStamped (S16LE, format from `audio_info`) when that
package is importable, or as the std_msgs fallback: std_msgs/Int16MultiArray with mono 16-bit
samples in `data` and `layout.dim[0].label` = "rate=<Hz>" (optionally ";stamp_ns=<first sample>";
without it the arrival time minus the chunk's duration is used). Any rate is resampled to 16 kHz.

A topic with no message for `input_silence_s` turns SILENT (diagnostics WARN/ERROR, the pipeline
stops waiting for it); the next message makes it RUNNING again.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from socialmae_rt.capture.base import DEFAULT_MAX_FRAME_SIDE, fit_frame
from socialmae_rt.capture.microphone import INT16_FULL_SCALE, OutputStamper, StreamingResampler
from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, SourceState, SourceStatus, VideoFrame, seconds_to_ns
from socialmae_rt.nodes.typed_messages import optional_messages

MODEL_RATE = 16000
AUDIO_TYPES = ("auto", "audio_common", "int16_array")
FACE_IMAGES = ("cropped", "aligned")  # the REP-155 per-face image topics
# Raw encodings we read (sensor_msgs/image_encodings names) -> OpenCV conversion to BGR.
IMAGE_ENCODINGS = {
    "bgr8": None,
    "rgb8": cv2.COLOR_RGB2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "mono8": cv2.COLOR_GRAY2BGR,
    "8UC1": cv2.COLOR_GRAY2BGR,
    "8UC3": None,
}
# A jump larger than this between where an audio chunk should start and its stamp is a gap
# (new stretch); smaller differences are transport jitter and the sample count wins.
AUDIO_JITTER_NS = 100_000_000


@dataclass
class RosInputConfig:
    silence_s: float = 2.0  # a subscribed topic with no message for this long counts as silent
    queue: int = 64  # messages held between the ROS callback and the pipeline; the oldest is dropped
    audio_type: str = "auto"  # auto | audio_common | int16_array (the std_msgs fallback)
    faces_image: str = "cropped"  # faces:=hri: each face's image topic, /humans/faces/<id>/<this> (cropped | aligned)
    faces_wait_s: float = 0.5  # faces:=hri: how long a tracked face's image may lag its tracked list

    def __post_init__(self) -> None:
        if self.silence_s <= 0:
            raise ValueError(f"input_silence_s must be > 0 seconds, got {self.silence_s}")
        if self.queue < 1:
            raise ValueError(f"input_queue must be >= 1, got {self.queue}")
        if self.audio_type not in AUDIO_TYPES:
            raise ValueError(f"input_audio_type must be one of {', '.join(AUDIO_TYPES)}, got {self.audio_type!r}")
        if self.faces_image not in FACE_IMAGES:
            raise ValueError(f"input_faces_image must be one of {', '.join(FACE_IMAGES)}, got {self.faces_image!r}")
        if self.faces_wait_s <= 0:
            raise ValueError(f"input_faces_wait_s must be > 0 seconds, got {self.faces_wait_s}")


class BadInput(ValueError):
    """A message this node cannot read; reported once per kind, the node keeps running."""


def stamp_to_ns(stamp) -> int:
    return stamp.sec * NS_PER_SECOND + stamp.nanosec


def image_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/Image -> uint8 [H, W, 3] BGR (a copy; row padding in `step` is skipped)."""
    if msg.encoding not in IMAGE_ENCODINGS:
        raise BadInput(f"image encoding {msg.encoding!r} is not supported; expected one of "
                       f"{', '.join(IMAGE_ENCODINGS)} (or publish image/compressed)")
    channels = {cv2.COLOR_GRAY2BGR: 1, cv2.COLOR_BGRA2BGR: 4, cv2.COLOR_RGBA2BGR: 4}.get(IMAGE_ENCODINGS[msg.encoding], 3)
    row = msg.width * channels
    if msg.height == 0 or msg.width == 0 or msg.step < row or len(msg.data) < msg.step * msg.height:
        raise BadInput(f"image {msg.width}x{msg.height} {msg.encoding} with step {msg.step} "
                       f"does not match its {len(msg.data)} bytes of data")
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    pixels = rows[:, :row].reshape(msg.height, msg.width, channels)  # [H, W, C]
    code = IMAGE_ENCODINGS[msg.encoding]
    return pixels.copy() if code is None else cv2.cvtColor(pixels, code)


def compressed_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png, ...) -> uint8 [H, W, 3] BGR."""
    bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadInput(f"compressed image ({msg.format or 'no format given'}, {len(msg.data)} bytes) "
                       "could not be decoded; expected jpeg or png")
    return bgr


def parse_int16_array(msg) -> tuple[np.ndarray, int, int]:
    """The std_msgs fallback: Int16MultiArray -> (float32 samples, rate, stamp of the first sample or 0)."""
    label = msg.layout.dim[0].label if msg.layout.dim else ""
    fields = dict(part.split("=", 1) for part in label.replace(",", ";").split(";") if "=" in part)
    try:
        rate = int(fields["rate"])
        if rate <= 0:
            raise ValueError
    except (KeyError, ValueError):
        raise BadInput(f"audio Int16MultiArray needs layout.dim[0].label like 'rate=16000' "
                       f"(optionally ';stamp_ns=<first sample>'), got {label!r}") from None
    samples = np.frombuffer(msg.data, dtype=np.int16).astype(np.float32) / INT16_FULL_SCALE
    if "stamp_ns" in fields:
        try:
            return samples, rate, int(fields["stamp_ns"])
        except ValueError:
            raise BadInput(f"audio stamp_ns must be an integer, got {fields['stamp_ns']!r}") from None
    return samples, rate, 0


def parse_audio_data(msg, info) -> tuple[np.ndarray, int, int]:
    """audio_common_msgs/AudioDataStamped + AudioInfo -> (float32 mono samples, rate, stamp)."""
    channels, rate = (1, MODEL_RATE) if info is None else (max(1, info.channels), info.sample_rate)
    sample_format = "S16LE" if info is None else (info.sample_format or "S16LE").upper()
    coding = "wave" if info is None else (info.coding_format or "wave").lower()
    if sample_format != "S16LE" or coding not in ("wave", "raw", "pcm"):
        raise BadInput(f"audio {info.coding_format}/{info.sample_format} is not supported; expected raw S16LE "
                       "(audio_capture with format:=wave sample_format:=S16LE)")
    data = bytes(msg.audio.data)
    usable = len(data) - len(data) % (2 * channels)
    samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / INT16_FULL_SCALE
    samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)  # [frames] mono
    return samples, rate, stamp_to_ns(msg.header.stamp)


class TopicSource:
    """A Source fed by ROS callbacks (`push`) and read by the pipeline's capture thread."""

    clock = "realtime"

    def __init__(self, name: str, config: RosInputConfig, has_video: bool, has_audio: bool,
                 topics: tuple[str, ...] = ()) -> None:
        self.status = SourceStatus(name)
        self.topics = topics  # resolved names, for messages a person reads
        self.config = config
        self.has_video = has_video
        self.has_audio = has_audio
        self._items: collections.deque = collections.deque()
        self._ready = threading.Condition()
        self._closed = False
        self._last_message_mono_ns: int | None = None
        self._opened_mono_ns: int | None = None
        self._reported: set[str] = set()

    def open(self) -> None:
        if self._opened_mono_ns is None:
            self._opened_mono_ns = time.monotonic_ns()
            self.status.set(SourceState.STARTING, "waiting for the first message")

    def push(self, item: VideoFrame | AudioChunk) -> None:
        """From a subscription callback: queue without waiting; the oldest item goes when full."""
        with self._ready:
            if self._closed:
                return
            if len(self._items) >= self.config.queue:
                self._items.popleft()
                self.status.count("dropped")
            self._items.append(item)
            self._ready.notify()

    def heard(self) -> None:
        """A message arrived (readable or not): the topic is not silent."""
        self._last_message_mono_ns = time.monotonic_ns()
        self.status.count("messages")
        if self.status.state is not SourceState.RUNNING and not self._closed:
            self.status.set(SourceState.RUNNING)

    def report_bad(self, err: BadInput, kind: str | None = None) -> bool:
        """Count an unreadable message (also under `kind`, when given); True the first time this
        kind of problem (by default: this very message) is seen."""
        self.status.count("bad_messages")
        if kind is not None:
            self.status.count(f"bad: {kind}")
        key = kind or str(err)
        first = key not in self._reported
        self._reported.add(key)
        return first

    def __iter__(self) -> Iterator[VideoFrame | AudioChunk]:
        self.open()
        while True:
            with self._ready:
                if not self._items and not self._closed:
                    self._ready.wait(timeout=0.1)
                if self._closed:
                    return
                items = list(self._items)
                self._items.clear()
            yield from items
            self._check_silence()

    def _check_silence(self) -> None:
        since = self._last_message_mono_ns or self._opened_mono_ns
        quiet_ns = time.monotonic_ns() - since
        if self.status.state is not SourceState.SILENT and quiet_ns > seconds_to_ns(self.config.silence_s):
            heard = "no message yet" if self._last_message_mono_ns is None else "no message"
            on = f" on {' or '.join(self.topics)}" if self.topics else ""
            self.status.set(SourceState.SILENT, f"{heard}{on} for {quiet_ns / NS_PER_SECOND:.1f} s")

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._items.clear()
            self._ready.notify_all()
        self.status.set(SourceState.ENDED, "closed")


class AudioStamper:
    """Turns audio messages of any rate into 16 kHz chunks on one continuous sample timeline."""

    def __init__(self) -> None:
        self._resampler: StreamingResampler | None = None
        self._stamper = OutputStamper(MODEL_RATE)
        self._next_in_ns: int | None = None  # where the next input chunk should start

    def chunks(self, samples: np.ndarray, rate: int, stamp_ns: int) -> list[AudioChunk]:
        out = []
        continuous = (self._resampler is not None and self._resampler.in_rate == rate
                      and abs(stamp_ns - self._next_in_ns) <= AUDIO_JITTER_NS)
        if not continuous:
            if self._resampler is not None:
                tail = self._resampler.finish_stretch()
                if tail.size:
                    out.append(self._stamper.chunk(tail))
            self._resampler = StreamingResampler(rate, MODEL_RATE)
            self._stamper.restart(stamp_ns)
            self._next_in_ns = stamp_ns
        self._next_in_ns += samples.shape[0] * NS_PER_SECOND // rate
        resampled = self._resampler.process(samples.astype(np.float32, copy=False))
        if resampled.size:
            out.append(self._stamper.chunk(resampled))
        return out


def audio_common_types():
    """(AudioDataStamped, AudioInfo) from audio_common_msgs, or None when it is not installed."""
    module = optional_messages("audio_common_msgs")
    if module is None or not hasattr(module, "AudioDataStamped"):  # mgonzs13/audio_common: same name, other types
        return None
    return module.AudioDataStamped, module.AudioInfo


class RosInputs:
    """Subscribes a node to `image`, `image/compressed` and/or `audio`; exposes them as sources."""

    def __init__(self, node, config: RosInputConfig, video: bool, audio: bool,
                 log_error: Callable[[str], None], callback_group=None,
                 max_frame_side: int | None = DEFAULT_MAX_FRAME_SIDE) -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image

        self.config = config
        self._node = node
        self._subscriptions: list = []  # destroy() ends them (a managed node pausing)
        self.max_frame_side = max_frame_side  # larger images are scaled down as they arrive
        self.log_error = log_error
        self.sources: list[TopicSource] = []
        self._frames = 0
        if video:
            self.image = TopicSource("ros image", config, has_video=True, has_audio=False,
                                     topics=(node.resolve_topic_name("image"),
                                             node.resolve_topic_name("image/compressed")))
            self._subscribe(node, Image, "image", self._on_image, qos_profile_sensor_data,
                                     callback_group=callback_group)
            self._subscribe(node, CompressedImage, "image/compressed", self._on_compressed,
                                     qos_profile_sensor_data, callback_group=callback_group)
            self.sources.append(self.image)
        if audio:
            self.audio = TopicSource("ros audio", config, has_video=False, has_audio=True,
                                     topics=(node.resolve_topic_name("audio"),))
            self._stamper = AudioStamper()
            self._audio_info = None
            self._subscribe_audio(node, qos_profile_sensor_data, callback_group)
            self.sources.append(self.audio)

    def _subscribe(self, node, *args, **kwargs):
        subscription = node.create_subscription(*args, **kwargs)
        self._subscriptions.append(subscription)
        return subscription

    def destroy(self) -> None:
        """Stop taking the topics in; the sources end."""
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions.clear()
        for source in self.sources:
            source.close()

    def _subscribe_audio(self, node, qos, callback_group) -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile

        audio_common = audio_common_types()
        kind = self.config.audio_type
        if kind == "audio_common" and audio_common is None:
            raise ValueError("input_audio_type:=audio_common needs the audio_common_msgs package; "
                             "install it or use input_audio_type:=int16_array")
        if kind == "audio_common" or (kind == "auto" and audio_common is not None):
            data_type, info_type = audio_common
            self.audio_type = "audio_common"
            self._subscribe(node, data_type, "audio", self._on_audio_data, qos, callback_group=callback_group)
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._subscribe(node, info_type, "audio_info", self._on_audio_info, latched,
                                     callback_group=callback_group)
        else:
            from std_msgs.msg import Int16MultiArray

            self.audio_type = "int16_array"
            self._subscribe(node, Int16MultiArray, "audio", self._on_int16_array, qos,
                                     callback_group=callback_group)

    # Callbacks (executor threads): convert, queue, never wait -------------------------------------
    def _on_image(self, msg) -> None:
        self._take_frame(msg, image_to_bgr)

    def _on_compressed(self, msg) -> None:
        self._take_frame(msg, compressed_to_bgr)

    def _take_frame(self, msg, convert) -> None:
        self.image.heard()
        try:
            bgr = convert(msg)
        except BadInput as err:
            self._bad(self.image, err)
            return
        self._frames += 1
        self.image.push(VideoFrame(bgr=fit_frame(bgr, self.max_frame_side),
                                   stamp_ns=stamp_to_ns(msg.header.stamp) or time.time_ns(), index=self._frames))

    def _on_int16_array(self, msg) -> None:
        self._take_audio(lambda: parse_int16_array(msg))

    def _on_audio_info(self, msg) -> None:
        self._audio_info = msg

    def _on_audio_data(self, msg) -> None:
        self._take_audio(lambda: parse_audio_data(msg, self._audio_info))

    def _take_audio(self, parse) -> None:
        self.audio.heard()
        try:
            samples, rate, stamp_ns = parse()
        except BadInput as err:
            self._bad(self.audio, err)
            return
        if not stamp_ns:  # unstamped: it ended as it arrived
            stamp_ns = time.time_ns() - samples.shape[0] * NS_PER_SECOND // rate
        for chunk in self._stamper.chunks(samples, rate, stamp_ns):
            self.audio.push(chunk)

    def _bad(self, source: TopicSource, err: BadInput) -> None:
        if source.report_bad(err):
            self.log_error(f"{source.status.name}: {err} (further messages like this are counted, not logged)")
