"""`socialmae-rt bench`: every available backend, every model size, in one run.

Repetitions are interleaved (backend A, B, C, A, B, C, ...) so drift in machine load hits all
backends alike. Per backend and size: median and p95 latency of one 4 s audiovisual window
(batch 1), windows/s, peak memory of a fresh process running it (measured in a child), load
time, and accuracy against torch fp32 on the same inputs. The machine's matrix-multiply peaks
(fp32: the better of torch and ONNX Runtime; bf16: torch; int8: ONNX Runtime's MatMulInteger)
turn GFLOP per window into a floor time, and every backend is reported as a multiple of the
floor for its arithmetic.
Writes a table to stdout, JSON, and a PNG chart.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from socialmae_rt.machine import cores, cpu_name
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig
from socialmae_rt.model.profile import count_gflops

from .factory import available_backends, create_backend
from .onnx_export import compare_outputs, example_inputs

log = logging.getLogger(__name__)

# Which peak bounds which backend.
ARITHMETIC = {"torch": "fp32", "torch-bf16": "bf16", "ort": "fp32", "ort-int8": "int8", "trt": "fp16"}


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
    fp32 (torch or ONNX Runtime), bf16 (torch), int8 (ONNX Runtime MatMulInteger)."""
    flops = 2.0 * size**3
    a32, b32 = torch.randn(size, size), torch.randn(size, size)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    rng = np.random.default_rng(0)
    fp32_feeds = {"a": a32.numpy(), "b": b32.numpy()}
    int8_feeds = {"a": rng.integers(0, 255, (size, size), dtype=np.uint8),
                  "b": rng.integers(-127, 127, (size, size), dtype=np.int8)}
    ort_fp32 = _ort_matmul("MatMul", size, "FLOAT", "FLOAT", "FLOAT")
    ort_int8 = _ort_matmul("MatMulInteger", size, "UINT8", "INT8", "INT32")
    return {
        "fp32": max(_time_matmul(lambda: torch.mm(a32, b32), flops, repeats),
                    _time_matmul(lambda: ort_fp32.run(None, fp32_feeds), flops, repeats)),
        "bf16": _time_matmul(lambda: torch.mm(a16, b16), flops, repeats),
        "int8": _time_matmul(lambda: ort_int8.run(None, int8_feeds), flops, repeats),
    }


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
        "from socialmae_rt.engines.bench import _one_window;"
        f"_one_window({name!r}, {size!r}, {cache_dir!r}, {threads!r});"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"peak-memory child for {name} ({size}) failed: {result.stderr[-500:]}")
    return int(result.stdout.strip().splitlines()[-1]) / 1024  # VmHWM is in kB


def _one_window(name: str, size: str, cache_dir: str | None, threads: int | None) -> None:
    config = SocialMAEConfig.variant(size, extra_heads={"laughter": 1, "personality": 5})
    options: dict[str, Any] = {"threads": threads} if threads else {}
    if name not in ("torch", "torch-bf16"):
        options["cache_dir"] = cache_dir
    inputs = example_inputs(config, batch=1, seed=3)
    create_backend(name, None, config, **options).infer(inputs["audio"], inputs["video"])


def _outputs(backend, audio, video) -> dict[str, np.ndarray]:
    out = backend.infer(audio, video)
    return {"embedding": out.embedding, **out.heads}


def bench_size(size: str, backends: list[str], repeats: int, cache_dir: str | None, threads: int | None) -> list[dict]:
    config = SocialMAEConfig.variant(size, extra_heads={"laughter": 1, "personality": 5})
    gflops = count_gflops(SocialMAE(config).eval(), Modality.AUDIOVISUAL)
    inputs = example_inputs(config, batch=1, seed=3)
    audio, video = inputs["audio"], inputs["video"]
    created: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name in backends:
        started = time.perf_counter()
        options: dict[str, Any] = {"threads": threads} if threads else {}
        if name not in ("torch", "torch-bf16"):
            options["cache_dir"] = cache_dir
        created[name] = create_backend(name, None, config, **options)
        load_s = getattr(created[name], "load_s", time.perf_counter() - started)
        _outputs(created[name], audio, video)  # warm-up run
        rows[name] = {"size": size, "backend": name, "actual": created[name].info.name, "load_s": load_s,
                      "peak_rss_mb": peak_rss_mb(name, size, cache_dir, threads), "times": []}
    reference = _outputs(created["torch"], audio, video) if "torch" in created else None
    for _ in range(repeats):
        for name, backend in created.items():
            start = time.perf_counter()
            out = _outputs(backend, audio, video)
            rows[name]["times"].append(time.perf_counter() - start)
            rows[name]["last"] = out
    results = []
    for name, row in rows.items():
        times = np.array(row.pop("times"))
        last = row.pop("last")
        accuracy = compare_outputs(reference, last) if reference is not None else {}
        results.append({
            **row, "gflop": gflops, "median_s": float(np.median(times)), "p95_s": float(np.percentile(times, 95)),
            "windows_per_s": float(1.0 / np.median(times)), "repeats": len(times),
            "cosine_logits": accuracy.get("emotion", {}).get("min_cosine"),
            "max_abs_logits": accuracy.get("emotion", {}).get("max_abs"),
            "cosine_embedding": accuracy.get("embedding", {}).get("min_cosine"),
        })
    for backend in created.values():
        backend.close()
    return results


def run_bench(sizes: list[str], backends: list[str] | None, repeats: int, output: str,
              cache_dir: str | None = None, threads: int | None = None) -> dict[str, Any]:
    backends = backends or [b for b in available_backends() if b != "trt" or _tensorrt_present()]
    if "torch" not in backends:
        backends = ["torch", *backends]  # the reference every other backend is compared with
    machine = {"cpu": cpu_name(), "cores": cores(), "python": platform.python_version(),
               "torch": torch.__version__, "onnxruntime": _ort_version()}
    print(f"bench: {machine['cpu']}, {machine['cores']} cores; backends {', '.join(backends)}; "
          f"sizes {', '.join(sizes)}; {repeats} interleaved repetitions")
    peaks = matmul_peaks()
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    rows = []
    for size in sizes:
        for row in bench_size(size, backends, repeats, cache_dir, threads):
            arithmetic = ARITHMETIC.get(row["backend"], "fp32")
            floor_s = row["gflop"] / peaks[arithmetic] if arithmetic in peaks else None
            row.update(arithmetic=arithmetic, floor_s=floor_s, x_floor=row["median_s"] / floor_s if floor_s else None)
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
    mine = [r for r in rows if r["size"] == size]
    base = next((r["median_s"] for r in mine if r["backend"] == "torch"), None)
    for r in mine:
        r["speedup_vs_torch_fp32"] = base / r["median_s"] if base else None


def format_table(rows: list[dict]) -> str:
    header = (f"{'size':<6} {'backend':<11} {'median s':>9} {'p95 s':>7} {'win/s':>6} {'x eager':>7} "
              f"{'floor s':>8} {'x floor':>7} {'cos logits':>10} {'max|d|':>8} {'load s':>6} {'peak MiB':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        cos = "" if r["cosine_logits"] is None else f"{r['cosine_logits']:.5f}"
        diff = "" if r["max_abs_logits"] is None else f"{r['max_abs_logits']:.2e}"
        floor = "" if r["floor_s"] is None else f"{r['floor_s']:.3f}"
        xfloor = "" if r["x_floor"] is None else f"{r['x_floor']:.1f}"
        name = r["backend"] if r["actual"] == r["backend"] else f"{r['backend']}->{r['actual']}"
        lines.append(
            f"{r['size']:<6} {name:<11} {r['median_s']:>9.3f} {r['p95_s']:>7.3f} {r['windows_per_s']:>6.2f} "
            f"{r['speedup_vs_torch_fp32'] or 0:>7.2f} {floor:>8} {xfloor:>7} {cos:>10} {diff:>8} "
            f"{r['load_s']:>6.2f} {r['peak_rss_mb']:>8.0f}"
        )
    return "\n".join(lines)


def plot(rows: list[dict], peaks: dict[str, float], machine: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(r["size"] for r in rows))
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        mine = [r for r in rows if r["size"] == size]
        names = [r["backend"] for r in mine]
        medians = [r["median_s"] * 1e3 for r in mine]
        p95 = [r["p95_s"] * 1e3 for r in mine]
        bars = ax.bar(names, medians, color=["#888888" if n == "torch" else "#3b7dd8" for n in names])
        ax.errorbar(names, medians, yerr=[np.zeros(len(mine)), np.subtract(p95, medians)], fmt="none", ecolor="black")
        for bar, r in zip(bars, mine):
            ax.annotate(f"{r['speedup_vs_torch_fp32']:.1f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
            if r["floor_s"]:
                ax.hlines(r["floor_s"] * 1e3, bar.get_x(), bar.get_x() + bar.get_width(), colors="red", linestyles=":")
        ax.set_title(f"{size}: {mine[0]['gflop']:.0f} GFLOP / window")
        ax.set_ylabel("ms per 4 s window (median, p95 whisker)")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"socialmae-rt bench: {machine['cpu']}, {machine['cores']} cores\n"
                 "label: speed-up vs torch fp32; red dotted: matmul-peak floor", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tensorrt_present() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


