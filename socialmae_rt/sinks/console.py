"""One line per window on a terminal, and a line when the health of sources or backend changes."""

from __future__ import annotations

import sys
from typing import TextIO

from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.results import SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent
from socialmae_rt.stream.status import PipelineStatus, SwitchingHealth


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
        speaking = "" if r.speaking is None else (
            f"  speak {r.speaking.probability:.2f}{'*' if r.speaking.is_speaker else ' '}")
        self.out.write(
            f"[{self._clock(r.window_end_ns)}] {face} {modality} {emotion}  {laugh}  "
            f"fill {r.window_fill:.2f}  {r.latency.total_ms:6.0f} ms{speaking}\n"
        )
        self.out.flush()

    def write_event(self, event: LaughterEvent) -> None:
        if self.origin_ns is None:
            self.origin_ns = event.window_end_ns
        who = "audio" if event.face_id is None else f"face {event.face_id}"
        self.out.write(f"[{self._clock(event.time_ns)}] {who}: {event.kind.value.replace('_', ' ')}\n")
        self.out.flush()

    def write_status(self, status: PipelineStatus) -> None:
        """A line only when source health or the reason for a missing stream changes."""
        health = status_summary(status)
        if health != self._last_health:
            self._last_health = health
            self.out.write(f"[status] {health}\n")
            self.out.flush()

    def close(self) -> None:
        self.out.flush()


def status_summary(status: PipelineStatus) -> str:
    """'camera running; microphone failed: ... | video-only: microphone failed: ...'"""
    sources = "; ".join(f"{s.name} {s.state.value}" + (f" ({s.detail})" if s.detail else "") for s in status.sources)
    expect = status.expect
    waiting = [name for name, wanted in (("video", expect.video), ("audio", expect.audio)) if wanted]
    mode = "+".join(waiting) if waiting else "no live stream"
    why = f": {expect.reason}" if expect.reason else ""
    backend = status.backend
    down = f" | backend down: {backend.down_reason}" if backend.down_s is not None else ""
    return f"{sources or 'no sources'} | expecting {mode}{why}{down}{switching_summary(backend.switching)}"


def switching_summary(switching: SwitchingHealth | None) -> str:
    """' | backend ov-int8 <- torch (ready); building ov; shadow check 4/4 agree (cos >= 0.99931)'"""
    if switching is None:
        return ""
    parts = []
    if switching.switches:
        last = switching.switches[-1]
        parts.append(f"switched {last.from_backend} -> {last.to_backend} ({last.why})")
    if switching.pending:
        parts.append(switching.pending + " in the background")
    shadow = switching.shadow
    if shadow is not None and shadow.active and shadow.of_last:
        parts.append(f"shadow check {shadow.agreeing}/{shadow.of_last} agree with fp32 "
                     f"(lowest cosine {shadow.rolling_min_cosine:.5f})")
    parts += switching.problems[-1:]
    return "".join(f" | {part}" for part in parts)
