"""`--backend auto`: a fixed order per CPU and install, and a refused int8 build falls through to the next."""

import numpy as np
import pytest
import torch

from socialmae_rt.engines import create_backend
from socialmae_rt.engines.auto import Installed, candidates, choose_backend, create_auto_backend
from socialmae_rt.engines.openvino_ir import Int8AccuracyError
from socialmae_rt.model import SocialMAE, SocialMAEConfig, save_checkpoint
from socialmae_rt.util.machine import CpuDescription

AMX = CpuDescription("Xeon", frozenset({"avx2", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}), 2)
ZEN4 = CpuDescription("EPYC", frozenset({"avx2", "avx512_vnni", "avx512_bf16"}), 2)
AVX2 = CpuDescription("Core", frozenset({"avx2"}), 4)
EVERYTHING = Installed(openvino=True, nncf=True, onnxruntime=True, tensorrt_gpu=False)
TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})


@pytest.mark.parametrize("cpu, installed, first", [
    (AMX, EVERYTHING, "ov-int8"),
    (ZEN4, EVERYTHING, "ov-int8"),
    (AVX2, EVERYTHING, "ort-int8"),  # no int8 dot products, no bf16: OpenVINO would run fp32
    (AVX2, Installed(openvino=True, nncf=True, onnxruntime=False, tensorrt_gpu=False), "ov"),
    (AMX, Installed(openvino=True, nncf=False, onnxruntime=True, tensorrt_gpu=False), "ov"),  # nothing builds int8
    (AMX, Installed(openvino=False, nncf=False, onnxruntime=True, tensorrt_gpu=False), "ort-int8"),
    (AMX, Installed(openvino=False, nncf=False, onnxruntime=False, tensorrt_gpu=False), "torch-bf16"),
    (AVX2, Installed(openvino=False, nncf=False, onnxruntime=True, tensorrt_gpu=False), "ort-int8"),
    (AVX2, Installed(openvino=False, nncf=False, onnxruntime=False, tensorrt_gpu=False), "torch"),
    (AVX2, Installed(openvino=True, nncf=True, onnxruntime=True, tensorrt_gpu=True), "trt"),
])
def test_choice_follows_cpu_and_install(cpu, installed, first):
    assert choose_backend(cpu, installed)[0] == first
    order = [name for name, _ in candidates(cpu, installed)]
    assert order == [name for name, _ in candidates(cpu, installed)]  # same description, same order
    assert order[-1] == "torch" and len(order) == len(set(order))


def test_full_order_on_an_amx_xeon():
    assert [name for name, _ in candidates(AMX, EVERYTHING)] == ["ov-int8", "ov", "ort-int8", "torch-bf16", "ort",
                                                                 "torch"]


def test_full_order_on_an_avx2_only_cpu():
    assert [name for name, _ in candidates(AVX2, EVERYTHING)] == ["ort-int8", "ov", "ort", "torch"]
    assert "AMX" in choose_backend(AMX, EVERYTHING)[1] and "VNNI" in choose_backend(ZEN4, EVERYTHING)[1]


def test_a_refused_int8_build_falls_through_and_each_candidate_gets_its_own_options():
    tried = []

    def create(name, weights, config, **options):  # fault injection at the factory boundary
        tried.append((name, sorted(options)))
        if name == "ov-int8":
            raise Int8AccuracyError("int8 graphs refused")
        return name

    made = create_auto_backend(create, None, None, cpu=AMX, installed=EVERYTHING, threads=2, cache_dir="c",
                               calibration_clips=["a.mp4"], on_status=lambda message: None)
    assert made == "ov"
    assert tried == [("ov-int8", ["cache_dir", "calibration_clips", "on_status", "threads"]),
                     ("ov", ["cache_dir", "on_status", "threads"])]


@pytest.mark.parametrize("installed, name, said_first", [
    (EVERYTHING, "ort-int8", "auto: ort-int8 (ONNX Runtime int8 (7-bit weights); no int8 dot products or bf16"),
    (Installed(openvino=True, nncf=True, onnxruntime=False, tensorrt_gpu=False), "ov",
     "auto: ov (OpenVINO, fp32; Core, 4 core(s), AVX2)"),
])
def test_auto_builds_a_real_backend_and_says_what_it_chose(tmp_path, installed, name, said_first):
    pytest.importorskip("openvino")
    torch.manual_seed(2)
    model = SocialMAE(TINY).eval()
    path = save_checkpoint(model, tmp_path / "tiny.safetensors")
    said = []
    backend = create_backend("auto", path, cpu=AVX2, installed=installed, cache_dir=tmp_path / "cache",
                             on_status=said.append)
    assert backend.info.name == name
    assert said[0].startswith(said_first)
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((1, 1024, 128)).astype(np.float32)
    with torch.no_grad():
        expected = model.predict(torch.from_numpy(audio), None).logits["emotion"].numpy()
    np.testing.assert_allclose(backend.infer(audio, None).heads["emotion"], expected, atol=2e-2)
