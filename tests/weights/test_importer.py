"""`weights import`: released-format .pth files (the reference layout, written independently in
tests/conftest.py) become our checkpoints whose heads give exactly the released head's numbers,
in the order the pipeline reads them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from socialmae_rt.model import CheckpointError, SocialMAEConfig, load_checkpoint, load_official_checkpoint
from socialmae_rt.model.checkpoint import load_encoder
from socialmae_rt.weights.importer import file_sha256, import_released

# What the import assumes when not told (socialmae_rt/weights/released.py), written out again here.
ASSUMED = {
    "emotion": ["anger", "disgust", "fear", "happy", "neutral", "sad"],
    "personality": ["extraversion", "neuroticism", "agreeableness", "conscientiousness", "openness"],
    "laughter": ["neutral", "smile", "laughter"],
}
OCEAN = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]


def _window(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 1024, 128, generator=generator), torch.randn(2, 3, 224, 224, 8, generator=generator)


def _released_outputs(path, config, audio, video) -> np.ndarray:
    model = load_official_checkpoint(path, config)
    with torch.no_grad():
        return model(audio=audio, video=video).numpy()


@pytest.mark.parametrize("task", ["emotion", "personality", "laughter"])
def test_imported_head_gives_the_released_numbers_in_the_pipelines_order(tmp_path, released_files, released_layout,
                                                                          task):
    result = import_released(released_files[task], task, tmp_path / "bundle")
    assert result.model == "tiny" and result.assumed and list(result.source_labels) == ASSUMED[task]
    loaded = load_checkpoint(result.checkpoint)
    config = loaded.model.config
    assert config.primary_head == task and config.embed_dim == 192 and config.modality_specific_depth == 2
    audio, video = _window()
    released = _released_outputs(released_files[task], released_layout(task), audio, video)
    with torch.no_grad():
        ours = loaded.model.predict(audio, video).logits[task].numpy()
    written = {"emotion": ASSUMED["emotion"], "personality": OCEAN, "laughter": ASSUMED["laughter"]}[task]
    assert config.head_labels == {task: written}
    columns = [ASSUMED[task].index(label) for label in written]
    np.testing.assert_allclose(ours, released[:, columns], atol=1e-5)
    if task == "personality":  # the order really changed: extraversion is the released file's first output
        assert columns == [4, 3, 0, 2, 1]


def test_import_records_task_labels_source_hash_and_the_bundle(tmp_path, released_files):
    out = tmp_path / "bundle"
    import_released(released_files["laughter"], "laughter", out)
    document = json.loads((out / "laughter.json").read_text())
    meta = document["metadata"]
    assert meta["task"] == "laughter" and meta["labels"] == ["neutral", "smile", "laughter"]
    assert meta["source"]["sha256"] == file_sha256(released_files["laughter"])
    assert meta["source"]["order"] == "assumed" and meta["source"]["file"] == "laughter.pth"
    assert document["preprocess"]["video"]["channel_order"] == "BGR"
    assert json.loads((out / "bundle.json").read_text())["tasks"] == {"laughter": "laughter.safetensors"}
    import_released(released_files["emotion"], "emotion", out)
    assert list(json.loads((out / "bundle.json").read_text())["tasks"]) == ["emotion", "laughter"]


def test_labels_given_by_the_user_reorder_the_head(tmp_path, released_files, released_layout):
    """A user who knows the released order says so; the written head follows it, marked 'given'."""
    told = ["sad", "neutral", "happy", "fear", "disgust", "anger"]
    result = import_released(released_files["emotion"], "emotion", tmp_path, labels=told)
    assert not result.assumed
    meta = json.loads((tmp_path / "emotion.json").read_text())["metadata"]
    assert meta["source"]["order"] == "given" and meta["source"]["head_outputs"] == told
    audio, video = _window(1)
    released = _released_outputs(released_files["emotion"], released_layout("emotion"), audio, video)
    with torch.no_grad():
        ours = load_checkpoint(result.checkpoint).model(audio=audio, video=video).numpy()
    np.testing.assert_allclose(ours, released[:, ::-1], atol=1e-5)  # anger was the released last output


def test_crema_d_codes_and_a_laughing_class_index_are_accepted(tmp_path, released_files):
    codes = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    assert import_released(released_files["emotion"], "emotion", tmp_path, labels=codes).labels[0] == "anger"
    result = import_released(released_files["laughter"], "laughter", tmp_path, laughing_class=0)
    assert result.labels == ("laughter", "class_1", "class_2") and not result.assumed


def test_six_output_personality_head_drops_interview(tmp_path, official_state, released_layout):
    path = tmp_path / "fi6.pth"
    torch.save(official_state(released_layout("personality", width=6), seed=4), path)
    result = import_released(path, "personality", tmp_path / "out")
    assert result.labels == tuple(OCEAN)
    meta = json.loads((tmp_path / "out" / "personality.json").read_text())["metadata"]
    assert meta["source"]["dropped_outputs"] == ["interview"]
    audio, video = _window(2)
    released = _released_outputs(path, released_layout("personality", width=6), audio, video)
    pickle_order = ["extraversion", "neuroticism", "agreeableness", "conscientiousness", "interview", "openness"]
    with torch.no_grad():
        ours = load_checkpoint(result.checkpoint).model(audio=audio, video=video).numpy()
    np.testing.assert_allclose(ours, released[:, [pickle_order.index(t) for t in OCEAN]], atol=1e-5)


def test_a_base_size_checkpoint_is_recognised_from_its_tensors(tmp_path, official_state):
    path = tmp_path / "cremad_base.pth"
    torch.save(official_state(SocialMAEConfig()), path)  # the released ViT-B, 11 + 1 blocks
    result = import_released(path, "emotion", tmp_path / "out")
    config = load_checkpoint(result.checkpoint).model.config
    assert result.model == "base" and (config.embed_dim, config.num_heads, config.modality_specific_depth) == (768, 12, 11)


def test_pretrained_encoder_imports_for_fine_tuning_only(tmp_path, released_files, released_layout):
    result = import_released(released_files["encoder"], "encoder", tmp_path)
    assert result.labels is None
    with pytest.raises(CheckpointError, match="encoder without task heads"):
        load_checkpoint(result.checkpoint)
    model, _ = load_encoder(result.checkpoint, released_layout("emotion"))
    released = torch.load(released_files["encoder"], weights_only=True)
    for name in ("pos_embed_v", "blocks_u.0.norm1_a.weight", "blocks_a.1.mlp.fc2.weight"):
        torch.testing.assert_close(model.state_dict()[name], released["module." + name], atol=0, rtol=0)
    assert json.loads((tmp_path / "bundle.json").read_text())["tasks"] == {"encoder": "encoder.safetensors"}


@pytest.mark.parametrize("task, kwargs, message", [
    ("emotion", {"file": "personality"}, "a released emotion head has 6 outputs; this one has 5"),
    ("personality", {"file": "emotion", "labels": ["openness", "conscientiousness", "extraversion", "agreeableness",
                                                   "neuroticism", "happy"]}, r"lack \[\] and add \['happy'\]"),
    ("laughter", {"labels": ["neutral", "smile", "giggle"]}, "name no 'laughter' class"),
    ("laughter", {"laughing_class": 3}, "expected a class index 0..2"),
    ("emotion", {"labels": ["anger", "sad"]}, "names 2 outputs but the emotion head has 6"),
    ("emotion", {"file": "encoder"}, "no task head .* import it with --task encoder"),
    ("dance", {}, "unknown task 'dance'"),
    ("personality", {"laughing_class": 1}, "--laughing-class is for --task laughter"),
])
def test_bad_imports_are_one_clear_error_and_write_nothing(tmp_path, released_files, task, kwargs, message):
    source = released_files[kwargs.pop("file", task if task in released_files else "emotion")]
    out = tmp_path / "bundle"
    with pytest.raises(ValueError, match=message):
        import_released(source, task, out, **kwargs)
    assert not out.exists() or not any(out.iterdir())


def test_not_a_checkpoint_and_an_existing_target(tmp_path, released_files):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pth is not a PyTorch checkpoint: the file starts with"):
        import_released(text, "emotion", tmp_path / "out")
    import_released(released_files["emotion"], "emotion", tmp_path / "out")
    with pytest.raises(FileExistsError, match="pass --force"):
        import_released(released_files["emotion"], "emotion", tmp_path / "out")
    import_released(released_files["emotion"], "emotion", tmp_path / "out", force=True)


def test_a_download_whose_hash_changed_is_refused(tmp_path, released_files):
    path = released_files["emotion"]
    path.with_name(path.name + ".sha256").write_text(f"{'0' * 64}  {path.name}\n")
    with pytest.raises(CheckpointError, match="differs from the one recorded when it was downloaded"):
        import_released(path, "emotion", tmp_path / "out")
    assert not (tmp_path / "out").exists()
