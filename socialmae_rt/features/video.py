"""Face frames to model input, as the reference loader prepared them.

Per frame: uint8 HxWx3 -> float in [0, 1], CHW -> bicubic resize (no antialiasing, no clamping,
like torchvision's Resize on a float tensor) -> per-channel mean/std. Frames are stacked with
time last: [3, image_size, image_size, num_frames].
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from socialmae_rt.features.config import CHANNEL_ORDERS, VideoFeatureConfig


def frames_to_model_input(
    frames: Sequence[np.ndarray],
    config: VideoFeatureConfig | None = None,
    *,
    input_order: str = "BGR",
) -> np.ndarray:
    """uint8 HxWx3 frames (at most config.num_frames) -> float32 [3, S, S, num_frames].

    `input_order` is the channel order the frames are in; if it differs from
    config.channel_order the channels are reversed. Fewer frames than num_frames are repeated
    cyclically (f0, f1, f2, f0, ...) as the reference loader did; more raise (sample first).
    """
    config = config or VideoFeatureConfig()
    if input_order not in CHANNEL_ORDERS:
        raise ValueError(f"input_order must be one of {CHANNEL_ORDERS}, got {input_order!r}")
    frames = validate_frames(frames, config.num_frames)
    order = cyclic_indices(len(frames), config.num_frames)
    clip = unit_clip(frames, order, config.image_size)  # [3, S, S, num_frames] in [0, 1]
    if input_order != config.channel_order:
        clip = clip[::-1]  # channel axis
    return normalise_channels(clip, config.mean, config.std)


def unit_clip(frames: list[np.ndarray], order: list[int], image_size: int) -> np.ndarray:
    """Frames in slot order, resized to the model size: float32 [3, S, S, T] in [0, 1]."""
    if all(frame.shape[:2] == (image_size, image_size) for frame in frames):
        # Bicubic at scale 1 samples every pixel at its own centre (weights 0, 1, 0, 0): an exact
        # identity, so crops cut at the model size skip it. Transposing the bytes before the
        # float conversion moves 4x less memory.
        stacked = np.stack([frames[i] for i in order])  # [T, S, S, 3] uint8
        return np.ascontiguousarray(stacked.transpose(3, 1, 2, 0)).astype(np.float32) / np.float32(255.0)
    resized = resize_frames(frames, image_size)  # [num_given, 3, S, S]
    return resized[order].permute(1, 2, 3, 0).contiguous().numpy()  # [3, S, S, T]


def validate_frames(frames: Sequence[np.ndarray], max_frames: int) -> list[np.ndarray]:
    """Check count, dtype and shape of every frame; return them as a list."""
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise ValueError(f"expected a sequence of uint8 HxWx3 frames or a [T, H, W, 3] array, got shape {frames.shape}")
    frames = list(frames)
    if not frames:
        raise ValueError(f"no frames given; expected 1 to {max_frames} uint8 HxWx3 frames")
    if len(frames) > max_frames:
        raise ValueError(
            f"got {len(frames)} frames but the model takes at most {max_frames}; sample the clip first"
        )
    for index, frame in enumerate(frames):
        validate_frame(frame, index)
    return frames


def validate_frame(frame: np.ndarray, index: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        kind = frame.dtype if isinstance(frame, np.ndarray) else type(frame).__name__
        raise TypeError(f"frame {index}: expected a uint8 HxWx3 numpy array, got {kind}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index}: expected shape HxWx3, got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame {index}: expected a non-empty HxWx3 image, got {frame.shape}")


def resize_frames(frames: list[np.ndarray], image_size: int) -> torch.Tensor:
    """Bicubic resize to image_size x image_size, one batched call per distinct input size."""
    resized = [None] * len(frames)
    for indices in group_by_shape(frames).values():
        batch = torch.from_numpy(np.stack([frames[i] for i in indices]))  # [B, H, W, 3] uint8
        batch = batch.permute(0, 3, 1, 2).to(torch.float32) / 255.0  # [B, 3, H, W] in [0, 1]
        out = F.interpolate(
            batch, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=False
        )  # [B, 3, S, S]; not clamped, as torchvision leaves float tensors
        for position, i in enumerate(indices):
            resized[i] = out[position]
    return torch.stack(resized)  # [num_given, 3, S, S]


def group_by_shape(frames: list[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, frame in enumerate(frames):
        groups.setdefault(frame.shape, []).append(index)
    return groups


def normalise_channels(clip: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(x - mean[c]) / std[c] by channel position (axis 0), whatever colour that channel holds."""
    shape = (3,) + (1,) * (clip.ndim - 1)
    return (clip - np.asarray(mean, np.float32).reshape(shape)) / np.asarray(std, np.float32).reshape(shape)


def cyclic_indices(num_given: int, num_frames: int) -> list[int]:
    """Repeat the given frames in order until num_frames are filled: 0, 1, 2, 0, 1, 2, 0, 1."""
    return [i % num_given for i in range(num_frames)]
