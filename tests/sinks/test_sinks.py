import io
import json

import pytest

from socialmae_rt.results import EVENT_SCHEMA, RESULT_SCHEMA, Latency, SocialPerception
from socialmae_rt.sinks import ConsoleSink, JsonlSink, MemorySink
from socialmae_rt.sinks.console import status_summary
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind
from socialmae_rt.stream.status import Expectation

NS = 1_000_000_000


def result(face_id=1, modality="audiovisual", degraded=None, laughter=0.7, laughing=True):
    return SocialPerception(
        face_id=face_id, window_start_ns=6 * NS, window_end_ns=10 * NS, modality=modality,
        emotion={"anger": 0.1, "disgust": 0.1, "fear": 0.1, "happy": 0.5, "neutral": 0.1, "sad": 0.1},
        laughter_probability=laughter, laughing=laughing, personality=None, window_fill=0.75,
        latency=Latency(5.0, 100.0, 120.0), degraded=degraded,
    )


@pytest.fixture
def status(make_status):
    def camera_and_microphone(mic_state="running", mic_detail="", audio=True, why=""):
        return make_status([("camera", "running", "640x480 @ 30 fps"), ("microphone", mic_state, mic_detail)],
                           Expectation(video=True, audio=audio, reason=why))

    return camera_and_microphone


def test_jsonl_lines_are_records_events_and_optional_status(tmp_path, status):
    sink = JsonlSink(tmp_path / "a" / "r.jsonl", include_status=True)
    sink.write_result(result(degraded="microphone failed: unplugged"))
    sink.write_event(LaughterEvent(LaughterEventKind.ONSET, 1, 9 * NS, 10 * NS, 0.7))
    sink.write_status(status())
    sink.close()
    lines = [json.loads(x) for x in (tmp_path / "a" / "r.jsonl").read_text().splitlines()]
    assert [x["schema"] for x in lines] == [RESULT_SCHEMA, EVENT_SCHEMA, "socialmae_rt.status/1"]
    assert lines[2]["expect"] == {"video": True, "audio": True, "why": ""}
    assert lines[2]["sources"][1] == {"name": "microphone", "state": "running", "detail": "", "counters": {}}
    assert lines[0]["laughter"] == {"probability": 0.7, "laughing": True}
    assert lines[0]["personality"] is None and lines[0]["degraded"] == "microphone failed: unplugged"
    assert lines[1] == {"schema": EVENT_SCHEMA, "stream": "default", "event": "laughter_onset", "face_id": 1,
                        "time_ns": 9 * NS, "window_end_ns": 10 * NS, "probability": 0.7}


def test_console_line_and_status_changes_only(status):
    out = io.StringIO()
    sink = ConsoleSink(out, origin_ns=0, duration_s=20.0)
    sink.write_result(result())
    sink.write_result(result(face_id=None, modality="audio", laughter=None, laughing=None))
    sink.write_status(status())
    sink.write_status(status())  # unchanged: no second line
    sink.write_status(status("failed", "PortAudio stopped the input stream", audio=False,
                             why="microphone failed: PortAudio stopped the input stream"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[  10.00s  50.0%] face 1  AV happy   0.50  laugh 0.70*  fill 0.75     120 ms"
    assert lines[1].startswith("[  10.00s  50.0%] audio  A  happy   0.50  laugh  -  ")
    assert len(lines) == 4
    assert lines[2] == "[status] camera running (640x480 @ 30 fps); microphone running | expecting video+audio"
    assert "microphone failed (PortAudio stopped the input stream) | expecting video: microphone failed" in lines[3]


def test_status_summary_without_sources(make_status):
    assert status_summary(make_status([], Expectation(video=False, audio=False, reason="end of file"))) == (
        "no sources | expecting no live stream: end of file")


def test_memory_sink_keeps_everything_in_order(status):
    from socialmae_rt.sinks import MemorySink

    sink = MemorySink()
    first, second = result(face_id=1), result(face_id=2)
    sink.write_result(first)
    sink.write_result(second)
    sink.write_event(LaughterEvent(LaughterEventKind.OFFSET, 2, 11 * NS, 11 * NS, 0.3))
    sink.write_status(status())
    assert sink.results == [first, second] and sink.events[0].kind is LaughterEventKind.OFFSET
    assert sink.statuses[0].expect.audio is True


# Faults: the JSONL file stays valid whatever happens to the writer or the disk ---------------------


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_appends_by_default_and_starts_afresh_when_asked(tmp_path):
    path = tmp_path / "r.jsonl"
    for _ in range(2):
        sink = JsonlSink(path)
        sink.write_result(result())
        sink.close()
    assert len(_lines(path)) == 2
    JsonlSink(path, fresh=True).close()
    assert path.read_text() == ""


def test_a_partial_last_line_is_cut_when_the_file_is_opened_again(tmp_path, caplog):
    path = tmp_path / "r.jsonl"
    path.write_text('{"schema": "a"}\n{"schema": "b"}\n{"schema": "socialmae_rt.res')
    sink = JsonlSink(path)
    sink.write_result(result())
    sink.close()
    assert [r["schema"] for r in _lines(path)] == ["a", "b", RESULT_SCHEMA]
    assert sink.repaired_bytes == len('{"schema": "socialmae_rt.res') and "partial line" in caplog.text


def test_a_writer_killed_mid_stream_leaves_a_file_the_next_one_appends_to(tmp_path):
    """SIGKILL a real process that writes records as fast as it can, then start another writer:
    every line is a complete record and nothing written before the kill is lost."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "r.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys\n"
        "from socialmae_rt.sinks import JsonlSink\n"
        "from socialmae_rt.results import Latency, SocialPerception\n"
        "sink = JsonlSink(sys.argv[1])\n"
        "record = SocialPerception(1, 0, 1, 'audio', {'happy': 1.0}, None, None, None, 1.0, Latency(1, 2, 3),\n"
        "                          embedding=[0.125] * 4096)\n"
        "while True:\n"
        "    sink.include_embedding = True\n"
        "    sink.write_result(record)\n"), str(path)])
    deadline = time.monotonic() + 60
    while (not path.exists() or path.stat().st_size < 2_000_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    before = path.read_bytes().count(b"\n")
    assert before >= 50
    sink = JsonlSink(path)
    sink.write_result(result())
    sink.close()
    rows = _lines(path)  # every line parses: no partial record anywhere
    assert len(rows) == before + 1 and rows[-1]["face_id"] == 1 and len(rows[0]["embedding"]) == 4096


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB tmpfs: writes past it fail with ENOSPC from the kernel."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_keeps_complete_lines_reports_once_and_resumes_when_space_returns(small_disk, caplog):
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * 200_000)
    path = small_disk / "r.jsonl"
    sink = JsonlSink(path)
    memory = MemorySink()
    big = result()
    big.embedding = [0.5] * 1000  # about 6 kB a line
    sink.include_embedding = True
    for _ in range(40):  # 240 kB: more than the disk has left
        for target in (sink, memory):
            target.write_result(big)
    assert sink.lost > 0 and sink.error is not None and "No space left on device" in sink.error
    assert len(memory.results) == 40  # the other outputs never noticed
    assert len(_lines(path)) == 40 - sink.lost  # complete lines only
    assert caplog.text.count("cannot write records") == 1  # reported once, not per record
    filler.unlink()  # space returns
    sink.write_result(big)
    sink.close()
    assert len(_lines(path)) == 40 - sink.lost + 1 and sink.error is None
    assert "writing again" in caplog.text


def test_an_output_path_that_cannot_be_written_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"--output .*: cannot write there \(Is a directory\)"):
        JsonlSink(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"r.jsonl: .*file is a file, not a folder"):
        JsonlSink(tmp_path / "file" / "r.jsonl")


def test_records_are_strict_json(tmp_path):
    bad = result()
    bad.emotion = dict(bad.emotion, anger=float("nan"))
    sink = JsonlSink(tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        sink.write_result(bad)  # the pipeline drops non-finite rows before this: never written
    sink.close()
    assert (tmp_path / "r.jsonl").read_text() == ""
