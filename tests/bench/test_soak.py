"""`socialmae-rt soak`, briefly: a generated clip looped in real time through the run path; the report
counts what the long run is about (memory, windows, records reaching the JSONL, gaps)."""

import json

from socialmae_rt.cli import main
from socialmae_rt.media.sample import build_sample_clip


def test_a_short_soak_reports_memory_windows_records_and_gaps(tmp_path, capsys):
    clip = build_sample_clip(tmp_path / "clip.mp4", seconds=6.0, fps=10, width=320, height=240).path
    report_path = tmp_path / "soak.json"
    # A gap here is a stretch without any record for 30 s: only a stalled pipeline makes one, however
    # loaded the machine (the 2 s default is for the figures, measured on a machine with room).
    assert main(["soak", "--source", str(clip), "--minutes", "0.2", "--model", "tiny", "--hop", "1.0",
                 "--output", str(tmp_path / "soak.jsonl"), "--json", str(report_path), "--gap-s", "30"]) == 0
    report = json.loads(report_path.read_text())
    assert report["windows"] >= 5 and report["records"] >= report["windows"]  # one record a window at least
    assert report["records_in_jsonl"] == report["records"] and report["jsonl_lost"] == 0
    assert report["gaps"] == []  # audio all along: a record every window, looping included
    assert report["rss_mib"]["start"] > 0 and report["rss_mib"]["max"] >= report["rss_mib"]["start"] * 0.5
    assert report["source_counters"]["video_frames"] > 6 * 10  # it looped
    out = capsys.readouterr().out
    assert "RSS MiB: start" in out and f"in the JSONL {report['records']}" in out
