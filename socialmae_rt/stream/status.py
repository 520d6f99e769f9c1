"""What a running pipeline reports about itself, typed: the runner, the demo, the node and every
sink read these attributes; `to_dict()` is the JSON status record (schema socialmae_rt.status/1)
that the JSONL file and the ZeroMQ `status` topic carry, key for key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from socialmae_rt.messages import SourceSnapshot


@dataclass(frozen=True)
class Switch:
    """A switching backend gave way from one backend to another, `at_s` seconds into the run."""

    at_s: float
    from_backend: str
    to_backend: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"at_s": self.at_s, "from": self.from_backend, "to": self.to_backend, "why": self.why}


@dataclass(frozen=True)
class ShadowHealth:
    """The live shadow check of an approximate (int8/bf16) backend against its fp32 reference."""

    reference: str  # the fp32 backend the live windows are re-run through
    every_s: float
    checks: int  # shadow checks run so far
    agreeing: int  # of the last `of_last` checks, how many met the int8 gate's bar
    of_last: int
    rolling_min_cosine: float | None
    rolling_max_prob_diff: float | None
    failing_in_a_row: int
    active: bool  # False while the running backend is the fp32 reference itself

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SwitchingHealth:
    """A backend that starts on what is built and switches to better ones (engines/switching.py)."""

    pending: str | None  # what is being built or waited for, in a few words (None: nothing)
    switches: tuple[Switch, ...]
    fallback_reason: str | None  # why the running backend replaced a better one (None: it did not)
    problems: tuple[str, ...]  # builds that failed, checks refused
    shadow: ShadowHealth | None  # None: no shadow check (off, or nothing approximate to check)

    def to_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "switches": [s.to_dict() for s in self.switches],
                "fallback_reason": self.fallback_reason, "problems": list(self.problems),
                "shadow": None if self.shadow is None else self.shadow.to_dict()}


@dataclass(frozen=True)
class BackendStatus:
    name: str
    precision: str
    device: str
    weights: str
    tasks: dict[str, str]  # task -> the checkpoint that serves it
    down_s: float | None  # how long a remote backend has been out of reach (None: it answers)
    down_reason: str | None
    down_grace_s: float  # down for longer than this is an ERROR in /diagnostics
    switching: SwitchingHealth | None  # None: a backend that never switches

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "precision": self.precision, "device": self.device, "weights": self.weights,
                "tasks": dict(self.tasks), "down_s": self.down_s, "down_reason": self.down_reason,
                "down_grace_s": self.down_grace_s,
                "switching": None if self.switching is None else self.switching.to_dict()}


@dataclass(frozen=True)
class Expectation:
    """Which streams the window scheduler waits for; a stream nobody delivers is not waited on."""

    video: bool = True
    audio: bool = True
    reason: str = ""  # why a stream is not waited for ("" when both are)

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "audio": self.audio, "why": self.reason}


@dataclass(frozen=True)
class PipelineStatus:
    backend: BackendStatus
    windows: int  # windows run
    skipped_windows: int  # windows passed over because inference was slower than the hop
    results: int  # records written
    windows_per_s: float
    latency_ms_p50: float | None  # publish time minus window end, over the last 200 records (None: none yet)
    latency_ms_p95: float | None
    expect: Expectation
    last: str  # what the last window did, or why it did nothing
    dropped: dict[str, int]  # why -> windows (or rows, or ingested items) dropped
    nonfinite_audio_samples: int
    last_error: str | None
    faces: list[int]  # faces held in the buffer now
    sources: list[SourceSnapshot]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend.to_dict(), "windows": self.windows, "skipped_windows": self.skipped_windows,
                "results": self.results, "windows_per_s": self.windows_per_s, "latency_ms_p50": self.latency_ms_p50,
                "latency_ms_p95": self.latency_ms_p95, "expect": self.expect.to_dict(), "last": self.last,
                "dropped": dict(self.dropped), "nonfinite_audio_samples": self.nonfinite_audio_samples,
                "last_error": self.last_error, "faces": list(self.faces),
                "sources": [s.to_dict() for s in self.sources]}

    def latency_text(self) -> str:
        """End-to-end latency percentiles for a person: "p50 291 ms, p95 410 ms" (or "n/a")."""
        if self.latency_ms_p50 is None:
            return "n/a"
        return f"p50 {self.latency_ms_p50:.0f} ms, p95 {self.latency_ms_p95:.0f} ms"
