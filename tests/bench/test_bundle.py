"""`bench --bundle` through the real pipeline on a generated clip: the bundle answers every task,
the baseline one, and the table and JSON say so (speed itself is the command's output, not a test)."""

import json

from socialmae_rt.bench.bundle import run_bundle_bench


def test_bundle_bench_compares_one_checkpoint_a_bundle_and_a_merged_student(tmp_path, capsys):
    out = tmp_path / "bench_bundle.json"
    result = run_bundle_bench(["tiny"], "torch", 5.0, None, str(out))
    rows = {row["weights"]: row for row in result["rows"]}
    assert rows["one checkpoint (emotion)"]["tasks"] == ["emotion"]
    assert rows["bundle of 3 checkpoints"]["tasks"] == ["emotion", "laughter", "personality"]
    assert rows["bundle of 3 checkpoints"]["encoder_passes"] == 3
    assert rows["merged student (tiny)"]["tasks"] == ["emotion", "laughter", "personality"]
    assert all(row["windows"] >= 1 and row["preprocess_ms"]["p50"] > 0 for row in rows.values())
    assert json.loads(out.read_text())["rows"] == result["rows"]
    table = capsys.readouterr().out
    assert "bundle of 3 checkpoints" in table and "emotion,laughter,personality" in table
