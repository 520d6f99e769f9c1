"""`bench-node --faces`: both ways of getting faces run end to end (node processes on a private
ROS domain, fed by the replay) and come back as a table and JSON. What the figures are is the
benchmark's to say, not a test's."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("hri_msgs.msg", reason="not built here: run `make setup`")


def test_faces_from_our_detector_and_from_a_ros4hri_detector_both_measure(tmp_path, capsys):
    from socialmae_rt.bench.node import run_faces_bench
    from socialmae_rt.media.sample import build_sample_clip

    clip = build_sample_clip(tmp_path / "sample.mp4", seconds=6.0, fps=10)
    out = tmp_path / "faces.json"
    results = run_faces_bench(str(clip.path), ["own", "hri"], "tiny", "torch", hop=1.0, seconds=3.0,
                              json_path=str(out), threads=1)
    printed = capsys.readouterr().out
    assert "| own detector (30 fps camera topic) |" in printed and "| ROS4HRI detector (10 Hz) |" in printed
    saved = json.loads(out.read_text())
    assert [r["faces"] for r in saved["results"]] == ["own", "hri"] and saved["machine"]
    for result in results:
        assert result["records"] >= 1 and result["cpu_cores"] > 0.0 and result["threads"] == 1
    own, hri = results
    assert "ros image" in own["input_counts"] and "ros4hri faces" in hri["input_counts"]
    assert "ros4hri faces" not in own["input_counts"] and "ros image" not in hri["input_counts"]
