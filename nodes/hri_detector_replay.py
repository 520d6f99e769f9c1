"""A ROS4HRI face detector and microphone replaying a media file, in real time, on a ROS node: what a
robot that already runs `hri_face_detect` and `audio_capture` gives a node started with faces:=hri.

`detect_file` finds the file's faces once, beforehand (our own detector and tracker, at the
detector's rate), so the replay itself spends no CPU on detection. `DetectorReplay` then publishes,
stamped with the ROS clock as it goes:
  /humans/faces/tracked          hri_msgs/IdsList   every detection frame (empty when nobody is seen)
  /humans/faces/<id>/cropped     sensor_msgs/Image  each face's crop (bgr8, `crop_side` square), same stamp
  audio                          std_msgs/Int16MultiArray (the node's fallback audio type), 16 kHz mono
Ids are five lowercase letters per track, as hri_face_detect makes them. A face's publisher goes
when its track ends. `bench-node --faces hri` and the tests use it.
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
                max_faces: int = 4) -> Recording:
    """The file's faces at `fps` (our detector and tracker) and its audio, read once."""
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
            frames.append(DetectionFrame(item.stamp_ns, [(name(c.face_id), c.bgr) for c in crops]))
    finally:
        tracker.close()
        source.close()
    samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    return Recording(frames, pcm, max(end_ns / NS_PER_SECOND, pcm.shape[0] / 16000))


class DetectorReplay:
    """Publishes a Recording on `node` in real time from the first `start()`; `done` at its end."""

    def __init__(self, node: Node, recording: Recording, audio: bool = True) -> None:
        self.hri = hri_module()
        if self.hri is None:
            raise RuntimeError("the detector replay publishes hri_msgs/IdsList: build hri_msgs first (make setup)")
        self.node = node
        self.recording = recording
        self.tracked = node.create_publisher(self.hri.IdsList, TRACKED_TOPIC, qos_profile_sensor_data)
        self.audio = node.create_publisher(Int16MultiArray, "audio", qos_profile_sensor_data) if audio else None
        self._faces: dict[str, object] = {}
        self._start_ns: int | None = None
        self._next_frame = 0
        self._next_sample = 0
        self.published_frames = 0
        self._timer = None

    def start(self) -> None:
        self._start_ns = self.node.get_clock().now().nanoseconds
        self._timer = self.node.create_timer(0.02, self._tick)

    @property
    def done(self) -> bool:
        return self._start_ns is not None and self._next_frame >= len(self.recording.frames) and (
            self.audio is None or self._next_sample >= self.recording.audio.shape[0])

    def _tick(self) -> None:
        now_ns = self.node.get_clock().now().nanoseconds
        elapsed_ns = now_ns - self._start_ns
        frames = self.recording.frames
        while self._next_frame < len(frames) and frames[self._next_frame].offset_ns <= elapsed_ns:
            self.publish_frame(frames[self._next_frame], self._start_ns + frames[self._next_frame].offset_ns)
            self._next_frame += 1
        if self.audio is not None:
            chunk = int(AUDIO_CHUNK_S * 16000)
            due = min(self.recording.audio.shape[0], elapsed_ns * 16000 // NS_PER_SECOND)
            while self._next_sample + chunk <= due or (due == self.recording.audio.shape[0] and self._next_sample < due):
                piece = self.recording.audio[self._next_sample:self._next_sample + chunk]
                stamp_ns = self._start_ns + self._next_sample * NS_PER_SECOND // 16000
                self.publish_audio(piece, stamp_ns)
                self._next_sample += piece.shape[0]

    def publish_frame(self, frame: DetectionFrame, stamp_ns: int) -> None:
        names = [name for name, _ in frame.faces]
        for name in [n for n in self._faces if n not in names]:  # track ended: its topic goes
            self.node.destroy_publisher(self._faces.pop(name))
        for name, crop in frame.faces:
            if name not in self._faces:
                self._faces[name] = self.node.create_publisher(Image, f"/humans/faces/{name}/cropped",
                                                               qos_profile_sensor_data)
            image = Image(height=crop.shape[0], width=crop.shape[1], encoding="bgr8", step=crop.shape[1] * 3)
            image.data = crop.tobytes()
            set_stamp(image.header.stamp, stamp_ns)
            self._faces[name].publish(image)
        ids = self.hri.IdsList(ids=names)
        set_stamp(ids.header.stamp, stamp_ns)
        self.tracked.publish(ids)
        self.published_frames += 1

    def publish_audio(self, samples: np.ndarray, stamp_ns: int) -> None:
        message = Int16MultiArray(data=samples.astype(np.int16).tolist())
        message.layout.dim = [MultiArrayDimension(label=f"rate=16000;stamp_ns={stamp_ns}", size=samples.shape[0],
                                                  stride=samples.shape[0])]
        self.audio.publish(message)

    def destroy(self) -> None:
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
        for publisher in [self.tracked, self.audio, *self._faces.values()]:
            if publisher is not None:
                self.node.destroy_publisher(publisher)
        self._faces.clear()
