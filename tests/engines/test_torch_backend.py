import logging

import numpy as np
import pytest
import torch

from socialmae_rt.engines import Backend, available_backends, create_backend
from socialmae_rt.model import SocialMAE, SocialMAEConfig, save_checkpoint

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 1024, 128)).astype(np.float32)
    video = rng.standard_normal((2, 3, 224, 224, 8)).astype(np.float32)
    return audio, video


def test_random_weights_warn_loudly(caplog):
    with caplog.at_level(logging.WARNING):
        backend = create_backend("torch", None, TINY)
    assert "RANDOM weights" in caplog.text and "MEANINGLESS" in caplog.text
    assert isinstance(backend, Backend)
    assert backend.info.weights == "random" and backend.info.name == "torch"


def test_all_heads_and_embedding_for_a_batch(batch):
    backend = create_backend("torch", None, TINY)
    audio, video = batch
    for a, v in ((audio, video), (audio, None), (None, video)):
        out = backend.infer(a, v)
        assert out.embedding.shape == (2, 32) and out.embedding.dtype == np.float32
        assert {k: v.shape for k, v in out.heads.items()} == {"emotion": (2, 6), "laughter": (2, 1), "personality": (2, 5)}


def test_matches_the_model_it_loaded(tmp_path, batch):
    torch.manual_seed(3)
    model = SocialMAE(TINY).eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    backend = create_backend("torch", path)
    audio, video = batch
    with torch.no_grad():
        expected = model.predict(torch.from_numpy(audio), torch.from_numpy(video))
    out = backend.infer(audio, video)
    np.testing.assert_allclose(out.heads["emotion"], expected.logits["emotion"].numpy(), atol=1e-6)
    assert backend.info.weights == str(path)


def test_bf16_close_to_fp32(batch):
    fp32 = create_backend("torch", None, TINY, seed=5)
    bf16 = create_backend("torch-bf16", None, TINY, seed=5)
    audio, video = batch
    a, b = fp32.infer(audio, video).embedding, bf16.infer(audio, video).embedding
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99
    assert bf16.info.precision == "bf16"


def test_errors():
    names = "torch, torch-bf16, ort, ort-int8, ov, ov-int8, trt"
    with pytest.raises(ValueError, match=f"unknown backend 'onnx'; available: auto, {names}"):
        create_backend("onnx")
    assert available_backends() == names.split(", ")
    backend = create_backend("torch", None, TINY)
    with pytest.raises(TypeError, match="numpy arrays, got Tensor"):
        backend.infer(torch.zeros(1, 1024, 128))
    with pytest.raises(ValueError, match=r"audio must have shape \[B, 1024, 128\]"):
        backend.infer(np.zeros((1, 100, 128), np.float32))
    from socialmae_rt.engines.torch_backend import TorchBackend

    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        TorchBackend(None, TINY, precision="fp16")
