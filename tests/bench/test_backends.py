"""The benchmark's pieces: peaks are measured, rows carry every column, the table and chart render them."""

import numpy as np
import pytest

from socialmae_rt.bench.backends import _speedups, bench_size, busy_loops, format_table, matmul_peaks, plot
from socialmae_rt.util.machine import CpuDescription


def row(backend, actual, median, size="tiny", batch=1, **extra):
    return {"size": size, "backend": backend, "actual": actual, "batch": batch, "median_s": median * batch,
            "p95_s": median * batch * 1.1, "per_window_s": median, "windows_per_s": 1 / median,
            "speedup_vs_torch_fp32": 0.2 / median, "speedup_vs_reference": 0.25 / median, "floor_s": 0.05,
            "x_floor": median / 0.05, "cosine_logits": 0.99998, "max_abs_logits": 2e-3, "load_s": 0.3,
            "peak_rss_mb": 120.0, "gflop": 23.0, **extra}


def test_matmul_peaks_are_positive_and_finite():
    peaks = matmul_peaks(size=256, repeats=1)
    native_bf16 = CpuDescription.this_machine().has_bf16
    assert set(peaks) == ({"fp32", "bf16", "int8"} if native_bf16 else {"fp32", "int8"})
    assert all(np.isfinite(v) and v > 0 for v in peaks.values())


def test_table_names_fallbacks_and_figures():
    table = format_table([row("torch", "torch", 0.2, slowdown=1.4), row("trt", "ort", 0.1), row("ov", "ov", 0.05, batch=4)])
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["size", "backend", "B", "s/window"]
    assert lines[2].startswith("tiny   torch") and " 1.00 " in lines[2] and " 1.40 " in lines[2]
    assert "trt->ort" in lines[3] and " 2.00 " in lines[3] and "0.99998" in lines[3]
    assert lines[4].split()[:4] == ["tiny", "ov", "4", "0.050"]
    assert "x busy: slowdown" in lines[-1]


def test_speedups_compare_rows_of_the_same_batch():
    rows = [row("torch", "torch", 0.4), row("eager-reference", "eager-reference", 0.5), row("ov", "ov", 0.1),
            row("torch", "torch", 0.3, batch=2), row("ov", "ov", 0.05, batch=2)]
    _speedups(rows, "tiny")
    assert rows[2]["speedup_vs_torch_fp32"] == pytest.approx(4.0) and rows[2]["speedup_vs_reference"] == pytest.approx(5.0)
    assert rows[4]["speedup_vs_torch_fp32"] == pytest.approx(6.0) and rows[4]["speedup_vs_reference"] is None


def test_busy_loops_run_while_inside_and_are_gone_after():
    with busy_loops(2) as loops:
        assert len(loops) == 2 and all(loop.poll() is None for loop in loops)
    assert all(loop.returncode is not None for loop in loops)


def test_chart_is_written(tmp_path):
    path = tmp_path / "bench.png"
    rows = [row("torch", "torch", 0.2, contended_median_s=0.3, contention=1), row("ort-int8", "ort-int8", 0.1)]
    plot(rows, {"fp32": 100.0}, {"cpu": "cpu", "cores": 2}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_one_size_gives_every_backend_at_every_batch_and_the_contended_pass(tmp_path):
    rows = bench_size("tiny", ["torch", "eager-reference", "ort"], repeats=1, cache_dir=str(tmp_path), threads=None,
                      batches=(1, 2), contention=1, memory=False, held_out=False)  # memory, held out: below
    assert [(r["backend"], r["batch"]) for r in rows] == [
        ("torch", 1), ("eager-reference", 1), ("ort", 1), ("torch", 2), ("eager-reference", 2), ("ort", 2)]
    for r in rows:
        assert r["per_window_s"] == pytest.approx(r["median_s"] / r["batch"]) and r["peak_rss_mb"] is None
        assert r["cosine_logits"] > 0.99
        assert ("slowdown" in r) == (r["batch"] == 1)
    assert rows[1]["max_abs_logits"] < 1e-3  # the reference arithmetic: same numbers
    assert rows[2]["arithmetic"] == "fp32"


def test_an_int8_engine_refused_by_its_gate_is_left_out_and_the_rest_measured(tmp_path, monkeypatch, capsys):
    from socialmae_rt.bench import backends as bench
    from socialmae_rt.engines.openvino_ir import Int8AccuracyError

    real = bench.make_backend

    def gate_refuses_int8(name, *args):
        if name == "ov-int8":
            raise Int8AccuracyError("int8 graphs refused: audiovisual emotion cosine 0.95", {})
        return real(name, *args)

    monkeypatch.setattr(bench, "make_backend", gate_refuses_int8)
    rows = bench_size("tiny", ["torch", "ov-int8"], repeats=1, cache_dir=str(tmp_path), threads=None, contention=0,
                      held_out=False)
    assert [r["backend"] for r in rows] == ["torch"]
    assert rows[0]["peak_rss_mb"] > 50  # measured in a child process that loaded torch and ran a window
    assert "ov-int8 left out: int8 graphs refused: audiovisual emotion cosine 0.95" in capsys.readouterr().out


def test_every_backend_is_scored_on_the_held_out_suite_against_torch(tmp_path):
    import torch

    from socialmae_rt.bench.backends import held_out_agreement
    from socialmae_rt.engines import create_backend
    from socialmae_rt.model import SocialMAE, SocialMAEConfig, save_checkpoint

    toy = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1})
    torch.manual_seed(0)
    weights = save_checkpoint(SocialMAE(toy).eval(), tmp_path / "w.safetensors")
    torch.manual_seed(1)
    other = save_checkpoint(SocialMAE(toy).eval(), tmp_path / "other.safetensors")
    created = {"torch": create_backend("torch", weights), "ort": create_backend("ort", weights, cache_dir=tmp_path),
               "other": create_backend("torch", other)}
    found = held_out_agreement(created)
    assert found["torch"] == {"held_out_min_cosine": pytest.approx(1.0), "held_out_max_prob_diff": 0.0}
    assert found["ort"]["held_out_min_cosine"] > 0.9999 and found["ort"]["held_out_max_prob_diff"] < 1e-4
    assert found["other"]["held_out_min_cosine"] < 0.99  # other weights: the column sees it
    table = format_table([row("ort", "ort", 0.1, **found["ort"])])
    assert "held-out cos" in table.splitlines()[0] and f"{found['ort']['held_out_min_cosine']:.5f}" in table
