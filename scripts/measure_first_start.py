"""Time from `socialmae-rt run` starting to its first window, and when it switched backends.

    .venv/bin/python scripts/measure_first_start.py --model base [--cache DIR] [--seconds 120] [--source CLIP]

Runs the command line on the sample clip (paced in real time, looped by repeating the run's
--duration) with an empty cache (a fresh folder unless --cache is given) and prints: seconds to
the first per-window line, the backend lines, every switch the status records report, and the
run's summary. The CPU is printed first (figures depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="base")
    parser.add_argument("--cache", help="cache folder (default: a new empty one)")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to run (a clip this long is written)")
    args = parser.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    print(next((line for line in cpu.splitlines() if line.startswith("Model name")), "Model name: ?"), flush=True)
    cache = args.cache or tempfile.mkdtemp(prefix="socialmae-first-start-")
    clip = Path(cache) / "clip.mp4"
    subprocess.run([sys.executable, "-m", "socialmae_rt.media.sample", str(clip), "--seconds", str(args.seconds)],
                   check=True, capture_output=True)
    records = Path(cache) / "records.jsonl"
    env = {**os.environ, "SOCIALMAE_RT_CACHE": cache}
    started = time.monotonic()
    child = subprocess.Popen([str(ROOT / ".venv/bin/socialmae-rt"), "run", "--source", str(clip), "--realtime",
                              "--mic", "none", "--model", args.model, "--status", "--output", str(records)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first: list[float] = []

    def read_stderr() -> None:
        for line in child.stderr:
            if "socialmae-rt:" in line and "quantizing" not in line:
                print(f"[{time.monotonic() - started:7.1f} s] {line.rstrip()}", flush=True)

    threading.Thread(target=read_stderr, daemon=True).start()
    for line in child.stdout:
        if line.startswith("socialmae-rt:") or line.startswith("done:"):
            print(f"[{time.monotonic() - started:7.1f} s] {line.rstrip()}", flush=True)
        elif not first and "face" in line:
            first.append(time.monotonic() - started)
            print(f"[{first[0]:7.1f} s] first window: {line.rstrip()}", flush=True)
    child.wait()
    switches = []
    for line in records.read_text().splitlines():
        record = json.loads(line)
        if record.get("schema") == "socialmae_rt.status/1":
            switches = (record["backend"].get("switching") or {}).get("switches", switches)
    print(f"first window after {first[0]:.1f} s" if first else "no window", flush=True)
    for switch in switches:
        print(f"switch at {switch['at_s']} s after the backend was made: {switch['from']} -> {switch['to']} ({switch['why']})")
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
