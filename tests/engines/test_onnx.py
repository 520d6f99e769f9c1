"""ONNX export and the ONNX Runtime backends against the torch fp32 model (tiny configs)."""

import json
import logging

import numpy as np
import pytest
import torch

from socialmae_rt.engines import create_backend, ort_int8
from socialmae_rt.engines.auto import Installed, create_auto_backend
from socialmae_rt.engines.onnx_export import EXPORT_ATOL, ExportError, export_onnx, load_export
from socialmae_rt.engines.ort_backend import OrtBackend
from socialmae_rt.engines.ort_int8 import OrtInt8Refused, quantize_export
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig, save_checkpoint
from socialmae_rt.util.machine import CpuDescription

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1, "personality": 5})
# int8 weights (dynamic activation quantisation) vs fp32: a named floor on per-window cosine.
INT8_MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(11)
    return SocialMAE(TINY).eval()


@pytest.fixture(scope="module")
def export(model, tmp_path_factory):
    e = export_onnx(model, tmp_path_factory.mktemp("export"), source="test")
    quantize_export(e, model, min_cosine=INT8_MIN_COSINE)
    return e


def inputs(batch, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 1024, 128)).astype(np.float32),
            rng.standard_normal((batch, 3, 224, 224, 8)).astype(np.float32))


def reference(model, audio, video):
    with torch.no_grad():
        out = model.predict(None if audio is None else torch.from_numpy(audio), None if video is None else torch.from_numpy(video))
    return out.embedding.numpy(), {k: v.numpy() for k, v in out.logits.items()}


def test_export_writes_three_verified_graphs(export):
    files = sorted(p.name for p in export.directory.iterdir())
    assert files == ["audio.int8.onnx", "audio.onnx", "audiovisual.int8.onnx", "audiovisual.onnx", "manifest.json",
                     "video.int8.onnx", "video.onnx"]
    manifest = json.loads((export.directory / "manifest.json").read_text())
    assert manifest["outputs"] == ["embedding", "emotion", "laughter", "personality"]
    assert manifest["model"] == TINY.to_dict() and manifest["source"] == "test"
    for mode in ("audiovisual", "audio", "video"):
        assert all(v["max_abs"] <= EXPORT_ATOL for v in manifest["verification"][mode].values())
        assert manifest["int8_accuracy"][mode]["embedding"]["min_cosine"] >= INT8_MIN_COSINE
    assert load_export(export.directory).manifest["weights_sha256"] == manifest["weights_sha256"]
    import onnxruntime as ort

    stamped = ort.InferenceSession(str(export.directory / "video.onnx")).get_modelmeta().custom_metadata_map
    inside = json.loads(stamped["socialmae_rt"])
    assert inside["modality"] == "video" and inside["model"] == TINY.to_dict()
    assert inside["weights_sha256"] == manifest["weights_sha256"] and inside["preprocess"]["video"]["channel_order"] == "BGR"


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("mode", ["audiovisual", "audio", "video"])
def test_ort_fp32_matches_torch(model, export, mode, batch):
    backend = OrtBackend(export, "fp32", threads=1)
    audio, video = inputs(batch)
    audio = audio if mode != "video" else None
    video = video if mode != "audio" else None
    embedding, heads = reference(model, audio, video)
    out = backend.infer(audio, video)
    np.testing.assert_allclose(out.embedding, embedding, atol=EXPORT_ATOL, rtol=0)
    assert out.heads.keys() == heads.keys()
    for name in heads:
        np.testing.assert_allclose(out.heads[name], heads[name], atol=EXPORT_ATOL, rtol=0)
    assert backend.info.name == "ort" and backend.info.device == "cpu"


def test_ort_int8_close_to_torch_fp32(model, export):
    backend = OrtBackend(export, "int8", threads=1)
    audio, video = inputs(4, seed=5)
    embedding, _ = reference(model, audio, video)
    out = backend.infer(audio, video).embedding
    cosine = (out * embedding).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(embedding, axis=1)
    assert cosine.min() >= INT8_MIN_COSINE
    assert backend.info.name == "ort-int8" and backend.info.precision == "int8"


def test_bad_inputs_are_refused_before_the_runtime(export):
    backend = OrtBackend(export, "fp32", threads=1)
    audio, video = inputs(1)
    with pytest.raises(TypeError, match=r"audio must be float32, got float64; convert with audio.astype"):
        backend.infer(audio.astype(np.float64))
    with pytest.raises(ValueError, match=r"video must have shape \[B, 3, 224, 224, 8\], got \[1, 3, 224, 224, 4\]"):
        backend.infer(None, video[..., :4])
    with pytest.raises(ValueError, match="must hold the same number of windows"):
        backend.infer(np.concatenate([audio, audio]), video)
    with pytest.raises(ValueError, match="audio contains NaN or Inf"):
        backend.infer(np.full_like(audio, np.nan))
    with pytest.raises(ValueError, match="got neither"):
        backend.infer()
    with pytest.raises(ValueError, match=r"graph_optimization must be one of \['all', 'basic', 'extended'\]"):
        OrtBackend(export, "fp32", graph_optimization="max")


def test_nan_outputs_raise_instead_of_passing_through(tmp_path):
    broken = SocialMAE(TINY).eval()
    with torch.no_grad():
        broken.mlp_head[1].bias[0] = float("nan")
    with pytest.raises(ExportError, match="disagrees with torch on emotion"):
        export_onnx(broken, tmp_path / "checked")  # verification refuses NaN, it is not "close"
    backend = OrtBackend(export_onnx(broken, tmp_path / "unchecked", verify=False), "fp32", threads=1)
    with pytest.raises(FloatingPointError, match=r"ort audiovisual graph produced NaN/Inf in emotion \(1 values\)"):
        backend.infer(*inputs(1))


def test_missing_or_corrupt_exports(export, tmp_path):
    with pytest.raises(ExportError, match="manifest.json not found"):
        load_export(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in export.directory.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    graph = copy / "video.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(ExportError, match="video.onnx does not match the sha256"):
        load_export(copy)
    graph.unlink()
    with pytest.raises(ExportError, match="graph video.onnx for video is missing"):
        load_export(copy)


def test_factory_exports_a_checkpoint_once_and_reuses_it(tmp_path, model, caplog):
    path = save_checkpoint(model, tmp_path / "w.safetensors")
    with caplog.at_level(logging.WARNING):
        first = create_backend("ort-int8", path, cache_dir=tmp_path / "cache", threads=1)
    assert "exporting ONNX graphs" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = create_backend("ort", path, cache_dir=tmp_path / "cache", threads=1)
    assert "exporting" not in caplog.text  # same weights: the cached export is reused
    assert first.export.directory == second.export.directory
    audio, video = inputs(1)
    embedding, _ = reference(model, audio, video)
    np.testing.assert_allclose(second.infer(audio, video).embedding, embedding, atol=EXPORT_ATOL, rtol=0)
    assert second.info.weights == str(path)


def test_factory_needs_int8_graphs_in_a_given_export(tmp_path, model):
    plain = export_onnx(model, tmp_path / "plain")
    with pytest.raises(ExportError, match=r"no int8 graphs with 7-bit weights .*; make them with `socialmae-rt export-onnx --int8`"):
        create_backend("ort-int8", plain.directory)
    assert create_backend("ort", plain.directory, threads=1).info.name == "ort"


def test_a_refused_int8_export_is_remembered_and_auto_moves_on(tmp_path, model):
    plain = export_onnx(model, tmp_path / "refused")
    with pytest.raises(OrtInt8Refused, match="int8 graphs refused: below cosine 1.01 .* on held-out clips: audiovisual"):
        quantize_export(plain, model, min_cosine=1.01)  # a bar nothing meets
    manifest = json.loads((plain.directory / "manifest.json").read_text())
    assert "int8" not in manifest["graphs"]["audio"] and not list(plain.directory.glob("*.int8.onnx"))
    assert manifest["int8_refused"]["min_cosine"] == 1.01
    # every step of the float ladder was tried (or the ladder stopped as hopeless) and recorded
    attempts = manifest["int8_refused"]["attempts"]
    assert attempts[0]["float"] == "none" and attempts[0]["float_matmuls"]["audiovisual"]["float"] == 0
    assert all(attempt["failures"] for attempt in attempts)

    # Refused at the default bar: the next start says so without quantising again.
    path = save_checkpoint(model, tmp_path / "w.safetensors")
    real_score = ort_int8.score

    def gate_says_no(reference, candidate):
        report = real_score(reference, candidate)
        report["graphs"]["audio"]["emotion"]["min_cosine"] = 0.5
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ort_int8, "score", gate_says_no)
        with pytest.raises(OrtInt8Refused):
            create_backend("ort-int8", path, cache_dir=tmp_path / "cache", threads=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ort_int8, "quantize_export", lambda *a, **k: pytest.fail("quantised again"))
        with pytest.raises(OrtInt8Refused, match=r"audio emotion cosine 0.50000.* \(cached in .*manifest.json"):
            create_backend("ort-int8", path, cache_dir=tmp_path / "cache", threads=1)
        plain_avx2 = CpuDescription("Core", frozenset({"avx2"}), 2)
        only_ort = Installed(openvino=False, nncf=False, onnxruntime=True, tensorrt_gpu=False)
        backend = create_auto_backend(create_backend, path, None, cpu=plain_avx2, installed=only_ort,
                                      cache_dir=tmp_path / "cache", threads=1, on_status=lambda line: None)
    assert backend.info.name == "ort" and backend.info.precision == "fp32"


def test_modality_input_names_cover_every_mode(export):
    assert {m.value for m in Modality} == set(export.manifest["graphs"])


def test_quantising_keeps_onnx_runtimes_image_model_advice_off_the_console(tmp_path, model, caplog):
    plain = export_onnx(model, tmp_path / "quiet")
    with caplog.at_level(logging.INFO):
        quantize_export(plain, model)
    assert "pre-processing" not in caplog.text  # ORT logs "Please consider to run pre-processing" per graph
    assert logging.getLogger().filters == []  # the filter is gone afterwards
