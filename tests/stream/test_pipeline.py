"""The streaming pipeline end to end on real parts: PyAV-written clips with a real face photo,
MediaPipe detection and tracking, a tiny torch model, JSONL on disk. The only double is a
deliberately slow backend (timing)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from matplotlib import cbook

from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.engines import create_backend
from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
from socialmae_rt.messages import NS_PER_SECOND, seconds_to_ns
from socialmae_rt.model import SocialMAEConfig
from socialmae_rt.results import RESULT_SCHEMA
from socialmae_rt.sinks import JsonlSink, MemorySink
from socialmae_rt.stream import drive
from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})
FPS = 10
RATE = 16000
RESULT_KEYS = {"schema", "face_id", "window_start_ns", "window_end_ns", "modality", "emotion", "laughter",
               "personality", "window_fill", "latency_ms", "random_weights"}


@pytest.fixture(scope="module")
def face_photo() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        rgb = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    return cv2.resize(rgb, (110, 128), interpolation=cv2.INTER_AREA)  # BGR, head and shoulders


def write_clip(path: Path, seconds: float, faces_at, audio_seconds: float | None, photo, width=320,
               with_video: bool = True, float_pcm_nan: tuple[float, float] | None = None) -> Path:
    """`faces_at(t)` -> number of faces (0, 1, 2) on screen at t; audio is a 440 Hz tone.
    `float_pcm_nan` = (start_s, end_s): the audio is float PCM (mkv) holding NaN over that stretch."""
    with av.open(str(path), "w") as container:
        if with_video:
            video = container.add_stream("mpeg4", rate=FPS)
            video.width, video.height, video.pix_fmt = width, 240, "yuv420p"
        audio = None
        if audio_seconds:
            codec = "pcm_f32le" if float_pcm_nan else "aac" if with_video else "pcm_s16le"
            audio = container.add_stream(codec, rate=RATE)
            audio.layout = "mono"
        for i in range(int(seconds * FPS) if with_video else 0):
            t = i / FPS
            canvas = np.full((240, width, 3), 90, np.uint8)
            for k in range(faces_at(t)):
                x = 20 + 170 * k + int(10 * np.sin(t))  # a little motion
                canvas[60:188, x : x + 110] = photo
            frame = av.VideoFrame.from_ndarray(canvas, format="bgr24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode() if with_video else ():
            container.mux(packet)
        if audio is not None:
            n = int(audio_seconds * RATE)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)).astype(np.float32)
            if float_pcm_nan:
                tone[int(float_pcm_nan[0] * RATE) : int(float_pcm_nan[1] * RATE)] = np.nan
            sample_format = "flt" if float_pcm_nan else "fltp" if with_video else "s16"
            for start in range(0, n, 1024):
                block = tone[start : start + 1024][None]  # [1, N] planar mono
                if not with_video:  # a plain WAV: 16-bit PCM
                    block = (block * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(block, format=sample_format, layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


@pytest.fixture(scope="module")
def detector():
    d = FaceDetector(FaceDetectorConfig())
    yield d
    d.close()


def make_pipeline(detector, sinks=(), backend=None, **config):
    backend = backend or create_backend("torch", None, TINY)
    return Pipeline(backend, FaceTracker(detector, TrackerConfig()), list(sinks), PipelineConfig(**config))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_offline_file_gives_every_window_and_switches_to_audio_when_the_face_leaves(tmp_path, detector, face_photo):
    clip = write_clip(tmp_path / "leave.mp4", 8.0, lambda t: 1 if t < 5.0 else 0, 8.0, face_photo)
    sink = JsonlSink(tmp_path / "r.jsonl")
    pipeline = make_pipeline(detector, [sink])
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    sink.close()
    records = read_jsonl(tmp_path / "r.jsonl")
    results = [r for r in records if r["schema"] == RESULT_SCHEMA]
    assert all(RESULT_KEYS <= r.keys() for r in results)
    assert all(r["random_weights"] is True for r in results)  # made without weights: the records say so
    ends = [r["window_end_ns"] for r in results]
    # Every 0.5 s from 4.0 s to the end of the data, once each, 4 s long.
    assert ends == [seconds_to_ns(4.0 + 0.5 * i) for i in range(len(ends))] and len(ends) >= 8
    assert all(r["window_end_ns"] - r["window_start_ns"] == 4 * NS_PER_SECOND for r in results)
    modalities = [r["modality"] for r in results]
    switch = modalities.index("audio")
    assert set(modalities[:switch]) == {"audiovisual"} and set(modalities[switch:]) == {"audio"}
    assert 5.0 <= ends[switch] / NS_PER_SECOND <= 6.5  # the tracker lets go 1 s after the face left
    assert {r["face_id"] for r in results[:switch]} == {1} and {r["face_id"] for r in results[switch:]} == {None}
    for r in results:
        assert abs(sum(r["emotion"].values()) - 1.0) < 1e-5
        assert 0.0 <= r["laughter"]["probability"] <= 1.0 and isinstance(r["laughter"]["laughing"], bool)
        assert set(r["personality"]) == {"openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"}


@pytest.mark.parametrize("reid_s", [5.0, 0.0], ids=["re-identified", "gone-for-good"])
def test_personality_accumulates_per_person_across_absences_and_restarts_with_a_new_track(
        tmp_path, detector, face_photo, reid_s):
    """The same face leaves for 2 s and comes back: re-identified (the tracker's default), its
    estimate keeps counting; with re-identification off the tracker gives the id up after 1 s and
    the face returns under a new id whose estimate starts afresh."""
    clip = write_clip(tmp_path / "back.mp4", 12.0, lambda t: 0 if 5.0 <= t < 7.0 else 1, 12.0, face_photo)
    sink = MemorySink()
    pipeline = Pipeline(create_backend("torch", None, TINY), FaceTracker(detector, TrackerConfig(reid_s=reid_s)),
                        [sink], PipelineConfig())
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    faces = [r for r in sink.results if r.face_id is not None]
    ids = list(dict.fromkeys(r.face_id for r in faces))
    assert all(r.person is not None and r.person.face_id == r.face_id for r in faces)
    assert all(r.person is None for r in sink.results if r.face_id is None)  # the audio stream is nobody
    for face_id in ids:
        counts = [r.person.windows for r in faces if r.face_id == face_id]
        assert counts == list(range(1, len(counts) + 1))  # one window more each time, never reset in between
    mine = [r for r in faces if r.face_id == ids[-1]]
    raw = np.array([[r.person.personality_mean[t] for t in r.person.personality_mean] for r in mine[-1:]])
    assert raw.shape == (1, 5) and np.all((0.0 <= raw) & (raw <= 1.0))
    if reid_s:
        assert len(ids) == 1 and mine[-1].person.windows == len(faces)
    else:
        assert len(ids) == 2 and ids[0] not in pipeline.persons  # the first track was given up: forgotten
        assert [r.person.windows for r in faces if r.face_id == ids[1]][0] == 1


def test_video_only_after_the_audio_track_ends(tmp_path, detector, face_photo):
    clip = write_clip(tmp_path / "mute.mp4", 7.5, lambda t: 1, audio_seconds=5.0, photo=face_photo)
    sink = MemorySink()
    records = sink.results
    pipeline = make_pipeline(detector, [sink])
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    by_end = {r.window_end_ns / NS_PER_SECOND: r.modality for r in records}
    assert by_end[4.0] == by_end[4.5] == by_end[5.0] == "audiovisual"
    assert [m for t, m in by_end.items() if t > 5.0] and all(m == "video" for t, m in by_end.items() if t > 5.0)
    assert all(r.face_id == 1 for r in records)


def test_two_faces_share_one_batched_pass_with_stable_ids(tmp_path, detector, face_photo):
    clip = write_clip(tmp_path / "two.mp4", 6.0, lambda t: 2, 6.0, face_photo, width=330)
    sink = MemorySink()
    records = sink.results
    pipeline = make_pipeline(detector, [sink])
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    windows: dict[int, list] = {}
    for r in records:
        windows.setdefault(r.window_end_ns, []).append(r)
    assert len(windows) >= 4
    for group in windows.values():
        assert sorted(r.face_id for r in group) == [1, 2]
        # One encoder pass per window: both faces carry the same measured inference time.
        assert group[0].latency.inference_ms == group[1].latency.inference_ms
        assert group[0].modality == "audiovisual"
    assert records[0].emotion != records[1].emotion  # different faces, different inputs


def test_no_face_and_no_audio_gives_no_record_and_says_why(tmp_path, detector, face_photo):
    clip = write_clip(tmp_path / "empty.mp4", 5.0, lambda t: 0, None, face_photo)
    pipeline = make_pipeline(detector)
    assert drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip)))) == 0
    assert pipeline.scheduler.windows == 2  # windows ending 4.0 and 4.5 s (last frame at 4.9 s)
    assert "no face and no audio" in pipeline.last_reason and "no audio track" in pipeline.last_reason


class SlowBackend:
    """Timing double: the real tiny backend, made slower than the hop."""

    def __init__(self, delay_s: float) -> None:
        self.inner = create_backend("torch", None, TINY)
        self.info, self.model_config, self.preprocess = self.inner.info, self.inner.model_config, self.inner.preprocess
        self.delay_s = delay_s
        self.calls = 0

    def infer(self, audio=None, video=None):
        self.calls += 1
        time.sleep(self.delay_s)
        return self.inner.infer(audio, video)

    def close(self) -> None:
        self.inner.close()


def test_live_run_skips_to_the_newest_window_when_inference_is_slow(tmp_path, detector, face_photo):
    clip = write_clip(tmp_path / "live.mp4", 8.0, lambda t: 1, 8.0, face_photo)
    backend = SlowBackend(delay_s=1.2)
    sink = MemorySink()
    records = sink.results
    pipeline = make_pipeline(detector, [sink], backend=backend)
    source = MediaFileSource(MediaFileConfig(str(clip), realtime=True))
    started = time.monotonic()
    drive.run_live(pipeline, [source])
    elapsed = time.monotonic() - started
    ends = [r.window_end_ns for r in records]
    gaps = np.diff(ends) / NS_PER_SECOND
    # 9 windows were due (4.0 ... 8.0 s); at 1.2 s each only some run, always the newest.
    assert pipeline.scheduler.skipped >= 3
    assert pipeline.scheduler.windows + pipeline.scheduler.skipped <= 9
    assert backend.calls == pipeline.scheduler.windows == len(records)
    assert all(g >= 0.5 for g in gaps) and max(gaps) >= 1.0
    # No backlog: never more windows run than the time allowed (each takes 1.2 s).
    assert pipeline.scheduler.windows <= elapsed / 1.2 + 1
    assert pipeline.clock == "monotonic"
    assert all(r.latency.total_ms >= r.latency.inference_ms for r in records)


def test_status_records_keep_their_rate_while_inference_is_slower(tmp_path, detector, face_photo):
    """Status goes out every second from its own thread, not between windows: with 1.5 s per window,
    more status records than windows (they used to come only between windows)."""
    clip = write_clip(tmp_path / "status.mp4", 9.0, lambda t: 1, 9.0, face_photo)
    sink = MemorySink()
    pipeline = make_pipeline(detector, [sink], backend=SlowBackend(delay_s=1.5), status_interval_s=0.5)
    drive.run_live(pipeline, [MediaFileSource(MediaFileConfig(str(clip), realtime=True))])
    assert pipeline.scheduler.windows >= 2
    assert len(sink.statuses) >= 2 * pipeline.scheduler.windows  # 1.5 s per window, one status per 0.5 s


def test_cli_run_writes_well_formed_jsonl(tmp_path, face_photo):
    clip = write_clip(tmp_path / "cli.mkv", 6.0, lambda t: 1, 6.0, face_photo)
    out = tmp_path / "out" / "r.jsonl"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("socialmae-rt")), "run", "--source", str(clip), "--model", "tiny",
         "--output", str(out), "--hop", "1.0"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RANDOM weights" in result.stderr
    for notice in ("XNNPACK", "absl::InitializeLog", "inference_feedback_manager"):  # MediaPipe's C++ start-up
        assert notice not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[") and not line.startswith("[status]")]
    assert len(lines) == 3 and "face 1" in lines[0] and " AV " in lines[0]
    assert "[status] media_file:cli.mkv ended" in result.stdout
    assert "done: 3 windows, 3 records, 0 skipped" in result.stdout
    records = read_jsonl(out)
    assert [r["window_end_ns"] for r in records] == [seconds_to_ns(s) for s in (4.0, 5.0, 6.0)]


def test_live_audio_source_ending_mid_run_switches_to_video_only_and_says_why(tmp_path, detector, face_photo):
    video = write_clip(tmp_path / "cam.mp4", 8.0, lambda t: 1, None, face_photo)
    audio = write_clip(tmp_path / "mic.wav", 0, lambda t: 0, 5.5, face_photo, with_video=False)
    sink = MemorySink()
    records = sink.results
    pipeline = make_pipeline(detector, [sink])
    sources = [MediaFileSource(MediaFileConfig(str(video), realtime=True)),
               MediaFileSource(MediaFileConfig(str(audio), realtime=True))]
    drive.run_live(pipeline, sources)
    assert records, "no records"
    assert all(r.face_id == 1 for r in records)
    # Live stamps are monotonic and each source stamps its own start: on a loaded machine the
    # microphone may begin a little after the camera. A window hears audio exactly when the
    # delivered audio covers it; one that does not says why.
    heard_from, heard_until = pipeline.buffer.audio.origin_ns, pipeline.buffer.audio_until_ns
    assert (heard_until - heard_from) / NS_PER_SECOND == pytest.approx(5.5, abs=0.05)
    window_ns = seconds_to_ns(4.0)
    for r in records:
        covered = heard_from <= r.window_end_ns - window_ns and r.window_end_ns <= heard_until
        if covered:
            assert r.modality == "audiovisual" and r.degraded is None, r
        elif r.window_end_ns > heard_until:
            assert r.modality == "video" and "mic.wav ended" in r.degraded, r
        else:
            assert r.modality == "video" and "audio began" in r.degraded, r
    modalities = [r.modality for r in records if r.window_end_ns - window_ns >= heard_from]
    assert "audiovisual" in modalities and modalities[-1] == "video"
    assert modalities == sorted(modalities)  # audiovisual ..., then video ... once the audio ended


@pytest.mark.parametrize("name", ["ort", "ort-int8", "torch-bf16", "ov"])
def test_pipeline_runs_any_backend_by_name_and_agrees_with_torch(tmp_path, detector, face_photo, name):
    clip = write_clip(tmp_path / "b.mp4", 5.0, lambda t: 1, 5.0, face_photo)
    outputs = {}
    for backend_name in ("torch", name):
        sink = MemorySink()
        backend = create_backend(backend_name, None, TINY, **({} if backend_name.startswith("torch") else
                                                                {"cache_dir": tmp_path / "cache"}))
        drive.run_offline(make_pipeline(detector, [sink], backend=backend), MediaFileSource(MediaFileConfig(str(clip))))
        outputs[backend_name] = sink.results
    assert [r.window_end_ns for r in outputs[name]] == [r.window_end_ns for r in outputs["torch"]]
    for ours, reference in zip(outputs[name], outputs["torch"]):
        assert ours.modality == reference.modality == "audiovisual"
        for label, p in reference.emotion.items():
            assert abs(ours.emotion[label] - p) < 0.02, (label, ours.emotion[label], p)


def test_live_run_refuses_sources_on_different_clocks(tone_wav, detector):
    """Monotonic device stamps and ROS-time stamps cannot be aligned in one buffer."""
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource

    wav = tone_wav(1.0)
    paced = MediaFileSource(MediaFileConfig(str(wav), realtime=True))  # monotonic
    unpaced = MediaFileSource(MediaFileConfig(str(wav)))  # media
    with pytest.raises(ValueError, match=r"different clocks \(media, monotonic\)"):
        drive.run_live(make_pipeline(detector), [paced, unpaced])


# Faults --------------------------------------------------------------------------------------------


def test_nan_audio_in_the_file_makes_those_windows_video_only_and_the_run_goes_on(tmp_path, face_photo, capsys):
    """A float PCM track holding 0.1 s of NaN (a broken recorder): `socialmae-rt run` keeps going; the
    windows that hear the NaN stretch are video-only and say why, the others are audiovisual."""
    from socialmae_rt.cli import main

    clip = write_clip(tmp_path / "nan.mkv", 9.0, lambda t: 1, 9.0, face_photo, float_pcm_nan=(6.0, 6.1))
    out = tmp_path / "r.jsonl"
    assert main(["run", "--source", str(clip), "--model", "tiny", "--output", str(out), "--quiet"]) == 0
    records = [r for r in read_jsonl(out) if r["schema"] == RESULT_SCHEMA]
    by_end = {r["window_end_ns"] / NS_PER_SECOND: r for r in records}
    assert sorted(by_end) == [4.0 + 0.5 * i for i in range(11)]  # every window, 4.0 .. 9.0 s
    for end, record in by_end.items():
        if end < 6.1:
            assert record["modality"] == "audiovisual" and record["degraded"] is None
        else:  # [end - 4, end] holds the NaN stretch at 6.0-6.1 s
            assert record["modality"] == "video" and "NaN/Inf samples (0.10 s)" in record["degraded"]
    assert "done: 11 windows, 11 records" in capsys.readouterr().out


class FailingBackend:
    """The real tiny torch backend, with a failure injected at its call boundary on chosen windows
    (what a GPU error or a runtime fault looks like to the pipeline)."""

    def __init__(self, fail_on):
        self.inner = create_backend("torch", None, TINY)
        self.info, self.model_config, self.preprocess = self.inner.info, self.inner.model_config, self.inner.preprocess
        self.calls, self.fail_on = 0, fail_on

    def infer(self, audio=None, video=None):
        self.calls += 1
        if self.fail_on(self.calls):
            raise RuntimeError(f"device lost on call {self.calls}")
        return self.inner.infer(audio, video)

    def close(self):
        self.inner.close()


def test_a_failing_window_is_dropped_counted_and_logged_once(tmp_path, detector, face_photo, caplog):
    clip = write_clip(tmp_path / "f.mp4", 7.0, lambda t: 1, 7.0, face_photo)
    sink = MemorySink()
    pipeline = make_pipeline(detector, [sink], backend=FailingBackend(lambda call: call in (2, 4)))
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    ends = [r.window_end_ns / NS_PER_SECOND for r in sink.results]
    assert ends == [4.0, 5.0, 6.0, 6.5, 7.0]  # 4.5 and 5.5 s failed; the rest went on
    status = pipeline.status()
    assert status.dropped == {"RuntimeError": 2} and "device lost on call 4" in status.last_error
    assert caplog.text.count("dropped: RuntimeError") == 1


def test_windows_failing_in_a_row_end_the_run_with_the_cause(tmp_path, detector, face_photo):
    from socialmae_rt.stream.pipeline import PipelineFailed

    clip = write_clip(tmp_path / "g.mp4", 9.0, lambda t: 1, 9.0, face_photo)
    pipeline = make_pipeline(detector, [MemorySink()], backend=FailingBackend(lambda call: call >= 2),
                             max_consecutive_failures=3)
    with pytest.raises(PipelineFailed, match="3 windows in a row failed, the last with RuntimeError: device lost"):
        drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))


def test_non_finite_model_outputs_are_dropped_never_written(tmp_path, detector, face_photo):
    """A diverged checkpoint (finite but huge head weights: its logits overflow to Inf): no record with
    NaN reaches the JSONL, the rows are counted, the run ends normally."""
    import torch

    from socialmae_rt.model import SocialMAE, save_checkpoint

    model = SocialMAE(TINY)
    with torch.no_grad():
        model.mlp_head[1].weight.fill_(3e38)
    weights = save_checkpoint(model, tmp_path / "diverged.safetensors")
    clip = write_clip(tmp_path / "h.mp4", 5.0, lambda t: 1, 5.0, face_photo)
    sink = JsonlSink(tmp_path / "r.jsonl")
    pipeline = make_pipeline(detector, [sink], backend=create_backend("torch", str(weights)))
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    sink.close()
    assert [r for r in read_jsonl(tmp_path / "r.jsonl") if r["schema"] == RESULT_SCHEMA] == []
    assert pipeline.status().dropped["non-finite model output"] == 3  # windows ending 4.0, 4.5, 5.0 s


def test_a_frame_that_breaks_the_tracker_is_dropped_and_capture_goes_on(tmp_path, detector, face_photo):
    """A failure injected at the tracker's call boundary on one frame: that frame is counted as
    dropped, every window still runs."""
    clip = write_clip(tmp_path / "t.mp4", 5.0, lambda t: 1, 5.0, face_photo)
    tracker = FaceTracker(detector, TrackerConfig())
    real_update, calls = tracker.update, []

    def update(frame):
        calls.append(frame.stamp_ns)
        if len(calls) == 7:
            raise ValueError("detector choked on this frame")
        return real_update(frame)

    tracker.update = update
    sink = MemorySink()
    pipeline = Pipeline(create_backend("torch", None, TINY), tracker, [sink], PipelineConfig())
    drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
    assert [r.window_end_ns / NS_PER_SECOND for r in sink.results] == [4.0, 4.5, 5.0]
    assert pipeline.status().dropped == {"ingest ValueError": 1}


def test_close_releases_the_face_detector_and_the_backend():
    detector = FaceDetector(FaceDetectorConfig())
    backend = create_backend("torch", None, TINY)
    pipeline = Pipeline(backend, FaceTracker(detector, TrackerConfig()), [MemorySink()], PipelineConfig())
    assert detector._solution is not None and backend.model is not None
    pipeline.close()
    assert detector._solution is None  # the MediaPipe graph and its threads are gone
    assert backend.model is None


class UpstreamFaces:
    """A source of faces found upstream (what the ROS4HRI input delivers): the photo as one face,
    named by the detector, from 0 to 6 s, then gone; audio throughout; media time."""

    has_video = has_audio = True

    def __init__(self, photo: np.ndarray, seconds: float = 10.0) -> None:
        from socialmae_rt.messages import SourceStatus

        self.status = SourceStatus("upstream faces")
        self.photo, self.seconds = photo, seconds

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __iter__(self):
        from socialmae_rt.faces.upstream import FaceIds, MomentAssembler
        from socialmae_rt.messages import AudioChunk

        assembler = MomentAssembler(FaceIds(), wait_ns=NS_PER_SECOND)
        step_ns = NS_PER_SECOND // 10
        for index in range(int(self.seconds * 10)):
            stamp_ns = index * step_ns
            yield AudioChunk(np.zeros(1600, np.float32) + 0.01, stamp_ns)
            names = ["abcde"] if stamp_ns < 6 * NS_PER_SECOND else []
            moments = assembler.tracked(stamp_ns, names, now_ns=stamp_ns)
            for name in names:
                moments += assembler.image(name, stamp_ns, self.photo, now_ns=stamp_ns)
            yield from moments


def test_faces_found_upstream_replace_our_tracker_and_keep_the_detectors_name(face_photo):
    sink = MemorySink()
    pipeline = Pipeline(create_backend("torch", None, TINY), None, [sink], PipelineConfig())
    drive.run_offline(pipeline, UpstreamFaces(face_photo))
    faces = [r for r in sink.results if r.face_id is not None]
    assert faces and {r.face_name for r in faces} == {"abcde"} and {r.modality for r in faces} == {"audiovisual"}
    assert all(r.to_json()["face_name"] == "abcde" for r in faces)
    assert faces[-1].person.windows == len(faces)  # one person, counted window by window
    # Gone at 6 s: no more face records, its estimate is over, the windows after are audio only.
    assert max(r.window_end_ns for r in faces) <= 6 * NS_PER_SECOND
    assert faces[0].face_id not in pipeline.persons and faces[0].face_id not in pipeline.face_names
    later = [r for r in sink.results if r.window_end_ns > 6 * NS_PER_SECOND]
    assert later and all(r.face_id is None and "face_name" not in r.to_json() for r in later)


class DepartureDuringInference:
    """Ordering double: the real tiny backend, which during its first pass lets the capture side
    ingest what came meanwhile (as a live capture thread does while a slow pass runs)."""

    def __init__(self, pipeline_items) -> None:
        self.inner = create_backend("torch", None, TINY)
        self.info, self.model_config, self.preprocess = self.inner.info, self.inner.model_config, self.inner.preprocess
        self.meanwhile, self.pipeline = pipeline_items, None

    def infer(self, audio=None, video=None):
        while self.meanwhile:
            self.pipeline.ingest(self.meanwhile.pop(0))
        return self.inner.infer(audio, video)

    def close(self) -> None:
        self.inner.close()


def test_a_face_gone_while_its_window_is_inferred_keeps_the_detectors_name(face_photo):
    items = list(UpstreamFaces(face_photo, seconds=8.0))
    from socialmae_rt.messages import DetectedFaces

    first_end = next(i for i, item in enumerate(items)  # up to the faces at 4 s: the first window is due
                     if isinstance(item, DetectedFaces) and item.stamp_ns >= 4 * NS_PER_SECOND) + 1
    backend = DepartureDuringInference(items[first_end:])  # the rest, the face's departure at 6 s included
    sink = MemorySink()
    pipeline = Pipeline(backend, None, [sink], PipelineConfig())
    backend.pipeline = pipeline
    for item in items[:first_end]:
        pipeline.ingest(item)
    records = pipeline.process_due()
    assert backend.meanwhile == [] and pipeline.face_names == {}  # the name was forgotten mid-pass
    face = [r for r in records if r.face_id is not None]
    assert face and face[0].face_name == "abcde" and face[0].window_end_ns == 4 * NS_PER_SECOND
