"""A ROS4HRI face detector and microphone replaying a media file, in real time, on a ROS node: what a
robot that already runs `hri_face_detect` and `audio_capture` gives a node started with faces:=hri.

`detect_file` finds the file's faces once, beforehand (our own detector and tracker, at the
detector's rate), so the replay itself spends no CPU on detection. `DetectorReplay` then publishes,
stamped with the ROS clock as it goes:
  /humans/faces/tracked          hri_msgs/IdsList   every detection frame (empty when nobody is seen)
  /humans/faces/<id>/cropped     sensor_msgs/Image  each face's crop (bgr8, `crop_side` square), same stamp
  audio                          std_msgs/Int16MultiArray (the node's fallback audio type), 16 kHz mono
Ids are five lowercase letters per track, as hri_face_detect makes them. A face's publisher goes
when its track ends. With `camera=True` it plays the camera instead (what a node with its own
detector needs): `image` (sensor_msgs/Image, bgr8, the whole frame) at `camera_fps`, each
detection frame repeated to that rate, and the same audio. `loop=True` starts again at the end,
stamps running on. `bench-node --faces` and the tests use it.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Int16MultiArray, MultiArrayDimension

from socialmae_rt.messages import NS_PER_SECOND, AudioChunk, VideoFrame
from socialmae_rt.nodes.rep155 import TRACKED_TOPIC, hri_module
from socialmae_rt.nodes.typed_messages import set_stamp

DETECTION_FPS = 10.0  # hri_face_detect processes every camera frame; 10 fps is a modest camera
CROP_SIDE = 128  # hri_face_detect's default cropped image side
AUDIO_CHUNK_S = 0.1


@dataclass(frozen=True)
class DetectionFrame:
    offset_ns: int  # since the start of the file
    faces: list[tuple[str, np.ndarray]]  # (detector id, uint8 [S, S, 3] crop), S = crop_side
    frame_bgr: np.ndarray | None = None  # the whole frame (keep_frames=True), for the camera replay


@dataclass(frozen=True)
class Recording:
    frames: list[DetectionFrame]
    audio: np.ndarray  # int16 [samples] mono at 16 kHz (empty without sound)
    seconds: float


def track_names(seed: int = 0):
    """face id -> five lowercase letters, distinct, the same for the same seed."""
    rng = random.Random(seed)
    names: dict[int, str] = {}

    def name(face_id: int) -> str:
        while face_id not in names:
            candidate = "".join(rng.choice(string.ascii_lowercase) for _ in range(5))
            if candidate not in names.values():
                names[face_id] = candidate
        return names[face_id]

    return name


def detect_file(path: str | Path, fps: float = DETECTION_FPS, crop_side: int = CROP_SIDE,
                max_faces: int = 4, keep_frames: bool = False) -> Recording:
    """The file's faces at `fps` (our detector and tracker) and its audio, read once; with
    `keep_frames` the frames themselves too."""
    from socialmae_rt.capture.media_file import MediaFileSource
    from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig

    frames, audio, end_ns = [], [], 0
    name = track_names()
    every_ns = int(NS_PER_SECOND / fps)
    next_ns = 0
    source = MediaFileSource(str(path))
    tracker = FaceTracker(FaceDetector(FaceDetectorConfig(max_faces=max_faces)),
                          TrackerConfig(detect_every_n_frames=1, max_tracks=max_faces, crop_size=crop_side))
    try:
        source.open()
        for item in source:
            if isinstance(item, AudioChunk):
                audio.append(item.samples)
                continue
            if not isinstance(item, VideoFrame) or item.stamp_ns < next_ns:
                continue
            next_ns = item.stamp_ns + every_ns
            crops = tracker.update(item)
            end_ns = item.stamp_ns
            frames.append(DetectionFrame(item.stamp_ns, [(name(c.face_id), c.bgr) for c in crops],
                                         item.bgr if keep_frames else None))
    finally:
        tracker.close()
        source.close()
    samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    return Recording(frames, pcm, max(end_ns / NS_PER_SECOND, pcm.shape[0] / 16000))


class DetectorReplay:
    """Publishes a Recording on `node` in real time from `start()`; `done` at its end (never with `loop`)."""

    def __init__(self, node: Node, recording: Recording, audio: bool = True, camera: bool = False,
                 camera_fps: float = 30.0, loop: bool = False) -> None:
        self.hri = hri_module()
        if self.hri is None and not camera:
            raise RuntimeError("the detector replay publishes hri_msgs/IdsList: build hri_msgs first (make setup)")
        if camera and any(frame.frame_bgr is None for frame in recording.frames):
            raise ValueError("a camera replay needs the frames: detect_file(..., keep_frames=True)")
        self.node = node
        self.recording = recording
        self._offsets = np.array([frame.offset_ns for frame in recording.frames], dtype=np.int64)
        self.camera_fps = camera_fps
        self.loop = loop
        self.tracked = None if camera else node.create_publisher(self.hri.IdsList, TRACKED_TOPIC, qos_profile_sensor_data)
        self.camera = node.create_publisher(Image, "image", qos_profile_sensor_data) if camera else None
        self.audio = node.create_publisher(Int16MultiArray, "audio", qos_profile_sensor_data) if audio else None
        self._faces: dict[str, object] = {}
        self._images: dict[tuple[int, str], Image] = {}  # (frame, face name or "") -> its message
        self._start_ns: int | None = None
        self._next_frame = 0  # detection frames, or camera frames (camera=True)
        self._next_sample = 0
        self.published_frames = 0
        self._timer = None

    def start(self) -> None:
        self._start_ns = self.node.get_clock().now().nanoseconds
        self._timer = self.node.create_timer(0.01, self._tick)

    @property
    def start_ns(self) -> int | None:
        """The ROS time the replay's first frame and sample are stamped with (None before start)."""
        return self._start_ns

    @property
    def _frame_count(self) -> int:
        if self.camera is None:
            return len(self.recording.frames)
        return int(self.recording.seconds * self.camera_fps)

    @property
    def done(self) -> bool:
        return self._start_ns is not None and self._next_frame >= self._frame_count and (
            self.audio is None or self._next_sample >= self.recording.audio.shape[0])

    def _frame_offset_ns(self, index: int) -> int:
        if self.camera is None:
            return self.recording.frames[index].offset_ns
        return int(index * NS_PER_SECOND / self.camera_fps)

    def _tick(self) -> None:
        if self.done and self.loop:  # again from the start, stamps running on
            self._start_ns += max(self._frame_offset_ns(self._frame_count - 1) + int(NS_PER_SECOND / self.camera_fps),
                                  self.recording.audio.shape[0] * NS_PER_SECOND // 16000)
            self._next_frame = self._next_sample = 0
        elapsed_ns = self.node.get_clock().now().nanoseconds - self._start_ns
        while self._next_frame < self._frame_count and self._frame_offset_ns(self._next_frame) <= elapsed_ns:
            stamp_ns = self._start_ns + self._frame_offset_ns(self._next_frame)
            if self.camera is None:
                self.publish_frame(self.recording.frames[self._next_frame], stamp_ns)
            else:
                self.publish_camera(self._next_frame, stamp_ns)
            self._next_frame += 1
        if self.audio is not None:
            chunk = int(AUDIO_CHUNK_S * 16000)
            total = self.recording.audio.shape[0]
            due = min(total, elapsed_ns * 16000 // NS_PER_SECOND)
            while self._next_sample < due and (self._next_sample + chunk <= due or due == total):
                piece = self.recording.audio[self._next_sample:self._next_sample + chunk]
                self.publish_audio(piece, self._start_ns + self._next_sample * NS_PER_SECOND // 16000)
                self._next_sample += piece.shape[0]

    def publish_camera(self, index: int, stamp_ns: int) -> None:
        """Camera frame `index`: the detection frame it falls in, repeated up to the camera's rate."""
        frames = self.recording.frames
        at_ns = self._frame_offset_ns(index)
        position = min(int(np.searchsorted(self._offsets, at_ns, side="right")) - 1, len(frames) - 1)
        image = self._image(max(position, 0), "", frames[max(position, 0)].frame_bgr)
        set_stamp(image.header.stamp, stamp_ns)
        self.camera.publish(image)
        self.published_frames += 1

    def publish_frame(self, frame: DetectionFrame, stamp_ns: int) -> None:
        names = [name for name, _ in frame.faces]
        for name in [n for n in self._faces if n not in names]:  # track ended: its topic goes
            self.node.destroy_publisher(self._faces.pop(name))
        for name, crop in frame.faces:
            if name not in self._faces:
                self._faces[name] = self.node.create_publisher(Image, f"/humans/faces/{name}/cropped",
                                                               qos_profile_sensor_data)
            image = self._image(id(frame), name, crop)
            set_stamp(image.header.stamp, stamp_ns)
            self._faces[name].publish(image)
        ids = self.hri.IdsList(ids=names)
        set_stamp(ids.header.stamp, stamp_ns)
        self.tracked.publish(ids)
        self.published_frames += 1

    def _image(self, frame_key: int, name: str, bgr: np.ndarray) -> Image:
        """The message for one frame or crop, made once (the replay must keep up with a camera)."""
        key = (frame_key, name)
        if key not in self._images:
            image = Image(height=bgr.shape[0], width=bgr.shape[1], encoding="bgr8", step=bgr.shape[1] * 3)
            image.data = bgr.tobytes()  # from bytes: ~100x faster than from an array
            self._images[key] = image
        return self._images[key]

    def publish_audio(self, samples: np.ndarray, stamp_ns: int) -> None:
        message = Int16MultiArray(data=samples.astype(np.int16).tolist())
        message.layout.dim = [MultiArrayDimension(label=f"rate=16000;stamp_ns={stamp_ns}", size=samples.shape[0],
                                                  stride=samples.shape[0])]
        self.audio.publish(message)

    def destroy(self) -> None:
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
        for publisher in [self.tracked, self.camera, self.audio, *self._faces.values()]:
            if publisher is not None:
                self.node.destroy_publisher(publisher)
        self._faces.clear()
