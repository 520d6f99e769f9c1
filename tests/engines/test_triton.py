"""The Triton path against a real Triton Inference Server: the tritonserver binary of the
nvidia-pytriton wheel, serving our repository (Python backend running our ONNX graphs) on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("pytriton")

from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402

from socialmae_rt.backend import BackendUnavailable  # noqa: E402
from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource  # noqa: E402
from socialmae_rt.engines import create_backend  # noqa: E402
from socialmae_rt.engines.bundle_backend import BundleBackend  # noqa: E402
from socialmae_rt.engines.exports import prepare_export  # noqa: E402
from socialmae_rt.engines.onnx_export import example_inputs  # noqa: E402
from socialmae_rt.engines.triton_backend import TritonConfig, TritonModelMismatch  # noqa: E402
from socialmae_rt.engines.triton_repository import (  # noqa: E402
    RepositoryEntry, TritonRepositoryConfig, TritonRepositoryError, checkpoint_sha256, export_triton, write_repository)
from socialmae_rt.engines.triton_server import LocalTritonServer, free_port  # noqa: E402
from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig  # noqa: E402
from socialmae_rt.media.sample import build_sample_clip  # noqa: E402
from socialmae_rt.model import SocialMAE, SocialMAEConfig, save_checkpoint  # noqa: E402
from socialmae_rt.sinks import MemorySink  # noqa: E402
from socialmae_rt.sinks.console import status_summary  # noqa: E402
from socialmae_rt.stream import drive
from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig  # noqa: E402

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})


def tiny_checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return save_checkpoint(SocialMAE(TINY).eval(), path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A checkpoint, its export, a python-platform repository of it, and a server holding it."""
    root = tmp_path_factory.mktemp("triton")
    checkpoint = tiny_checkpoint(root / "a.safetensors", seed=1)
    cache = root / "cache"
    export_triton(str(checkpoint), root / "repo", TritonRepositoryConfig(platform="python", max_batch_size=8),
                  cache_dir=cache)
    with LocalTritonServer(root / "repo") as server:
        yield {"checkpoint": checkpoint, "cache": cache, "repo": root / "repo", "server": server, "root": root}


def parse_config(path: Path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


# Repository ---------------------------------------------------------------------------------------
def test_every_config_parses_as_a_triton_model_config_with_our_shapes_batching_and_hashes(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "w.safetensors", seed=2)
    export = prepare_export(checkpoint, None, cache_dir=tmp_path / "cache")
    options = TritonRepositoryConfig(max_batch_size=12, preferred_batch_sizes=(2, 6), max_queue_delay_us=500,
                                     instances=2, instance_kind="KIND_GPU")
    manifest = write_repository([RepositoryEntry(export, None, checkpoint_sha256(checkpoint))], tmp_path / "repo",
                                options)
    assert sorted(manifest["models"]) == ["socialmae_audio", "socialmae_audiovisual", "socialmae_video"]
    for name in manifest["models"]:
        config = parse_config(tmp_path / "repo" / name / "config.pbtxt")
        assert config.name == name and config.backend == "onnxruntime" and config.max_batch_size == 12
        assert (tmp_path / "repo" / name / "1" / "model.onnx").stat().st_size > 0
        assert list(config.dynamic_batching.preferred_batch_size) == [2, 6]
        assert config.dynamic_batching.max_queue_delay_microseconds == 500
        assert [(g.count, g.kind) for g in config.instance_group] == [(2, model_config_pb2.ModelInstanceGroup.KIND_GPU)]
        outputs = {o.name: list(o.dims) for o in config.output}
        assert outputs == {"embedding": [32], "emotion": [6], "laughter": [1], "personality": [5]}
        assert all(o.data_type == model_config_pb2.TYPE_FP32 for o in config.output)
        params = {k: v.string_value for k, v in config.parameters.items()}
        assert params["socialmae_weights_sha256"] == export.manifest["weights_sha256"]
        assert params["socialmae_checkpoint_sha256"] == checkpoint_sha256(checkpoint)
    inputs = {i.name: list(i.dims) for i in parse_config(tmp_path / "repo/socialmae_audiovisual/config.pbtxt").input}
    assert inputs == {"audio": [1024, 128], "video": [3, 224, 224, 8]}
    assert [i.name for i in parse_config(tmp_path / "repo/socialmae_video/config.pbtxt").input] == ["video"]


def test_bad_repository_options_and_inputs_are_refused_with_what_was_expected(tmp_path):
    with pytest.raises(TritonRepositoryError, match=r"preferred batch sizes must lie in 1..max_batch_size \(4\)"):
        TritonRepositoryConfig(max_batch_size=4, preferred_batch_sizes=(8,))
    with pytest.raises(TritonRepositoryError, match="platform must be one of onnxruntime, tensorrt, python"):
        TritonRepositoryConfig(platform="pytorch")
    export = prepare_export(tiny_checkpoint(tmp_path / "w.safetensors", seed=2), None, cache_dir=tmp_path / "cache")
    with pytest.raises(TritonRepositoryError, match="has no int8 graphs"):
        write_repository([RepositoryEntry(export)], tmp_path / "repo", TritonRepositoryConfig(variant="int8"))
    with pytest.raises(TritonRepositoryError, match="one distinct task each"):
        write_repository([RepositoryEntry(export, "emotion"), RepositoryEntry(export, "emotion")], tmp_path / "r2")
    if torch.cuda.is_available():
        return
    with pytest.raises(TritonRepositoryError, match="--platform tensorrt builds plans on this machine's GPU"):
        write_repository([RepositoryEntry(export)], tmp_path / "r3", TritonRepositoryConfig(platform="tensorrt"))


# Backend against the server -------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_triton_backend_gives_what_local_onnx_runtime_gives_in_every_mode(served, protocol):
    server = served["server"]
    url = server.grpc_url if protocol == "grpc" else server.http_url
    remote = create_backend("triton", served["checkpoint"], triton=TritonConfig(url=url, protocol=protocol))
    local = create_backend("ort", served["checkpoint"], cache_dir=served["cache"], threads=1)
    assert remote.info.name == "triton" and remote.info.device == f"triton {protocol}://{url}"
    assert remote.preprocess == local.preprocess and remote.model_config.head_sizes == local.model_config.head_sizes
    inputs = example_inputs(TINY, batch=10, seed=3)  # 10 > max_batch_size 8: two requests
    for audio, video in ((inputs["audio"], inputs["video"]), (inputs["audio"][:1], None), (None, inputs["video"][:3])):
        got, expected = remote.infer(audio, video), local.infer(audio, video)
        np.testing.assert_allclose(got.embedding, expected.embedding, atol=1e-4, rtol=0)
        for head, values in expected.heads.items():
            np.testing.assert_allclose(got.heads[head], values, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"video must have shape \[B, 3, 224, 224, 8\]"):
        remote.infer(None, inputs["video"][:, :, :100])
    remote.close()


def test_pipeline_records_through_triton_equal_local_onnx_runtime(served):
    clip = build_sample_clip(served["root"] / "clip.mp4", seconds=6.0, fps=10, width=320, height=240).path
    records = {}
    with FaceDetector(FaceDetectorConfig()) as detector:
        for name, options in (("triton", {"triton": TritonConfig(url=served["server"].grpc_url)}),
                              ("ort", {"cache_dir": served["cache"], "threads": 1})):
            sink = MemorySink()
            pipeline = Pipeline(create_backend(name, served["checkpoint"], **options),
                                FaceTracker(detector, TrackerConfig()), [sink], PipelineConfig(hop_s=1.0))
            drive.run_offline(pipeline, MediaFileSource(MediaFileConfig(str(clip))))
            pipeline.backend.close()
            records[name] = sink.results
    assert len(records["triton"]) == len(records["ort"]) >= 3
    for ours, local in zip(records["triton"], records["ort"]):
        assert (ours.face_id, ours.window_end_ns, ours.modality) == (local.face_id, local.window_end_ns, local.modality)
        for label, p in local.emotion.items():
            assert abs(ours.emotion[label] - p) < 1e-4
        assert abs(ours.laughter_probability - local.laughter_probability) < 1e-4
        assert max(abs(ours.personality[k] - v) for k, v in local.personality.items()) < 1e-4


def test_a_server_holding_other_weights_or_no_such_models_is_refused(served, tmp_path):
    url = served["server"].grpc_url
    other = tiny_checkpoint(tmp_path / "b.safetensors", seed=7)
    with pytest.raises(TritonModelMismatch, match=r"holds another checkpoint than .*b\.safetensors \(file sha256"):
        create_backend("triton", other, triton=TritonConfig(url=url))
    other_export = prepare_export(other, None, cache_dir=tmp_path / "cache")
    with pytest.raises(TritonModelMismatch, match=r"holds other weights than .* \(weights sha256"):
        create_backend("triton", other_export.directory, triton=TritonConfig(url=url))
    with pytest.raises(TritonModelMismatch, match="holds no models named robot7_"):
        create_backend("triton", None, triton=TritonConfig(url=url, model_prefix="robot7"))
    # no --weights: whatever our repository on the server holds, its preprocessing taken from the server
    assert create_backend("triton", None, triton=TritonConfig(url=url)).info.weights == "triton:socialmae_audiovisual"


def test_an_unreachable_server_at_start_is_one_clear_error():
    url = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(BackendUnavailable, match=rf"Triton server at {url} \(grpc\) did not answer within 1 s"):
        create_backend("triton", None, triton=TritonConfig(url=url, connect_timeout_s=1.0))


def test_a_bundle_on_the_server_answers_as_one_backend_with_every_task(tmp_path):
    from socialmae_rt.model.checkpoint import load_checkpoint

    entries = []
    for seed, task in ((3, "emotion"), (4, "laughter")):
        torch.manual_seed(seed)
        model = SocialMAE(SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1,
                                          extra_heads={"laughter": 1})).eval()
        entries.append(f"{task}={save_checkpoint(model, tmp_path / f'{task}.safetensors')}")
    export_triton(" ".join(entries), tmp_path / "repo", TritonRepositoryConfig(platform="python"),
                  cache_dir=tmp_path / "cache")
    with LocalTritonServer(tmp_path / "repo") as server:
        backend = create_backend("triton", None, triton=TritonConfig(url=server.grpc_url))  # found on the server
        named = create_backend("triton", " ".join(entries), triton=TritonConfig(url=server.grpc_url))  # checked against files
        assert isinstance(backend, BundleBackend) and sorted(backend.tasks) == ["emotion", "laughter"]
        audio = example_inputs(TINY, batch=2, seed=5)["audio"]
        out = named.infer(audio, None)
        for task in ("emotion", "laughter"):
            model = load_checkpoint(tmp_path / f"{task}.safetensors").model
            with torch.no_grad():
                expected = model.predict(torch.from_numpy(audio), None).logits[task].numpy()
            np.testing.assert_allclose(out.heads[task], expected, atol=1e-4, rtol=0)
            np.testing.assert_allclose(backend.infer(audio, None).heads[task], expected, atol=1e-4, rtol=0)


# Faults ------------------------------------------------------------------------------------------
def test_server_killed_mid_run_and_restarted_the_live_run_goes_on(served, tmp_path):
    server = LocalTritonServer(served["repo"]).start()
    clip = build_sample_clip(tmp_path / "live.mp4", seconds=14.0, fps=10, width=320, height=240).path
    sink = MemorySink()
    backend = create_backend("triton", served["checkpoint"], triton=TritonConfig(url=server.grpc_url))
    backend.config.retry_max_s = 1.0
    outage: dict[str, float] = {}
    with FaceDetector(FaceDetectorConfig()) as detector:
        pipeline = Pipeline(backend, FaceTracker(detector, TrackerConfig()), [sink],
                            PipelineConfig(hop_s=0.5, status_interval_s=0.25, max_consecutive_failures=2))

        def fault():
            deadline = time.monotonic() + 120
            while not sink.results and time.monotonic() < deadline:
                time.sleep(0.05)
            server.kill()
            outage["killed"] = len(sink.results)
            while pipeline.backend_down_since_ns is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
            outage["restarting"] = len(sink.results)
            outage["server"] = LocalTritonServer(served["repo"], http_port=server.http_port,
                                                 grpc_port=server.grpc_port).start()

        faulting = threading.Thread(target=fault, daemon=True)
        faulting.start()
        try:
            drive.run_live(pipeline, [MediaFileSource(MediaFileConfig(str(clip), realtime=True))])
        finally:
            faulting.join(timeout=120)
            server.stop()
            if "server" in outage:
                outage["server"].stop()
    assert "server" in outage, "the server was never restarted"
    assert pipeline.dropped["backend unavailable"] >= 1  # windows counted while it was down, run not ended
    assert len(sink.results) > outage["restarting"] >= outage["killed"] >= 1  # records before and after
    down = [s for s in sink.statuses if s.backend.down_s is not None]
    assert down and "unreachable" in down[0].backend.down_reason
    assert f"backend down: Triton server at {server.grpc_url} unreachable" in status_summary(down[0])
    assert pipeline.backend_down_since_ns is None  # back at the end


def test_a_frozen_server_times_out_as_down_and_answers_again_once_it_runs(served):
    import os
    import signal

    server = LocalTritonServer(served["repo"]).start()
    audio = example_inputs(TINY, batch=1, seed=1)["audio"]
    try:
        backend = create_backend("triton", served["checkpoint"], triton=TritonConfig(url=server.grpc_url, timeout_s=1.0))
        expected = backend.infer(audio, None).heads["emotion"]
        os.killpg(server.process.pid, signal.SIGSTOP)  # alive, listening, answering nothing
        try:
            with pytest.raises(BackendUnavailable, match=rf"Triton server at {server.grpc_url} unreachable .*Deadline"):
                backend.infer(audio, None)
            with pytest.raises(BackendUnavailable):  # within the backoff: fails fast, no request sent
                backend.infer(audio, None)
        finally:
            os.killpg(server.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while True:
            try:
                np.testing.assert_allclose(backend.infer(audio, None).heads["emotion"], expected, atol=1e-6)
                break
            except BackendUnavailable:
                assert time.monotonic() < deadline, "the server never answered again"
                time.sleep(0.2)
        backend.close()
    finally:
        server.stop()


# Command line -------------------------------------------------------------------------------------
def test_export_triton_command_writes_the_repository_and_says_how_to_serve_it(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "w.safetensors", seed=2)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("socialmae-rt")), "export-triton", "--weights", str(checkpoint),
         "--out", str(tmp_path / "repo"), "--platform", "python", "--max-batch-size", "4",
         "--preferred-batch-sizes", "2", "4", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "socialmae_audiovisual: audiovisual" in result.stdout
    assert f"socialmae-rt serve-triton --repository {tmp_path / 'repo'}" in result.stdout
    config = parse_config(tmp_path / "repo/socialmae_audio/config.pbtxt")
    assert config.backend == "python" and config.max_batch_size == 4
    assert (tmp_path / "repo/socialmae_audio/1/model.py").is_file()


# Bench --------------------------------------------------------------------------------------------
def test_bench_scenario_counts_windows_latency_and_the_batches_the_server_formed(served, tmp_path):
    from socialmae_rt.bench.triton import Scenario, format_table, plot, run_scenario

    inputs = example_inputs(TINY, batch=1, seed=3)
    row = run_scenario(TritonConfig(url=served["server"].grpc_url), Scenario(robots=2, faces=3), seconds=2.0,
                       hop_s=0.5, inputs=inputs)
    assert row["requests"] >= 2 and row["windows"] == 3 * row["requests"]
    assert row["server_executions"] >= 1 and 3 <= row["mean_server_batch"] <= 8  # at least one request's rows
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
    assert row["offered_windows_per_s"] == pytest.approx(12.0)
    table = format_table([row])
    assert table.splitlines()[2].split()[:2] == ["2", "3"]
    plot([row], {"server": "test", "model": "tiny"}, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_serve_triton_command_serves_a_repository_until_sigterm(served):
    import signal

    grpc_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("socialmae-rt")), "serve-triton", "--repository", str(served["repo"]),
         "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # ends if the command dies
            lines.append(line)
            if line.startswith("serving:"):
                break
        assert lines and lines[-1].startswith(f"serving: grpc 127.0.0.1:{grpc_port}"), "".join(lines)
        backend = create_backend("triton", served["checkpoint"], triton=TritonConfig(url=f"127.0.0.1:{grpc_port}"))
        assert backend.infer(example_inputs(TINY, batch=1, seed=1)["audio"], None).heads["emotion"].shape == (1, 6)
        backend.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
