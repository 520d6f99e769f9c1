"""REP-155 (ROS4HRI) faces and voices out, with the exact hri_msgs types, when hri_msgs is importable:

  /humans/faces/tracked           hri_msgs/IdsList                      the faces tracked now, at the detection rate
  /humans/faces/<id>/roi          hri_msgs/NormalizedRegionOfInterest2D the face's box in [0, 1] image coordinates
  /humans/faces/<id>/cropped      sensor_msgs/Image                     our 224 x 224 crop (bgr8), as the model sees it
  /humans/faces/<id>/expression   hri_msgs/Expression                   the window's top emotion, its confidence
  /humans/voices/tracked          hri_msgs/IdsList                      with speakers:=true: one voice per tracked face
  /humans/voices/<id>/is_speaking std_msgs/Bool                         that face judged the window's speaker

Ids are `face<N>` (a ROS name token may not start with a digit), stable for as long as the
tracker keeps the face, re-identification included; its voice is `voice_face<N>`. With faces from
a ROS4HRI detector (faces:=hri) the detector owns tracked, roi and cropped: only expression and
the voices are published, under the detector's ids (`voice_<its id>`). A face's topics go away
with it: its publishers are destroyed once the tracker (or the detector) no longer holds it.

The model gives six class probabilities, not valence and arousal: those are mapped from a table,
each class placed at an approximate position on Russell's circumplex (VALENCE_AROUSAL below, our
placement, documented in docs/ros.md), and weighted by the window's probabilities.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any, Callable

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from socialmae_rt.faces.upstream import own_face_name
from socialmae_rt.messages import DetectedFaces, VideoFrame
from socialmae_rt.nodes.typed_messages import FaceName, optional_messages, set_stamp
from socialmae_rt.results import SocialPerception

TRACKED_TOPIC = "/humans/faces/tracked"
VOICES_TRACKED_TOPIC = "/humans/voices/tracked"
# CREMA-D classes -> hri_msgs/Expression constants.
HRI_EXPRESSIONS = {"anger": "ANGRY", "disgust": "DISGUSTED", "fear": "SCARED", "happy": "HAPPY",
                   "neutral": "NEUTRAL", "sad": "SAD"}


# class -> (valence, arousal), each in [-1, 1]: approximate circumplex positions (our placement).
VALENCE_AROUSAL = {"anger": (-0.6, 0.7), "disgust": (-0.6, 0.3), "fear": (-0.6, 0.6), "happy": (0.8, 0.5),
                   "neutral": (0.0, 0.0), "sad": (-0.7, -0.4)}


def valence_arousal(emotion: dict[str, float]) -> tuple[float, float]:
    """The probability-weighted mean of the classes' positions."""
    total = sum(emotion.values()) or 1.0
    valence = sum(p * VALENCE_AROUSAL[label][0] for label, p in emotion.items()) / total
    arousal = sum(p * VALENCE_AROUSAL[label][1] for label, p in emotion.items()) / total
    return float(valence), float(arousal)


def hri_module() -> ModuleType | None:
    return optional_messages("hri_msgs")


def hri_expression(emotion: dict[str, float]) -> tuple[str, float]:
    """(Expression constant name, confidence = top probability) for one emotion distribution."""
    label = max(emotion, key=emotion.get)
    return HRI_EXPRESSIONS[label], float(emotion[label])


class HriFaces:
    """The REP-155 face and voice topics of one node. `on_faces` runs on the capture thread after
    the tracker, `publish_record` on the inference thread: one lock over the per-face publishers.

    `detections`: publish tracked, roi and cropped (our own detector); False when a ROS4HRI detector
    publishes them. `face_name`: face id -> its REP-155 id. `voices`: speaker attribution is on."""

    def __init__(self, node: Node, qos: Any, detections: bool = True,
                 face_name: FaceName = own_face_name, voices: bool = False) -> None:
        self.node = node
        self.qos = qos
        self.hri = hri_module()
        self.detections = detections
        self.face_name = face_name
        self.voices = voices
        self._lock = threading.Lock()
        self._faces: dict[int, dict[str, Any]] = {}  # face id -> topic suffix -> publisher
        self._last_tracked: list[int] | None = None
        self.tracked = (node.create_publisher(self.hri.IdsList, TRACKED_TOPIC, qos)
                        if self.hri and detections else None)
        self.voices_tracked = (node.create_publisher(self.hri.IdsList, VOICES_TRACKED_TOPIC, qos)
                               if self.hri and voices else None)

    @property
    def enabled(self) -> bool:
        return self.hri is not None

    def voice_name(self, face_id: int) -> str:
        return f"voice_{self.face_name(face_id)}"

    def _publisher(self, face_id: int, suffix: str, message_type) -> Any:
        topics = self._faces.setdefault(face_id, {})
        if suffix not in topics:
            topic = (f"/humans/voices/{self.voice_name(face_id)}/{suffix}" if suffix == "is_speaking"
                     else f"/humans/faces/{self.face_name(face_id)}/{suffix}")
            topics[suffix] = self.node.create_publisher(message_type, topic, self.qos)
        return topics[suffix]

    def on_faces(self, faces: DetectedFaces, frame: VideoFrame | None) -> None:
        if self.hri is None or not self.node.context.ok():
            return
        tracked = faces.tracked
        with self._lock:
            for face_id in [f for f in self._faces if f not in tracked]:  # gone: its topics go too
                for publisher in self._faces.pop(face_id).values():
                    self.node.destroy_publisher(publisher)
            if faces.crops or tracked != self._last_tracked:  # at the detection rate, and whenever the set changes
                if self.tracked is not None:
                    self.tracked.publish(self._ids(self.face_name, tracked, faces.stamp_ns))
                if self.voices_tracked is not None:
                    self.voices_tracked.publish(self._ids(self.voice_name, tracked, faces.stamp_ns))
                self._last_tracked = list(tracked)
            if self.detections and frame is not None:
                self._publish_detections(faces, frame)

    def _ids(self, name: Callable[[int], str], face_ids: list[int], stamp_ns: int):
        ids = self.hri.IdsList(ids=[name(face_id) for face_id in face_ids])
        set_stamp(ids.header.stamp, stamp_ns)
        return ids

    def _publish_detections(self, faces: DetectedFaces, frame: VideoFrame) -> None:
        height, width = frame.bgr.shape[:2]
        for crop in faces.crops:
            box = crop.box
            roi = self.hri.NormalizedRegionOfInterest2D(
                xmin=min(max(box.x0 / width, 0.0), 1.0), ymin=min(max(box.y0 / height, 0.0), 1.0),
                xmax=min(max(box.x1 / width, 0.0), 1.0), ymax=min(max(box.y1 / height, 0.0), 1.0),
                c=float(box.score))
            set_stamp(roi.header.stamp, crop.stamp_ns)
            self._publisher(crop.face_id, "roi", self.hri.NormalizedRegionOfInterest2D).publish(roi)
            image = Image(height=crop.bgr.shape[0], width=crop.bgr.shape[1], encoding="bgr8",
                          step=crop.bgr.shape[1] * 3)
            image.data = crop.bgr.tobytes()  # from bytes: ~100x faster than from an array
            set_stamp(image.header.stamp, crop.stamp_ns)
            self._publisher(crop.face_id, "cropped", Image).publish(image)

    def destroy(self) -> None:
        """Every REP-155 topic down: the per-face and per-voice ones and both tracked lists."""
        with self._lock:
            for topics in self._faces.values():
                for publisher in topics.values():
                    self.node.destroy_publisher(publisher)
            self._faces.clear()
            for publisher in (self.tracked, self.voices_tracked):
                if publisher is not None:
                    self.node.destroy_publisher(publisher)
            self.tracked = self.voices_tracked = None
            self.hri = None  # nothing more is published

    def publish_record(self, result: SocialPerception) -> None:
        """A face's window: its expression, and with speaker attribution whether its voice speaks."""
        if self.hri is None or result.face_id is None:
            return
        with self._lock:
            if not (result.face_id in self._faces or self._last_tracked is None or result.face_id in self._last_tracked):
                return  # the face left while its window ran: its topics are gone
            if result.emotion is not None:
                self._publisher(result.face_id, "expression", self.hri.Expression).publish(
                    expression_message(self.hri, result))
            if self.voices and result.speaking is not None:
                self._publisher(result.face_id, "is_speaking", Bool).publish(Bool(data=bool(result.speaking.is_speaker)))


def expression_message(hri: ModuleType, result: SocialPerception):
    name, confidence = hri_expression(result.emotion)
    valence, arousal = valence_arousal(result.emotion)
    message = hri.Expression(expression=getattr(hri.Expression, name), confidence=confidence,
                             valence=valence, arousal=arousal)
    set_stamp(message.header.stamp, result.window_end_ns)
    return message
