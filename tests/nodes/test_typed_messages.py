"""Typed ROS messages: our interface package (socialmae_rt_msgs) and the test copies of the
hri_msgs and audio_common_msgs types, all built by `make setup` (scripts/build_interfaces.py),
and the node publishing and reading them on loopback with real rclpy."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rclpy
from matplotlib import cbook
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String

from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.nodes.social_perception import SocialPerceptionNode
from socialmae_rt.nodes.typed_messages import laughter_event_message, perception_message, person_estimate_message
from socialmae_rt.results import Latency, PersonEstimate, SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind
from socialmae_rt.stream.speakers import Speaking
from socialmae_rt.tasks import EMOTION_LABELS, PERSONALITY_TRAITS

BUILT = "not built here: run `make setup` (scripts/build_interfaces.py builds the interface packages)"
msg = pytest.importorskip("socialmae_rt_msgs.msg", reason=BUILT)
hri = pytest.importorskip("hri_msgs.msg", reason=BUILT)
audio_common = pytest.importorskip("audio_common_msgs.msg", reason=BUILT)

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

# The released definitions, field for field (ros4hri/hri_msgs 2.x; ros-drivers/audio_common ROS 2).
HRI_FIELDS = {
    "IdsList": {"header": "std_msgs/Header", "ids": "sequence<string>"},
    "NormalizedRegionOfInterest2D": {"header": "std_msgs/Header", "xmin": "float", "ymin": "float", "xmax": "float",
                                     "ymax": "float", "c": "float"},
    "Expression": {"header": "std_msgs/Header", "expression": "string", "valence": "float", "arousal": "float",
                   "confidence": "float"},
}
HRI_EXPRESSION_CONSTANTS = {
    "NEUTRAL": "neutral", "ANGRY": "angry", "SAD": "sad", "HAPPY": "happy", "SURPRISED": "surprised",
    "DISGUSTED": "disgusted", "SCARED": "scared", "PLEADING": "pleading", "VULNERABLE": "vulnerable",
    "DESPAIRED": "despaired", "GUILTY": "guilty", "DISAPPOINTED": "disappointed", "EMBARRASSED": "embarrassed",
    "HORRIFIED": "horrified", "SKEPTICAL": "skeptical", "ANNOYED": "annoyed", "FURIOUS": "furious",
    "SUSPICIOUS": "suspicious", "REJECTED": "rejected", "BORED": "bored", "TIRED": "tired", "ASLEEP": "asleep",
    "CONFUSED": "confused", "AMAZED": "amazed", "EXCITED": "excited",
}
AUDIO_FIELDS = {
    "AudioData": {"data": "sequence<uint8>"},
    "AudioDataStamped": {"header": "std_msgs/Header", "audio": "audio_common_msgs/AudioData"},
    "AudioInfo": {"channels": "uint8", "sample_rate": "uint32", "sample_format": "string", "bitrate": "uint32",
                  "coding_format": "string"},
}


@pytest.mark.parametrize("module, fields", [(hri, HRI_FIELDS), (audio_common, AUDIO_FIELDS)],
                         ids=["hri_msgs", "audio_common_msgs"])
def test_the_test_copies_match_the_released_definitions_field_for_field(module, fields):
    for name, expected in fields.items():
        assert getattr(module, name).get_fields_and_field_types() == expected, name


def test_the_expression_constants_are_the_released_ones():
    constants = {name: value for name, value in vars(hri.Expression).items()
                 if name.isupper() and isinstance(value, str)}
    assert constants == HRI_EXPRESSION_CONSTANTS


def record(**changes) -> SocialPerception:
    values = dict(face_id=3, window_start_ns=6 * NS_PER_SECOND, window_end_ns=10 * NS_PER_SECOND + 250,
                  modality="audiovisual", emotion={label: p for label, p in zip(EMOTION_LABELS, np.linspace(.05, .3, 6))},
                  laughter_probability=0.72, laughing=True,
                  personality={t: 0.1 * (i + 1) for i, t in enumerate(PERSONALITY_TRAITS)}, window_fill=0.875,
                  latency=Latency(12.5, 40.25, 80.0), stream="robot", degraded=None,
                  speaking=Speaking(probability=0.9, is_speaker=True))
    values.update(changes)
    return SocialPerception(**values)


def as_json(message) -> dict:
    """A Perception message read back into the JSON record's shape (what a subscriber compares)."""
    return {
        "stream": message.header.frame_id,
        "face_id": int(message.face_id.removeprefix("face")) if message.face_id else None,
        "window_start_ns": message.window_start.sec * NS_PER_SECOND + message.window_start.nanosec,
        "window_end_ns": message.header.stamp.sec * NS_PER_SECOND + message.header.stamp.nanosec,
        "modality": message.modality,
        "emotion": dict(zip(message.emotion_labels, message.emotion)) or None,
        "laughter": {"probability": message.laughter_probability, "laughing": message.laughing}
        if message.has_laughter else None,
        "personality": dict(zip(message.personality_traits, message.personality)) or None,
        "window_fill": message.window_fill,
        "degraded": message.degraded or None,
        "latency_ms": {"preprocess": message.preprocess_ms, "inference": message.inference_ms,
                       "total": message.latency_ms},
        "random_weights": message.random_weights,
    }


def same_figures(typed: dict, record_json: dict) -> None:
    for key, value in typed.items():
        expected = record_json[key]
        if isinstance(value, dict) and expected is not None:
            assert value.keys() == expected.keys(), key
            # the JSON rounds latencies to 3 decimals (0.5e-3 off at most), the message holds float32
            rounded = 1e-3 if key == "latency_ms" else 1e-6
            for name in value:
                assert value[name] == pytest.approx(expected[name], rel=1e-6, abs=rounded), (key, name)
        elif isinstance(value, float):
            assert value == pytest.approx(expected, rel=1e-6), key
        else:
            assert value == expected, key


@pytest.mark.parametrize("changes", [
    {},
    {"face_id": None, "modality": "audio", "personality": None, "speaking": None, "window_fill": 1.0},
    {"emotion": None, "laughter_probability": None, "laughing": None, "degraded": "microphone failed: unplugged",
     "modality": "video"},
], ids=["everything", "audio-only-no-personality", "no-emotion-no-laughter-degraded"])
def test_a_perception_message_carries_every_figure_of_the_json_record(changes):
    source = record(**changes)
    typed = deserialize_message(serialize_message(perception_message(msg, source)), msg.Perception)
    same_figures(as_json(typed), source.to_json())
    assert typed.has_speaking is (source.speaking is not None)
    if source.speaking is not None:
        assert typed.speaking_probability == pytest.approx(0.9) and typed.is_speaker


def test_a_laughter_event_message():
    event = LaughterEvent(LaughterEventKind.OFFSET, 4, 12 * NS_PER_SECOND + 5, 13 * NS_PER_SECOND, 0.31)
    typed = deserialize_message(serialize_message(laughter_event_message(msg, event)), msg.LaughterEvent)
    assert typed.kind == msg.LaughterEvent.OFFSET and typed.face_id == "face4"
    assert (typed.header.stamp.sec, typed.header.stamp.nanosec) == (12, 5)
    assert (typed.window_end.sec, typed.window_end.nanosec) == (13, 0) and typed.probability == pytest.approx(0.31)


def test_valence_and_arousal_come_from_the_documented_table():
    from socialmae_rt.nodes.rep155 import VALENCE_AROUSAL, valence_arousal

    assert valence_arousal({label: float(label == "happy") for label in EMOTION_LABELS}) == VALENCE_AROUSAL["happy"]
    even = valence_arousal({label: 1 / 6 for label in EMOTION_LABELS})
    assert even == pytest.approx(tuple(np.mean([VALENCE_AROUSAL[label] for label in EMOTION_LABELS], axis=0)))


def test_a_person_estimate_message():
    estimate = PersonEstimate(face_id=2, windows=9, personality_mean={t: 0.1 * (i + 1) for i, t in enumerate(PERSONALITY_TRAITS)},
                              personality_std={t: 0.01 * (i + 1) for i, t in enumerate(PERSONALITY_TRAITS)},
                              last_window_end_ns=21 * NS_PER_SECOND)
    typed = deserialize_message(serialize_message(person_estimate_message(msg, estimate)), msg.PersonEstimate)
    assert typed.face_id == "face2" and typed.windows == 9 and typed.header.stamp.sec == 21
    assert list(typed.personality_traits) == list(PERSONALITY_TRAITS)
    assert list(typed.personality_mean) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert list(typed.personality_std) == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])


def photo_bgr() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)


def test_the_node_reads_audio_common_and_publishes_typed_records_events_and_expressions(context, spin_until):
    """A camera and an audio_capture-style microphone (AudioDataStamped, 44.1 kHz stereo S16LE,
    AudioInfo latched) on ROS topics; out come ~/perception equal to ~/results, laughter events, and
    /humans/faces/<id>/expression in hri_msgs/Expression, and with speaker attribution the REP-155
    voices: /humans/voices/tracked and voice_<face>/is_speaking."""
    rate, channels, chunk, fps = 44100, 2, 4410, 10
    probe = rclpy.create_node("camera_and_audio_capture", context=context)
    image_pub = probe.create_publisher(Image, "/image", qos_profile_sensor_data)
    audio_pub = probe.create_publisher(audio_common.AudioDataStamped, "/audio", qos_profile_sensor_data)
    info_pub = probe.create_publisher(audio_common.AudioInfo, "/audio_info",
                                      QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    info_pub.publish(audio_common.AudioInfo(channels=channels, sample_rate=rate, sample_format="S16LE",
                                            bitrate=rate * channels * 16, coding_format="wave"))
    results, typed, events, expressions, persons, tracked, rois, crops = [], [], [], [], [], [], [], []
    voices, speaking = [], []
    probe.create_subscription(String, "/social_perception/results", lambda m: results.append(json.loads(m.data)),
                              RELIABLE)
    probe.create_subscription(msg.Perception, "/social_perception/perception", typed.append, RELIABLE)
    probe.create_subscription(msg.LaughterEvent, "/social_perception/laughter_events", events.append, RELIABLE)
    probe.create_subscription(msg.PersonEstimate, "/social_perception/person_estimates", persons.append, RELIABLE)
    probe.create_subscription(hri.IdsList, "/humans/faces/tracked", tracked.append, RELIABLE)
    probe.create_subscription(hri.IdsList, "/humans/voices/tracked", voices.append, RELIABLE)
    photo = photo_bgr()
    sent = {"samples": 0, "face": True}

    def publish_frame():
        frame = Image(height=photo.shape[0], width=photo.shape[1], encoding="bgr8", step=photo.shape[1] * 3)
        frame.data = (photo if sent["face"] else np.zeros_like(photo)).tobytes()
        frame.header.stamp = probe.get_clock().now().to_msg()
        image_pub.publish(frame)

    def publish_audio():
        t = (np.arange(chunk) + sent["samples"]) / rate
        tone = (8000 * np.sin(2 * np.pi * 440.0 * t)).astype("<i2")
        message = audio_common.AudioDataStamped()
        message.header.stamp = probe.get_clock().now().to_msg()
        message.audio.data = np.repeat(tone, channels).tobytes()  # interleaved stereo
        audio_pub.publish(message)
        sent["samples"] += chunk

    probe.create_timer(1.0 / fps, publish_frame)
    probe.create_timer(chunk / rate, publish_audio)
    # Thresholds low enough that a random-weights model laughs at once: an onset event.
    perception = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value="ros"), Parameter("model", value="tiny"), Parameter("backend", value="torch"),
        Parameter("hop", value=1.0), Parameter("laughter_on", value=0.02), Parameter("laughter_off", value=0.01),
        Parameter("laughter_min_duration_s", value=0.0), Parameter("speakers", value=True)])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(perception)
    executor.add_node(probe)
    try:
        assert perception.ros_inputs.audio_type == "audio_common"
        expression_topics = lambda: [name for name, types in probe.get_topic_names_and_types()  # noqa: E731
                                     if name.startswith("/humans/faces/") and name.endswith("/expression")]
        spin_until(executor, lambda: any(r["modality"] == "audiovisual" for r in results) and len(typed) >= len(results)
                   and events and expression_topics() and len(persons) >= 2, 90)
        topic = expression_topics()[0]
        assert "hri_msgs/msg/Expression" in dict(probe.get_topic_names_and_types())[topic]
        face_id = topic.split("/")[3]
        probe.create_subscription(hri.Expression, topic, expressions.append, RELIABLE)
        probe.create_subscription(hri.NormalizedRegionOfInterest2D, f"/humans/faces/{face_id}/roi", rois.append,
                                  RELIABLE)
        probe.create_subscription(Image, f"/humans/faces/{face_id}/cropped", crops.append, RELIABLE)
        probe.create_subscription(Bool, f"/humans/voices/voice_{face_id}/is_speaking", speaking.append, RELIABLE)
        spin_until(executor, lambda: expressions and rois and crops and speaking, 30)
        assert any(list(ids.ids) == [face_id] for ids in tracked)
        assert any(list(ids.ids) == [f"voice_{face_id}"] for ids in voices)
        # She leaves: the tracked list empties and her topics go away with her.
        sent["face"] = False
        mine = [f"/humans/faces/{face_id}/{suffix}" for suffix in ("roi", "cropped", "expression")]
        mine.append(f"/humans/voices/voice_{face_id}/is_speaking")
        assert all(probe.count_publishers(name) == 1 for name in mine)
        spin_until(executor, lambda: tracked and list(tracked[-1].ids) == [] and list(voices[-1].ids) == [] and not any(
            probe.count_publishers(name) for name in mine), 30)
    finally:
        executor.shutdown()
        perception.stop()
        perception.destroy_node()
        probe.destroy_node()
    by_window = {(r["face_id"], r["window_end_ns"]): r for r in results}
    for message in typed:
        as_record = as_json(message)
        same_figures(as_record, by_window[(as_record["face_id"], as_record["window_end_ns"])])
    face = next(r for r in results if r["modality"] == "audiovisual")
    assert topic == f"/humans/faces/face{face['face_id']}/expression"
    expression = expressions[0]
    assert expression.expression in HRI_EXPRESSION_CONSTANTS.values() and 0.0 < expression.confidence <= 1.0
    assert -1.0 <= expression.valence <= 1.0 and -1.0 <= expression.arousal <= 1.0
    roi = rois[0]
    assert 0.0 <= roi.xmin < roi.xmax <= 1.0 and 0.0 <= roi.ymin < roi.ymax <= 1.0 and 0.0 < roi.c <= 1.0
    crop = crops[0]
    assert (crop.height, crop.width, crop.encoding) == (224, 224, "bgr8") and len(crop.data) == 224 * 224 * 3
    for estimate in persons:  # each one is the `person` of the face's record of that window
        stamp = estimate.header.stamp.sec * NS_PER_SECOND + estimate.header.stamp.nanosec
        person = by_window[(int(estimate.face_id.removeprefix("face")), stamp)]["person"]
        assert estimate.windows == person["windows"]
        assert list(estimate.personality_mean) == pytest.approx([person["personality_mean"][t] for t in PERSONALITY_TRAITS],
                                                                 abs=1e-6)
    assert [e.windows for e in persons[:2]] == [1, 2]  # one person, counted window by window
    onset = next(e for e in events if e.kind == msg.LaughterEvent.ONSET)
    # With attribution the room laughs: the onset names the face that speaks ("" when none visibly does).
    assert (onset.face_id == "" or onset.face_id.startswith("face")) and onset.probability >= 0.02
