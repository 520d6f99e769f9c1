"""The switching backend on real runs: a bad int8 model caught by the live shadow check and left
mid-run; a first start that runs at once on torch and switches to int8 built in a background
process; the live refusal remembered for the next start (toy configs)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource
from socialmae_rt.engines import create_backend, switching
from socialmae_rt.engines.adaptive import READY, REFUSED, create_live_backend, readiness, refuse_live
from socialmae_rt.engines.auto import Installed
from socialmae_rt.engines.onnx_export import export_onnx
from socialmae_rt.engines.ort_backend import OrtBackend
from socialmae_rt.engines.ort_int8 import quantize_export
from socialmae_rt.engines.switching import Candidate, ShadowConfig, SwitchingBackend
from socialmae_rt.faces import FaceDetector, FaceTracker, TrackerConfig
from socialmae_rt.media.sample import build_sample_clip
from socialmae_rt.model import SocialMAE, SocialMAEConfig
from socialmae_rt.sinks import MemorySink
from socialmae_rt.sinks.console import status_summary
from socialmae_rt.stream import drive
from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig
from socialmae_rt.util.machine import CpuDescription

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})
# The dim-32 toy model is a poor int8 target: its int8 graphs get a looser bar (the machinery is the same).
TOY_BARS = {"min_cosine": 0.99, "max_prob_diff": 0.05}
AVX2 = CpuDescription("AMD EPYC", frozenset({"avx2", "fma"}), 2)
ORT_ONLY = Installed(openvino=False, nncf=False, onnxruntime=True, tensorrt_gpu=False)
WAIT_S = 240.0  # generous: a loaded machine builds slowly


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return build_sample_clip(tmp_path_factory.mktemp("clip") / "sample.mp4", seconds=12.0).path


@pytest.fixture
def detector():  # one per test: pipeline.close() closes it
    with FaceDetector() as found:
        yield found


def live_run_until(pipeline: Pipeline, clip, done, timeout_s: float = WAIT_S) -> None:
    """The clip looped in real time through the pipeline until `done()` holds (or the timeout)."""
    stop = threading.Event()
    source = MediaFileSource(MediaFileConfig(str(clip), realtime=True, loop=True))
    runner = threading.Thread(target=drive.run_live, args=(pipeline, [source], stop), daemon=True)
    runner.start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and runner.is_alive() and not done():
        time.sleep(0.2)
    stop.set()
    runner.join(timeout=30)


def model(seed: int) -> SocialMAE:
    torch.manual_seed(seed)
    return SocialMAE(TINY).eval()


def test_a_bad_int8_model_is_caught_by_the_shadow_check_and_left_mid_run(clip, detector, tmp_path):
    good = model(1)
    reference_export = export_onnx(good, tmp_path / "good", source="test")
    # int8 graphs whose weights were perturbed after calibration: what a broken int8 build looks like
    bad = model(1)
    with torch.no_grad():
        for parameter in bad.parameters():
            parameter.add_(0.5 * parameter.abs().mean() * torch.randn_like(parameter))
    bad_export = export_onnx(bad, tmp_path / "bad", source="test")
    quantize_export(bad_export, bad, **TOY_BARS)  # it passes its own gate: it is judged against itself
    backend = SwitchingBackend(
        OrtBackend(bad_export, "int8", threads=1),
        fallbacks=[Candidate("ort", True, lambda: OrtBackend(reference_export, "fp32", threads=1))],
        reference=lambda: OrtBackend(reference_export, "fp32", threads=1),
        shadow=ShadowConfig(every_s=0.0, fail_after=2, nice=0), refuse=refuse_live)
    sink = MemorySink()
    pipeline = Pipeline(backend, FaceTracker(detector, TrackerConfig()), [sink], PipelineConfig())
    switched_at: list[int] = []

    def done() -> bool:
        if backend.switches and not switched_at:
            switched_at.append(len(sink.results))
        return bool(switched_at) and len(sink.results) >= switched_at[0] + 3

    try:
        live_run_until(pipeline, clip, done)
        status = pipeline.status()
    finally:
        pipeline.close()
    assert switched_at, f"no switch; shadow state {backend.health()}"
    switch = backend.switches[0]
    assert (switch.from_backend, switch.to_backend) == ("ort-int8", "ort")
    assert "live shadow check disagreed with fp32 in 2 checks in a row" in switch.why
    assert switched_at[0] >= 2 and len(sink.results) >= switched_at[0] + 3  # records before and after
    assert not pipeline.dropped  # no window failed or was lost to the switch
    health = status.backend.switching
    assert health.fallback_reason == switch.why and status.backend.name == "ort"
    assert "switched ort-int8 -> ort" in status_summary(status)
    # remembered: the next start does not pick these int8 graphs
    manifest = OrtBackend(bad_export, "fp32").export.manifest
    assert manifest["int8_refused"]["live"] and "refused while running" in manifest["int8_refused"]["error"]


def test_the_shadow_check_agrees_with_a_good_int8_model_and_says_so(clip, detector, tmp_path):
    good = model(2)
    export = export_onnx(good, tmp_path / "good", source="test")
    quantize_export(export, good, **TOY_BARS)
    backend = SwitchingBackend(OrtBackend(export, "int8", threads=1),
                               reference=lambda: OrtBackend(export, "fp32", threads=1),
                               shadow=ShadowConfig(every_s=0.0, fail_after=2, nice=0, **TOY_BARS), refuse=refuse_live)
    pipeline = Pipeline(backend, FaceTracker(detector, TrackerConfig()), [MemorySink()], PipelineConfig())
    try:
        live_run_until(pipeline, clip, lambda: backend.checks >= 3)
        status = pipeline.status()
    finally:
        pipeline.close()
    shadow = status.backend.switching.shadow
    assert shadow.checks >= 3 and shadow.agreeing == shadow.of_last and shadow.active
    assert shadow.rolling_min_cosine >= TOY_BARS["min_cosine"] and not backend.switches
    assert "shadow check 3/3 agree" in status_summary(status) or "agree with fp32" in status_summary(status)


def test_a_first_start_runs_at_once_on_torch_and_switches_to_int8_built_in_the_background(clip, detector, tmp_path,
                                                                                          monkeypatch):
    cache = tmp_path / "cache"
    said: list[str] = []
    # Timing only: the background build starts once torch has served a window. A fast machine builds
    # the toy model's int8 graphs in less than the first window's 4 s, and then torch serves none.
    first_record = threading.Event()
    build = switching.build_in_child

    def build_after_the_first_record(spec, progress, stop, started=lambda child: None):
        while not first_record.wait(0.2):
            if stop.is_set():
                return
        build(spec, progress, stop, started=started)

    monkeypatch.setattr(switching, "build_in_child", build_after_the_first_record)
    options = dict(cache_dir=cache, threads=1, on_status=said.append, **TOY_BARS)
    assert readiness("ort-int8", None, TINY, cache_dir=cache, **TOY_BARS) != READY  # an empty cache: nothing is built
    started = time.monotonic()
    backend = create_live_backend(create_backend, "auto", None, TINY, cpu=AVX2, installed=ORT_ONLY,
                                  shadow=ShadowConfig(every_s=0.0, nice=0, **TOY_BARS), **options)
    load_s = time.monotonic() - started
    assert backend.info.name == "torch" and backend.pending is not None  # ready now; int8 on its way
    assert any("starting now, building ort-int8, ort in the background" in line for line in said)
    sink = MemorySink()
    pipeline = Pipeline(backend, FaceTracker(detector, TrackerConfig()), [sink], PipelineConfig())
    before: list[int] = []

    def done() -> bool:
        if sink.results:
            first_record.set()
        if backend.switches and not before:
            before.append(len(sink.results))
        return bool(before) and len(sink.results) >= before[0] + 3

    try:
        live_run_until(pipeline, clip, done)
    finally:
        pipeline.close()
    assert before, f"no switch: {said[-5:]}, {backend.health()} (torch loaded in {load_s:.1f} s)"
    assert backend.switches[0].from_backend == "torch" and backend.switches[0].to_backend == "ort-int8"
    assert before[0] >= 1 and len(sink.results) >= before[0] + 3  # torch records, then int8 records
    assert not pipeline.dropped  # the switch lost no window
    # the next start loads int8 at once, with no background build
    assert readiness("ort-int8", None, TINY, cache_dir=cache, **TOY_BARS) == READY
    assert readiness("ort-int8", None, TINY, cache_dir=cache) != READY  # not at the default, stricter bar
    again = create_live_backend(create_backend, "auto", None, TINY, cpu=AVX2, installed=ORT_ONLY,
                                shadow=ShadowConfig(enabled=False), **options)
    try:
        assert again.info.name == "ort-int8" and again.pending is None
    finally:
        again.close()


def test_an_int8_model_refused_live_is_skipped_by_the_next_start(tmp_path):
    cache = tmp_path / "cache"
    first = create_backend("ort-int8", None, TINY, cache_dir=cache, threads=1, **TOY_BARS)
    refuse_live(first, "the live shadow check disagreed with fp32 in 3 checks in a row")
    first.close()
    assert readiness("ort-int8", None, TINY, cache_dir=cache, **TOY_BARS) == REFUSED
    said: list[str] = []
    backend = create_live_backend(create_backend, "auto", None, TINY, cpu=AVX2, installed=ORT_ONLY,
                                  shadow=ShadowConfig(enabled=False), cache_dir=cache, threads=1,
                                  on_status=said.append)
    try:
        assert backend.info.name == "ort" and backend.pending is None  # the export is there: fp32 loads now
        assert any("ort-int8 skipped (its int8 graphs were refused before)" in line for line in said)
    finally:
        backend.close()


def test_a_shadow_check_that_cannot_run_is_said_once_and_the_run_goes_on(tmp_path):
    export = export_onnx(model(3), tmp_path / "e", source="test")
    quantize_export(export, model(3), **TOY_BARS)

    def broken_reference():
        raise FileNotFoundError("fp32 graph missing")

    backend = SwitchingBackend(OrtBackend(export, "int8", threads=1), reference=broken_reference,
                               shadow=ShadowConfig(every_s=0.0, nice=0))
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((1, 1024, 128)).astype(np.float32)
    try:
        for _ in range(5):
            out = backend.infer(audio, None)
            assert out.embedding.shape == (1, 32)
        deadline = time.monotonic() + 60
        while not backend.problems and time.monotonic() < deadline:
            time.sleep(0.05)
            backend.infer(audio, None)
        assert backend.problems == ["shadow check cannot run (FileNotFoundError: fp32 graph missing); "
                                    "the run goes on unchecked"]
        backend.infer(audio, None)  # still serving
    finally:
        backend.close()
