import json

import pytest
import torch

from socialmae_rt.features import PreprocessConfig
from socialmae_rt.model import (
    CheckpointError,
    SocialMAE,
    SocialMAEConfig,
    load_any_checkpoint,
    load_checkpoint,
    load_official_checkpoint,
    save_checkpoint,
)
from socialmae_rt.model.checkpoint import load_state_strictly


def _save(tmp_path, obj, name="ft.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_our_names_and_shapes_are_the_reference_layout_at_full_size(official_layout):
    """The default config has exactly the released ViT-B fine-tuned layout (meta tensors: no memory)."""
    with torch.device("meta"):
        model = SocialMAE(SocialMAEConfig())
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert ours == official_layout(SocialMAEConfig())
    assert ours["pos_embed_a"] == (1, 512, 768) and ours["pos_embed_v"] == (1, 784, 768)
    assert ours["patch_embed_v.proj.weight"] == (768, 3, 16, 16, 2)


def test_default_config_loads_a_released_base_checkpoint_strictly(tmp_path, official_state):
    state = {k: v.to(torch.float32) for k, v in official_state(SocialMAEConfig()).items()}
    path = _save(tmp_path, state)
    del state
    model = load_official_checkpoint(path, SocialMAEConfig())
    assert not model.training
    reloaded = torch.load(path, weights_only=True)
    for name in ("blocks_u.0.norm1_v.weight", "mlp_head.1.weight", "pos_embed_v", "blocks_a.10.attn.qkv.bias"):
        torch.testing.assert_close(model.state_dict()[name], reloaded["module." + name], atol=0, rtol=0)


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_small_official_checkpoint_loads_every_tensor(tmp_path, small_config, official_state, prefix):
    state = official_state(small_config, prefix=prefix)
    model = load_official_checkpoint(_save(tmp_path, state), small_config)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state[prefix + name], atol=0, rtol=0)


def test_wrapped_state_dict_is_accepted(tmp_path, small_config, official_state):
    path = _save(tmp_path, {"state_dict": official_state(small_config)})
    assert isinstance(load_official_checkpoint(path, small_config), SocialMAE)


def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path, small_config, official_state):
    state = official_state(small_config)
    del state["module.blocks_v.1.mlp.fc2.bias"]
    state["module.cls_token"] = torch.zeros(1, 1, 64)
    state["module.mlp_head.1.weight"] = torch.zeros(7, 64)
    with pytest.raises(CheckpointError) as info:
        load_official_checkpoint(_save(tmp_path, state), small_config)
    message = str(info.value)
    assert "missing keys (1): blocks_v.1.mlp.fc2.bias" in message
    assert "unexpected keys (1): cls_token" in message
    assert "mlp_head.1.weight: checkpoint [7, 64] vs model [6, 64]" in message
    assert "num_classes=7" in message  # what the checkpoint looks like


def test_wrong_size_says_what_the_checkpoint_is(tmp_path, official_state):
    tiny_width = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1)
    path = _save(tmp_path, official_state(tiny_width))
    with pytest.raises(CheckpointError, match=r"looks like embed_dim=32, modality_specific_depth=1, num_classes=6"):
        load_official_checkpoint(path, SocialMAEConfig(embed_dim=64, num_heads=4, modality_specific_depth=1))


def test_failed_load_changes_nothing(small_config, official_state):
    model = SocialMAE(small_config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k.removeprefix("module."): v for k, v in official_state(small_config).items()}
    state["norm.weight"] = torch.zeros(65)  # one bad shape among many good tensors
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_state_strictly(model, state, "test state")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


@pytest.mark.parametrize(
    "payload, message",
    [
        ([1, 2, 3], r"holds a list, expected a non-empty state dict"),
        ({}, r"holds a dict, expected a non-empty state dict"),
        ({"epoch": 3, "lr": 0.1}, r"not a state dict: expected every value to be a tensor, but 2 are not"),
    ],
)
def test_not_a_state_dict(tmp_path, small_config, payload, message):
    with pytest.raises(CheckpointError, match=message):
        load_official_checkpoint(_save(tmp_path, payload), small_config)


def test_truncated_and_missing_files(tmp_path, small_config, official_state):
    path = _save(tmp_path, official_state(small_config))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read .*ft.pth as a PyTorch checkpoint \(truncated"):
        load_official_checkpoint(path, small_config)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_official_checkpoint(tmp_path / "absent.pth", small_config)
    text = tmp_path / "page.pth"  # what a failed Google Drive download often is: an HTML page
    text.write_text("hello, this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"page.pth is not a PyTorch checkpoint: the file starts with b'hell'"):
        load_official_checkpoint(text, small_config)


def test_pickled_objects_are_refused(tmp_path, small_config):
    path = _save(tmp_path, {"config": SocialMAEConfig()})  # arbitrary objects need weights_only=False
    with pytest.raises(CheckpointError, match="cannot read"):
        load_official_checkpoint(path, small_config)


def test_encoder_only_from_a_pretraining_checkpoint(tmp_path, small_config, official_state):
    state = official_state(small_config)
    for k in [k for k in state if k.startswith("module.mlp_head")]:
        del state[k]
    state["module.decoder_embed.weight"] = torch.zeros(512, 64)
    state["module.decoder_blocks.0.attn.qkv.weight"] = torch.zeros(1536, 512)
    state["module.mask_token"] = torch.zeros(1, 1, 512)
    path = _save(tmp_path, state)
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_official_checkpoint(path, small_config)
    config = small_config.with_heads(laughter=1)
    model = load_official_checkpoint(path, config, encoder_only=True)
    torch.testing.assert_close(model.blocks_u[0].attn.qkv.weight, state["module.blocks_u.0.attn.qkv.weight"])
    assert model.extra_heads["laughter"][1].weight.shape == (1, 64)
    state["module.some_other_thing"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="unexpected keys \\(1\\): some_other_thing"):
        load_official_checkpoint(_save(tmp_path, state, "pre2.pth"), small_config, encoder_only=True)


def test_safetensors_round_trip_is_exact(tmp_path, small_config, inputs):
    config = small_config.with_heads(laughter=1, personality=5)
    model = SocialMAE(config).eval()
    preprocess = PreprocessConfig(video={"channel_order": "RGB"})
    path = save_checkpoint(model, tmp_path / "ckpt" / "multi.safetensors", preprocess, metadata={"epoch": 4})
    assert path.is_file() and (tmp_path / "ckpt" / "multi.json").is_file()
    loaded = load_checkpoint(path)
    assert loaded.model.config == config
    assert loaded.preprocess == preprocess and loaded.preprocess.video.channel_order == "RGB"
    assert loaded.metadata == {"epoch": 4}
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    audio, video = inputs
    with torch.no_grad():
        assert torch.equal(loaded.model(audio=audio, video=video), model(audio=audio, video=video))
    assert load_any_checkpoint(path).model.config == config


def test_safetensors_errors(tmp_path, small_config):
    model = SocialMAE(small_config)
    with pytest.raises(ValueError, match=r"must end in .safetensors"):
        save_checkpoint(model, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"audio frames .*model 1024 != preprocessing 512"):
        save_checkpoint(model, tmp_path / "x.safetensors", PreprocessConfig(audio={"target_length": 512}))
    path = save_checkpoint(model, tmp_path / "x.safetensors")
    json_path = tmp_path / "x.json"
    document = json.loads(json_path.read_text())

    document["model"]["depth"] = 12
    json_path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"unknown SocialMAEConfig field\(s\) \['depth'\]"):
        load_checkpoint(path)
    del document["model"]["depth"]

    document["format_version"] = 99
    json_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(path)
    document["format_version"] = 1

    document["model"]["num_classes"] = 3
    json_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"mlp_head.1.weight: checkpoint \[6, 64\] vs model \[3, 64\]"):
        load_checkpoint(path)
    document["model"]["num_classes"] = 6
    json_path.write_text(json.dumps(document))

    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="cannot read .* as safetensors"):
        load_checkpoint(path)
    json_path.unlink()
    with pytest.raises(FileNotFoundError, match=r"x.json \(it must sit beside x.safetensors\)"):
        load_checkpoint(path)


def test_load_any_checkpoint_dispatch(tmp_path, small_config, official_state):
    pth = _save(tmp_path, official_state(small_config))
    assert load_any_checkpoint(pth, small_config).model.config == small_config
    with pytest.raises(ValueError, match=r"unknown checkpoint type '.bin'"):
        load_any_checkpoint(tmp_path / "w.bin")


def test_a_checkpoint_with_nan_or_inf_weights_is_refused_naming_the_tensors(tmp_path, small_config, official_state):
    state = official_state(small_config)
    state["module.blocks_v.1.attn.proj.weight"][0, :3] = float("nan")
    state["module.mlp_head.1.bias"][2] = float("inf")
    with pytest.raises(CheckpointError, match=r"holds NaN/Inf values in blocks_v.1.attn.proj.weight \(3 of \d+ "
                                              r"values\), mlp_head.1.bias \(1 of 6 values\)"):
        load_official_checkpoint(_save(tmp_path, state), small_config)
    model = SocialMAE(small_config)
    with torch.no_grad():
        model.norm.weight[0] = float("nan")
    path = save_checkpoint(model, tmp_path / "ours.safetensors")
    with pytest.raises(CheckpointError, match=r"norm.weight \(1 of"):
        load_checkpoint(path)
