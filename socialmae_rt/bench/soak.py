"""`socialmae-rt soak`: a file looped in real time for N minutes through the whole run path.

Samples resident memory and the pipeline's held state every few seconds and reports what a
robot that runs for hours cares about: does memory stay flat, does every window run or get
skipped for a reason, does every record reach the JSONL, and are there stretches without
output (gaps). Prints a line a minute and a summary table; writes JSON.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from socialmae_rt.app.options import RunOptions
from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.util.machine import cores, cpu_name, rss_mib
from socialmae_rt.util.options import option


def soak_run_defaults() -> RunOptions:
    """What a soak runs unless told otherwise: the tiny model, records to outputs/soak.jsonl (afresh)."""
    return RunOptions(model="tiny", output="outputs/soak.jsonl", fresh_output=True, quiet=True)


@dataclass
class SoakOptions:
    """`socialmae-rt soak`: a run (its --source, --model, --backend, --weights, --hop, --threads and
    --output are RunOptions') looped in real time, plus what only the soak has."""

    run: RunOptions = field(default_factory=soak_run_defaults)
    minutes: float = option(60.0, "how long (default: %(default)g)")
    json: str = option("outputs/soak.json", "the report (default: %(default)s)")
    sample_every_s: float = 5.0
    gap_s: float = option(2.0, "no record for longer than this (on the capture clock) counts as a gap (default: "
                          "%(default)g)", flag="--gap-s")

    def __post_init__(self) -> None:
        if not Path(self.run.source).is_file():
            raise FileNotFoundError(f"--source {self.run.source}: no such file (make one with: "
                                    "python -m socialmae_rt.media.sample OUT.mp4)")
        if self.minutes <= 0:
            raise ValueError(f"--minutes must be > 0, got {self.minutes}")


# The run flags a soak takes (RunOptions'), then its own, in --help order.
SOAK_RUN_FLAGS = ("source", "model", "backend", "weights", "hop", "threads", "output")
SOAK_FLAGS = ("minutes", "json", "gap_s")


class _Counting:
    """A sink that only keeps what the summary needs: window ends, latencies, counts (bounded)."""

    def __init__(self) -> None:
        self.results = 0
        self.ends_ns: list[int] = []
        self.latency_ms: list[float] = []

    def write_result(self, result) -> None:
        self.results += 1
        if not self.ends_ns or self.ends_ns[-1] != result.window_end_ns:
            self.ends_ns.append(result.window_end_ns)
            self.latency_ms.append(result.latency.total_ms)

    def write_event(self, event) -> None:
        pass

    def write_status(self, status) -> None:
        pass

    def close(self) -> None:
        pass


def run_soak(options: SoakOptions, out=None) -> dict[str, Any]:
    import sys

    from socialmae_rt.app.assemble import assemble
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
    from socialmae_rt.sinks import JsonlSink

    out = out or sys.stdout
    run = options.run
    counting = _Counting()
    source = MediaFileSource(MediaFileConfig(run.source, realtime=True, loop=True))
    samples: list[dict[str, float]] = []
    stop = threading.Event()
    with assemble(dataclasses.replace(run, duration=options.minutes * 60.0), sources=[source],
                  sinks=[counting]) as assembly:
        pipeline = assembly.pipeline
        jsonl = next(sink for sink in assembly.sinks if isinstance(sink, JsonlSink))
        started = time.monotonic()

        def sample() -> None:
            next_print = 60.0
            while not stop.wait(options.sample_every_s):
                elapsed = time.monotonic() - started
                samples.append({"t_s": elapsed, "rss_mib": rss_mib(), "held_crops": pipeline.buffer.held_crops(),
                                "faces": len(pipeline.buffer.face_ids())})
                if elapsed >= next_print:
                    out.write(f"[{elapsed / 60:5.1f} min] RSS {samples[-1]['rss_mib']:.0f} MiB, "
                              f"{pipeline.scheduler.windows} windows, {pipeline.scheduler.skipped} skipped, "
                              f"{counting.results} records\n")
                    out.flush()
                    next_print += 60.0

        backend = assembly.backend.info
        out.write(f"soak: {run.source} looped in real time for {options.minutes:g} min, {run.model} on "
                  f"{backend.name} ({backend.precision}), records to {run.output}\n")
        rss_start = rss_mib()
        sampler = threading.Thread(target=sample, name="soak-sampler", daemon=True)
        sampler.start()
        try:
            assembly.run(stop)
        finally:
            stop.set()
            sampler.join(timeout=5.0)
    elapsed = time.monotonic() - started
    written = sum(1 for line in Path(run.output).read_text().splitlines() if '"socialmae_rt.result/1"' in line)
    ends = np.array(counting.ends_ns, dtype=np.int64)
    intervals_s = np.diff(ends) / NS_PER_SECOND if ends.size > 1 else np.array([])
    gaps = [{"after_s": float((ends[i] - ends[0]) / NS_PER_SECOND), "length_s": float(v)}
            for i, v in enumerate(intervals_s) if v > options.gap_s]
    after_first_minute = [s["rss_mib"] for s in samples if s["t_s"] >= 60.0]
    latency = np.array(counting.latency_ms) if counting.latency_ms else np.array([np.nan])
    report = {
        "source": run.source, "model": run.model, "backend": backend.name, "minutes": elapsed / 60.0,
        "cpu": cpu_name(), "cores": cores(),
        "rss_mib": {"start": rss_start, "after_1_min": after_first_minute[0] if after_first_minute else None,
                    "end": rss_mib(), "max": max((s["rss_mib"] for s in samples), default=rss_start)},
        "windows": pipeline.scheduler.windows, "skipped": pipeline.scheduler.skipped,
        "records": counting.results, "records_in_jsonl": written, "jsonl_lost": jsonl.lost,
        "latency_ms": {"p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95))},
        "gap_s": options.gap_s, "gaps": gaps, "longest_interval_s": float(intervals_s.max()) if intervals_s.size else None,
        "dropped": dict(pipeline.dropped), "audio_gaps": pipeline.buffer.audio.gaps,
        "source_counters": source.status.snapshot().counters,
        "samples": samples,
    }
    if report["rss_mib"]["after_1_min"]:
        report["rss_growth_after_1_min"] = report["rss_mib"]["end"] / report["rss_mib"]["after_1_min"] - 1.0
    Path(options.json).parent.mkdir(parents=True, exist_ok=True)
    Path(options.json).write_text(json.dumps(report, indent=2) + "\n")
    out.write(summary_table(report) + f"\nJSON written to {options.json}\n")
    return report


def summary_table(r: dict[str, Any]) -> str:
    rss = r["rss_mib"]
    one = "n/a" if rss["after_1_min"] is None else f"{rss['after_1_min']:.0f}"
    growth = r.get("rss_growth_after_1_min")
    lines = [
        f"soak of {r['minutes']:.1f} min ({r['model']} on {r['backend']}, {r['cpu']}, {r['cores']} cores)",
        f"  RSS MiB: start {rss['start']:.0f}, after 1 min {one}, end {rss['end']:.0f}, max {rss['max']:.0f}"
        + ("" if growth is None else f" (end vs 1 min: {growth * 100:+.1f} %)"),
        f"  windows run {r['windows']}, skipped {r['skipped']}; records {r['records']}, "
        f"in the JSONL {r['records_in_jsonl']} (lost {r['jsonl_lost']})",
        f"  latency p50 {r['latency_ms']['p50']:.0f} ms, p95 {r['latency_ms']['p95']:.0f} ms",
        f"  gaps (no record for > {r['gap_s']:g} s): {len(r['gaps'])}"
        + (f", longest {r['longest_interval_s']:.2f} s between records" if r["longest_interval_s"] else ""),
        f"  dropped windows: {r['dropped'] or 'none'}; audio gaps filled: {r['audio_gaps']}",
    ]
    return "\n".join(lines)
