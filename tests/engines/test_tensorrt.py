"""TensorRT backend: the engine cache, config, input checks and fallback run everywhere; the engine
tests at the bottom need TensorRT and a CUDA GPU and skip (saying why) elsewhere."""

import dataclasses
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from socialmae_rt.engines import engine_cache
from socialmae_rt.engines.engine_cache import (
    BatchProfile, CacheKeyParts, EngineCacheError, cache_key, find_plan, load_or_build, should_build, sidecar_path,
    write_plan)
from socialmae_rt.engines.onnx_export import EXPORT_ATOL, MODE_INPUTS, example_inputs, export_onnx, torch_outputs
from socialmae_rt.engines.tensorrt_backend import (
    INSTALL_HINT, EngineBuildError, NonFiniteOutputError, TensorRTBackend, TensorRTConfig, TensorRTUnavailable,
    batch_chunks, build_engines, check_finite, check_fp16_finite, check_inputs, create_tensorrt_backend,
    describe_parse_failure, parser_errors, profile_shapes, tensorrt_unavailable_reason)
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1)
WINDOW_SHAPES = {"audio": (1024, 128), "video": (3, 224, 224, 8)}
# fp16 engine vs fp32 torch: fp16 keeps ~3 significant digits; through a small transformer the
# error stays well under this, while the direction of every embedding is kept almost exactly.
FP16_ATOL = 5e-2
FP16_MIN_COSINE = 0.999
# fp32 engine vs torch: TensorRT may use TF32 matmuls on Ampere and newer (10-bit mantissa).
FP32_ATOL = 5e-3
TENSORRT_IMPORTABLE = importlib.util.find_spec("tensorrt") is not None


def key_parts(**changes) -> CacheKeyParts:
    parts = CacheKeyParts(
        onnx_sha256="ab" * 32,
        trt_version="10.3.0",
        compute_capability="8.9",
        precision="fp16",
        profile=BatchProfile(min=1, opt=1, max=4),
    )
    return dataclasses.replace(parts, **changes)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A real three-graph export of a tiny random Social-MAE, and the model it came from."""
    torch.manual_seed(0)
    model = SocialMAE(TINY).eval()
    export = export_onnx(model, tmp_path_factory.mktemp("export"))
    return model, export


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# ---------------------------------------------------------------------------------------------
# Cache keys
# ---------------------------------------------------------------------------------------------


def test_cache_key_is_deterministic_hex():
    parts = key_parts()
    key = cache_key(parts.onnx_sha256, parts.trt_version, parts.compute_capability, parts.precision, parts.profile)
    assert key == parts.key == key_parts().key
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "cd" * 32},
        {"trt_version": "10.4.0"},
        {"compute_capability": "8.6"},
        {"precision": "fp32"},
        {"profile": BatchProfile(min=1, opt=2, max=4)},
        {"profile": BatchProfile(min=1, opt=1, max=8)},
        {"gpu_name": "NVIDIA L4"},  # same compute capability (8.9) as an RTX 4090: another card
        {"workspace_mb": 4096},
    ],
    ids=lambda change: next(iter(change)) + "=" + str(next(iter(change.values()))),
)
def test_cache_key_changes_when_any_part_changes(change):
    assert key_parts(**change).key != key_parts().key


def test_batch_profile_must_be_ordered():
    with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
        BatchProfile(min=1, opt=5, max=4)


# ---------------------------------------------------------------------------------------------
# find_plan / write_plan
# ---------------------------------------------------------------------------------------------


def test_written_plan_is_found_with_a_full_sidecar(tmp_path):
    parts = key_parts()
    extra = {"build_seconds": 12.5, "workspace_mb": 2048, "onnx_path": "/x/audio.onnx",
             "inputs": {"audio": [-1, 1024, 128]}, "outputs": {"embedding": [-1, 32]}}
    plan = write_plan(tmp_path, parts, b"serialized engine", extra)
    assert plan == tmp_path / f"{parts.key}.plan"
    assert find_plan(tmp_path, parts) == plan
    sidecar = json.loads(sidecar_path(tmp_path, parts.key).read_text())
    assert sidecar["key"] == parts.key and sidecar["key_parts"] == parts.as_dict()
    assert sidecar["build_seconds"] == 12.5 and sidecar["inputs"] == {"audio": [-1, 1024, 128]}
    assert sidecar["onnx_path"] == "/x/audio.onnx" and sidecar["workspace_mb"] == 2048


def test_plans_follow_the_umask_so_a_shared_cache_is_readable(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        plan = write_plan(tmp_path, key_parts(), b"plan")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(plan.stat().st_mode) == 0o644  # mkstemp alone would leave 0600


def test_buffers_other_than_bytes_are_written(tmp_path):
    # TensorRT hands out IHostMemory, a buffer: anything with the buffer protocol must do.
    plan = write_plan(tmp_path, key_parts(), memoryview(bytearray(b"\x01\x02\x03")), {})
    assert plan.read_bytes() == b"\x01\x02\x03"


def test_missing_plan_means_rebuild(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger=engine_cache.__name__):
        assert find_plan(tmp_path, key_parts()) is None
    assert "no cached TensorRT plan" in caplog.text


def test_empty_plan_means_rebuild(tmp_path, caplog):
    parts = key_parts()
    write_plan(tmp_path, parts, b"engine", {}).write_bytes(b"")
    with caplog.at_level(logging.INFO, logger=engine_cache.__name__):
        assert find_plan(tmp_path, parts) is None
    assert "is empty" in caplog.text


def test_plan_without_sidecar_means_rebuild(tmp_path, caplog):
    parts = key_parts()
    write_plan(tmp_path, parts, b"engine", {})
    sidecar_path(tmp_path, parts.key).unlink()
    with caplog.at_level(logging.INFO, logger=engine_cache.__name__):
        assert find_plan(tmp_path, parts) is None
    assert "sidecar" in caplog.text and "is missing" in caplog.text


def test_corrupt_sidecar_means_rebuild(tmp_path, caplog):
    parts = key_parts()
    write_plan(tmp_path, parts, b"engine", {})
    sidecar_path(tmp_path, parts.key).write_text('{"key_parts": {"onnx_sha')
    with caplog.at_level(logging.INFO, logger=engine_cache.__name__):
        assert find_plan(tmp_path, parts) is None
    assert "not valid JSON" in caplog.text


@pytest.mark.parametrize(
    "field, recorded",
    [
        ("onnx_sha256", "cd" * 32),
        ("trt_version", "8.6.1"),
        ("compute_capability", "7.5"),
        ("precision", "fp32"),
        ("profile", {"min": 1, "opt": 1, "max": 16}),
    ],
)
def test_sidecar_disagreeing_on_any_part_means_rebuild(tmp_path, caplog, field, recorded):
    parts = key_parts()
    write_plan(tmp_path, parts, b"engine", {})
    path = sidecar_path(tmp_path, parts.key)
    document = json.loads(path.read_text())
    document["key_parts"][field] = recorded
    path.write_text(json.dumps(document))
    with caplog.at_level(logging.INFO, logger=engine_cache.__name__):
        assert find_plan(tmp_path, parts) is None
    assert "does not match" in caplog.text and field in caplog.text


def test_failed_write_leaves_no_plan_and_no_temporary_file(tmp_path, monkeypatch):
    def disk_fails(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine_cache.os, "fsync", disk_fails)
    with pytest.raises(OSError, match="No space left"):
        write_plan(tmp_path, key_parts(), b"engine bytes", {})
    assert list(tmp_path.iterdir()) == []
    assert find_plan(tmp_path, key_parts()) is None


def test_failed_rewrite_keeps_the_previous_valid_plan(tmp_path, monkeypatch):
    parts = key_parts()
    write_plan(tmp_path, parts, b"first build", {})
    real_replace = os.replace

    def crash_on_plan(source, target):
        if str(target).endswith(".plan"):
            raise OSError("killed mid-write")
        real_replace(source, target)

    monkeypatch.setattr(engine_cache.os, "replace", crash_on_plan)
    with pytest.raises(OSError, match="killed mid-write"):
        write_plan(tmp_path, parts, b"second build", {})
    assert find_plan(tmp_path, parts).read_bytes() == b"first build"
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".plan"]  # no temporary left


def test_empty_plan_is_refused(tmp_path):
    with pytest.raises(EngineCacheError, match="empty"):
        write_plan(tmp_path, key_parts(), b"", {})
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCIALMAE_RT_CACHE", str(tmp_path))
    assert engine_cache.default_cache_dir() == tmp_path / "trt"
    assert TensorRTConfig().cache_path == tmp_path / "trt"
    monkeypatch.delenv("SOCIALMAE_RT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert engine_cache.default_cache_dir() == tmp_path / "home" / ".cache" / "socialmae_rt" / "trt"
    assert TensorRTConfig(cache_dir=str(tmp_path / "mine")).cache_path == tmp_path / "mine"


# ---------------------------------------------------------------------------------------------
# Build decisions and load-or-build (plain callables stand in for TensorRT)
# ---------------------------------------------------------------------------------------------


def test_should_build():
    assert should_build(None, force_rebuild=False).build
    cached = should_build(Path("x.plan"), force_rebuild=False)
    assert not cached.build and "x.plan" in cached.reason
    forced = should_build(Path("x.plan"), force_rebuild=True)
    assert forced.build and "force_rebuild" in forced.reason


class FakeTensorRT:
    """build() returns plans "<name> 1", "<name> 2" ...; deserialize() accepts only the plans in
    `loadable` (all plans when it is None)."""

    def __init__(self, name="plan", loadable=None):
        self.name = name
        self.builds = 0
        self.loadable = loadable

    def build(self):
        self.builds += 1
        return f"{self.name} {self.builds}".encode(), {"build_seconds": 0.1}

    def deserialize(self, plan):
        plan = bytes(plan)
        return None if self.loadable is not None and plan not in self.loadable else ("engine", plan)


def run_load_or_build(cache_dir, fake, force_rebuild=False, statuses=None):
    return load_or_build(cache_dir, key_parts(), force_rebuild=force_rebuild, build=fake.build,
                         deserialize=fake.deserialize, on_build=None if statuses is None else statuses.append)


def test_first_run_builds_and_caches_then_loads_without_building(tmp_path):
    fake, statuses = FakeTensorRT(), []
    first = run_load_or_build(tmp_path, fake, statuses=statuses)
    assert first.report.built and fake.builds == 1 and statuses == ["no valid cached plan"]
    second = run_load_or_build(tmp_path, fake)
    assert not second.report.built and fake.builds == 1
    assert second.engine == ("engine", b"plan 1") and second.report.plan == first.report.plan
    assert second.report.summary()["action"] == "loaded"


def test_force_rebuild_builds_even_with_a_valid_plan(tmp_path):
    fake = FakeTensorRT()
    run_load_or_build(tmp_path, fake)
    forced = run_load_or_build(tmp_path, fake, force_rebuild=True)
    assert forced.report.built and fake.builds == 2 and "force_rebuild" in forced.report.reason
    assert forced.report.plan.read_bytes() == b"plan 2"


def test_plan_that_fails_to_deserialize_is_deleted_and_rebuilt_once(tmp_path, caplog):
    run_load_or_build(tmp_path, FakeTensorRT(name="old"))  # caches "old 1"
    fake = FakeTensorRT(name="new", loadable={b"new 1"})  # e.g. a new driver refuses the old plan
    with caplog.at_level(logging.WARNING):
        loaded = run_load_or_build(tmp_path, fake)
    assert fake.builds == 1 and loaded.report.built and loaded.engine == ("engine", b"new 1")
    assert "failed to deserialize" in loaded.report.reason
    assert "deleting cached TensorRT plan" in caplog.text and "could not deserialize" in caplog.text
    assert find_plan(tmp_path, key_parts()).read_bytes() == b"new 1"


def test_a_load_failure_that_does_not_blame_the_plan_keeps_it(tmp_path):
    from socialmae_rt.engines.tensorrt_backend import EngineLoadError

    fake = FakeTensorRT()
    run_load_or_build(tmp_path, fake)  # a valid plan in the cache

    def out_of_memory(plan):
        raise EngineLoadError("TensorRT could not load the plan (Requested amount of GPU memory could not be "
                              "allocated); it is kept")

    with pytest.raises(EngineLoadError):
        load_or_build(tmp_path, key_parts(), force_rebuild=False, build=fake.build, deserialize=out_of_memory)
    assert find_plan(tmp_path, key_parts()) is not None and fake.builds == 1  # kept, nothing rebuilt


@pytest.mark.parametrize("messages, invalid", [
    (["The engine plan file is not compatible with this version of TensorRT, expecting library version 10.3"], True),
    (["Serialization assertion magicTagRead == kMAGIC_TAG failed. Magic tag does not match"], True),
    (["1: [defaultAllocator.cpp::allocate::31] Error Code 1: Cuda Runtime (out of memory)"], False),
    (["Requested amount of GPU memory (1073741824 bytes) could not be allocated."], False),
    ([], False),
])
def test_only_messages_that_blame_the_plan_count_as_an_invalid_plan(messages, invalid):
    from socialmae_rt.engines.tensorrt_backend import plan_is_invalid

    assert plan_is_invalid(messages) is invalid


def test_fresh_plan_that_fails_to_deserialize_raises_and_is_not_kept(tmp_path):
    fake = FakeTensorRT(loadable=set())  # nothing loads
    with pytest.raises(EngineCacheError, match="cannot load it"):
        run_load_or_build(tmp_path, fake)
    assert fake.builds == 1 and find_plan(tmp_path, key_parts()) is None


def test_a_stale_plan_and_a_failing_rebuild_build_only_once(tmp_path):
    run_load_or_build(tmp_path, FakeTensorRT())
    fake = FakeTensorRT(loadable=set())
    with pytest.raises(EngineCacheError):
        run_load_or_build(tmp_path, fake)
    assert fake.builds == 1


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_config_defaults():
    config = TensorRTConfig()
    assert (config.precision, config.max_batch, config.opt_batch, config.workspace_mb) == ("fp16", 4, 1, 2048)
    assert config.profile == BatchProfile(1, 1, 4) and not config.force_rebuild and config.device == 0


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"precision": "int8"}, r"precision must be one of \('fp16', 'fp32'\), got 'int8'"),
        ({"max_batch": 0}, "max_batch must be an integer >= 1"),
        ({"opt_batch": 0}, r"opt_batch must be an integer in 1..max_batch \(4\), got 0"),
        ({"opt_batch": 8}, "lower opt_batch or raise max_batch"),
        ({"opt_batch": 2, "max_batch": 1}, r"in 1..max_batch \(1\), got 2"),
        ({"workspace_mb": 0}, "workspace_mb must be an integer >= 1"),
        ({"device": -1}, "device must be a CUDA device index >= 0"),
        ({"max_batch": 2.5}, "max_batch must be an integer"),
        ({"force_rebuild": "yes"}, "force_rebuild must be True or False"),
    ],
)
def test_config_errors_say_what_to_change(fields, message):
    with pytest.raises(ValueError, match=message):
        TensorRTConfig(**fields)


# ---------------------------------------------------------------------------------------------
# Input checks, batching, outputs, profiles, parser errors (no GPU)
# ---------------------------------------------------------------------------------------------


def test_inputs_pick_the_modality_and_batch():
    audio = np.zeros((3, 1024, 128), np.float32)
    video = np.zeros((3, 3, 224, 224, 8), np.float32)
    assert check_inputs(audio, None, WINDOW_SHAPES)[0] == Modality.AUDIO
    assert check_inputs(None, video, WINDOW_SHAPES)[0] == Modality.VIDEO
    modality, inputs, batch = check_inputs(audio, video, WINDOW_SHAPES)
    assert modality == Modality.AUDIOVISUAL and batch == 3 and list(inputs) == ["audio", "video"]
    strided = np.zeros((2, 1024, 256), np.float32)[:, :, ::2]
    assert check_inputs(strided, None, WINDOW_SHAPES)[1]["audio"].flags.c_contiguous


@pytest.mark.parametrize(
    "audio, video, error, message",
    [
        (None, None, ValueError, "needs audio, video or both"),
        (np.full((1, 1024, 128), np.nan, np.float32), None, ValueError, "audio contains NaN or Inf"),
        (torch.zeros(1, 1024, 128), None, TypeError, "numpy arrays, got Tensor"),
        (np.zeros((1, 1024, 128)), None, TypeError, r"audio must be float32, got float64; convert with"),
        (np.zeros((1, 100, 128), np.float32), None, ValueError, r"audio must have shape \[B, 1024, 128\]"),
        (np.zeros((1024, 128), np.float32), None, ValueError, r"got \[1024, 128\]"),
        (None, np.zeros((0, 3, 224, 224, 8), np.float32), ValueError, "empty batch"),
        (np.zeros((2, 1024, 128), np.float32), np.zeros((1, 3, 224, 224, 8), np.float32), ValueError,
         "same number of windows"),
    ],
    ids=["neither", "nan", "tensor", "float64", "shape", "no-batch-dim", "empty", "batch-mismatch"],
)
def test_bad_inputs_are_refused_before_the_gpu(audio, video, error, message):
    with pytest.raises(error, match=message):
        check_inputs(audio, video, WINDOW_SHAPES)


def test_large_batches_are_split_into_chunks():
    assert batch_chunks(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert batch_chunks(3, 4) == [slice(0, 3)]
    assert batch_chunks(4, 4) == [slice(0, 4)]
    with pytest.raises(ValueError):
        batch_chunks(0, 4)


def test_non_finite_outputs_raise():
    check_finite({"embedding": np.ones((2, 4), np.float32)}, "engine")
    bad = {"embedding": np.ones((2, 4), np.float32), "emotion": np.array([[np.nan, np.inf, 1.0]], np.float32)}
    with pytest.raises(NonFiniteOutputError, match=r"emotion \(2 values\).*precision='fp32'"):
        check_fp16_finite(bad, "TensorRT audio engine")


def onnx_input_shapes(path) -> dict[str, list[int]]:
    """Graph input shapes as TensorRT's parser reports them: -1 for a named (dynamic) dimension."""
    graph = onnx.load(str(path)).graph
    return {i.name: [d.dim_value if d.HasField("dim_value") else -1 for d in i.type.tensor_type.shape.dim]
            for i in graph.input}


def test_profiles_vary_only_the_batch_of_the_exported_graphs(tiny_export):
    _, export = tiny_export
    profile = TensorRTConfig(max_batch=8, opt_batch=2).profile
    shapes = onnx_input_shapes(export.graph(Modality.AUDIOVISUAL))
    assert profile_shapes("audio", shapes["audio"], profile) == ((1, 1024, 128), (2, 1024, 128), (8, 1024, 128))
    assert profile_shapes("video", shapes["video"], profile)[2] == (8, 3, 224, 224, 8)
    with pytest.raises(EngineBuildError, match="batch dimension is not dynamic"):
        profile_shapes("audio", [1, 1024, 128], profile)
    with pytest.raises(EngineBuildError, match="only the batch may be dynamic"):
        profile_shapes("audio", [-1, -1, 128], profile)


def test_every_parser_error_is_reported():
    class RecordedErrors:  # what OnnxParser offers: num_errors and get_error(i)
        messages = ["In node 3 (Attention): unsupported operator", "In node 9: invalid weights"]
        num_errors = 2

        def get_error(self, index):
            return self.messages[index]

    text = describe_parse_failure("/m/audio.onnx", parser_errors(RecordedErrors()))
    assert "/m/audio.onnx (2 error(s))" in text
    assert "1. In node 3 (Attention): unsupported operator" in text and "2. In node 9: invalid weights" in text


# ---------------------------------------------------------------------------------------------
# Without TensorRT: clear errors and the ONNX Runtime fallback
# ---------------------------------------------------------------------------------------------

needs_no_tensorrt = pytest.mark.skipif(TENSORRT_IMPORTABLE, reason="TensorRT is installed here")
WHY_NO_TENSORRT = tensorrt_unavailable_reason()
needs_fallback = pytest.mark.skipif(WHY_NO_TENSORRT is None, reason="TensorRT and a CUDA GPU are both here")


@needs_no_tensorrt
def test_missing_tensorrt_is_named_with_the_install_hint():
    reason = tensorrt_unavailable_reason()
    assert reason.startswith("TensorRT is not installed") and INSTALL_HINT in reason


@needs_no_tensorrt
def test_build_engines_without_tensorrt_says_how_to_install(tiny_export):
    _, export = tiny_export
    with pytest.raises(TensorRTUnavailable, match=r"pip install --extra-index-url https://pypi.nvidia.com 'tensorrt>=10,<12'"):
        build_engines(export.directory, TensorRTConfig())


@needs_no_tensorrt
def test_tensorrt_backend_itself_refuses_clearly(tiny_export):
    _, export = tiny_export
    with pytest.raises(TensorRTUnavailable, match="TensorRT is not installed"):
        TensorRTBackend(export)


@needs_fallback
def test_fallback_warns_and_returns_onnx_runtime_matching_torch(tiny_export, caplog):
    model, export = tiny_export
    statuses = []
    with caplog.at_level(logging.WARNING):
        backend = create_tensorrt_backend(export, TensorRTConfig(), on_status=statuses.append)
    assert f"TensorRT backend unavailable: {WHY_NO_TENSORRT}" in caplog.text
    assert WHY_NO_TENSORRT.startswith(("TensorRT is not installed", "no CUDA GPU"))
    assert "Falling back to the ONNX Runtime backend" in caplog.text
    assert statuses and "using ONNX Runtime" in statuses[0]
    assert backend.info.name != "tensorrt" and backend.info.name.startswith("ort")
    inputs = example_inputs(TINY, batch=2, seed=3)
    for modality, names in MODE_INPUTS.items():
        expected = torch_outputs(model, inputs, modality)
        out = backend.infer(*(inputs[n] if n in names else None for n in ("audio", "video")))
        np.testing.assert_allclose(out.embedding, expected["embedding"], atol=EXPORT_ATOL)
        np.testing.assert_allclose(out.heads["emotion"], expected["emotion"], atol=EXPORT_ATOL)
    backend.close()


@needs_fallback
@pytest.mark.parametrize("missing", ["socialmae_rt.engines.ort_backend", "onnxruntime"])
def test_fallback_that_cannot_import_onnx_runtime_backend_says_both_reasons(tiny_export, monkeypatch, caplog, missing):
    _, export = tiny_export
    monkeypatch.setitem(sys.modules, missing, None)  # import now raises ImportError (onnxruntime: not installed)
    with caplog.at_level(logging.WARNING), pytest.raises(ImportError) as raised:
        create_tensorrt_backend(export.directory)
    assert f"TensorRT cannot run here ({WHY_NO_TENSORRT})" in str(raised.value)
    assert "ONNX Runtime fallback could not be imported" in str(raised.value)
    assert "TensorRT backend unavailable" in caplog.text


@pytest.mark.parametrize("capability, fast", [("8.9", True), ("7.0", True), ("6.0", True), ("6.1", False),
                                              ("5.2", False), ("8.7", True), ("12.0", True)])
def test_fast_fp16_is_read_from_the_compute_capability(capability, fast):
    from socialmae_rt.engines.tensorrt_backend import fast_fp16

    assert fast_fp16(capability) is fast


@pytest.mark.parametrize("version", ["8.6.1", "8.5.2.2"])
def test_tensorrt_older_than_10_is_refused_naming_the_version(monkeypatch, version):
    import types

    from socialmae_rt.engines.tensorrt_backend import tensorrt_unavailable_reason

    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__=version))  # as JetPack 6.1 ships
    reason = tensorrt_unavailable_reason()
    assert reason.startswith(f"TensorRT {version} is installed; this backend needs TensorRT 10 or 11")


@needs_no_tensorrt
def test_the_gpu_check_script_says_why_it_cannot_run_here():
    import subprocess

    script = Path(__file__).parents[2] / "scripts" / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script), "--model", "tiny"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == f"gpu_check: cannot run here: {WHY_NO_TENSORRT}"


@needs_fallback
def test_the_cpu_fallback_runs_on_the_threads_asked_for(tiny_export):
    _, export = tiny_export
    backend = create_tensorrt_backend(export, TensorRTConfig(), threads=1)
    assert backend.info.name == "ort" and backend.threads == 1
    backend.close()


# ---------------------------------------------------------------------------------------------
# With TensorRT and a CUDA GPU
# ---------------------------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)")


@pytest.fixture
def trt_cache(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (pip install --extra-index-url "
                                           "https://pypi.nvidia.com tensorrt)")
    return tmp_path / "trt-cache"


def assert_matches_torch(backend, model, inputs, atol, min_cosine=None):
    for modality, names in MODE_INPUTS.items():
        expected = torch_outputs(model, inputs, modality)
        out = backend.infer(*(inputs[n] if n in names else None for n in ("audio", "video")))
        assert out.embedding.dtype == np.float32 and out.embedding.shape == expected["embedding"].shape
        np.testing.assert_allclose(out.embedding, expected["embedding"], atol=atol)
        np.testing.assert_allclose(out.heads["emotion"], expected["emotion"], atol=atol)
        if min_cosine is not None:
            assert cosine_rows(out.embedding, expected["embedding"]).min() > min_cosine


@needs_gpu
def test_fp16_engines_match_torch_and_split_large_batches(tiny_export, trt_cache):
    model, export = tiny_export
    statuses = []
    backend = create_tensorrt_backend(export, TensorRTConfig(cache_dir=str(trt_cache), max_batch=4),
                                      on_status=statuses.append)
    assert isinstance(backend, TensorRTBackend) and backend.info.name == "tensorrt" and backend.state == "ready"
    assert all(report.built for report in backend.reports.values())
    assert any("building TensorRT engine for audio (this can take minutes)" in s for s in statuses)
    for batch in (1, 3, 6):  # 6 > max_batch: two engine calls
        assert_matches_torch(backend, model, example_inputs(TINY, batch=batch, seed=batch), FP16_ATOL, FP16_MIN_COSINE)
    plans = sorted(trt_cache.glob("*.plan"))
    assert len(plans) == 3 and len(list(trt_cache.glob("*.json"))) == 3
    sidecar = json.loads(plans[0].with_suffix(".json").read_text())
    assert sidecar["key_parts"]["precision"] == "fp16" and sidecar["key_parts"]["profile"]["max"] == 4
    backend.close()
    assert backend.state == "closed"


@needs_gpu
def test_fp32_engines_match_torch(tiny_export, trt_cache):
    model, export = tiny_export
    backend = TensorRTBackend(export, TensorRTConfig(precision="fp32", cache_dir=str(trt_cache), max_batch=2))
    assert_matches_torch(backend, model, example_inputs(TINY, batch=2, seed=7), FP32_ATOL)
    backend.close()


@needs_gpu
def test_second_start_loads_from_the_cache_in_under_a_second(tiny_export, trt_cache):
    _, export = tiny_export
    config = TensorRTConfig(cache_dir=str(trt_cache))
    TensorRTBackend(export, config).close()
    started = time.perf_counter()
    statuses = []
    backend = TensorRTBackend(export, config, on_status=statuses.append)
    elapsed = time.perf_counter() - started
    assert not any(report.built for report in backend.reports.values())
    assert not any("building" in s for s in statuses)
    assert elapsed < 1.0, f"loading three cached plans took {elapsed:.2f} s"
    backend.close()


@needs_gpu
def test_corrupt_plan_is_rebuilt_once(tiny_export, trt_cache, caplog):
    model, export = tiny_export
    config = TensorRTConfig(cache_dir=str(trt_cache))
    first = TensorRTBackend(export, config, modalities=[Modality.AUDIO])
    plan = first.reports[Modality.AUDIO].plan
    first.close()
    plan.write_bytes(plan.read_bytes()[: plan.stat().st_size // 2])  # truncated, sidecar still valid
    with caplog.at_level(logging.WARNING):
        backend = TensorRTBackend(export, config, modalities=[Modality.AUDIO])
    report = backend.reports[Modality.AUDIO]
    assert report.built and "failed to deserialize" in report.reason
    assert "deleting cached TensorRT plan" in caplog.text
    inputs = example_inputs(TINY, batch=1, seed=2)
    out = backend.infer(audio=inputs["audio"])
    np.testing.assert_allclose(out.embedding, torch_outputs(model, inputs, Modality.AUDIO)["embedding"], atol=FP16_ATOL)
    with pytest.raises(ValueError, match="no video engine loaded"):
        backend.infer(video=inputs["video"])
    backend.close()


@needs_gpu
def test_force_rebuild_and_build_engines_summary(tiny_export, trt_cache):
    _, export = tiny_export
    config = TensorRTConfig(cache_dir=str(trt_cache))
    first = build_engines(export.directory, config, modalities=[Modality.VIDEO])
    assert first["video"]["action"] == "built" and first["video"]["plan"].endswith(".plan")
    again = build_engines(export.directory, config, modalities=[Modality.VIDEO])
    assert again["video"]["action"] == "loaded" and again["video"]["key"] == first["video"]["key"]
    forced = build_engines(export.directory, dataclasses.replace(config, force_rebuild=True),
                           modalities=[Modality.VIDEO])
    assert forced["video"]["action"] == "built"


# ---------------------------------------------------------------------------------------------
# The build path against a stand-in of the TensorRT 10 and 11 APIs (tests/engines/tensorrt_standin.py)
# ---------------------------------------------------------------------------------------------

def standin_runtime(version: str):
    import importlib.util
    from types import SimpleNamespace

    from socialmae_rt.engines.tensorrt_backend import TensorRTRuntime

    spec = importlib.util.spec_from_file_location("tensorrt_standin", Path(__file__).with_name("tensorrt_standin.py"))
    standin = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tensorrt_standin", standin)  # dataclasses look their module up there
    spec.loader.exec_module(standin)
    make_tensorrt = standin.make_tensorrt

    env = object.__new__(TensorRTRuntime)  # no CUDA here: everything build_plan needs, set by hand
    env.trt = make_tensorrt(version)
    env.version, env.compute_capability, env.gpu_name = version, "8.9", "stand-in GPU"
    env.logger = SimpleNamespace(recent_errors=[])
    return env


@pytest.mark.parametrize("version, precision, strongly_typed, flags_set, tf32_cleared, graph_suffix", [
    ("10.3.0", "fp16", False, ["FP16"], False, "audiovisual.onnx"),
    ("10.3.0", "fp32", False, [], True, "audiovisual.onnx"),
    ("11.4.0", "fp16", True, [], False, "audiovisual.fp16.onnx"),
    ("11.4.0", "fp32", True, [], True, "audiovisual.onnx"),
])
def test_plans_build_weakly_typed_on_10_and_strongly_typed_from_the_fp16_graph_on_11(
        tiny_export, tmp_path, version, precision, strongly_typed, flags_set, tf32_cleared, graph_suffix):
    import shutil

    from socialmae_rt.engines.onnx_export import load_export

    _, export = tiny_export
    export = load_export(shutil.copytree(export.directory, tmp_path / "export"))  # fp16 graphs are written beside
    env = standin_runtime(version)
    config = TensorRTConfig(precision=precision, max_batch=4)
    graph = env.graph_for(export, Modality.AUDIOVISUAL, precision)
    plan, extra = env.build_plan(graph, config)
    calls = env.trt.calls
    assert graph.name == graph_suffix and calls.parsed == [str(graph)]
    assert calls.network_flags == [(1 << 1) if strongly_typed else 0]
    assert [flag.name for flag in calls.set_flags] == flags_set
    assert ([flag.name for flag in calls.cleared_flags] == ["TF32"]) is tf32_cleared
    assert extra["strongly_typed"] is strongly_typed and extra["fp16_enabled"] is (precision == "fp16")
    assert calls.pool_limits == [(env.trt.MemoryPoolType.WORKSPACE, config.workspace_mb << 20)]
    assert calls.profile_shapes["audio"] == ((1, 1024, 128), (1, 1024, 128), (4, 1024, 128))
    assert plan.startswith(b"plan from")
    # a different graph (or TensorRT major) is a different plan
    key = env.key_parts(graph, config).key
    assert key != standin_runtime("10.3.0" if version.startswith("11") else "11.4.0").key_parts(graph, config).key


def test_the_fp16_graph_keeps_fp32_io_and_stays_close_to_fp32(tiny_export, tmp_path):
    import shutil

    import onnx
    import onnxruntime as ort

    from socialmae_rt.engines.onnx_export import fp16_graph, load_export

    model, export = tiny_export
    export = load_export(shutil.copytree(export.directory, tmp_path / "export"))
    path = fp16_graph(export, Modality.AUDIOVISUAL)
    graph = onnx.load(str(path)).graph
    assert {v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]} == {onnx.TensorProto.FLOAT}
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)
    assert load_export(export.directory).manifest["graphs"]["audiovisual"]["fp16"]["file"] == path.name
    assert fp16_graph(load_export(export.directory), Modality.AUDIOVISUAL) == path  # made once
    inputs = example_inputs(TINY, batch=2, seed=3)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["emotion"], inputs)[0]
    expected = torch_outputs(model, inputs, Modality.AUDIOVISUAL)["emotion"]
    np.testing.assert_allclose(got, expected, atol=1e-2)


def test_close_waits_for_a_running_inference_and_a_closed_backend_refuses():
    """infer and close share one lock: close cannot release the engines under a running call, and a
    closed backend refuses. (That the closed check now sits under the lock, closing the window
    between check and lock, is not provable by a deterministic test.) The runner is a deliberately
    slow stand-in (timing only); device -1 makes torch.cuda.device a no-op."""
    import threading
    from types import SimpleNamespace

    from socialmae_rt.engines.tensorrt_backend import TensorRTBackend

    started, release = threading.Event(), threading.Event()

    class SlowRunner:
        released = False

        def run(self, inputs):
            started.set()
            release.wait(timeout=60)
            batch = next(iter(inputs.values())).shape[0]
            return {"embedding": np.zeros((batch, 4), np.float32), "emotion": np.zeros((batch, 6), np.float32)}

        def release(self):
            self.released = True

    runner = SlowRunner()
    backend = object.__new__(TensorRTBackend)
    backend.config, backend.state, backend.outputs = TensorRTConfig(max_batch=4), "ready", ["embedding", "emotion"]
    backend.window_shapes = {"audio": (1024, 128), "video": (3, 224, 224, 8)}
    backend._lock, backend._runners = threading.Lock(), {Modality.AUDIO: runner}
    backend._env = SimpleNamespace(device=-1)
    audio = np.zeros((1, 1024, 128), np.float32)
    results = []
    worker = threading.Thread(target=lambda: results.append(backend.infer(audio, None)))
    worker.start()
    assert started.wait(timeout=60)
    closer = threading.Thread(target=backend.close)
    closer.start()
    closer.join(timeout=0.5)
    assert closer.is_alive() and not runner.released  # waits for the running call
    release.set()
    worker.join(timeout=60)
    closer.join(timeout=60)
    assert results and results[0].embedding.shape == (1, 4) and runner.released and backend.state == "closed"
    with pytest.raises(RuntimeError, match="this TensorRT backend is closed"):
        backend.infer(audio, None)
