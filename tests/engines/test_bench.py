"""The benchmark's pieces: peaks are measured, the table and chart render what they are given."""

import numpy as np

from socialmae_rt.engines.bench import format_table, matmul_peaks, plot


def row(backend, actual, median, size="tiny"):
    return {"size": size, "backend": backend, "actual": actual, "median_s": median, "p95_s": median * 1.1,
            "windows_per_s": 1 / median, "speedup_vs_torch_fp32": 0.2 / median, "floor_s": 0.05, "x_floor": median / 0.05,
            "cosine_logits": 0.99998, "max_abs_logits": 2e-3, "load_s": 0.3, "peak_rss_mb": 120.0, "gflop": 23.0}


def test_matmul_peaks_are_positive_and_finite():
    peaks = matmul_peaks(size=256, repeats=1)
    assert set(peaks) == {"fp32", "bf16", "int8"}
    assert all(np.isfinite(v) and v > 0 for v in peaks.values())


def test_table_names_fallbacks_and_figures():
    table = format_table([row("torch", "torch", 0.2), row("trt", "ort", 0.1)])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["size", "backend", "median"]
    assert lines[2].startswith("tiny   torch") and " 1.00 " in lines[2]
    assert "trt->ort" in lines[3] and " 2.00 " in lines[3] and "0.99998" in lines[3]


def test_chart_is_written(tmp_path):
    path = tmp_path / "bench.png"
    plot([row("torch", "torch", 0.2), row("ort-int8", "ort-int8", 0.1)], {"fp32": 100.0}, {"cpu": "cpu", "cores": 2}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
