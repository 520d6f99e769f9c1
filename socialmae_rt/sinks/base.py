"""What every sink takes: a record, a laughter event, a status; and a sink that keeps them in memory."""

from __future__ import annotations

from typing import Protocol

from socialmae_rt.results import SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent
from socialmae_rt.stream.status import PipelineStatus


class Sink(Protocol):
    def write_result(self, result: SocialPerception) -> None: ...

    def write_event(self, event: LaughterEvent) -> None: ...

    def write_status(self, status: PipelineStatus) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps records in lists: for embedding the pipeline in a program, for benchmarks and tests.
    Unbounded by design; a long-running program should drain `results` as it goes."""

    def __init__(self) -> None:
        self.results: list[SocialPerception] = []
        self.events: list[LaughterEvent] = []
        self.statuses: list[PipelineStatus] = []

    def write_result(self, result: SocialPerception) -> None:
        self.results.append(result)

    def write_event(self, event: LaughterEvent) -> None:
        self.events.append(event)

    def write_status(self, status: PipelineStatus) -> None:
        self.statuses.append(status)

    def close(self) -> None:
        pass
