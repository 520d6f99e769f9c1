"""square_crop on painted frames whose pixels say where they came from."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.faces import square_crop
from socialmae_rt.messages import FaceBox


def coordinate_frame(height: int = 480, width: int = 640) -> np.ndarray:
    """Blue = x mod 256, green = y mod 256, red = 255: every pixel names its own position."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, np.full_like(xs, 255)], axis=-1).astype(np.uint8)


def test_centre_box_gives_exactly_that_region():
    frame = coordinate_frame()
    # 140 px box * 1.6 = 224 px square: no resampling, so pixels must match exactly.
    box = FaceBox(250, 170, 390, 310)
    crop = square_crop(frame, box, scale=1.6, size=224)
    centre_x, centre_y = 320, 240
    expected = frame[centre_y - 112 : centre_y + 112, centre_x - 112 : centre_x + 112]
    np.testing.assert_array_equal(crop, expected)


def test_square_side_follows_the_longer_box_side():
    frame = coordinate_frame()
    tall_box = FaceBox(300, 170, 340, 310)  # 40 x 140: the square is still 224 wide
    np.testing.assert_array_equal(square_crop(frame, tall_box, 1.6, 224), frame[128:352, 208:432])


def test_corner_box_is_padded_with_black():
    frame = np.full((480, 640, 3), 255, np.uint8)
    box = FaceBox(0, 0, 100, 100)  # square of 160 px centred on (50, 50): 30 px leave top and left
    crop = square_crop(frame, box, scale=1.6, size=160)
    assert (crop[:30, :] == 0).all() and (crop[:, :30] == 0).all()
    assert (crop[30:, 30:] == 255).all()


@pytest.mark.parametrize("scale, white_fraction", [(1.0, 1.0), (2.0, 0.25), (4.0, 1 / 16)])
def test_scale_sets_how_much_surrounds_the_box(scale, white_fraction):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[200:280, 280:360] = 255  # the box itself is white, everything else black
    crop = square_crop(frame, FaceBox(280, 200, 360, 280), scale=scale, size=224)
    measured = (crop[..., 0] > 127).mean()
    assert measured == pytest.approx(white_fraction, abs=0.02)


def test_shrinks_and_enlarges_to_the_requested_size():
    frame = coordinate_frame()
    for box in (FaceBox(200, 150, 440, 330), FaceBox(300, 220, 320, 240)):
        crop = square_crop(frame, box, scale=1.6, size=224)
        assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
        assert crop[..., 2].min() > 200  # all inside the frame: no black padding crept in


@pytest.mark.parametrize(
    "box",
    [
        FaceBox(-300, -300, -100, -100),  # wholly outside, top left
        FaceBox(700, 500, 900, 700),  # wholly outside, bottom right
        FaceBox(600, 440, 700, 540),  # partly outside
        FaceBox(320, 240, 320.5, 240.5),  # smaller than a pixel
        FaceBox(320, 240, 320, 240),  # zero size
        FaceBox(360, 280, 280, 200),  # corners swapped
        FaceBox(-5000, -5000, 5000, 5000),  # far larger than the frame
        FaceBox(0, 0, 640, 480),  # the whole frame
    ],
)
@pytest.mark.parametrize("size", [224, 112])
def test_any_box_gives_a_uint8_square(box, size):
    crop = square_crop(coordinate_frame(), box, size=size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8


def test_box_outside_the_frame_gives_black():
    crop = square_crop(coordinate_frame(), FaceBox(-300, -300, -100, -100))
    assert not crop.any()


def test_default_scale_and_size():
    frame = coordinate_frame()
    np.testing.assert_array_equal(square_crop(frame, FaceBox(250, 170, 390, 310)), frame[128:352, 208:432])


@pytest.mark.parametrize(
    "frame, box, kwargs, message",
    [
        (np.zeros((48, 64), np.uint8), FaceBox(0, 0, 10, 10), {}, r"shape \[H, W, 3\]"),
        (np.zeros((48, 64, 3), np.float32), FaceBox(0, 0, 10, 10), {}, "float32"),
        (np.zeros((48, 64, 3), np.uint8), FaceBox(float("nan"), 0, 10, 10), {}, "non-finite"),
        (np.zeros((48, 64, 3), np.uint8), FaceBox(0, 0, 10, 10), {"scale": 0.0}, "scale"),
        (np.zeros((48, 64, 3), np.uint8), FaceBox(0, 0, 10, 10), {"size": 0}, "size"),
    ],
)
def test_rejects_bad_inputs(frame, box, kwargs, message):
    with pytest.raises(ValueError, match=message):
        square_crop(frame, box, **kwargs)
