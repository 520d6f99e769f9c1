"""The demo's timeline: the history it keeps, and the pixels the overlay draws from it (read back
from rendered canvases); the panel's group headings, the top emotion's chip, the audio label."""

from __future__ import annotations

import numpy as np
import pytest

from socialmae_rt.demo.overlay import FaceView, OverlayRenderer, StatusView
from socialmae_rt.demo.timeline import Timeline
from socialmae_rt.messages import NS_PER_SECOND
from socialmae_rt.results import Latency, SocialPerception
from socialmae_rt.tasks import EMOTION_LABELS

FRAME_H, FRAME_W = 480, 640
S = NS_PER_SECOND


def record(face_id, end_s: float, top: str, laughter: float, laughing: bool = False) -> SocialPerception:
    emotion = {label: (0.9 if label == top else 0.02) for label in EMOTION_LABELS}
    return SocialPerception(face_id=face_id, window_start_ns=int((end_s - 4) * S), window_end_ns=int(end_s * S),
                            modality="audiovisual", emotion=emotion, laughter_probability=laughter, laughing=laughing,
                            personality=None, window_fill=1.0, latency=Latency(5.0, 30.0, 80.0))


def status(**changes) -> StatusView:
    values = dict(backend="torch fp32 cpu", windows_per_s=2.0, inference_ms=30.0, latency_ms=90.0, skipped_windows=0,
                  mic_level_dbfs=-30.0)
    return StatusView(**{**values, **changes})


@pytest.fixture
def timeline() -> Timeline:
    """Face 1: happy and quiet for 10 s, then sad and laughing hard, an onset at 14 s; 0.5 s hops."""
    found = Timeline(span_s=30.0)
    for i in range(41):  # window ends 4.0 .. 24.0 s
        end = 4.0 + 0.5 * i
        sad = end >= 14.0
        found.add(record(1, end, "sad" if sad else "happy", 0.9 if sad else 0.1, laughing=sad))
    found.onset(1, 14 * S)
    return found


def test_the_timeline_keeps_the_span_and_the_newest_faces():
    timeline = Timeline(span_s=10.0, max_faces=2)
    for i in range(50):  # face 1 until 28.5 s
        timeline.add(record(1, 4.0 + 0.5 * i, "happy", 0.2))
    timeline.add(record(2, 33.0, "sad", 0.5))
    timeline.add(record(3, 33.5, "anger", 0.5))
    view = timeline.view()
    assert view.now_ns == int(33.5 * S) and [lane.face_id for lane in view.lanes] == [2, 3]  # face 1: least recent
    everyone = Timeline(span_s=10.0, max_faces=3)
    for i in range(60):
        everyone.add(record(1, 4.0 + 0.5 * i, "happy", 0.2))
    lane = everyone.view().lanes[0]
    # 10 s of moments, plus the one before the left edge that fills the band up to its successor
    assert lane.moments[0].time_ns < everyone.view().now_ns - 10 * S <= lane.moments[1].time_ns
    assert len(lane.moments) == 22


def test_the_emotion_band_changes_colour_when_the_top_emotion_changes(timeline):
    renderer = OverlayRenderer()
    cfg = renderer.config
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    canvas = renderer.render(frame, [FaceView(1, None, None)], status(), timeline.view())
    layout = renderer.layout(FRAME_H, FRAME_W, [1])
    left, width = renderer.timeline_plot(layout)
    top = layout.timeline_rect[1] + cfg.timeline_header_height  # the first lane
    now = 24.0

    def x_at(t_s: float) -> int:  # the span ends at the newest window end (24 s), starts 30 s before
        return left + int(round((t_s - (now - 30.0)) / 30.0 * width))

    band = canvas[top + cfg.emotion_band_height // 2]  # [W, 3]: one row through the emotion band
    assert tuple(band[x_at(8.0)]) == cfg.emotion_colours["happy"]
    assert tuple(band[x_at(19.0)]) == cfg.emotion_colours["sad"]
    assert tuple(band[x_at(-2.0)]) == cfg.timeline_background  # before the first record: nothing
    colours = [tuple(band[x]) for x in range(x_at(5.0), x_at(23.0)) if tuple(band[x]) != cfg.onset_colour]
    changes = [i for i in range(len(colours) - 1) if colours[i] != colours[i + 1]]
    assert len(changes) == 1  # one change of colour (the onset line aside) ...
    assert abs(x_at(5.0) + changes[0] - x_at(14.0)) <= 3  # ... where the top emotion changed
    # laughter: an area whose height is the probability, in the laughing colour while laughing
    bottom = top + cfg.emotion_band_height + 1 + cfg.laughter_band_height
    quiet = canvas[bottom - cfg.laughter_band_height : bottom, x_at(8.0)]
    loud = canvas[bottom - cfg.laughter_band_height : bottom, x_at(19.0)]
    assert (quiet == cfg.laughter_idle_colour).all(axis=1).sum() == round(0.1 * cfg.laughter_band_height)
    assert (loud == cfg.laughter_laughing_colour).all(axis=1).sum() == round(0.9 * cfg.laughter_band_height)
    # the onset at 14 s: a line through the lane in the onset colour
    onset_column = canvas[top : bottom, x_at(14.0)]
    assert (onset_column == cfg.onset_colour).all()


def test_an_empty_timeline_draws_only_its_scale():
    renderer = OverlayRenderer()
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    without = renderer.render(frame, [], status())
    empty = renderer.render(frame, [], status(), Timeline().view())
    assert np.array_equal(without, empty)


def test_panels_have_group_headings_and_the_top_emotion_stands_out_even_when_grey():
    renderer = OverlayRenderer()
    cfg = renderer.config
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    neutral = record(1, 4.0, "neutral", 0.2)
    canvas = renderer.render(frame, [FaceView(1, None, neutral)], status())
    panel = renderer.layout(FRAME_H, FRAME_W, [1]).panels[0]
    assert [text for text, _ in panel.headings] == ["EMOTION", "LAUGHTER", "PERSONALITY"]
    for _, top in panel.headings:  # each heading's rule line, in the heading colour
        row = canvas[top + cfg.heading_height // 2, panel.rect[0] + 100 : panel.rect[0] + panel.rect[2] - 10]
        assert (row == cfg.heading_colour).all()
    # the winning row's label sits on a chip of its class colour; the others on the panel background
    bar = panel.emotion["neutral"]
    chip = canvas[bar.y - 1 : bar.y + bar.height, bar.x - cfg.label_width : bar.x - 4]
    assert (chip == cfg.emotion_colours["neutral"]).all(axis=-1).mean() > 0.6
    other = panel.emotion["sad"]
    label = canvas[other.y - 1 : other.y + other.height, other.x - cfg.label_width : other.x - 4]
    assert (label == cfg.emotion_colours["neutral"]).all(axis=-1).mean() < 0.05


def test_the_level_meter_says_audio_for_a_file_and_mic_for_a_microphone():
    renderer = OverlayRenderer()
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    mic = renderer.render(frame, [], status(audio_label="mic"))
    audio = renderer.render(frame, [], status(audio_label="audio"))
    strip_top = FRAME_H + renderer.config.timeline_height
    meter = renderer.layout(FRAME_H, FRAME_W, []).mic_meter
    label_area = (slice(strip_top, strip_top + renderer.config.strip_height), slice(meter.x - 60, meter.x - 2))
    assert not np.array_equal(mic[label_area], audio[label_area])  # different words left of the meter
