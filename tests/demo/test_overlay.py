"""Overlay renderer: render known perception onto a synthetic frame and read the result back from pixels."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.demo.overlay import Bar, FaceView, OverlayConfig, OverlayRenderer, StatusView
from socialmae_rt.messages import FaceBox
from socialmae_rt.results import Latency, SocialPerception
from socialmae_rt.tasks import EMOTION_LABELS, PERSONALITY_TRAITS

FRAME_H, FRAME_W = 480, 640
EMOTION_PROBS = dict(zip(EMOTION_LABELS, (0.0, 0.12, 0.33, 0.5, 0.81, 1.0)))
TRAIT_SCORES = dict(zip(PERSONALITY_TRAITS, (0.9, 0.07, 0.45, 0.66, 0.25)))


@pytest.fixture
def frame() -> np.ndarray:
    # Noise: any pixel the renderer touches almost surely differs from it.
    return np.random.default_rng(7).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)


@pytest.fixture
def renderer() -> OverlayRenderer:
    return OverlayRenderer()


def perception(
    face_id: int | None,
    modality: str = "audiovisual",
    emotion: dict[str, float] | None = EMOTION_PROBS,
    laughter: float | None = 0.3,
    laughing: bool | None = False,
    personality: dict[str, float] | None = TRAIT_SCORES,
    degraded: str | None = None,
) -> SocialPerception:
    return SocialPerception(
        face_id=face_id,
        window_start_ns=0,
        window_end_ns=4_000_000_000,
        modality=modality,
        emotion=emotion,
        laughter_probability=laughter,
        laughing=laughing,
        personality=personality,
        window_fill=1.0,
        latency=Latency(preprocess_ms=5.0, inference_ms=30.0, total_ms=80.0),
        degraded=degraded,
    )


def status(mic_dbfs: float | None = -30.0, notices: tuple[str, ...] = (), paused: bool = False) -> StatusView:
    return StatusView(
        backend="torch fp32 cpu",
        windows_per_s=2.0,
        inference_ms=31.5,
        latency_ms=120.0,
        skipped_windows=1,
        mic_level_dbfs=mic_dbfs,
        notices=notices,
        paused=paused,
    )


def bar_fill(canvas: np.ndarray, bar: Bar, fill: tuple, track: tuple) -> int:
    """Filled length of a drawn bar; asserts it is `fill` then `track` and nothing else."""
    block = canvas[bar.y : bar.y + bar.height, bar.x : bar.x + bar.width]  # [h, w, 3]
    row = block[bar.height // 2]  # [w, 3]
    assert np.array_equal(block, np.broadcast_to(row, block.shape)), "bar rows differ (text or box in the bar?)"
    n = int(np.all(row == fill, axis=1).sum())
    assert np.all(row[:n] == fill), f"fill {fill} is not contiguous from the bar's left end"
    assert np.all(row[n:] == track), f"unfilled part of the bar is not the track colour {track}"
    return n


def expected_fill(value: float, bar: Bar) -> int:
    return round(value * bar.width)


def layout_for(renderer: OverlayRenderer, faces: list[FaceView]):
    return renderer.layout(FRAME_H, FRAME_W, [face.face_id for face in faces])


# -- bars --------------------------------------------------------------------------------------------


def test_emotion_bars_fill_their_share_in_their_colour(frame, renderer):
    faces = [FaceView(3, FaceBox(100, 100, 200, 220), perception(3))]
    canvas = renderer.render(frame, faces, status())
    panel = layout_for(renderer, faces).panels[0]
    cfg = renderer.config
    assert set(panel.emotion) == set(EMOTION_LABELS)
    for label, prob in EMOTION_PROBS.items():
        bar = panel.emotion[label]
        assert bar.width >= 50  # wide enough that a wrong length shows
        filled = bar_fill(canvas, bar, cfg.emotion_colours[label], cfg.track_colour)
        assert abs(filled - expected_fill(prob, bar)) <= 1, label


def test_emotion_colours_and_track_are_all_distinct():
    cfg = OverlayConfig()
    colours = [cfg.emotion_colours[label] for label in EMOTION_LABELS] + [cfg.track_colour]
    assert len(set(colours)) == len(colours)


def test_personality_bars_fill_their_share(frame, renderer):
    faces = [FaceView(0, None, perception(0))]
    canvas = renderer.render(frame, faces, status())
    panel = layout_for(renderer, faces).panels[0]
    cfg = renderer.config
    assert set(panel.personality) == set(PERSONALITY_TRAITS)
    for trait, score in TRAIT_SCORES.items():
        bar = panel.personality[trait]
        filled = bar_fill(canvas, bar, cfg.personality_colour, cfg.track_colour)
        assert abs(filled - expected_fill(score, bar)) <= 1, trait


@pytest.mark.parametrize("probability", [0.0, 0.3, 0.72, 1.0])
def test_laughter_meter_idle_fill(frame, renderer, probability):
    faces = [FaceView(1, None, perception(1, laughter=probability, laughing=False))]
    canvas = renderer.render(frame, faces, status())
    bar = layout_for(renderer, faces).panels[0].laughter
    cfg = renderer.config
    filled = bar_fill(canvas, bar, cfg.laughter_idle_colour, cfg.track_colour)
    assert abs(filled - expected_fill(probability, bar)) <= 1


def test_laughter_meter_laughing_colour_differs_from_idle(frame, renderer):
    faces = [FaceView(1, None, perception(1, laughter=0.8, laughing=True))]
    canvas = renderer.render(frame, faces, status())
    bar = layout_for(renderer, faces).panels[0].laughter
    cfg = renderer.config
    assert cfg.laughter_laughing_colour != cfg.laughter_idle_colour
    filled = bar_fill(canvas, bar, cfg.laughter_laughing_colour, cfg.track_colour)
    assert abs(filled - expected_fill(0.8, bar)) <= 1


def test_laughter_flash_outlines_the_meter_and_leaves_its_track_dark(frame, renderer):
    faces = [FaceView(1, None, perception(1, laughter=0.65, laughing=True), flash=True)]
    canvas = renderer.render(frame, faces, status())
    bar = layout_for(renderer, faces).panels[0].laughter
    cfg = renderer.config
    # the unfilled part stays the dark track: 0.65 looks like 0.65, not like a full meter
    filled = bar_fill(canvas, bar, cfg.laughter_laughing_colour, cfg.track_colour)
    assert abs(filled - expected_fill(0.65, bar)) <= 1
    assert np.all(canvas[bar.y, bar.x + bar.width - 2] == cfg.track_colour)
    # the outline: two pixels above and one below the track, in the flash colour
    assert np.all(canvas[bar.y - 2, bar.x : bar.x + bar.width] == cfg.laughter_flash_colour)
    assert np.all(canvas[bar.y + bar.height + 1, bar.x : bar.x + bar.width] == cfg.laughter_flash_colour)
    plain = renderer.render(frame, [FaceView(1, None, perception(1, laughter=0.65, laughing=True))], status())
    assert not np.any(np.all(plain[bar.y - 2, bar.x : bar.x + bar.width] == cfg.laughter_flash_colour, axis=-1))


def test_missing_heads_draw_empty_tracks(frame, renderer):
    result = perception(2, modality="audio", emotion=None, laughter=None, laughing=None, personality=None)
    faces = [FaceView(2, None, result)]
    canvas = renderer.render(frame, faces, status())
    panel = layout_for(renderer, faces).panels[0]
    cfg = renderer.config
    for bar in [*panel.emotion.values(), panel.laughter, *panel.personality.values()]:
        assert bar_fill(canvas, bar, cfg.emotion_colours["anger"], cfg.track_colour) == 0
        assert np.all(canvas[bar.y, bar.x : bar.x + bar.width] == cfg.track_colour)


def test_waiting_panel_has_empty_tracks_and_a_detail_line(frame, renderer):
    cfg = renderer.config
    waiting = renderer.render(frame, [FaceView(4, None, None)], status())
    ready = renderer.render(frame, [FaceView(4, None, perception(4))], status())
    panel = renderer.layout(FRAME_H, FRAME_W, [4]).panels[0]
    for bar in [*panel.emotion.values(), panel.laughter, *panel.personality.values()]:
        assert np.all(waiting[bar.y : bar.y + bar.height, bar.x : bar.x + bar.width] == cfg.track_colour)
    # The detail row (under the title, above the EMOTION heading) holds "waiting for first window".
    x, y, w, _ = panel.rect
    detail_top = y + cfg.panel_padding + cfg.row_height
    assert panel.headings[0][1] == detail_top + cfg.row_height  # the heading follows it
    detail_w = w - cfg.panel_padding - 4
    detail_waiting = waiting[detail_top : detail_top + cfg.row_height, x + cfg.panel_padding : x + detail_w]
    detail_ready = ready[detail_top : detail_top + cfg.row_height, x + cfg.panel_padding : x + detail_w]
    assert np.any(detail_waiting != cfg.panel_background)
    assert np.all(detail_ready == cfg.panel_background)


def test_degraded_reason_is_shown_shortened_inside_the_panel(frame, renderer):
    cfg = renderer.config
    reason = "camera failed: device /dev/video0 stopped delivering frames " * 3
    canvas = renderer.render(frame, [FaceView(4, None, perception(4, degraded=reason))], status())
    panel = renderer.layout(FRAME_H, FRAME_W, [4]).panels[0]
    x, y, w, _ = panel.rect
    detail_top = y + cfg.panel_padding + cfg.row_height
    detail = canvas[detail_top : detail_top + cfg.row_height, x + cfg.panel_padding : x + w]
    assert np.any(detail != cfg.panel_background)
    # The long reason stays in its panel: nothing spills into the frame.
    assert np.array_equal(canvas[:FRAME_H, :FRAME_W], frame)


# -- face boxes and colours ---------------------------------------------------------------------------


def test_face_box_is_drawn_on_the_box_and_nowhere_else(frame, renderer):
    box = FaceBox(200.0, 150.0, 320.0, 300.0)  # pixels x 200..319, y 150..299
    canvas = renderer.render(frame, [FaceView(5, box, perception(5))], status())
    colour = renderer.config.face_colour(5)
    t = renderer.config.box_thickness
    area = canvas[:FRAME_H, :FRAME_W]
    assert np.all(area[150, 200:320] == colour)  # top edge
    assert np.all(area[299, 200:320] == colour)  # bottom edge
    assert np.all(area[150:300, 200] == colour)  # left edge
    assert np.all(area[150:300, 319] == colour)  # right edge
    assert np.all(area[150 : 150 + t, 250] == colour) and np.all(area[299 - t + 1 : 300, 250] == colour)
    # Inside the outline and just outside it the frame is untouched.
    assert np.array_equal(area[150 + t : 300 - t, 200 + t : 320 - t], frame[150 + t : 300 - t, 200 + t : 320 - t])
    assert np.array_equal(area[300:302, 200:320], frame[300:302, 200:320])
    assert np.array_equal(area[150:300, 320:322], frame[150:300, 320:322])
    # The "face 5" label sits just above the box, in the face's colour.
    assert np.all(area[149, 200:210] == colour)
    # Every changed pixel is on the outline or in the label band above it.
    changed = np.any(area != frame, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 150 - 25 and ys.max() <= 299 and xs.min() >= 200 and xs.max() <= 319
    assert not changed[150 + t : 300 - t, 200 + t : 320 - t].any()


def test_face_box_is_clamped_to_the_frame(frame, renderer):
    box = FaceBox(-40.0, 400.0, 100.0, 560.0)  # off the left and bottom edges
    canvas = renderer.render(frame, [FaceView(2, box, None)], status())
    colour = renderer.config.face_colour(2)
    assert np.all(canvas[400:FRAME_H, 0] == colour)  # clamped left edge
    assert np.all(canvas[FRAME_H - 1, 0:100] == colour)  # clamped bottom edge
    assert np.all(canvas[400:FRAME_H, 99] == colour)
    # The strip below the frame is not painted with the box colour.
    assert not np.any(np.all(canvas[FRAME_H:, 0:100] == colour, axis=2))


def test_two_faces_get_different_colours_stable_by_id(frame, renderer):
    box_a, box_b = FaceBox(50, 100, 150, 200), FaceBox(400, 100, 500, 200)
    both = renderer.render(frame, [FaceView(1, box_a, None), FaceView(2, box_b, None)], status())
    colour_1, colour_2 = tuple(both[100, 60]), tuple(both[100, 410])
    assert colour_1 != colour_2
    # Swap the order and drop a face: each id keeps its colour (box and panel accent stripe).
    swapped = renderer.render(frame, [FaceView(2, box_a, None), FaceView(1, box_b, None)], status())
    assert tuple(swapped[100, 60]) == colour_2 and tuple(swapped[100, 410]) == colour_1
    alone = OverlayRenderer().render(frame, [FaceView(1, box_b, None)], status())
    assert tuple(alone[100, 410]) == colour_1
    panels = renderer.layout(FRAME_H, FRAME_W, [2, 1]).panels
    for panel, colour in zip(panels, (colour_2, colour_1)):
        x, y, _, h = panel.rect
        assert tuple(swapped[y + h // 2, x + 1]) == colour
    palette = renderer.config.face_palette
    assert renderer.config.face_colour(1 + len(palette)) == renderer.config.face_colour(1)


def test_audio_only_stream_gets_a_panel_but_no_box(frame, renderer):
    # Even with a box passed by mistake, the audio-only stream draws nothing on the frame.
    faces = [FaceView(None, FaceBox(100, 100, 200, 200), perception(None, modality="audio"))]
    canvas = renderer.render(frame, faces, status())
    assert np.array_equal(canvas[:FRAME_H, :FRAME_W], frame)
    layout = layout_for(renderer, faces)
    assert [panel.face_id for panel in layout.panels] == [None]
    bar = layout.panels[0].emotion["happy"]
    cfg = renderer.config
    assert abs(bar_fill(canvas, bar, cfg.emotion_colours["happy"], cfg.track_colour) - expected_fill(0.5, bar)) <= 1


# -- layout ------------------------------------------------------------------------------------------


def test_too_many_faces_are_counted_and_the_canvas_size_stays(frame, renderer):
    one = renderer.render(frame, [FaceView(0, None, None)], status())
    many_faces = [FaceView(i, FaceBox(10 + 60 * i, 300, 60 + 60 * i, 350), perception(i)) for i in range(6)]
    many = renderer.render(frame, many_faces, status())
    assert one.shape == many.shape == (*renderer.canvas_size(FRAME_H, FRAME_W), 3)
    cfg = renderer.config
    assert renderer.canvas_size(FRAME_H, FRAME_W) == (FRAME_H + cfg.timeline_height + 30, FRAME_W + 280)
    layout = layout_for(renderer, many_faces)
    assert layout.hidden_faces > 0
    assert len(layout.panels) + layout.hidden_faces == 6
    assert [p.face_id for p in layout.panels] == list(range(len(layout.panels)))
    assert layout.more_origin is not None
    # Every shown panel lies inside the column, above the strip, without overlapping the next one.
    col_x, col_y, col_w, col_h = layout.column_rect
    bottoms = []
    for panel in layout.panels:
        x, y, w, h = panel.rect
        assert col_x <= x and x + w <= col_x + col_w and col_y <= y and y + h <= col_y + col_h
        bottoms.append((y, y + h))
    assert all(prev_end <= nxt_start for (_, prev_end), (nxt_start, _) in zip(bottoms, bottoms[1:]))
    assert layout.more_origin[1] < FRAME_H


def test_layout_bars_sit_inside_their_panel_without_overlap(renderer):
    panel = renderer.layout(FRAME_H, FRAME_W, [0]).panels[0]
    x, y, w, h = panel.rect
    bars = [*panel.emotion.values(), panel.laughter, *panel.personality.values()]
    assert len(bars) == len(EMOTION_LABELS) + 1 + len(PERSONALITY_TRAITS)
    for bar in bars:
        assert x < bar.x and bar.x + bar.width < x + w and y < bar.y and bar.y + bar.height < y + h
    tops = sorted(bar.y for bar in bars)
    assert all(b - a >= bars[0].height for a, b in zip(tops, tops[1:]))


def test_all_faces_fit_when_the_frame_is_tall_enough(renderer):
    layout = renderer.layout(1080, 1920, [0, 1, None])
    assert len(layout.panels) == 3 and layout.hidden_faces == 0 and layout.more_origin is None


# -- status strip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dbfs, share", [(-30.0, 0.5), (-45.0, 0.25), (-80.0, 0.0), (-12.0, 0.8)])
def test_mic_meter_fill(frame, renderer, dbfs, share):
    canvas = renderer.render(frame, [], status(mic_dbfs=dbfs))
    meter = renderer.layout(FRAME_H, FRAME_W, []).mic_meter
    strip_top = FRAME_H + renderer.config.timeline_height
    assert meter is not None and strip_top <= meter.y and meter.y + meter.height <= strip_top + 30
    cfg = renderer.config
    filled = bar_fill(canvas, meter, cfg.mic_colour, cfg.track_colour)
    assert abs(filled - expected_fill(share, meter)) <= 1


def test_mic_meter_near_clipping_turns_hot(frame, renderer):
    canvas = renderer.render(frame, [], status(mic_dbfs=-3.0))
    meter = renderer.layout(FRAME_H, FRAME_W, []).mic_meter
    cfg = renderer.config
    assert abs(bar_fill(canvas, meter, cfg.mic_hot_colour, cfg.track_colour) - expected_fill(0.95, meter)) <= 1


def test_no_mic_draws_an_empty_meter(frame, renderer):
    canvas = renderer.render(frame, [], status(mic_dbfs=None))
    meter = renderer.layout(FRAME_H, FRAME_W, []).mic_meter
    cfg = renderer.config
    assert bar_fill(canvas, meter, cfg.mic_colour, cfg.track_colour) == 0
    assert bar_fill(canvas, meter, cfg.mic_hot_colour, cfg.track_colour) == 0
    # The status text is drawn in the strip, left of the meter.
    assert np.any(canvas[FRAME_H:, : meter.x - 80] != cfg.strip_background)


def test_notices_and_paused_are_drawn_over_the_frame(frame, renderer):
    cfg = renderer.config
    canvas = renderer.render(frame, [], status(notices=("RANDOM WEIGHTS", "no microphone: video only"), paused=True))
    banner_h = 2 * (cfg.row_height + 6)
    assert np.mean(np.all(canvas[:banner_h, :FRAME_W] == cfg.notice_background, axis=2)) > 0.7
    assert np.array_equal(canvas[banner_h : banner_h + 50, :FRAME_W], frame[banner_h : banner_h + 50])
    centre = canvas[FRAME_H // 2 - 20 : FRAME_H // 2 + 20, FRAME_W // 2 - 60 : FRAME_W // 2 + 60]
    assert np.any(np.all(centre == cfg.paused_colour, axis=2))
    plain = renderer.render(frame, [], status())
    assert np.array_equal(plain[:FRAME_H, :FRAME_W], frame)


# -- inputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((48, 64, 3), dtype=np.float32),
        np.zeros((48, 64), dtype=np.uint8),
        np.zeros((48, 64, 4), dtype=np.uint8),
        np.zeros((0, 64, 3), dtype=np.uint8),
        [[0, 0, 0]],
    ],
)
def test_bad_frame_raises(renderer, bad):
    with pytest.raises(ValueError, match=r"uint8 BGR frame of shape \[H, W, 3\]"):
        renderer.render(bad, [], status())


def test_render_leaves_the_input_frame_alone(frame, renderer):
    before = frame.copy()
    canvas = renderer.render(frame, [FaceView(1, FaceBox(10, 10, 100, 100), perception(1))], status())
    assert np.array_equal(frame, before)
    assert canvas.dtype == np.uint8 and not np.shares_memory(canvas, frame)


def test_config_rejects_a_track_colour_that_equals_a_fill():
    with pytest.raises(ValueError, match="track_colour"):
        OverlayConfig(track_colour=OverlayConfig().personality_colour)


def test_config_needs_a_colour_per_emotion():
    with pytest.raises(ValueError, match="emotion_colours"):
        OverlayConfig(emotion_colours={"happy": (0, 255, 255)})


def test_config_rejects_a_panel_too_narrow_for_bars():
    with pytest.raises(ValueError, match="panel_width"):
        OverlayConfig(panel_width=100)


def test_nothing_carries_over_from_one_frame_to_the_next(frame, renderer):
    # The renderer caches the parts that only change with the set of faces; values must not stick.
    busy = [
        FaceView(1, FaceBox(10, 10, 100, 100), perception(1, laughter=0.9, laughing=True), flash=True),
        FaceView(None, None, perception(None, modality="audio", degraded="video source failed")),
    ]
    renderer.render(frame, busy, status(notices=("RANDOM WEIGHTS",), paused=True))
    quiet = [FaceView(1, None, None), FaceView(None, None, None)]
    assert np.array_equal(renderer.render(frame, quiet, status()), OverlayRenderer().render(frame, quiet, status()))
