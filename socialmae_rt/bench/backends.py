"""`socialmae-rt bench`: every available backend, every model size, batches of 1, 2 and 4 faces.

Repetitions are interleaved (backend A, B, C, A, B, C, ...) so drift in machine load hits all
backends alike. Per size, backend and batch: median and p95 time per 4 s audiovisual window,
windows/s, peak memory of a fresh process running it (measured in a child), load time, and
accuracy against torch fp32 on the same inputs. Two reference rows: `torch` (our fp32 model)
and `eager-reference` (the same weights computed as the reference code does: explicit
attention, convolution patch embeddings), so every run says how far we are from both. The
machine's matrix-multiply peaks (fp32: torch, ONNX Runtime or OpenVINO; bf16: torch or
OpenVINO; int8: ONNX Runtime's MatMulInteger or OpenVINO) turn GFLOP per window into a floor
time; every row is a multiple of the floor for its arithmetic. Then batch 1 again beside
`contention` busy processes: the slowdown a robot's other nodes would cause.
Writes a table to stdout, JSON, and a PNG chart.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from socialmae_rt.backend import Int8Refused
from socialmae_rt.engines.factory import create_backend
from socialmae_rt.engines.onnx_export import compare_outputs, example_inputs
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig
from socialmae_rt.model.profile import count_gflops
from socialmae_rt.util.machine import CpuDescription, cores

log = logging.getLogger(__name__)

# Which peak bounds which backend (ov: from the precision it actually runs).
ARITHMETIC = {"torch": "fp32", "eager-reference": "fp32", "torch-bf16": "bf16", "ort": "fp32", "ort-int8": "int8",
              "ov-int8": "int8", "trt": "fp16"}
# Our model as the reference code computes it (explicit attention, convolution patch embeddings).
REFERENCE = "eager-reference"
CONTENTION_REPEATS = 5


def _time_matmul(run, flops: float, repeats: int) -> float:
    run()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def matmul_peaks(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best-of-N GFLOP/s of one square matmul, the best library for each arithmetic:
    fp32 (torch, ONNX Runtime or OpenVINO), bf16 (torch or OpenVINO), int8 (ONNX Runtime
    MatMulInteger or OpenVINO's quantized MatMul)."""
    flops = 2.0 * size**3
    a32, b32 = torch.randn(size, size), torch.randn(size, size)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    rng = np.random.default_rng(0)
    fp32_feeds = {"a": a32.numpy(), "b": b32.numpy()}
    int8_feeds = {"a": rng.integers(0, 255, (size, size), dtype=np.uint8),
                  "b": rng.integers(-127, 127, (size, size), dtype=np.int8)}
    ort_fp32 = _ort_matmul("MatMul", size, "FLOAT", "FLOAT", "FLOAT")
    ort_int8 = _ort_matmul("MatMulInteger", size, "UINT8", "INT8", "INT32")
    peaks = {
        "fp32": max(_time_matmul(lambda: torch.mm(a32, b32), flops, repeats),
                    _time_matmul(lambda: ort_fp32.run(None, fp32_feeds), flops, repeats)),
        "int8": _time_matmul(lambda: ort_int8.run(None, int8_feeds), flops, repeats),
    }
    if CpuDescription.this_machine().has_bf16:  # emulated bf16 has no peak worth a floor, and takes minutes
        peaks["bf16"] = _time_matmul(lambda: torch.mm(a16, b16), flops, repeats)
    if importlib.util.find_spec("openvino") is not None:
        for arithmetic in peaks:
            request = _ov_matmul(size, arithmetic)
            peaks[arithmetic] = max(peaks[arithmetic], _time_matmul(lambda: request.infer([a32.numpy()]), flops, repeats))
    return peaks


def _ov_matmul(size: int, arithmetic: str):
    """An OpenVINO infer request computing x @ W for a constant W, in fp32, bf16 or int8 (x and W
    fake-quantized: the plugin runs such a MatMul on int8 kernels)."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([size, size], ov.Type.f32, name="x")
    w = ops.constant(np.random.default_rng(1).standard_normal((size, size)).astype(np.float32))
    if arithmetic == "int8":
        low, high = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
        x_in = ops.fake_quantize(x, low, high, low, high, 256)
        w = ops.fake_quantize(w, low, high, low, high, 255)
    else:
        x_in = x
    model = ov.Model([ops.matmul(x_in, w, False, False)], [x], "matmul_peak")
    hint = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}[arithmetic]
    config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    return ov.Core().compile_model(model, "CPU", config).create_infer_request()


def _ort_matmul(op: str, size: int, a_type: str, b_type: str, y_type: str):
    """An ONNX Runtime session computing one size x size matmul."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])],
        f"{op}_peak",
        [helper.make_tensor_value_info("a", getattr(TensorProto, a_type), [size, size]),
         helper.make_tensor_value_info("b", getattr(TensorProto, b_type), [size, size])],
        [helper.make_tensor_value_info("y", getattr(TensorProto, y_type), [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def peak_rss_mb(name: str, size: str, cache_dir: str | None, threads: int | None) -> float:
    """Peak resident memory of a fresh process that loads this backend and runs one window.

    Measured in a child process so that memory other backends held or freed does not blur it.
    """
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across fork+exec.
    code = (
        "import logging; logging.disable(logging.WARNING);"
        "from socialmae_rt.util.threads import yield_idle_threads; yield_idle_threads();"
        "from socialmae_rt.bench.backends import _one_window;"
        f"_one_window({name!r}, {size!r}, {cache_dir!r}, {threads!r});"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"peak-memory child for {name} ({size}) failed: {result.stderr[-500:]}")
    return int(result.stdout.strip().splitlines()[-1]) / 1024  # VmHWM is in kB


def bench_config(size: str) -> SocialMAEConfig:
    return SocialMAEConfig.variant(size, extra_heads={"laughter": 1, "personality": 5})


def make_backend(name: str, config: SocialMAEConfig, cache_dir: str | None, threads: int | None):
    """A backend by name as the bench runs it (random weights), `eager-reference` included."""
    options: dict[str, Any] = {"threads": threads} if threads else {}
    if name == REFERENCE:
        from socialmae_rt.engines.eager_reference import as_reference_code

        backend = create_backend("torch", None, config, **options)
        backend.model = as_reference_code(backend.model)
        backend.info = replace(backend.info, name=REFERENCE)
        return backend
    if name not in ("torch", "torch-bf16"):
        options["cache_dir"] = cache_dir
    return create_backend(name, None, config, **options)


def _one_window(name: str, size: str, cache_dir: str | None, threads: int | None) -> None:
    config = bench_config(size)
    inputs = example_inputs(config, batch=1, seed=3)
    make_backend(name, config, cache_dir, threads).infer(inputs["audio"], inputs["video"])


def _outputs(backend, audio, video) -> dict[str, np.ndarray]:
    out = backend.infer(audio, video)
    return {"embedding": out.embedding, **out.heads}


def _timed(backend, audio, video) -> tuple[float, dict[str, np.ndarray]]:
    start = time.perf_counter()
    out = _outputs(backend, audio, video)
    return time.perf_counter() - start, out


@contextlib.contextmanager
def busy_loops(count: int):
    """`count` processes that each keep one core busy (a robot's other nodes), stopped on exit."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0)  # let them get going
        yield loops
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def _arithmetic(name: str, backend) -> str:
    if name == "ov":
        return "bf16" if backend.info.precision == "bf16" else "fp32"
    return ARITHMETIC.get(name, "fp32")


def bench_size(size: str, backends: list[str], repeats: int, cache_dir: str | None, threads: int | None,
               batches: Sequence[int] = (1,), contention: int = 0, memory: bool = True,
               held_out: bool = True) -> list[dict]:
    """Rows for one model size: every backend at every batch (interleaved), then batch 1 again
    beside `contention` busy processes. `memory`: each backend's peak RSS in a fresh child process
    (seconds per backend; None when off). `held_out`: every backend scored against torch on the
    int8 gate's held-out suite (needs torch among the backends)."""
    config = bench_config(size)
    gflops = count_gflops(SocialMAE(config).eval(), Modality.AUDIOVISUAL)
    inputs = example_inputs(config, batch=max(batches), seed=3)
    created: dict[str, Any] = {}
    loads: dict[str, dict[str, Any]] = {}
    for name in backends:
        print(f"  {size}: loading {name}", flush=True)
        started = time.perf_counter()
        try:
            created[name] = make_backend(name, config, cache_dir, threads)
        except Int8Refused as refused:  # a row we cannot have, not a failed benchmark
            print(f"  {size}: {name} left out: {refused}", flush=True)
            continue
        loads[name] = {"actual": created[name].info.name, "precision": created[name].info.precision,
                       "load_s": getattr(created[name], "load_s", time.perf_counter() - started),
                       "arithmetic": _arithmetic(name, created[name]),
                       "peak_rss_mb": peak_rss_mb(name, size, cache_dir, threads) if memory else None}
    results = []
    for batch in batches:
        audio, video = inputs["audio"][:batch], inputs["video"][:batch]
        times: dict[str, list[float]] = {name: [] for name in created}
        last: dict[str, dict[str, np.ndarray]] = {}
        for backend in created.values():
            _outputs(backend, audio, video)  # warm-up: first-shape compilation, caches
        for _ in range(max(3, repeats // batch)):
            for name, backend in created.items():
                elapsed, last[name] = _timed(backend, audio, video)
                times[name].append(elapsed)
        reference = last.get("torch")
        for name in created:
            measured = np.array(times[name])
            accuracy = compare_outputs(reference, last[name]) if reference is not None else {}
            results.append({
                "size": size, "backend": name, "batch": batch, **loads[name], "gflop": gflops,
                "median_s": float(np.median(measured)), "p95_s": float(np.percentile(measured, 95)),
                "per_window_s": float(np.median(measured)) / batch, "windows_per_s": batch / float(np.median(measured)),
                "repeats": len(measured),
                "cosine_logits": accuracy.get("emotion", {}).get("min_cosine"),
                "max_abs_logits": accuracy.get("emotion", {}).get("max_abs"),
                "cosine_embedding": accuracy.get("embedding", {}).get("min_cosine"),
            })
    if held_out and "torch" in created:
        agreement = held_out_agreement(created)
        for row in results:
            row.update(agreement.get(row["backend"], {}))
    if contention:
        contended = _contended(created, inputs, contention)
        for row in results:
            if row["batch"] == 1:
                row["contended_median_s"] = contended[row["backend"]]
                row["contention"] = contention
                row["slowdown"] = contended[row["backend"]] / row["median_s"]
    for backend in created.values():
        backend.close()
    return results


def held_out_agreement(created: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per backend, against torch fp32 on the held-out suite (clips no calibration saw; every graph):
    the lowest cosine of any multi-value output and the largest laughter probability difference."""
    from socialmae_rt.engines.int8_gate import ReferenceOutputs, held_out_windows, score, worst_per_clip

    def runner(backend):
        def run(modality, feeds):
            parts = [backend.infer(*(feeds[n][i:i + 4] if n in feeds else None for n in ("audio", "video")))
                     for i in range(0, next(iter(feeds.values())).shape[0], 4)]
            return {"embedding": np.concatenate([p.embedding for p in parts]),
                    **{k: np.concatenate([p.heads[k] for p in parts]) for k in parts[0].heads}}
        return run

    windows = held_out_windows(created["torch"].preprocess)
    print(f"  scoring every backend on {len(windows)} held-out windows", flush=True)
    reference = ReferenceOutputs(runner(created["torch"]), windows)
    found = {}
    for name, backend in created.items():
        worst = worst_per_clip(score(reference, runner(backend))["clips"]).values()
        found[name] = {"held_out_min_cosine": min(w["min_cosine"] for w in worst),
                       "held_out_max_prob_diff": max(w["max_prob_diff"] for w in worst)}
    return found


def _contended(created: dict[str, Any], inputs: dict[str, np.ndarray], count: int) -> dict[str, float]:
    audio, video = inputs["audio"][:1], inputs["video"][:1]
    times: dict[str, list[float]] = {name: [] for name in created}
    with busy_loops(count):
        for _ in range(CONTENTION_REPEATS):
            for name, backend in created.items():
                times[name].append(_timed(backend, audio, video)[0])
    return {name: float(np.median(values)) for name, values in times.items()}


def default_backends() -> list[str]:
    """torch, the eager reference, and every other backend this install can run."""
    # torch-bf16 only where bf16 is native (elsewhere torch emulates it)
    bf16 = ["torch-bf16"] if CpuDescription.this_machine().has_bf16 else []
    found = ["torch", REFERENCE, *bf16, "ort", "ort-int8"]
    if importlib.util.find_spec("openvino") is not None:
        found.append("ov")
        if importlib.util.find_spec("nncf") is not None:
            found.append("ov-int8")
    if _tensorrt_present():
        found.append("trt")
    return found


def run_bench(sizes: list[str], backends: list[str] | None, repeats: int, output: str,
              cache_dir: str | None = None, threads: int | None = None, batches: Sequence[int] = (1, 2, 4),
              contention: int = 1) -> dict[str, Any]:
    backends = list(dict.fromkeys(backends or default_backends()))
    if "torch" not in backends:
        backends = ["torch", *backends]  # the reference every other backend is compared with
    cpu = CpuDescription.this_machine()
    machine = {"cpu": cpu.name, "cores": cores(), "threads": threads or cpu.cores, "features": cpu.summary(),
               "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": _version("onnxruntime"),
               "openvino": _version("openvino")}
    print(f"bench: {cpu.summary()}; backends {', '.join(backends)}; sizes {', '.join(sizes)}; batches "
          f"{', '.join(map(str, batches))}; {repeats} interleaved repetitions; contention {contention} busy process(es)")
    peaks = matmul_peaks()
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    rows = []
    for size in sizes:
        for row in bench_size(size, backends, repeats, cache_dir, threads, batches, contention):
            floor_s = row["gflop"] / peaks[row["arithmetic"]] if row["arithmetic"] in peaks else None
            row.update(floor_s=floor_s, x_floor=row["per_window_s"] / floor_s if floor_s else None)
            rows.append(row)
        _speedups(rows, size)
    report = {"machine": machine, "matmul_peak_gflops": peaks, "results": rows}
    print(format_table(rows))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    chart = out.with_suffix(".png")
    plot(rows, peaks, machine, chart)
    print(f"JSON written to {out}, chart to {chart}")
    return report


def _speedups(rows: list[dict], size: str) -> None:
    """Per window, against torch fp32 and against the reference code's arithmetic at the same batch."""
    for row in (r for r in rows if r["size"] == size):
        same = {r["backend"]: r["per_window_s"] for r in rows if r["size"] == size and r["batch"] == row["batch"]}
        row["speedup_vs_torch_fp32"] = same["torch"] / row["per_window_s"] if "torch" in same else None
        row["speedup_vs_reference"] = same[REFERENCE] / row["per_window_s"] if REFERENCE in same else None


def _cell(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    """One line per size x backend x batch; times are per window (a batch of B windows / B)."""
    header = (f"{'size':<6} {'backend':<15} {'B':>2} {'s/window':>9} {'p95 s':>7} {'win/s':>6} {'x torch':>7} "
              f"{'x ref':>6} {'floor s':>8} {'x floor':>7} {'x busy':>6} {'cos logits':>10} {'max|d|':>8} "
              f"{'held-out cos':>12} {'held-out dP':>11} {'load s':>6} {'peak MiB':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        name = r["backend"] if r["actual"] == r["backend"] else f"{r['backend']}->{r['actual']}"
        lines.append(
            f"{r['size']:<6} {name:<15} {r.get('batch', 1):>2} {r['per_window_s']:>9.3f} {r['p95_s'] / r.get('batch', 1):>7.3f} "
            f"{r['windows_per_s']:>6.2f} {_cell(r['speedup_vs_torch_fp32'], '.2f'):>7} "
            f"{_cell(r.get('speedup_vs_reference'), '.2f'):>6} {_cell(r['floor_s'], '.3f'):>8} "
            f"{_cell(r['x_floor'], '.1f'):>7} {_cell(r.get('slowdown'), '.2f'):>6} "
            f"{_cell(r['cosine_logits'], '.5f'):>10} {_cell(r['max_abs_logits'], '.2e'):>8} "
            f"{_cell(r.get('held_out_min_cosine'), '.5f'):>12} {_cell(r.get('held_out_max_prob_diff'), '.4f'):>11} "
            f"{r['load_s']:>6.2f} {_cell(r['peak_rss_mb'], '.0f'):>8}"
        )
    lines.append("s/window: median per window (batch time / B); x torch, x ref: speed-up vs torch fp32 and vs the "
                 "reference code's arithmetic at the same B; floor: GFLOP / this machine's matmul peak for the "
                 "backend's arithmetic; x busy: slowdown beside the busy process(es); cos: vs torch fp32 on random inputs; "
                 "held-out cos / dP: the lowest output cosine and the largest laughter probability difference vs "
                 "torch fp32 on the held-out suite (clips no int8 calibration saw)")
    return "\n".join(lines)


def plot(rows: list[dict], peaks: dict[str, float], machine: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(r["size"] for r in rows))
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        mine = [r for r in rows if r["size"] == size and r.get("batch", 1) == 1]
        names = [r["backend"] for r in mine]
        medians = [r["median_s"] * 1e3 for r in mine]
        p95 = [r["p95_s"] * 1e3 for r in mine]
        bars = ax.bar(names, medians, color=["#888888" if n == "torch" else "#3b7dd8" for n in names])
        ax.errorbar(names, medians, yerr=[np.zeros(len(mine)), np.subtract(p95, medians)], fmt="none", ecolor="black")
        busy = [(name, r["contended_median_s"] * 1e3) for name, r in zip(names, mine) if r.get("contended_median_s")]
        if busy:
            ax.scatter([n for n, _ in busy], [t for _, t in busy], marker="x", color="#d83b3b", zorder=3,
                       label=f"beside {mine[0]['contention']} busy process(es)")
            ax.legend(fontsize=7)
        for bar, r in zip(bars, mine):
            ax.annotate(f"{r['speedup_vs_torch_fp32']:.1f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
            if r["floor_s"]:
                ax.hlines(r["floor_s"] * 1e3, bar.get_x(), bar.get_x() + bar.get_width(), colors="red", linestyles=":")
        ax.set_title(f"{size}: {mine[0]['gflop']:.0f} GFLOP / window")
        ax.set_ylabel("ms per 4 s window (median, p95 whisker)")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"socialmae-rt bench: {machine['cpu']}, {machine['cores']} cores\n"
                 "batch 1; label: speed-up vs torch fp32; red dotted: matmul-peak floor", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tensorrt_present() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


