"""Where results go. Every sink takes the same three calls; ROS and ZeroMQ sinks live in nodes/."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.postprocess import LaughterEvent
from socialmae_rt.results import SocialPerception, event_to_json

log = logging.getLogger(__name__)


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


def _end_of_last_line(path: Path, size: int, block: int = 1 << 16) -> int:
    """Offset just after the last newline in the first `size` bytes of `path` (0: none)."""
    with open(path, "rb") as handle:
        end = size
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


class JsonlSink:
    """One JSON object per line: results, events and (optionally) status records.

    The file stays valid JSONL whatever happens to the process or the disk:
    - it is appended to (`fresh=True` starts it afresh), and a partial last line left by a killed
      writer is cut off when the file is opened again;
    - each record is written as one whole line with one write call on the file descriptor; if the
      write fails (disk full, I/O error), the file is cut back to its last complete line, the
      error is logged once, the record is counted as lost, and the next record tries again, so
      writing resumes by itself when space returns. The other sinks never notice.
    """

    def __init__(self, path: str | Path, stream: str = "default", include_embedding: bool = False,
                 include_status: bool = False, fresh: bool = False) -> None:
        self.path = Path(path)
        self.stream = stream
        self.include_embedding = include_embedding
        self.include_status = include_status
        self.lost = 0  # records not written because writing failed
        self.repaired_bytes = 0  # bytes of a partial last line cut off at open
        self.error: str | None = None  # the current write error, None while writing works
        for folder in (self.path.parent, *self.path.parent.parents):
            if folder.exists() and not folder.is_dir():
                raise ValueError(f"--output {self.path}: {folder} is a file, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0), 0o644)
        except OSError as err:
            raise ValueError(f"--output {self.path}: cannot write there ({err.strerror})") from err
        self._size = self._repair()

    def _repair(self) -> int:
        """Cut a partial last line (a writer killed mid-line); -> the size of the valid file."""
        size = os.fstat(self._fd).st_size
        end = _end_of_last_line(self.path, size)
        if end < size:
            os.ftruncate(self._fd, end)
            self.repaired_bytes = size - end
            log.warning("%s ended in a partial line (a writer was killed mid-record): cut %d bytes; appending after "
                        "the last complete record", self.path, size - end)
        return end

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, line)
            if written != len(line):  # the disk filled up during this line
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as err:
            self._failed(err)
            return
        self._size += len(line)
        if self.error is not None:
            log.warning("%s: writing again (%d record(s) lost while it failed)", self.path, self.lost)
            self.error = None

    def _failed(self, err: OSError) -> None:
        try:  # never leave a partial line behind
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # the truncate itself failed: the open-time repair cuts the partial line next time
        self.lost += 1
        message = err.strerror or str(err)
        if self.error != message:  # reported once per kind of failure, not per record
            log.error("%s: cannot write records (%s); other outputs go on, and writing resumes when it can",
                      self.path, message)
        self.error = message

    def write_result(self, result: SocialPerception) -> None:
        self._write(result.to_json(self.include_embedding))

    def write_event(self, event: LaughterEvent) -> None:
        self._write(event_to_json(event, self.stream))

    def write_status(self, status: dict[str, Any]) -> None:
        if self.include_status:
            self._write({"schema": "socialmae_rt.status/1", **status})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
    backend = status.get("backend") or {}
    down = f" | backend down: {backend['down_reason']}" if backend.get("down_s") is not None else ""
    return f"{sources or 'no sources'} | expecting {mode}{why}{down}{switching_summary(backend.get('switching'))}"


def switching_summary(switching: dict[str, Any] | None) -> str:
    """' | backend ov-int8 <- torch (ready); building ov; shadow check 4/4 agree (cos >= 0.99931)'"""
    if not switching:
        return ""
    parts = []
    if switching["switches"]:
        last = switching["switches"][-1]
        parts.append(f"switched {last['from']} -> {last['to']} ({last['why']})")
    if switching["pending"]:
        parts.append(switching["pending"] + " in the background")
    shadow = switching.get("shadow")
    if shadow and shadow["active"] and shadow["of_last"]:
        parts.append(f"shadow check {shadow['agreeing']}/{shadow['of_last']} agree with fp32 "
                     f"(lowest cosine {shadow['rolling_min_cosine']:.5f})")
    parts += switching["problems"][-1:]
    return "".join(f" | {part}" for part in parts)
