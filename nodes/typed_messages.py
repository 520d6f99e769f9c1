"""Records, laughter events and per-person estimates as socialmae_rt_msgs messages (the typed
topics ~/perception, ~/laughter_events and ~/person_estimates), beside the std_msgs topics. They publish when the interface package is built
(make setup, or colcon in a ROS workspace); without it the node says so once and goes on."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

from socialmae_rt.faces.upstream import own_face_name
from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.results import PersonEstimate, SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind
from socialmae_rt.tasks import PERSONALITY_TRAITS

INTERFACE_PACKAGE = "socialmae_rt_msgs"
BUILD_HINT = "build it with `make setup` (scripts/build_interfaces.py) or colcon in a ROS workspace"


def optional_messages(package: str) -> ModuleType | None:
    """`<package>.msg`, or None when that interface package is not installed (or built) here."""
    try:
        return importlib.import_module(f"{package}.msg")
    except ImportError:
        return None


def interface_module() -> ModuleType | None:
    """socialmae_rt_msgs.msg, or None when the package is not built here."""
    return optional_messages(INTERFACE_PACKAGE)


def set_stamp(stamp, stamp_ns: int) -> None:
    stamp.sec, stamp.nanosec = divmod(int(stamp_ns), NS_PER_SECOND)


FaceName = Callable[[int | None], str]  # face id -> its REP-155 id (faces.upstream.FaceIds.name)


def perception_message(msg: ModuleType, record: SocialPerception, face_name: FaceName = own_face_name):
    """The typed twin of `record.to_json()`: every figure the JSON record holds, in its fields."""
    out = msg.Perception()
    set_stamp(out.header.stamp, record.window_end_ns)
    out.header.frame_id = record.stream
    set_stamp(out.window_start, record.window_start_ns)
    out.face_id = face_name(record.face_id)
    out.modality = record.modality
    if record.emotion is not None:
        out.emotion_labels = list(record.emotion)
        out.emotion = [float(v) for v in record.emotion.values()]
    out.has_laughter = record.laughter_probability is not None
    if out.has_laughter:
        out.laughter_probability = float(record.laughter_probability)
        out.laughing = bool(record.laughing)
    if record.personality is not None:
        out.personality_traits = list(PERSONALITY_TRAITS)
        out.personality = [float(record.personality[trait]) for trait in PERSONALITY_TRAITS]
    out.has_speaking = record.speaking is not None
    if out.has_speaking:
        out.speaking_probability = float(record.speaking.probability)
        out.is_speaker = bool(record.speaking.is_speaker)
    out.degraded = record.degraded or ""
    out.window_fill = float(record.window_fill)
    out.random_weights = bool(record.random_weights)
    out.preprocess_ms = float(record.latency.preprocess_ms)
    out.inference_ms = float(record.latency.inference_ms)
    out.latency_ms = float(record.latency.total_ms)
    return out


def laughter_event_message(msg: ModuleType, event: LaughterEvent, stream: str = "default",
                           face_name: FaceName = own_face_name):
    out = msg.LaughterEvent()
    set_stamp(out.header.stamp, event.time_ns)
    out.header.frame_id = stream
    out.kind = msg.LaughterEvent.ONSET if event.kind is LaughterEventKind.ONSET else msg.LaughterEvent.OFFSET
    out.face_id = face_name(event.face_id)
    set_stamp(out.window_end, event.window_end_ns)
    out.probability = float(event.probability)
    return out


def person_estimate_message(msg: ModuleType, estimate: PersonEstimate, stream: str = "default",
                            face_name: FaceName = own_face_name):
    out = msg.PersonEstimate()
    set_stamp(out.header.stamp, estimate.last_window_end_ns)
    out.header.frame_id = stream
    out.face_id = face_name(estimate.face_id)
    out.personality_traits = list(PERSONALITY_TRAITS)
    out.personality_mean = [float(estimate.personality_mean[trait]) for trait in PERSONALITY_TRAITS]
    out.personality_std = [float(estimate.personality_std[trait]) for trait in PERSONALITY_TRAITS]
    out.windows = estimate.windows
    return out
