"""`socialmae-rt bench-node`: the ROS node as a robot runs it, measured from outside.

Starts `socialmae-rt-node` in its own process on a private ROS domain (discovery kept on this
machine), fed a media file paced in real time, and listens on ~/results with a real rclpy
subscriber. Reports:
- start to first result: from spawning the process to the first ~/results message;
- per record: inference time, publish latency (the record's own: publish - window end on the
  capture clock) and receive latency (this process's monotonic clock at arrival - window end;
  the node stamps a paced file on CLOCK_MONOTONIC, shared by both processes);
- publish overhead = publish latency - inference time (the issue's budget: p95 <= 20 ms).
Prints a table and writes JSON.

With `--faces own hri` it compares where the faces come from instead, on ROS inputs both times
(the file's faces found once beforehand; nodes/hri_detector_replay.py plays them in real time,
looped, from this process): `own` gets a 30 fps camera topic (`image`) and runs our detector and
tracker; `hri` gets a ROS4HRI detector's /humans/faces/tracked and per-face crops at 10 Hz and
runs neither. Both get the same audio topic. Reported per mode: the node process's CPU (user +
system time over wall time, after the first result), publish latency, inference, face records.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from socialmae_rt.util.machine import cores, cpu_name

NS_PER_MS = 1_000_000


def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)),
            "max": float(array.max())}


def start_node_process(parameters: dict[str, Any], domain_id: int, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """`socialmae-rt-node --ros-args -p name:=value ...` in its own process, on ROS domain
    `domain_id` with discovery kept on this machine; stderr is captured (text)."""
    command = [str(Path(sys.executable).with_name("socialmae-rt-node")), "--ros-args"]
    for name, value in parameters.items():
        command += ["-p", f"{name}:={value}"]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGINT, timeout_s: float = 15.0) -> tuple[float, str]:
    """Send `sig` and wait for the exit: (seconds it took, what the process wrote to stderr)."""
    started = time.monotonic()
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=timeout_s)
    return time.monotonic() - started, stderr or ""


def process_peak_rss_mib(pid: int) -> float:
    """High-water mark of a process's resident memory (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def measure_faces(faces: str, recording, model: str = "tiny", backend: str = "torch", hop: float = 0.5,
                  seconds: float = 30.0, threads: int | None = None) -> dict[str, Any]:
    """One node process fed ROS topics from `recording`: faces from a ROS4HRI detector (`hri`) or a
    camera topic and our own detector (`own`). `threads`: the node's compute threads (None: all
    cores; on a small machine leave one to the replay, which is the robot's camera and detector)."""
    from socialmae_rt.nodes.hri_detector_replay import DetectorReplay
    from socialmae_rt.nodes.results_listener import ResultsListener

    domain = random.randint(100, 230)
    listener = ResultsListener(domain)
    replay = DetectorReplay(listener.node, recording, camera=faces == "own", loop=True)
    diagnostics = listener.diagnostics()
    parameters = {"source": "ros", "faces": faces, "model": model, "backend": backend, "hop": hop,
                  "input_audio_type": "int16_array"}
    if threads is not None:
        parameters["threads"] = threads
    process = start_node_process(parameters, domain)
    arrivals = listener.arrivals
    try:
        replay.start()
        deadline = time.monotonic() + 600
        while not arrivals and time.monotonic() < deadline and process.poll() is None:
            listener.spin_once(0.02)
        if not arrivals:
            stderr = process.stderr.read() if process.poll() is not None else ""
            raise RuntimeError(f"the node ({faces} faces) sent no result: {stderr.strip()[-500:] or 'timed out'}")
        counted_from, cpu_from = len(arrivals), process_cpu_s(process.pid)
        started = time.monotonic()
        while time.monotonic() - started < seconds and process.poll() is None:
            listener.spin_once(0.02)
        if process.poll() is not None:
            raise RuntimeError(f"the node ({faces} faces) exited with {process.returncode}: "
                               f"{process.stderr.read().strip()[-1500:]}")
        wall_s = time.monotonic() - started
        cpu_s = process_cpu_s(process.pid) - cpu_from
        stop_process(process)
    finally:
        if process.poll() is None:
            process.kill()
        replay.destroy()
        listener.close()
    records = [r for _, r in arrivals[counted_from:]]
    if not records:
        raise RuntimeError(f"the node ({faces} faces) sent no result in {seconds:.0f} s after its first one")
    return {
        "faces": faces, "model": model, "backend": backend, "hop_s": hop, "threads": threads,
        "seconds": round(wall_s, 2),
        "records": len(records), "face_records": sum(r["face_id"] is not None for r in records),
        "input_counts": {key.removeprefix("source ").removesuffix(" counts"): value
                         for key, value in (diagnostics[-1] if diagnostics else {}).items() if key.endswith(" counts")},
        "cpu_cores": cpu_s / wall_s, "cpu_s": cpu_s,
        "inference_ms": _percentiles([r["latency_ms"]["inference"] for r in records]),
        "preprocess_ms": _percentiles([r["latency_ms"]["preprocess"] for r in records]),
        "publish_latency_ms": _percentiles([r["latency_ms"]["total"] for r in records]),
    }


def faces_table(results: list[dict[str, Any]]) -> str:
    rows = ["| faces from | model | backend | hop | node threads | node CPU (cores) | records (with a face) | "
            "inference p50/p95 | publish latency p50/p95 |", "|" + "---|" * 9]
    for r in results:
        pair = lambda k: f"{r[k]['p50']:.1f} / {r[k]['p95']:.1f} ms"  # noqa: E731
        source = {"own": "own detector (30 fps camera topic)", "hri": "ROS4HRI detector (10 Hz)"}[r["faces"]]
        rows.append(f"| {source} | {r['model']} | {r['backend']} | {r['hop_s']} s | {r['threads'] or 'all'} | "
                    f"{r['cpu_cores']:.2f} | {r['records']} "
                    f"({r['face_records']}) | {pair('inference_ms')} | {pair('publish_latency_ms')} |")
    return "\n".join(rows)


def run_faces_bench(source: str, faces: list[str], model: str, backend: str, hop: float, seconds: float,
                    json_path: str, threads: int | None = None) -> list[dict]:
    from socialmae_rt.nodes.hri_detector_replay import detect_file

    print(f"bench-node: finding the faces of {source} once (our detector, 10 Hz) ...", flush=True)
    started = time.perf_counter()
    recording = detect_file(source, keep_frames="own" in faces)
    detect_ms = (time.perf_counter() - started) * 1e3 / max(1, len(recording.frames))
    results = []
    for mode in faces:
        print(f"bench-node: faces from {mode}, {model} on {backend}, {seconds:.0f} s after the first result ...",
              flush=True)
        results.append(measure_faces(mode, recording, model, backend, hop, seconds, threads))
    print(faces_table(results))
    for r in results:
        print(f"  {r['faces']}: input counters " + "; ".join(f"{k}: {v}" for k, v in r["input_counts"].items()))
    print(f"(finding the faces beforehand took {detect_ms:.1f} ms per frame: decode, detect, track, crop)")
    out = Path(json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{cpu_name()}, {cores()} cores"
    out.write_text(json.dumps({"machine": machine, "source": source, "detect_ms_per_frame": detect_ms,
                               "results": results}, indent=2))
    print(f"wrote {out}")
    return results


def measure(source: str, model: str = "tiny", backend: str = "torch", hop: float = 0.5,
            seconds: float = 20.0) -> dict[str, Any]:
    from socialmae_rt.nodes.results_listener import ResultsListener

    domain = random.randint(100, 230)
    listener = ResultsListener(domain)
    arrivals = listener.arrivals
    started = time.monotonic_ns()
    process = start_node_process({"source": source, "model": model, "backend": backend, "hop": hop,
                                  "realtime": "true"}, domain)
    first_ns = None
    try:
        deadline = time.monotonic() + 600 + seconds  # room for a first build (export, IR, int8 calibration)
        while time.monotonic() < deadline and process.poll() is None:
            listener.spin_once(0.05)
            if arrivals and first_ns is None:
                first_ns = arrivals[0][0]
            if first_ns is not None and time.monotonic_ns() - first_ns > seconds * 1e9:
                break
        if first_ns is None:
            stderr = process.stderr.read() if process.poll() is not None else ""
            raise RuntimeError(f"the node sent no result: {stderr.strip()[-500:] or 'timed out'}")
        peak_rss_mib = process_peak_rss_mib(process.pid)
        stop_s, _ = stop_process(process)
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
    records = [r for _, r in arrivals]
    inference = [r["latency_ms"]["inference"] for r in records]
    publish = [r["latency_ms"]["total"] for r in records]
    receive = [(t - r["window_end_ns"]) / NS_PER_MS for t, r in arrivals]
    return {
        "model": model, "backend": backend, "hop_s": hop, "records": len(records),
        "start_to_first_result_s": (first_ns - started) / 1e9, "peak_rss_mib": peak_rss_mib,
        "stop_s": stop_s, "exit_code": process.returncode,
        "inference_ms": _percentiles(inference), "publish_latency_ms": _percentiles(publish),
        "receive_latency_ms": _percentiles(receive),
        "publish_overhead_ms": _percentiles([p - i for p, i in zip(publish, inference)]),
        "preprocess_ms": _percentiles([r["latency_ms"]["preprocess"] for r in records]),
        # Between the window's end and the moment its last data arrived and it was picked: the
        # input's own granularity (video frame interval, audio packet length) plus queueing.
        "input_wait_ms": _percentiles([r["latency_ms"]["total"] - r["latency_ms"]["preprocess"]
                                       - r["latency_ms"]["inference"] for r in records]),
        "per_record_ms": [{**r["latency_ms"], "receive": round(x, 3), "modality": r["modality"]}
                          for r, x in zip(records, receive)],
    }


def table(results: list[dict[str, Any]]) -> str:
    header = ("| model | backend | start to first result | records | inference p50/p95 | publish latency p50/p95 | "
              "receive latency p50/p95 | publish - inference p95 | of which preprocess / input wait p95 | SIGINT stop | "
              "peak RSS |")
    rows = [header, "|" + "---|" * 11]
    for r in results:
        pair = lambda k: f"{r[k]['p50']:.1f} / {r[k]['p95']:.1f} ms"  # noqa: E731
        rows.append(f"| {r['model']} | {r['backend']} | {r['start_to_first_result_s']:.2f} s | {r['records']} | "
                    f"{pair('inference_ms')} | {pair('publish_latency_ms')} | {pair('receive_latency_ms')} | "
                    f"{r['publish_overhead_ms']['p95']:.1f} ms | {r['preprocess_ms']['p95']:.1f} / "
                    f"{r['input_wait_ms']['p95']:.1f} ms | {r['stop_s']:.2f} s | {r['peak_rss_mib']:.0f} MiB |")
    return "\n".join(rows)


def run_bench(source: str, models: list[str], backend: str, hop: float, seconds: float, json_path: str) -> list[dict]:
    results = []
    for model in models:
        print(f"bench-node: {model} on {backend}, {seconds:.0f} s of results ...", flush=True)
        results.append(measure(source, model, backend, hop, seconds))
    print(table(results))
    out = Path(json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{cpu_name()}, {cores()} cores"
    out.write_text(json.dumps({"machine": machine, "source": source, "results": results}, indent=2))
    print(f"wrote {out}")
    return results
