"""Our model against the reference architecture's maths, on released-format checkpoints.

`reference_forward` re-derives SocialMAEFT.forward from the paper/reference definition with plain
tensor operations (explicit softmax attention, LayerNorm and erf-GELU from their formulas),
reading weights straight from the state dict. It shares no code with socialmae_rt.model.
"""

from __future__ import annotations

import math

import pytest
import torch

from socialmae_rt.model import SocialMAE, load_official_checkpoint

# fp32, same inputs; differences come only from operation order (fused attention vs explicit).
PARITY_ATOL = 2e-5


def _layer_norm(x, state, name, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * state[f"{name}.weight"] + state[f"{name}.bias"]


def _linear(x, state, name):
    return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]


def _block(x, state, name, num_heads, norm_suffix):
    b, n, d = x.shape
    h = _layer_norm(x, state, f"{name}.norm1{norm_suffix}")
    qkv = _linear(h, state, f"{name}.attn.qkv").reshape(b, n, 3, num_heads, d // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = torch.softmax(q @ k.transpose(-2, -1) * (d // num_heads) ** -0.5, dim=-1)
    x = x + _linear((attn @ v).transpose(1, 2).reshape(b, n, d), state, f"{name}.attn.proj")
    h = _layer_norm(x, state, f"{name}.norm2{norm_suffix}")
    h = _linear(h, state, f"{name}.mlp.fc1")
    h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
    return x + _linear(h, state, f"{name}.mlp.fc2")


def _depth(state, group):
    return len({k.split(".")[1] for k in state if k.startswith(group + ".")})


def reference_forward(state, audio, video, num_heads, mode):
    state = {k.removeprefix("module."): v for k, v in state.items()}
    streams = []
    if mode in ("multimodal", "audioonly"):
        a = audio.unsqueeze(1).transpose(2, 3)  # [B, 1, F, T]
        a = torch.nn.functional.conv2d(a, state["patch_embed_a.proj.weight"], state["patch_embed_a.proj.bias"], stride=16)
        a = a.flatten(2).transpose(1, 2) + state["pos_embed_a"] + state["modality_a"]
        for i in range(_depth(state, "blocks_a")):
            a = _block(a, state, f"blocks_a.{i}", num_heads, "")
        streams.append(a)
    if mode in ("multimodal", "videoonly"):
        v = torch.nn.functional.conv3d(video, state["patch_embed_v.proj.weight"], state["patch_embed_v.proj.bias"], stride=(16, 16, 2))
        v = v.flatten(2).transpose(1, 2) + state["pos_embed_v"] + state["modality_v"]
        for i in range(_depth(state, "blocks_v")):
            v = _block(v, state, f"blocks_v.{i}", num_heads, "")
        streams.append(v)
    x = torch.cat(streams, dim=1)
    suffix, final = {"multimodal": ("", "norm"), "audioonly": ("_a", "norm_a"), "videoonly": ("_v", "norm_v")}[mode]
    for i in range(_depth(state, "blocks_u")):
        x = _block(x, state, f"blocks_u.{i}", num_heads, suffix)
    pooled = _layer_norm(x, state, final).mean(dim=1)
    return _linear(_layer_norm(pooled, state, "mlp_head.0"), state, "mlp_head.1")


@pytest.mark.parametrize("mode", ["multimodal", "audioonly", "videoonly"])
def test_matches_reference_maths_on_released_layout(tmp_path, small_config, inputs, official_state, mode):
    state = official_state(small_config)
    path = tmp_path / "ft.pth"
    torch.save(state, path)
    model = load_official_checkpoint(path, small_config)
    audio, video = inputs
    kwargs = {
        "multimodal": {"audio": audio, "video": video},
        "audioonly": {"audio": audio, "video": None},
        "videoonly": {"audio": None, "video": video},
    }[mode]
    with torch.no_grad():
        ours = model(**kwargs)
        expected = reference_forward(state, audio, video, small_config.num_heads, mode)
    assert ours.shape == (2, small_config.num_classes)
    torch.testing.assert_close(ours, expected, atol=PARITY_ATOL, rtol=0)


def test_video_tokens_are_time_fastest(small_config):
    """Conv3d output [B, D, 14, 14, 4] flattens with the temporal slice fastest (the released order)."""
    model = SocialMAE(small_config).eval()
    video = torch.zeros(1, 3, 224, 224, 8)
    video[..., 2:4] = 1.0  # only the second tubelet slice (frames 2, 3) differs
    with torch.no_grad():
        tokens = model.patch_embed_v(video)  # [1, 784, D]
        base = model.patch_embed_v(torch.zeros_like(video))
    changed = (tokens - base).abs().sum(-1)[0] > 1e-6  # [784]
    assert changed.reshape(196, 4)[:, 1].all()
    assert not changed.reshape(196, 4)[:, [0, 2, 3]].any()
