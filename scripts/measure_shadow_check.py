"""What the live shadow check costs: window latency and CPU time with it off and on.

    .venv/bin/python scripts/measure_shadow_check.py [--model tiny] [--seconds 60] [--every 30 5 1]

The sample clip looped in real time through the pipeline on ort-int8 (built with a loose bar:
this measures the check's cost, not int8's accuracy), once without the check and once per
`--every` interval. Prints per run: windows, latency p50/p95 (ms), CPU seconds of the whole
process per second of run, checks done, and the reference's time for one window on its one
thread. The CPU is printed first.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, nargs="+", default=[30.0, 5.0, 1.0])
    args = parser.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    print(next((line for line in cpu.splitlines() if line.startswith("Model name")), "Model name: ?"), flush=True)
    from socialmae_rt.app.options import RunOptions, model_config_for
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
    from socialmae_rt.engines import create_backend
    from socialmae_rt.engines.switching import ShadowConfig, SwitchingBackend
    from socialmae_rt.faces import FaceDetector, FaceTracker, TrackerConfig
    from socialmae_rt.media.sample import build_sample_clip
    from socialmae_rt.sinks import MemorySink
    from socialmae_rt.stream import drive
    from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig

    config = model_config_for(RunOptions(model=args.model))
    clip = Path(tempfile.mkdtemp()) / "sample.mp4"
    build_sample_clip(clip)
    loose = {"min_cosine": 0.5, "max_prob_diff": 1.0}
    print(f"{'shadow every':>12} {'windows':>7} {'p50 ms':>7} {'p95 ms':>7} {'CPU s/s':>7} {'checks':>6}")
    for every in [None, *args.every]:
        backend = create_backend("ort-int8", None, config, **loose)
        reference = lambda: create_backend("ort", None, config, threads=1)  # noqa: E731
        shadow = ShadowConfig(enabled=every is not None, every_s=every or 30.0, min_cosine=0.5, max_prob_diff=1.0)
        switching = SwitchingBackend(backend, reference=reference, shadow=shadow)
        with FaceDetector() as detector:
            pipeline = Pipeline(switching, FaceTracker(detector, TrackerConfig()), [MemorySink()], PipelineConfig())
            stop = threading.Event()
            source = MediaFileSource(MediaFileConfig(str(clip), realtime=True, loop=True))
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            timer = threading.Timer(args.seconds, stop.set)
            timer.start()
            drive.run_live(pipeline, [source], stop)
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            status = pipeline.status()
            pipeline.close()
        cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        label = "off" if every is None else f"{every:g} s"
        print(f"{label:>12} {status.windows:>7} {status.latency_ms_p50:>7.0f} {status.latency_ms_p95:>7.0f} "
              f"{cpu_s / wall:>7.2f} {switching.checks:>6}", flush=True)
    reference = create_backend("ort", None, config, threads=1)
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((1, 1024, 128)).astype(np.float32)
    video = rng.standard_normal((1, 3, 224, 224, 8)).astype(np.float32)
    reference.infer(audio, video)
    started = time.perf_counter()
    for _ in range(3):
        reference.infer(audio, video)
    print(f"one shadow check (fp32 reference, 1 thread, audio+video): {(time.perf_counter() - started) / 3:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
