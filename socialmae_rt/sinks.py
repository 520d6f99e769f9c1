"""Where results go. Every sink takes the same three calls; ROS and ZeroMQ sinks live in nodes/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.postprocess import LaughterEvent
from socialmae_rt.results import SocialPerception, event_to_json


class Sink(Protocol):
    def write_result(self, result: SocialPerception) -> None: ...

    def write_event(self, event: LaughterEvent) -> None: ...

    def write_status(self, status: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps records in lists: for embedding the pipeline in a program, for benchmarks and tests.
    Unbounded by design; a long-running program should drain `results` as it goes."""

    def __init__(self) -> None:
        self.results: list[SocialPerception] = []
        self.events: list[LaughterEvent] = []
        self.statuses: list[dict[str, Any]] = []

    def write_result(self, result: SocialPerception) -> None:
        self.results.append(result)

    def write_event(self, event: LaughterEvent) -> None:
        self.events.append(event)

    def write_status(self, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    def close(self) -> None:
        pass


class JsonlSink:
    """One JSON object per line: results, events and (optionally) status records, flushed per line."""

    def __init__(self, path: str | Path, stream: str = "default", include_embedding: bool = False,
                 include_status: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = self.path.open("w", encoding="utf-8")
        self.stream = stream
        self.include_embedding = include_embedding
        self.include_status = include_status

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def write_result(self, result: SocialPerception) -> None:
        self._write(result.to_json(self.include_embedding))

    def write_event(self, event: LaughterEvent) -> None:
        self._write(event_to_json(event, self.stream))

    def write_status(self, status: dict[str, Any]) -> None:
        if self.include_status:
            self._write({"schema": "socialmae_rt.status/1", **status})

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class ConsoleSink:
    """A compact live line per window: time, face, modality, top emotion, laughter, latency."""

    def __init__(self, out: TextIO | None = None, origin_ns: int | None = None,
                 duration_s: float | None = None) -> None:
        self.out = out or sys.stdout
        self.origin_ns = origin_ns
        self.duration_s = duration_s
        self._last_health: str | None = None

    def _clock(self, stamp_ns: int) -> str:
        seconds = (stamp_ns - self.origin_ns) / NS_PER_SECOND
        if self.duration_s:
            return f"{seconds:7.2f}s {min(100.0, 100.0 * seconds / self.duration_s):5.1f}%"
        return f"{seconds:7.2f}s"

    def write_result(self, r: SocialPerception) -> None:
        if self.origin_ns is None:  # live stamps are monotonic: count from the first window's start
            self.origin_ns = r.window_start_ns
        face = "audio " if r.face_id is None else f"face {r.face_id:<2d}"
        modality = {"audiovisual": "AV", "audio": "A ", "video": " V"}[r.modality]
        top = r.top_emotion
        emotion = f"{top[0]:<8s}{top[1]:.2f}" if top else "emotion  -  "
        laugh = "laugh  -  " if r.laughter_probability is None else (
            f"laugh {r.laughter_probability:.2f}{'*' if r.laughing else ' '}"
        )
        self.out.write(
            f"[{self._clock(r.window_end_ns)}] {face} {modality} {emotion}  {laugh}  "
            f"fill {r.window_fill:.2f}  {r.latency.total_ms:6.0f} ms\n"
        )
        self.out.flush()

    def write_event(self, event: LaughterEvent) -> None:
        if self.origin_ns is None:
            self.origin_ns = event.window_end_ns
        who = "audio" if event.face_id is None else f"face {event.face_id}"
        self.out.write(f"[{self._clock(event.time_ns)}] {who}: {event.kind.value.replace('_', ' ')}\n")
        self.out.flush()

    def write_status(self, status: dict[str, Any]) -> None:
        """A line only when source health or the reason for a missing stream changes."""
        health = status_summary(status)
        if health != self._last_health:
            self._last_health = health
            self.out.write(f"[status] {health}\n")
            self.out.flush()

    def close(self) -> None:
        self.out.flush()


def status_summary(status: dict[str, Any]) -> str:
    """'camera running; microphone failed: ... | video-only: microphone failed: ...'"""
    sources = "; ".join(
        f"{s['name']} {s['state']}" + (f" ({s['detail']})" if s["detail"] else "")
        for s in status.get("sources", [])
    )
    expect = status.get("expect", {})
    waiting = [name for name in ("video", "audio") if expect.get(name)]
    mode = "+".join(waiting) if waiting else "no live stream"
    why = f": {expect['why']}" if expect.get("why") else ""
    return f"{sources or 'no sources'} | expecting {mode}{why}"
