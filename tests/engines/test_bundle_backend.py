"""A task bundle behind the backend protocol: every task's numbers are the ones its own checkpoint
gives alone, for every mode and backend; bundles that cannot work are refused whole."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from socialmae_rt.backend import task_sources
from socialmae_rt.engines import create_backend
from socialmae_rt.engines.bundle_backend import BundleError
from socialmae_rt.model import load_official_checkpoint
from socialmae_rt.model.social_mae import Modality
from socialmae_rt.stream.pipeline import Pipeline

ASSUMED = {
    "emotion": ["anger", "disgust", "fear", "happy", "neutral", "sad"],
    "personality": ["extraversion", "neuroticism", "agreeableness", "conscientiousness", "openness"],
    "laughter": ["neutral", "smile", "laughter"],
}
WRITTEN = {"emotion": ASSUMED["emotion"], "laughter": ASSUMED["laughter"],
           "personality": ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]}


def _inputs(batch: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 1024, 128)).astype(np.float32),
            rng.standard_normal((batch, 3, 224, 224, 8)).astype(np.float32))


def _released(task, released_files, released_layout, audio, video) -> np.ndarray:
    """What the released file itself gives, read in the pipeline's label order."""
    model = load_official_checkpoint(released_files[task], released_layout(task))
    with torch.no_grad():
        raw = model(audio=None if audio is None else torch.from_numpy(audio),
                    video=None if video is None else torch.from_numpy(video)).numpy()
    return raw[:, [ASSUMED[task].index(label) for label in WRITTEN[task]]]


@pytest.mark.parametrize("mode", list(Modality))
def test_every_task_equals_its_released_checkpoint_alone(bundle_dir, released_files, released_layout, mode):
    backend = create_backend("torch", str(bundle_dir))
    audio, video = _inputs()
    audio = None if mode is Modality.VIDEO else audio
    video = None if mode is Modality.AUDIO else video
    out = backend.infer(audio, video)
    assert list(out.heads) == ["emotion", "laughter", "personality"]
    for task in out.heads:
        assert out.heads[task].shape == (2, len(WRITTEN[task]))
        np.testing.assert_allclose(out.heads[task], _released(task, released_files, released_layout, audio, video),
                                   atol=1e-5)
    assert backend.model_config.head_labels == WRITTEN
    assert task_sources(backend) == {t: str(bundle_dir / f"{t}.safetensors") for t in WRITTEN}
    assert backend.info.weights.startswith(f"emotion={bundle_dir / 'emotion.safetensors'} laughter=")
    assert set(backend.last_inference_ms) == set(WRITTEN)


def test_entries_given_one_by_one_and_a_subset(bundle_dir, released_files, released_layout):
    backend = create_backend("torch", f"personality={bundle_dir / 'personality.safetensors'} "
                                      f"laughter={bundle_dir / 'laughter.safetensors'}")
    audio, video = _inputs(1, seed=3)
    out = backend.infer(audio, video)
    assert list(out.heads) == ["laughter", "personality"]
    np.testing.assert_allclose(out.heads["laughter"],
                               _released("laughter", released_files, released_layout, audio, video), atol=1e-5)
    # The pipeline reads the laughing class by its label: the third of neutral, smile, laughter.
    pipeline = Pipeline(backend, tracker=None)
    assert pipeline.postprocessor._laughing == 2


# int8 graphs are gated on real windows (the held-out suite); on Gaussian-noise inputs, far from
# anything a camera and microphone give, a named looser floor.
RANDOM_INPUT_MIN_COSINE = 0.99


@pytest.mark.parametrize("name", ["ort", "ort-int8"])
def test_onnx_backends_export_each_checkpoint_once_into_the_cache(bundle_dir, tmp_path, name):
    cache = tmp_path / "cache"
    backend = create_backend(name, str(bundle_dir), cache_dir=cache)
    reference = create_backend("torch", str(bundle_dir))
    audio, video = _inputs(2, seed=5)
    got, want = backend.infer(audio, video), reference.infer(audio, video)
    exports = sorted(p.parent.name for p in (cache / "onnx").glob("*/manifest.json"))
    assert len(exports) == 3  # one export per checkpoint, keyed by its weights
    for task in WRITTEN:
        if name == "ort":
            np.testing.assert_allclose(got.heads[task], want.heads[task], atol=1e-4)
        else:  # int8 weights: close, not equal
            cosine = float(np.sum(got.heads[task] * want.heads[task]) /
                           (np.linalg.norm(got.heads[task]) * np.linalg.norm(want.heads[task])))
            assert cosine > RANDOM_INPUT_MIN_COSINE
    for manifest in (cache / "onnx").glob("*/manifest.json"):
        document = json.loads(manifest.read_text())
        assert document["model"]["head_labels"]  # the labels travel with the export
        assert name == "ort" or "int8" in document["graphs"]["audiovisual"]


def test_a_head_that_does_not_fit_its_task_is_refused_naming_the_file(bundle_dir):
    wrong = bundle_dir / "personality.safetensors"
    with pytest.raises(BundleError, match=rf"emotion={wrong}: the checkpoint has no 'emotion' head \(its heads: "
                                          r"personality \(5 outputs\)\); expected an emotion head of 6 outputs"):
        create_backend("torch", f"emotion={wrong}")


def test_a_released_pth_in_a_bundle_asks_for_an_import(released_files):
    with pytest.raises(BundleError, match="weights import .*laughter.pth --task laughter"):
        create_backend("torch", f"laughter={released_files['laughter']}")


def test_checkpoints_of_different_preprocessing_are_refused(bundle_dir):
    document = json.loads((bundle_dir / "laughter.json").read_text())
    document["preprocess"]["video"]["channel_order"] = "RGB"
    (bundle_dir / "laughter.json").write_text(json.dumps(document))
    with pytest.raises(BundleError, match=r"laughter=.* was trained with other preprocessing than emotion=.*"
                                          r"video.channel_order 'BGR' vs 'RGB'"):
        create_backend("torch", str(bundle_dir))


def test_a_missing_member_fails_before_any_model_loads(bundle_dir):
    with pytest.raises(FileNotFoundError, match="personality=.*nowhere.safetensors: no such checkpoint"):
        create_backend("torch", f"emotion={bundle_dir / 'emotion.safetensors'} "
                                f"personality={bundle_dir / 'nowhere.safetensors'}")
