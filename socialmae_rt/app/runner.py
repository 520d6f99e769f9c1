"""`socialmae-rt run`: assemble a run from RunOptions, drive it to the end of its input (or
`duration`, or SIGINT/SIGTERM), print what ran and a summary."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TextIO

from socialmae_rt.app.assemble import assemble
from socialmae_rt.app.options import RunOptions
from socialmae_rt.backend import Backend, describe_tasks
from socialmae_rt.stream.status import PipelineStatus


def run(options: RunOptions, out: TextIO | None = None) -> PipelineStatus:
    """Run to the end of the source (or `duration`, or SIGINT/SIGTERM); returns the final status.

    SIGINT and SIGTERM stop a running pipeline cleanly (sources closed, sinks flushed, summary
    printed); while sources open and the model loads they abandon the start (KeyboardInterrupt,
    which the command line reports in one line)."""
    out = out or sys.stdout
    stop, running = threading.Event(), threading.Event()

    def on_signal(_signum, _frame) -> None:
        if not running.is_set():
            raise KeyboardInterrupt
        stop.set()

    # Signals only reach the main thread; elsewhere (tests, embedding programs) the caller stops us.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        with assemble(options, console=out) as assembly:
            out.write(backend_line(assembly.backend, options))
            running.set()
            assembly.run(stop)
        status = assembly.status()  # after the sinks closed and flushed
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.write(summary_line(status, options.output))
    return status


def backend_line(backend: Backend, options: RunOptions) -> str:
    """What runs and which checkpoint serves which task, e.g.
    `socialmae-rt: torch (fp32, cpu), hop 0.5 s, source clip.mp4; emotion <- a.safetensors, ...`."""
    info = backend.info
    return (f"socialmae-rt: {info.name} ({info.precision}, {info.device}), hop {options.hop} s, "
            f"source {options.source}{' (real time)' if options.realtime else ''}; {describe_tasks(backend)}\n")


def summary_line(status: PipelineStatus, output: str | None) -> str:
    where = f"; records in {output}" if output else ""
    return (
        f"done: {status.windows} windows, {status.results} records, {status.skipped_windows} skipped, "
        f"latency {status.latency_text()}; last: {status.last}{where}\n"
    )
