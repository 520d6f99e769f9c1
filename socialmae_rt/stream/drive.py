"""Driving a pipeline through its input: the two run loops.

- `run_offline(pipeline, source)`: a file as fast as possible, on this thread, every window in order.
- `run_live(pipeline, sources)`: cameras, microphones or files paced in real time; capture runs in
  its own threads (one per source) and the newest complete window wins when inference is slower
  than the hop; a status thread writes status on time.

Both close the sources they were given and write a last status when the input ends.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

from socialmae_rt.messages import SourceState
from socialmae_rt.stream.pipeline import Pipeline
from socialmae_rt.stream.status import Expectation

CAPTURE_JOIN_S = 5.0  # how long a capture or status thread may take to finish once stopped


def run_offline(pipeline: Pipeline, source, stop: threading.Event | None = None,
                on_progress: Callable[[int], None] | None = None, until_ns: int | None = None) -> int:
    """Every window of a media file, in order, as fast as the backend goes (up to media time
    `until_ns`, when given). `on_progress(stamp_ns)` after each item's due windows ran. Returns records."""
    pipeline.scheduler.config.latest_wins = False
    source.open()
    pipeline.expect = Expectation(video=source.has_video, audio=source.has_audio,
                                  reason=_tracks_reason(source.has_video, source.has_audio))
    try:
        for item in source:
            if stop is not None and stop.is_set():
                break
            pipeline.ingest_or_count(item)
            _run_due(pipeline)
            if on_progress is not None:
                on_progress(item.stamp_ns)
            if until_ns is not None and item.stamp_ns >= until_ns:
                break
    finally:
        source.close()
    # The file is over: what was delivered is all there is.
    pipeline.expect = Expectation(video=False, audio=False, reason="end of file")
    _run_due(pipeline)
    pipeline.write_status([source])
    if source.status.state is SourceState.FAILED:
        raise RuntimeError(f"source {source.status.name} failed: {source.status.detail}")
    return pipeline.results


def run_live(pipeline: Pipeline, sources: Sequence, stop: threading.Event | None = None,
             max_seconds: float | None = None) -> int:
    """Capture threads feed the buffer; this thread runs the newest complete window each time."""
    stop = stop or threading.Event()
    clocks = {s.clock for s in sources}
    if len(clocks) > 1:
        raise ValueError(f"sources stamp on different clocks ({', '.join(sorted(clocks))}); "
                         "their streams could not be aligned")
    pipeline.clock = clocks.pop()
    pipeline.scheduler.config.latest_wins = True
    for source in sources:
        source.open()
    threads = [threading.Thread(target=_capture, args=(pipeline, s, stop), name=f"capture-{s.status.name}",
                                daemon=True) for s in sources]
    for thread in threads:
        thread.start()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    # Status goes out on time from its own thread: between windows it would wait for inference.
    status_stop = threading.Event()
    status_thread = threading.Thread(target=_status_every_interval, args=(pipeline, sources, status_stop),
                                     name="pipeline-status", daemon=True)
    status_thread.start()
    try:
        while not stop.is_set():
            pipeline.update_expectation(sources)
            if pipeline.process_due() is None:
                if not any(t.is_alive() for t in threads):
                    pipeline.expect = Expectation(video=False, audio=False, reason="all sources ended")
                    _run_due(pipeline)
                    break
                pipeline.wait_for_data(timeout_s=0.05)
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        stop.set()
        status_stop.set()
        status_thread.join(timeout=CAPTURE_JOIN_S)
        for source in sources:
            source.close()
        for thread in threads:
            thread.join(timeout=CAPTURE_JOIN_S)
        pipeline.write_status(sources)
    return pipeline.results


def _run_due(pipeline: Pipeline) -> None:
    while pipeline.process_due() is not None:
        pass


def _capture(pipeline: Pipeline, source, stop: threading.Event) -> None:
    for item in source:
        if stop.is_set():
            break
        pipeline.ingest_or_count(item)


def _status_every_interval(pipeline: Pipeline, sources: Sequence, stop: threading.Event) -> None:
    while not stop.wait(pipeline.config.status_interval_s):
        pipeline.write_status(sources)


def _tracks_reason(has_video: bool, has_audio: bool) -> str:
    if has_video and has_audio:
        return ""
    return "file has no audio track" if has_video else "file has no video track"
