"""Result and event records: one versioned JSON form shared by JSONL, ZeroMQ and ROS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from socialmae_rt.stream.postprocess import LaughterEvent

RESULT_SCHEMA = "socialmae_rt.result/1"
EVENT_SCHEMA = "socialmae_rt.event/1"


@dataclass
class Latency:
    preprocess_ms: float
    inference_ms: float
    total_ms: float  # publish time - window end (live clocks), or - window ready (offline files)

    def to_json(self) -> dict[str, float]:
        return {
            "preprocess": round(self.preprocess_ms, 3),
            "inference": round(self.inference_ms, 3),
            "total": round(self.total_ms, 3),
        }


@dataclass(frozen=True)
class PersonEstimate:
    """Personality accumulated over one person's windows so far (a trait, unlike the per-window emotion)."""

    face_id: int
    windows: int  # windows counted
    personality_mean: dict[str, float]  # trait -> running mean
    personality_std: dict[str, float]  # trait -> standard deviation over those windows (0 for one)
    last_window_end_ns: int

    def to_json(self) -> dict[str, Any]:
        return {"windows": self.windows, "personality_mean": {k: round(v, 6) for k, v in self.personality_mean.items()},
                "personality_std": {k: round(v, 6) for k, v in self.personality_std.items()}}


@dataclass
class SocialPerception:
    """One window's perception of one face (face_id None: the audio-only stream)."""

    face_id: int | None
    window_start_ns: int
    window_end_ns: int
    modality: str  # "audiovisual" | "audio" | "video"
    emotion: dict[str, float] | None
    laughter_probability: float | None
    laughing: bool | None
    personality: dict[str, float] | None
    window_fill: float  # share of the 8 frame slots filled by real crops (1.0 for audio-only)
    latency: Latency
    stream: str = "default"
    embedding: list[float] | None = None
    degraded: str | None = None  # why a stream is missing (source failed, stalled, no track), else None
    speaking: Any = None  # speakers.Speaking when speaker attribution is on, else None (not in the JSON)
    random_weights: bool = False  # the model had no weights: every figure here is meaningless
    person: PersonEstimate | None = None  # this face's personality over its windows so far (stream/persons.py)
    face_name: str | None = None  # the id an upstream face detector gave this face (faces:=hri), else None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def top_emotion(self) -> tuple[str, float] | None:
        if not self.emotion:
            return None
        label = max(self.emotion, key=self.emotion.get)
        return label, self.emotion[label]

    def to_json(self, include_embedding: bool = False) -> dict[str, Any]:
        record: dict[str, Any] = {
            "schema": RESULT_SCHEMA,
            "stream": self.stream,
            "face_id": self.face_id,
            "window_start_ns": self.window_start_ns,
            "window_end_ns": self.window_end_ns,
            "modality": self.modality,
            "emotion": self.emotion,
            "laughter": None
            if self.laughter_probability is None
            else {"probability": self.laughter_probability, "laughing": bool(self.laughing)},
            "personality": self.personality,
            "window_fill": self.window_fill,
            "latency_ms": self.latency.to_json(),
            "degraded": self.degraded,
            "random_weights": self.random_weights,
        }
        if include_embedding and self.embedding is not None:
            record["embedding"] = self.embedding
        if self.speaking is not None:
            record["speaking"] = self.speaking.to_json()
        if self.person is not None:
            record["person"] = self.person.to_json()
        if self.face_name is not None:
            record["face_name"] = self.face_name
        record.update(self.extra)
        return record


def event_to_json(event: LaughterEvent, stream: str = "default") -> dict[str, Any]:
    return {
        "schema": EVENT_SCHEMA,
        "stream": stream,
        "event": event.kind.value,
        "face_id": event.face_id,
        "time_ns": event.time_ns,
        "window_end_ns": event.window_end_ns,
        "probability": event.probability,
    }
