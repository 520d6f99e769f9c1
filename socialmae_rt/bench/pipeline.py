"""`socialmae-rt bench-pipeline`: what the streaming pipeline costs around the model, measured.

1. per camera frame: OpenCV capture + face detection/tracking + buffering (a 640x480 file read
   through the camera source, unpaced);
2. per window: fbank + video preprocessing of a 4 s window;
3. pipeline overhead around inference on a whole file (offline), per model size;
4. optionally a live soak: the file looped in real time for N minutes, reporting the output rate
   against 1 / inference time and the process RSS at start and end.
Prints tables and writes JSON.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from socialmae_rt.features import audio_to_model_input, frames_to_model_input
from socialmae_rt.messages import VideoFrame
from socialmae_rt.sinks import MemorySink
from socialmae_rt.stream import drive
from socialmae_rt.stream.buffer import AVRingBuffer
from socialmae_rt.util.machine import cores, cpu_name, rss_mib


def _stats(samples_ms: list[float]) -> dict[str, float]:
    values = np.asarray(samples_ms)
    return {"mean_ms": float(values.mean()), "p50_ms": float(np.percentile(values, 50)),
            "p95_ms": float(np.percentile(values, 95)), "n": int(values.size)}


def bench_frames(source_path: str, max_frames: int = 300) -> dict[str, Any]:
    from socialmae_rt.capture.camera import CameraConfig, CameraSource
    from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
    from socialmae_rt.faces.mouth import MouthMeter

    camera = CameraSource(CameraConfig(device=source_path, pace_files=False))
    tracker = FaceTracker(FaceDetector(FaceDetectorConfig()), TrackerConfig())
    mouths = MouthMeter()  # speaker attribution (--speakers): the face mesh on every crop
    buffer = AVRingBuffer()
    capture_ms, track_ms, buffer_ms, total_ms, mouth_ms, crops_cut = [], [], [], [], [], 0
    size = None
    camera.open()
    iterator = iter(camera)
    try:
        for _ in range(max_frames):
            t0 = time.perf_counter()
            frame: VideoFrame | None = next(iterator, None)
            t1 = time.perf_counter()
            if frame is None:
                break
            size = frame.bgr.shape
            crops = tracker.update(frame)
            t2 = time.perf_counter()
            for crop in crops:
                buffer.add_crop(crop)
            buffer.mark_video(frame.stamp_ns)
            t3 = time.perf_counter()
            for crop in crops:
                mouths.opening(crop.bgr)
            mouth_ms.append((time.perf_counter() - t3) * 1e3)
            crops_cut += len(crops)
            capture_ms.append((t1 - t0) * 1e3)
            track_ms.append((t2 - t1) * 1e3)
            buffer_ms.append((t3 - t2) * 1e3)
            total_ms.append((t3 - t0) * 1e3)
    finally:
        camera.close()
        tracker.close()
        mouths.close()
    frames = max(1, len(total_ms))
    faces = crops_cut / max(1, sum(1 for ms in track_ms)) * tracker.config.detect_every_n_frames
    return {"frame_size": list(size) if size else None, "capture": _stats(capture_ms),
            "detect_track": _stats(track_ms), "buffer": _stats(buffer_ms), "total": _stats(total_ms),
            "speakers_mouth": _stats(mouth_ms),
            # the face mesh's cost spread over every frame, per face in view (what --speakers adds)
            "speakers_ms_per_frame_per_face": float(np.sum(mouth_ms)) / frames / max(faces, 1e-9) if crops_cut else None,
            "faces_in_view": faces}


def bench_preprocess(repeats: int = 30) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(64000)).astype(np.float32)  # 4 s at 16 kHz
    crops = [rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(8)]
    for _ in range(3):  # warm-up: first calls pay one-time library initialisation
        audio_to_model_input(audio, 16000)
        frames_to_model_input(crops)
    audio_ms, video_ms = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        audio_to_model_input(audio, 16000)
        t1 = time.perf_counter()
        frames_to_model_input(crops)
        t2 = time.perf_counter()
        audio_ms.append((t1 - t0) * 1e3)
        video_ms.append((t2 - t1) * 1e3)
    both = [a + v for a, v in zip(audio_ms, video_ms)]
    return {"fbank": _stats(audio_ms), "video": _stats(video_ms), "total": _stats(both)}


def _assemble(model: str, source, sinks: list):
    """The run path of `socialmae-rt run` on `source` (auto keeps its background builds, as live)."""
    from socialmae_rt.app.assemble import assemble
    from socialmae_rt.app.options import RunOptions

    return assemble(RunOptions(model=model, quiet=True), sources=[source], sinks=sinks, background=True)


def bench_overhead(source_path: str, model: str) -> dict[str, Any]:
    """Offline run of the whole file: time per window around inference vs inference itself."""
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource

    collect = MemorySink()
    with _assemble(model, MediaFileSource(MediaFileConfig(source_path)), [collect]) as assembly:
        assembly.run(threading.Event())
    inference = np.array([r.latency.inference_ms for r in collect.results])
    total = np.array([r.latency.total_ms for r in collect.results])
    preprocess = np.array([r.latency.preprocess_ms for r in collect.results])
    return {
        "model": model, "windows": len(collect.results),
        "inference_ms_mean": float(inference.mean()), "window_ms_mean": float(total.mean()),
        "preprocess_ms_mean": float(preprocess.mean()),
        "overhead_pct": float(100.0 * (total.sum() - inference.sum()) / inference.sum()),
    }


def bench_soak(source_path: str, model: str, minutes: float) -> dict[str, Any]:
    """The file looped in real time for `minutes`: output rate, skips and RSS over the run."""
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource

    collect = MemorySink()
    source = MediaFileSource(MediaFileConfig(source_path, realtime=True, loop=True))
    assembly = _assemble(model, source, [collect])
    pipeline = assembly.pipeline
    rss_samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample_rss() -> None:
        start = time.monotonic()
        while not stop.wait(5.0):
            rss_samples.append((time.monotonic() - start, rss_mib()))

    sampler = threading.Thread(target=sample_rss, daemon=True)
    rss_start = rss_mib()
    started = time.monotonic()
    sampler.start()
    with assembly:
        drive.run_live(pipeline, assembly.sources, stop, max_seconds=minutes * 60.0)
    stop.set()
    elapsed = time.monotonic() - started
    inference = np.array([r.latency.inference_ms for r in collect.results])
    windows = pipeline.scheduler.windows
    # The first minute holds model warm-up and allocator growth; compare steady state after it.
    steady = [mb for t, mb in rss_samples if t >= 60.0]
    return {
        "model": model, "minutes": elapsed / 60.0, "windows": windows, "skipped": pipeline.scheduler.skipped,
        "output_rate_hz": windows / elapsed, "inverse_inference_hz": float(1000.0 / inference.mean()),
        "rss_mb_start": rss_start, "rss_mb_after_1min": steady[0] if steady else None,
        "rss_mb_end": rss_mib(), "rss_mb_max": max(mb for _, mb in rss_samples) if rss_samples else None,
        "held_crops_end": pipeline.buffer.held_crops(),
    }


def run_bench(source: str, models: list[str], soak_minutes: float, output: str) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {"cpu": cpu_name(), "cores": cores(), "python": platform.python_version()},
        "source": source,
    }
    print(f"bench-pipeline on {results['machine']['cores']} cores; source {source}")
    results["per_frame"] = frames = bench_frames(source)
    print(_frame_table(frames))
    results["per_window_preprocess"] = pre = bench_preprocess()
    print(_preprocess_table(pre))
    results["overhead"] = [bench_overhead(source, m) for m in models]
    print(_overhead_table(results["overhead"]))
    if soak_minutes > 0:
        results["soak"] = soak = bench_soak(source, models[0], soak_minutes)
        print(_soak_table(soak))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"JSON written to {output}")
    return results


def _frame_table(f: dict[str, Any]) -> str:
    rows = [f"per camera frame ({f['frame_size'][1]}x{f['frame_size'][0]}, {f['total']['n']} frames): mean / p95 ms"]
    for name in ("capture", "detect_track", "buffer", "total"):
        rows.append(f"  {name:<13} {f[name]['mean_ms']:7.2f} {f[name]['p95_ms']:7.2f}")
    rows.append(f"  {'+ --speakers':<13} {f['speakers_mouth']['mean_ms']:7.2f} {f['speakers_mouth']['p95_ms']:7.2f}"
                f"   (face mesh on each crop; {_cell(f['speakers_ms_per_frame_per_face'])} ms per frame per face, "
                f"{f['faces_in_view']:.1f} face(s) in view)")
    return "\n".join(rows)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _preprocess_table(p: dict[str, Any]) -> str:
    rows = [f"per window preprocessing (4 s audio + 8 crops, {p['total']['n']} runs after warm-up): mean / p95 ms"]
    for name in ("fbank", "video", "total"):
        rows.append(f"  {name:<13} {p[name]['mean_ms']:7.2f} {p[name]['p95_ms']:7.2f}")
    return "\n".join(rows)


def _overhead_table(rows: list[dict[str, Any]]) -> str:
    lines = ["overhead around inference (offline run of the whole file):",
             f"  {'model':<6} {'windows':>7} {'inference ms':>12} {'window ms':>10} {'overhead':>9}"]
    for r in rows:
        lines.append(f"  {r['model']:<6} {r['windows']:>7} {r['inference_ms_mean']:>12.1f} "
                     f"{r['window_ms_mean']:>10.1f} {r['overhead_pct']:>8.1f}%")
    return "\n".join(lines)


def _soak_table(s: dict[str, Any]) -> str:
    return (f"live soak ({s['model']}, {s['minutes']:.1f} min, file looped in real time): {s['windows']} windows, "
            f"{s['skipped']} skipped; output {s['output_rate_hz']:.3f} Hz vs 1/inference {s['inverse_inference_hz']:.3f} Hz; "
            f"RSS start {s['rss_mb_start']:.0f} MiB, after 1 min {s['rss_mb_after_1min'] or float('nan'):.0f} MiB, "
            f"end {s['rss_mb_end']:.0f} MiB, max {s['rss_mb_max'] or float('nan'):.0f} MiB")

