import io
import json

from socialmae_rt.postprocess import LaughterEvent, LaughterEventKind
from socialmae_rt.results import EVENT_SCHEMA, RESULT_SCHEMA, Latency, SocialPerception
from socialmae_rt.sinks import ConsoleSink, JsonlSink, status_summary

NS = 1_000_000_000


def result(face_id=1, modality="audiovisual", degraded=None, laughter=0.7, laughing=True):
    return SocialPerception(
        face_id=face_id, window_start_ns=6 * NS, window_end_ns=10 * NS, modality=modality,
        emotion={"anger": 0.1, "disgust": 0.1, "fear": 0.1, "happy": 0.5, "neutral": 0.1, "sad": 0.1},
        laughter_probability=laughter, laughing=laughing, personality=None, window_fill=0.75,
        latency=Latency(5.0, 100.0, 120.0), degraded=degraded,
    )


def status(mic_state="running", mic_detail="", audio=True, why=""):
    return {"sources": [{"name": "camera", "state": "running", "detail": "640x480 @ 30 fps", "counters": {}},
                        {"name": "microphone", "state": mic_state, "detail": mic_detail, "counters": {}}],
            "expect": {"video": True, "audio": audio, "why": why}}


def test_jsonl_lines_are_records_events_and_optional_status(tmp_path):
    sink = JsonlSink(tmp_path / "a" / "r.jsonl", include_status=True)
    sink.write_result(result(degraded="microphone failed: unplugged"))
    sink.write_event(LaughterEvent(LaughterEventKind.ONSET, 1, 9 * NS, 10 * NS, 0.7))
    sink.write_status(status())
    sink.close()
    lines = [json.loads(x) for x in (tmp_path / "a" / "r.jsonl").read_text().splitlines()]
    assert [x["schema"] for x in lines] == [RESULT_SCHEMA, EVENT_SCHEMA, "socialmae_rt.status/1"]
    assert lines[0]["laughter"] == {"probability": 0.7, "laughing": True}
    assert lines[0]["personality"] is None and lines[0]["degraded"] == "microphone failed: unplugged"
    assert lines[1] == {"schema": EVENT_SCHEMA, "stream": "default", "event": "laughter_onset", "face_id": 1,
                        "time_ns": 9 * NS, "window_end_ns": 10 * NS, "probability": 0.7}


def test_console_line_and_status_changes_only():
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


def test_status_summary_without_sources():
    assert status_summary({"expect": {"video": False, "audio": False, "why": "end of file"}}) == (
        "no sources | expecting no live stream: end of file")


def test_memory_sink_keeps_everything_in_order():
    from socialmae_rt.sinks import MemorySink

    sink = MemorySink()
    first, second = result(face_id=1), result(face_id=2)
    sink.write_result(first)
    sink.write_result(second)
    sink.write_event(LaughterEvent(LaughterEventKind.OFFSET, 2, 11 * NS, 11 * NS, 0.3))
    sink.write_status(status())
    assert sink.results == [first, second] and sink.events[0].kind is LaughterEventKind.OFFSET
    assert sink.statuses[0]["expect"]["audio"] is True
