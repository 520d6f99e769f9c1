"""frames_to_model_input: layout, channel order, bicubic resize, cyclic repetition, bad input."""

import cv2
import numpy as np
import pytest

from socialmae_rt.features import VideoFeatureConfig, frames_to_model_input

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# cv2.resize(INTER_CUBIC) on float32 uses the same A=-0.75 kernel, half-pixel mapping and edge
# replication. What remains is PyTorch's float32 source-coordinate arithmetic (PyTorch in float64
# agrees with cv2 to 2.5e-7): the error grows with the source coordinate. Measured in normalised
# units: 5.0e-6 for 8x8 -> 224, 1.8e-5 for 37x53 -> 224, 2.4e-4 for 480x640 -> 224.
BICUBIC_UPSCALE_TOLERANCE = 5e-5
BICUBIC_DOWNSCALE_TOLERANCE = 5e-4
CONSTANT_TOLERANCE = 1e-5


def random_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def constant_frame(bgr, height: int = 32, width: int = 48) -> np.ndarray:
    return np.broadcast_to(np.array(bgr, dtype=np.uint8), (height, width, 3)).copy()


def cv2_reference(frame: np.ndarray) -> np.ndarray:
    """Independent bicubic + normalisation: [3, 224, 224]."""
    resized = cv2.resize(frame.astype(np.float32) / 255.0, (224, 224), interpolation=cv2.INTER_CUBIC)
    return ((resized - MEAN) / STD).transpose(2, 0, 1)


def test_shape_and_dtype():
    out = frames_to_model_input([random_frame(120, 160, seed=i) for i in range(8)])
    assert out.shape == (3, 224, 224, 8) and out.dtype == np.float32


def test_blue_bgr_frame_channels():
    out = frames_to_model_input([constant_frame((255, 0, 0))])
    for channel, value in enumerate([1.0, 0.0, 0.0]):
        expected = (value - MEAN[channel]) / STD[channel]
        assert np.abs(out[channel] - expected).max() <= CONSTANT_TOLERANCE


def test_rgb_input_is_reversed_to_bgr():
    blue_rgb = constant_frame((0, 0, 255))
    out = frames_to_model_input([blue_rgb], input_order="RGB")
    np.testing.assert_array_equal(out, frames_to_model_input([constant_frame((255, 0, 0))]))
    assert np.abs(out[0] - (1.0 - MEAN[0]) / STD[0]).max() <= CONSTANT_TOLERANCE


def test_rgb_config_keeps_rgb_input():
    frame = random_frame(30, 30)
    out = frames_to_model_input([frame], VideoFeatureConfig(channel_order="RGB"), input_order="RGB")
    np.testing.assert_array_equal(out, frames_to_model_input([frame]))


def test_unknown_input_order_is_refused():
    with pytest.raises(ValueError, match="input_order must be one of"):
        frames_to_model_input([random_frame(8, 8)], input_order="YUV")


def test_constant_image_stays_constant():
    out = frames_to_model_input([constant_frame((10, 128, 250), 17, 29)])
    spread = out.max(axis=(1, 2, 3)) - out.min(axis=(1, 2, 3))
    assert np.all(spread <= CONSTANT_TOLERANCE)


@pytest.mark.parametrize(
    ("size", "tolerance"),
    [
        ((8, 8), BICUBIC_UPSCALE_TOLERANCE),
        ((37, 53), BICUBIC_UPSCALE_TOLERANCE),
        ((480, 640), BICUBIC_DOWNSCALE_TOLERANCE),
    ],
)
def test_bicubic_matches_opencv(size, tolerance):
    frame = random_frame(*size)
    out = frames_to_model_input([frame])[..., 0]
    assert np.abs(out - cv2_reference(frame)).max() <= tolerance


def test_bicubic_is_not_clamped():
    """Bicubic overshoots at sharp edges; the reference left float tensors unclamped."""
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    frame[:, 4:] = 255
    out = frames_to_model_input([frame])
    unnormalised = out[..., 0] * STD[:, None, None] + MEAN[:, None, None]
    assert unnormalised.max() > 1.0 and unnormalised.min() < 0.0


def test_fewer_frames_repeat_cyclically():
    frames = [constant_frame((v, v, v)) for v in (0, 100, 200)]
    out = frames_to_model_input(frames)
    levels = out[0, 0, 0, :] * STD[0] + MEAN[0]  # channel 0 back to [0, 1]
    np.testing.assert_allclose(levels * 255, [0, 100, 200, 0, 100, 200, 0, 100], atol=1e-3)


def test_frames_of_different_sizes_are_each_resized():
    frames = [random_frame(40, 60, seed=1), random_frame(100, 80, seed=2)]
    out = frames_to_model_input(frames)
    for position, frame in zip(range(8), frames * 4):
        assert np.abs(out[..., position] - cv2_reference(frame)).max() <= BICUBIC_UPSCALE_TOLERANCE


def test_stacked_array_input_equals_list():
    frames = np.stack([random_frame(20, 20, seed=i) for i in range(4)])  # [T, H, W, 3]
    np.testing.assert_array_equal(frames_to_model_input(frames), frames_to_model_input(list(frames)))


@pytest.mark.parametrize(
    ("frames", "error", "message"),
    [
        ([np.zeros((8, 8, 3), dtype=np.float32)], TypeError, "frame 0: expected a uint8 HxWx3"),
        (
            [random_frame(8, 8), np.zeros((8, 8), dtype=np.uint8)],
            ValueError,
            r"frame 1: expected shape HxWx3, got \(8, 8\)",
        ),
        (
            [np.zeros((8, 8, 4), dtype=np.uint8)],
            ValueError,
            r"frame 0: expected shape HxWx3, got \(8, 8, 4\)",
        ),
        ([np.zeros((0, 8, 3), dtype=np.uint8)], ValueError, "non-empty HxWx3"),
        ([], ValueError, "no frames given; expected 1 to 8 uint8 HxWx3"),
        (np.zeros((8, 8, 3), dtype=np.uint8), ValueError, r"\[T, H, W, 3\] array, got shape \(8, 8, 3\)"),
        ([random_frame(8, 8)] * 9, ValueError, "got 9 frames but the model takes at most 8"),
    ],
    ids=["float", "2d", "4_channels", "zero_height", "no_frames", "single_frame_not_in_a_list", "nine_frames"],
)
def test_bad_frames_are_refused(frames, error, message):
    with pytest.raises(error, match=message):
        frames_to_model_input(frames)


def test_frames_already_at_model_size_match_the_bicubic_path_exactly():
    """The identity shortcut for 224 x 224 crops gives what torch's bicubic gives at scale 1."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    ours = frames_to_model_input(frames)
    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    direct = F.interpolate(batch, size=(224, 224), mode="bicubic", align_corners=False, antialias=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = ((direct - mean) / std).permute(1, 2, 3, 0).numpy()  # [3, 224, 224, 3 frames]
    np.testing.assert_array_equal(ours[..., :3], expected)
