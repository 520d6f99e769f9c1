"""`socialmae-rt bench-triton`: N simulated robots against one Triton server.

Each robot is a thread with its own client that sends one audiovisual request every `hop_s`
(one row per face in view, as the pipeline sends a window), on a fixed grid: a robot whose answer
comes after its next slot skips the slots it missed (latest wins, as the live pipeline does) and
counts them. Per scenario (robots x faces): windows answered per second, request latency p50/p95,
slots skipped, and the batches the server formed (its own statistics: rows per execution).

Without `--url` the command exports a model of the given size (random weights: speed only) to a
temporary Python-backend repository and serves it with the bundled tritonserver on this machine.
"""

from __future__ import annotations

import json
import platform
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from socialmae_rt.app.options import MODEL_NAMES
from socialmae_rt.engines.triton_backend import PROTOCOLS, TritonBackend, TritonConfig
from socialmae_rt.engines.triton_repository import MODEL_PREFIX, TritonRepositoryConfig
from socialmae_rt.util.machine import CpuDescription, cores
from socialmae_rt.util.options import option


@dataclass(frozen=True)
class Scenario:
    robots: int
    faces: int


def _server_statistics(config: TritonConfig, model: str) -> tuple[int, int]:
    """(rows inferred, executions) the server has counted for `model` so far."""
    from socialmae_rt.engines.triton_backend import client_module

    module = client_module(config.protocol)
    client = module.InferenceServerClient(config.url)
    try:
        if config.protocol == "grpc":
            stats = client.get_inference_statistics(model, as_json=True)
        else:
            stats = client.get_inference_statistics(model)
    finally:
        client.close()
    entry = stats["model_stats"][0]
    return int(entry.get("inference_count", 0)), int(entry.get("execution_count", 0))


def _robot(backend: TritonBackend, audio: np.ndarray, video: np.ndarray, hop_s: float, until: float,
           start: float, latencies: list[float], counts: dict[str, int], lock: threading.Lock) -> None:
    slot = 0
    while True:
        due = start + slot * hop_s
        if due >= until:
            return
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        sent = time.monotonic()
        backend.infer(audio, video)
        answered = time.monotonic()
        with lock:
            latencies.append(answered - sent)
            counts["windows"] += audio.shape[0]
            counts["requests"] += 1
        next_slot = int((answered - start) // hop_s) + 1  # the first slot not yet passed
        with lock:
            counts["skipped"] += max(0, next_slot - slot - 1)
        slot = max(slot + 1, next_slot)


def run_scenario(config: TritonConfig, scenario: Scenario, seconds: float, hop_s: float,
                 inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    backends = [TritonBackend(config) for _ in range(scenario.robots)]
    model = backends[0].models[next(iter(backends[0].models))]
    audio = np.ascontiguousarray(inputs["audio"][:1].repeat(scenario.faces, axis=0))
    video = np.ascontiguousarray(inputs["video"][:1].repeat(scenario.faces, axis=0))
    for backend in backends:
        backend.infer(audio, video)  # warm-up: connection, first execution
    rows_before, executions_before = _server_statistics(config, model)
    latencies: list[float] = []
    counts = {"windows": 0, "requests": 0, "skipped": 0}
    lock = threading.Lock()
    start = time.monotonic() + 0.05
    until = start + seconds
    threads = [threading.Thread(target=_robot, args=(b, audio, video, hop_s, until, start + i * hop_s / len(backends),
                                                       latencies, counts, lock), daemon=True)
               for i, b in enumerate(backends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    rows_after, executions_after = _server_statistics(config, model)
    for backend in backends:
        backend.close()
    executions = executions_after - executions_before
    measured = np.array(latencies) if latencies else np.array([np.nan])
    offered = scenario.robots * scenario.faces / hop_s
    return {
        "robots": scenario.robots, "faces": scenario.faces, "hop_s": hop_s, "seconds": round(elapsed, 2),
        "requests": counts["requests"], "windows": counts["windows"], "skipped_slots": counts["skipped"],
        "offered_windows_per_s": offered, "windows_per_s": counts["windows"] / elapsed,
        "latency_p50_ms": float(np.percentile(measured, 50) * 1e3),
        "latency_p95_ms": float(np.percentile(measured, 95) * 1e3),
        "server_executions": executions,
        "mean_server_batch": (rows_after - rows_before) / executions if executions else None,
    }


def format_table(rows: list[dict]) -> str:
    header = (f"{'robots':>6} {'faces':>5} {'offered/s':>9} {'windows/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'skipped':>7} {'server batch':>12}")
    lines = [header, "-" * len(header)]
    for r in rows:
        batch = "" if r["mean_server_batch"] is None else f"{r['mean_server_batch']:.2f}"
        lines.append(f"{r['robots']:>6} {r['faces']:>5} {r['offered_windows_per_s']:>9.1f} {r['windows_per_s']:>9.2f} "
                     f"{r['latency_p50_ms']:>8.0f} {r['latency_p95_ms']:>8.0f} {r['skipped_slots']:>7} {batch:>12}")
    lines.append("offered: faces x robots / hop (windows per second asked for); windows/s: answered; skipped: "
                 "hop slots a robot missed because its answer came late; server batch: rows per server execution")
    return "\n".join(lines)


def plot(rows: list[dict], machine: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for index, faces in enumerate(sorted({r["faces"] for r in rows})):
        mine = [r for r in rows if r["faces"] == faces]
        robots = [r["robots"] for r in mine]
        color = f"C{index}"
        left.plot(robots, [r["windows_per_s"] for r in mine], marker="o", color=color, label=f"{faces} face(s) answered")
        left.plot(robots, [r["offered_windows_per_s"] for r in mine], linestyle=":", color=color)
        right.plot(robots, [r["latency_p50_ms"] for r in mine], marker="o", color=color, label=f"{faces} face(s) p50")
        right.plot(robots, [r["latency_p95_ms"] for r in mine], marker="x", linestyle="--", color=color,
                   label=f"{faces} face(s) p95")
    left.set_xticks(sorted({r["robots"] for r in rows}))
    right.set_xticks(sorted({r["robots"] for r in rows}))
    left.set_xlabel("robots")
    left.set_ylabel("windows per second (dotted: offered)")
    right.set_xlabel("robots")
    right.set_ylabel("request latency, ms")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle(f"socialmae-rt bench-triton: {machine['server']} ({machine['model']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class BenchTritonOptions:
    """`socialmae-rt bench-triton`: the server (or a local one), the model it serves, the scenarios."""

    url: str | None = option(None, "an existing server (HOST:PORT) holding a repository from export-triton; "
                             "default: start one here")
    protocol: str = option("grpc", "default: %(default)s", choices=PROTOCOLS)
    model_prefix: str = option(MODEL_PREFIX, "default: %(default)s")
    model: str = option("tiny", "size served when no --url is given (default: %(default)s)", choices=MODEL_NAMES)
    robots: tuple[int, ...] = option((1, 2, 4), "robot counts (default: 1 2 4)", nargs="+", type=int)
    faces: tuple[int, ...] = option((1, 4), "faces per window (default: 1 4)", nargs="+", type=int)
    seconds: float = option(15.0, "seconds per scenario (default: %(default)g)")
    hop: float = option(0.5, "seconds between a robot's windows (default: %(default)g)")
    max_batch_size: int = option(TritonRepositoryConfig.max_batch_size, "local server: max batch (default: "
                                 "%(default)s)")
    max_queue_delay_us: int = option(TritonRepositoryConfig.max_queue_delay_us, "local server: dynamic batching "
                                     "delay (default: %(default)s)")
    json: str = option("outputs/bench_triton.json", "JSON path; the PNG goes beside it")


def run_bench_triton(options: BenchTritonOptions) -> dict[str, Any]:
    from socialmae_rt.bench.backends import bench_config

    url, protocol, model_prefix, size = options.url, options.protocol, options.model_prefix, options.model
    robots, faces, seconds, hop_s, output = options.robots, options.faces, options.seconds, options.hop, options.json
    max_batch_size, max_queue_delay_us = options.max_batch_size, options.max_queue_delay_us
    from socialmae_rt.engines.onnx_export import example_inputs

    config = bench_config(size)
    inputs = example_inputs(config, batch=1, seed=3)
    cpu = CpuDescription.this_machine()
    machine = {"client_cpu": cpu.name, "cores": cores(), "python": platform.python_version(), "model": size}
    local = None
    workdir = None
    if url is None:
        from socialmae_rt.engines.onnx_export import export_onnx
        from socialmae_rt.engines.triton_repository import RepositoryEntry, TritonRepositoryConfig, write_repository
        from socialmae_rt.engines.triton_server import LocalTritonServer
        from socialmae_rt.model import SocialMAE

        workdir = tempfile.TemporaryDirectory(prefix="socialmae-bench-triton-")
        print(f"exporting a random-weights {size} model and starting the bundled tritonserver (CPU)", flush=True)
        export = export_onnx(SocialMAE(config).eval(), Path(workdir.name) / "export")
        write_repository([RepositoryEntry(export)], Path(workdir.name) / "repo",
                         TritonRepositoryConfig(platform="python", max_batch_size=max_batch_size,
                                                preferred_batch_sizes=(min(4, max_batch_size), max_batch_size),
                                                max_queue_delay_us=max_queue_delay_us, model_prefix=model_prefix))
        local = LocalTritonServer(Path(workdir.name) / "repo").start()
        url = local.grpc_url if protocol == "grpc" else local.http_url
        machine["server"] = f"bundled tritonserver (Python backend, onnxruntime CPU) on {cpu.name}, {cores()} cores"
    else:
        machine["server"] = f"Triton at {url}"
    triton = TritonConfig(url=url, protocol=protocol, model_prefix=model_prefix, timeout_s=60.0)
    rows = []
    try:
        for count in robots:
            for face_count in faces:
                print(f"  {count} robot(s) x {face_count} face(s) for {seconds:.0f} s ...", flush=True)
                rows.append(run_scenario(triton, Scenario(count, face_count), seconds, hop_s, inputs))
    finally:
        if local is not None:
            local.stop()
        if workdir is not None:
            workdir.cleanup()
    report = {"machine": machine, "rows": rows, "hop_s": hop_s}
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    plot(rows, machine, path.with_suffix(".png"))
    print(format_table(rows))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return report
