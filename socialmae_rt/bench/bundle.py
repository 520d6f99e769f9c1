"""`socialmae-rt bench --bundle`: what serving every task costs per window.

Three ways to get emotion, laughter and personality, run through the real pipeline (PyAV file,
MediaPipe tracking, buffer, preprocessing, backend) on the same generated clip, every window:

- one checkpoint (emotion only): the baseline, one encoder pass;
- a bundle of three checkpoints (as `weights import` writes them): three encoder passes;
- a merged student (`distill --teachers`): one encoder with three heads.

Per window: preprocessing ms (must not grow with the number of checkpoints: a window is
preprocessed once) and inference ms, median and p95, and inference relative to the baseline.
Random weights: cost does not depend on the values.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from socialmae_rt.model import SocialMAE, SocialMAEConfig, save_checkpoint
from socialmae_rt.tasks import EMOTION_LABELS, PERSONALITY_TRAITS
from socialmae_rt.util.machine import cores, cpu_name
from socialmae_rt.weights.bundle import write_bundle_entry

HEADS = {"emotion": list(EMOTION_LABELS), "laughter": ["neutral", "smile", "laughter"],
         "personality": list(PERSONALITY_TRAITS)}


def write_task_checkpoints(size: str, folder: Path, seed: int = 0) -> Path:
    """A bundle folder of three random single-task checkpoints of `size`, as `weights import` writes them."""
    for offset, (task, labels) in enumerate(HEADS.items()):
        torch.manual_seed(seed + offset)
        config = SocialMAEConfig.variant(size, primary_head=task, num_classes=len(labels), head_labels={task: labels})
        save_checkpoint(SocialMAE(config), folder / f"{task}.safetensors", metadata={"task": task, "labels": labels})
        write_bundle_entry(folder, task, f"{task}.safetensors")
    return folder


def write_merged_student(size: str, path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    sizes = {task: len(labels) for task, labels in HEADS.items()}
    config = SocialMAEConfig.variant(size, num_classes=sizes.pop("emotion"), extra_heads=sizes, head_labels=HEADS)
    return save_checkpoint(SocialMAE(config), path)


def bench_weights(clip: Path, weights: str, backend: str, threads: int | None) -> dict[str, Any]:
    """Every window of `clip` through the pipeline with `weights`; per-window latency figures."""
    from socialmae_rt.app.assemble import assemble
    from socialmae_rt.app.options import RunOptions
    from socialmae_rt.sinks import MemorySink

    sink = MemorySink()
    options = RunOptions(source=str(clip), weights=weights, backend=backend, threads=threads, quiet=True)
    with assemble(options, sinks=[sink], background=True) as assembly:
        tasks = [task for task in HEADS if task in assembly.backend.model_config.head_sizes]
        assembly.run(threading.Event())
    windows = {}
    for record in sink.results:  # one latency per window, whatever the number of faces
        windows.setdefault(record.window_end_ns, record.latency)
    timed = list(windows.values())[1:] or list(windows.values())  # the first window warms the backend up
    pre = np.array([lat.preprocess_ms for lat in timed])
    inf = np.array([lat.inference_ms for lat in timed])
    return {"windows": len(timed), "tasks": tasks,
            "preprocess_ms": {"p50": float(np.median(pre)), "p95": float(np.percentile(pre, 95))},
            "inference_ms": {"p50": float(np.median(inf)), "p95": float(np.percentile(inf, 95))}}


def run_bundle_bench(models: list[str], backend: str, seconds: float, student: str | None, output: str,
                     threads: int | None = None) -> dict[str, Any]:
    from socialmae_rt.media.sample import build_sample_clip

    results: dict[str, Any] = {"machine": {"cpu": cpu_name(), "cores": cores()},
                               "backend": backend, "rows": []}
    with tempfile.TemporaryDirectory(prefix="socialmae_bench_bundle_") as tmp:
        clip = build_sample_clip(Path(tmp) / "clip.mp4", seconds=seconds).path
        print(f"bench --bundle: {backend} on {results['machine']['cpu']} ({results['machine']['cores']} cores), "
              f"a {seconds:g} s clip with a face and speech, every window; random weights")
        for size in models:
            folder = write_task_checkpoints(size, Path(tmp) / f"bundle_{size}")
            student_size = student or size
            merged = write_merged_student(student_size, Path(tmp) / f"student_{student_size}.safetensors")
            cases = [("one checkpoint (emotion)", size, 1, f"emotion={folder / 'emotion.safetensors'}"),
                     ("bundle of 3 checkpoints", size, 3, str(folder)),
                     (f"merged student ({student_size})", student_size, 1, str(merged))]
            baseline = None
            for name, encoder, passes, weights in cases:
                row = bench_weights(clip, weights, backend, threads) | {"model": size, "weights": name,
                                                                       "encoder": encoder, "encoder_passes": passes}
                baseline = baseline or row["inference_ms"]["p50"]
                row["inference_vs_one"] = row["inference_ms"]["p50"] / baseline
                results["rows"].append(row)
                print(_row(row), flush=True)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"JSON written to {output}")
    return results


HEADER = (f"{'model':<6} {'weights':<26} {'tasks':<28} {'windows':>7} {'preprocess ms p50/p95':>22} "
          f"{'inference ms p50/p95':>21} {'vs one':>7}")


def _row(row: dict[str, Any]) -> str:
    if row["weights"].startswith("one"):
        print(HEADER)
    pre, inf = row["preprocess_ms"], row["inference_ms"]
    return (f"{row['model']:<6} {row['weights']:<26} {','.join(row['tasks']):<28} {row['windows']:>7} "
            f"{pre['p50']:>11.1f} / {pre['p95']:<8.1f} {inf['p50']:>10.0f} / {inf['p95']:<8.0f} "
            f"{row['inference_vs_one']:>6.2f}x")
