"""Site calibration: the recorder's two clips from real input (PyAV-written files read by the
capture layer), its refusals, and a first start that records the run's own input, builds ov-int8
calibrated on it in the background and switches to it mid-run (toy model)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import av
import numpy as np
import pytest

from socialmae_rt.app.site_calibration import (
    CALIBRATE_CLIP, GATE_CLIP, SiteCalibrationConfig, SiteRecorder, SiteRecordingError, record_sources)
from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.engines import create_backend
from socialmae_rt.engines.adaptive import READY, create_live_backend, readiness
from socialmae_rt.engines.auto import Installed
from socialmae_rt.engines.calibration import calibration_windows
from socialmae_rt.engines.switching import ShadowConfig
from socialmae_rt.faces import FaceDetector, FaceTracker, TrackerConfig
from socialmae_rt.features import PreprocessConfig
from socialmae_rt.media.recorder import AnnotatedRecorder, RecorderConfig
from socialmae_rt.media.sample import build_sample_clip
from socialmae_rt.model import SocialMAEConfig
from socialmae_rt.sinks import MemorySink
from socialmae_rt.stream import drive
from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig
from socialmae_rt.util.machine import CpuDescription

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})
# The dim-32 toy model is no int8 target (OpenVINO int8 on AVX2-only CPUs keeps cosine ~0.7): the
# plumbing is under test here, not int8 accuracy, so its bar is loose.
LOOSE_BARS = {"min_cosine": 0.01, "max_prob_diff": 1.0}
VNNI = CpuDescription("test CPU with VNNI", frozenset({"avx2", "fma", "avx512f", "avx512_vnni"}), 2)
OPENVINO = Installed(openvino=True, nncf=True, onnxruntime=True, tensorrt_gpu=False)
WAIT_S = 300.0  # generous: a loaded machine builds slowly


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # 12 s: face and speech 0-4.8 s, speech alone 4.8-7.2 s, a silent face 7.2-9.6 s, both again to 12 s
    return build_sample_clip(tmp_path_factory.mktemp("clip") / "sample.mp4", seconds=12.0).path


def duration_s(path, kind: str) -> float:
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return float(stream.duration * stream.time_base)


def test_the_recorder_splits_the_input_into_a_calibration_clip_and_a_later_gate_clip(clip, tmp_path):
    recorder = SiteRecorder(SiteCalibrationConfig(seconds=11.5, directory=str(tmp_path / "site")))
    source = MediaFileSource(MediaFileConfig(str(clip)))
    source.open()
    try:
        clips = record_sources([source], recorder)
    finally:
        source.close()
    assert (clips.calibrate.name, clips.gate.name) == (CALIBRATE_CLIP, GATE_CLIP)
    # 60 % / 40 % of 11.5 s, on the input's clock; frames at 5 fps at most
    assert duration_s(clips.calibrate, "audio") == pytest.approx(6.9, abs=0.15)
    assert duration_s(clips.gate, "audio") == pytest.approx(4.6, abs=0.15)
    assert 30 <= clips.frames[0] <= 35 and 19 <= clips.frames[1] <= 24
    # both are real calibration material: each gives windows with a face and sound
    preprocess = PreprocessConfig()
    calibrate = calibration_windows([clips.calibrate], preprocess)
    gate = calibration_windows([clips.gate], preprocess, hop_s=1.0)
    assert len(calibrate) >= 1 and len(gate) >= 1
    # the gate part starts where the calibration part ends (6.9 s): 0.5-1.5 s into it is the input's
    # silent face (7.4-8.4 s), its last second is speech again
    with av.open(str(clips.gate)) as container:
        audio = np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])
    assert np.abs(audio[8000:24000]).max() < 0.01 and np.abs(audio[-16000:]).max() > 0.1


def test_a_recording_without_sound_is_refused_in_one_line_and_leaves_no_clip(tmp_path):
    silent = tmp_path / "video_only.mp4"
    with AnnotatedRecorder(RecorderConfig(str(silent), fps=10.0, audio=False), 64, 48) as writer:
        for index in range(130):  # 13 s at 10 fps
            writer.write_frame(np.full((48, 64, 3), 90, np.uint8), index * 100_000_000)
    site = tmp_path / "site"
    recorder = SiteRecorder(SiteCalibrationConfig(seconds=12.0, directory=str(site)))
    source = MediaFileSource(MediaFileConfig(str(silent)))
    source.open()
    try:
        with pytest.raises(SiteRecordingError, match="holds no sound: calibration needs a microphone"):
            record_sources([source], recorder)
    finally:
        source.close()
    assert not list(site.glob("*.mp4"))


def test_input_that_ends_before_the_recording_is_complete_is_refused(clip, tmp_path):
    recorder = SiteRecorder(SiteCalibrationConfig(seconds=20.0, directory=str(tmp_path / "site")))
    source = MediaFileSource(MediaFileConfig(str(clip)))
    source.open()
    try:
        with pytest.raises(SiteRecordingError, match=r"stopped after 1[12] of 20 s"):
            record_sources([source], recorder)
    finally:
        source.close()
    assert not list((tmp_path / "site").glob("*.mp4"))


def test_too_short_a_recording_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="too short: each part needs at least one 4 s window, so at least 10 s"):
        SiteCalibrationConfig(seconds=8.0)


def test_prepare_backend_refuses_a_file_shorter_than_the_recording_in_one_line(clip, tmp_path):
    done = subprocess.run([sys.executable, "-m", "socialmae_rt.cli", "prepare-backend", "--calibrate-live", "30",
                           "--source", str(clip), "--site-dir", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=300, env={"SOCIALMAE_RT_CACHE": str(tmp_path / "cache"),
                                                                            **_environ()})
    assert done.returncode != 0
    assert f"--calibrate-live 30: {clip} is only 12.0 s long" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "site").exists() and not (tmp_path / "cache").exists()


def test_prepare_backend_calibrate_live_needs_an_openvino_int8_backend(tmp_path):
    done = subprocess.run([sys.executable, "-m", "socialmae_rt.cli", "prepare-backend", "--calibrate-live", "30",
                           "--backend", "ort-int8"], capture_output=True, text=True, timeout=300, env=_environ())
    assert done.returncode != 0
    assert "--calibrate-live calibrates int8 OpenVINO graphs: use it with --backend ov-int8 or auto" in done.stderr


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}


def test_a_first_start_records_its_own_input_then_switches_to_int8_calibrated_on_it(clip, tmp_path):
    cache = tmp_path / "cache"
    said: list[str] = []
    options = dict(cache_dir=cache, threads=1, on_status=said.append, **LOOSE_BARS)
    site = SiteRecorder(SiteCalibrationConfig(seconds=12.0, directory=str(tmp_path / "site")), on_status=said.append)
    backend = create_live_backend(create_backend, "auto", None, TINY, cpu=VNNI, installed=OPENVINO, site=site,
                                  shadow=ShadowConfig(enabled=False), **options)
    assert backend.info.name == "torch"  # the float backend runs while the recording is made
    assert backend.pending == "recording input to calibrate ov-int8 on site"
    sink = MemorySink()
    detector = FaceDetector()
    pipeline = Pipeline(backend, FaceTracker(detector, TrackerConfig()), [sink], PipelineConfig(), observers=[site])
    stop = threading.Event()
    source = MediaFileSource(MediaFileConfig(str(clip), realtime=True, loop=True))
    runner = threading.Thread(target=drive.run_live, args=(pipeline, [source], stop), daemon=True)
    runner.start()
    switched_at: list[int] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline and runner.is_alive():
            if backend.switches and not switched_at:
                switched_at.append(len(sink.results))
            if switched_at and len(sink.results) >= switched_at[0] + 3:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        runner.join(timeout=30)
        pipeline.close()
    assert switched_at, f"no switch: {said[-6:]}, {backend.health()}"
    assert backend.switches[0].from_backend == "torch" and backend.switches[0].to_backend == "ov-int8"
    assert switched_at[0] >= 1 and not pipeline.dropped  # torch records first; the switch lost no window
    assert any(line.startswith("site calibration: recorded ") for line in said)
    # the IR was calibrated on the first part and gated on the suite and the last part, and says so
    from socialmae_rt.engines.adaptive import cached_export
    from socialmae_rt.engines.openvino_ir import _passed_int8, ir_home

    ir = _passed_int8(ir_home(cached_export(None, TINY, cache_dir=cache), cache), cached_export(None, TINY, cache_dir=cache),
                      LOOSE_BARS["min_cosine"], LOOSE_BARS["max_prob_diff"])
    windows = ir.manifest["windows"]
    assert [s.split()[0] for s in windows["calibration"]["sources"]] == [CALIBRATE_CLIP]
    held_out = [s.split()[0] for s in windows["held_out"]["sources"]]
    assert held_out[-1] == GATE_CLIP and len(held_out) > 1  # the suite's clips too
    assert "gate" in ir.manifest["int8_clips"]
    # cached as any int8 IR: the next start loads it at once and records nothing
    assert readiness("ov-int8", None, TINY, cache_dir=cache, **LOOSE_BARS) == READY
    again_site = SiteRecorder(SiteCalibrationConfig(seconds=12.0, directory=str(tmp_path / "site2")), on_status=said.append)
    again = create_live_backend(create_backend, "auto", None, TINY, cpu=VNNI, installed=OPENVINO, site=again_site,
                                shadow=ShadowConfig(enabled=False), **options)
    try:
        assert again.info.name == "ov-int8" and again.pending is None
        assert again_site.cancelled and "cached already" in again_site.cancelled
    finally:
        again.close()
