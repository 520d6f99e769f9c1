"""Draw what the robot perceives onto a camera frame: face boxes, per-face panels, a status strip.

Pure OpenCV/numpy and stateless apart from small caches: plain data in, a new BGR canvas out.

Canvas geometry (all sizes in pixels; H, W = frame size):

    +-------------------------+----------------+
    | frame (copied, H x W)   | panel column   |   panel column: `panel_width` wide, one panel
    |  notices banner on top  |  panel face 1  |   per face, top to bottom; faces that do not
    |  boxes + "face <id>"    |  panel face 2  |   fit are counted as "+N more"
    |                         |  +N more       |
    +-------------------------+----------------+
    | timeline: the last 30 s per face, -30 s ... now           |   `timeline_height` tall: one
    |  face 1  [top emotion band][laughter area, onsets][speaking]|   lane per face (at most
    +------------------------------------------+                   `timeline_lanes`)
    | status strip: backend | win/s | ms ...  mic [=====    ] |   `strip_height` tall
    +------------------------------------------+

The canvas size depends only on the frame size and the config, so a recording of the canvas has a
constant size however many faces come and go. Bars are filled with numpy slices (exact pixel
extents, so tests can measure them); text never enters a bar's rectangle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from socialmae_rt.demo.timeline import TimelineView
from socialmae_rt.faces.detector import check_bgr_frame
from socialmae_rt.messages import FaceBox
from socialmae_rt.results import SocialPerception
from socialmae_rt.tasks import EMOTION_LABELS, PERSONALITY_TRAITS

BGR = tuple[int, int, int]

MODALITY_TAGS = {"audiovisual": "AV", "audio": "audio-only", "video": "video-only"}
AUDIO_ONLY_TITLE = "audio only (no face)"
GROUP_HEADINGS = ("EMOTION", "LAUGHTER", "PERSONALITY")  # above each group of rows in a panel
TIMELINE_TICKS_S = (30, 20, 10)  # seconds before now, labelled on the timeline's header
WAITING_TEXT = "waiting for first window"
MISSING_TEXT = "n/a"

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_CACHE_LIMIT = 64  # entries per cache; layouts and fitted strings repeat frame after frame
_STATIC_CACHE_LIMIT = 8  # static layers are canvas-sized; only the current few face sets matter


def _default_emotion_colours() -> dict[str, BGR]:
    return {
        "anger": (40, 40, 220),  # red
        "disgust": (40, 150, 60),  # green
        "fear": (170, 60, 160),  # purple
        "happy": (0, 215, 255),  # yellow
        "neutral": (190, 190, 190),  # light grey
        "sad": (210, 120, 30),  # blue
    }


def _default_face_palette() -> tuple[BGR, ...]:
    return (
        (255, 140, 0),  # azure
        (0, 200, 0),  # green
        (0, 140, 255),  # orange
        (255, 0, 255),  # magenta
        (0, 255, 255),  # yellow
        (255, 255, 0),  # cyan
        (180, 80, 255),  # pink
        (80, 80, 255),  # salmon red
    )


@dataclass
class OverlayConfig:
    """Every size and colour of the overlay (colours are BGR)."""

    panel_width: int = 280  # the column right of the frame
    strip_height: int = 30  # the status strip under frame + column
    row_height: int = 13  # one text/bar row inside a panel
    bar_height: int = 8  # bar thickness within its row
    heading_height: int = 10  # a group heading (EMOTION, LAUGHTER, PERSONALITY) inside a panel
    heading_font_scale: float = 0.3
    timeline_lanes: int = 3  # faces the timeline shows at once (the most recently seen)
    timeline_header_height: int = 15  # the row of time labels (the canvas height stays even: H.264 needs it)
    timeline_label_width: int = 70  # "face 12" left of each lane
    emotion_band_height: int = 8  # per lane: the top emotion's colour over time ...
    laughter_band_height: int = 16  # ... the laughter probability as an area, onsets as lines ...
    speaking_band_height: int = 3  # ... and when the face speaks (with --speakers)
    timeline_max_hold_s: float = 2.0  # a record fills the timeline until the next one, at most this long
    panel_padding: int = 6  # inside a panel, around its rows
    panel_gap: int = 4  # between panels and around them in the column
    label_width: int = 114  # text column left of the bars ("conscientiousness" is 108 px at 0.38)
    value_width: int = 34  # text column right of the bars ("0.87", "n/a")
    font_scale: float = 0.38
    title_font_scale: float = 0.45
    antialias: bool = True
    box_thickness: int = 2
    mic_meter_width: int = 120
    mic_floor_dbfs: float = -60.0  # empty meter at this level, full at 0 dBFS
    mic_hot_dbfs: float = -6.0  # the fill turns `mic_hot_colour` at or above this (near clipping)

    column_background: BGR = (20, 20, 20)
    panel_background: BGR = (38, 38, 38)
    strip_background: BGR = (12, 12, 12)
    track_colour: BGR = (80, 80, 80)  # the unfilled part of every bar
    text_colour: BGR = (225, 225, 225)
    dim_text_colour: BGR = (150, 150, 150)
    warning_colour: BGR = (0, 170, 255)  # degraded reason
    emotion_colours: dict[str, BGR] = field(default_factory=_default_emotion_colours)
    personality_colour: BGR = (200, 170, 60)
    laughter_idle_colour: BGR = (150, 110, 200)
    laughter_laughing_colour: BGR = (0, 140, 255)
    laughter_flash_colour: BGR = (255, 255, 255)  # the meter's outline while a laughter onset flashes
    onset_colour: BGR = (255, 255, 255)  # a laughter onset on the timeline
    speaking_colour: BGR = (80, 200, 80)
    timeline_background: BGR = (28, 28, 28)
    heading_colour: BGR = (130, 130, 130)
    winner_text_colour: BGR = (0, 0, 0)  # the top emotion's label, on a chip of its colour
    face_palette: tuple[BGR, ...] = field(default_factory=_default_face_palette)
    audio_only_colour: BGR = (200, 200, 200)  # the audio-only panel's header (it has no box)
    notice_background: BGR = (0, 0, 170)
    notice_text_colour: BGR = (0, 255, 255)
    paused_colour: BGR = (0, 255, 255)
    mic_colour: BGR = (80, 200, 80)
    mic_hot_colour: BGR = (40, 40, 230)

    def __post_init__(self) -> None:
        sizes = {
            "panel_width": self.panel_width,
            "strip_height": self.strip_height,
            "row_height": self.row_height,
            "bar_height": self.bar_height,
            "label_width": self.label_width,
            "value_width": self.value_width,
            "box_thickness": self.box_thickness,
            "mic_meter_width": self.mic_meter_width,
            "heading_height": self.heading_height,
            "timeline_lanes": self.timeline_lanes,
            "timeline_header_height": self.timeline_header_height,
            "timeline_label_width": self.timeline_label_width,
            "emotion_band_height": self.emotion_band_height,
            "laughter_band_height": self.laughter_band_height,
            "speaking_band_height": self.speaking_band_height,
        }
        for name, value in sizes.items():
            if value <= 0:
                raise ValueError(f"OverlayConfig.{name} must be > 0, got {value}")
        if self.panel_padding < 0 or self.panel_gap < 0:
            raise ValueError("OverlayConfig.panel_padding and panel_gap must be >= 0")
        if self.bar_height > self.row_height or self.bar_height > self.strip_height:
            raise ValueError(f"OverlayConfig.bar_height ({self.bar_height}) must fit in row_height and strip_height")
        if self.bar_width <= 0:
            raise ValueError(
                f"OverlayConfig.panel_width {self.panel_width} leaves no room for bars next to "
                f"label_width {self.label_width} + value_width {self.value_width} + padding"
            )
        if self.mic_floor_dbfs >= 0:
            raise ValueError(f"OverlayConfig.mic_floor_dbfs must be < 0, got {self.mic_floor_dbfs}")
        missing = [label for label in EMOTION_LABELS if label not in self.emotion_colours]
        if missing:
            raise ValueError(f"OverlayConfig.emotion_colours lacks colours for {missing}")
        if not self.face_palette:
            raise ValueError("OverlayConfig.face_palette must hold at least one colour")
        fills = [
            *self.emotion_colours.values(),
            self.personality_colour,
            self.laughter_idle_colour,
            self.laughter_laughing_colour,
            self.mic_colour,
            self.mic_hot_colour,
        ]
        for colour in [*fills, *self.face_palette, self.track_colour, self.laughter_flash_colour]:
            if len(colour) != 3 or not all(0 <= int(c) <= 255 for c in colour):
                raise ValueError(f"OverlayConfig colours must be BGR triples in [0, 255], got {colour}")
        # An empty track must look empty: no fill may share its colour.
        if tuple(self.track_colour) in {tuple(c) for c in fills}:
            raise ValueError(f"OverlayConfig.track_colour {self.track_colour} equals a bar fill colour")
        if tuple(self.laughter_flash_colour) == tuple(self.laughter_laughing_colour):
            raise ValueError("OverlayConfig.laughter_flash_colour must differ from laughter_laughing_colour")
        if not self.timeline_max_hold_s > 0:
            raise ValueError(f"OverlayConfig.timeline_max_hold_s must be > 0, got {self.timeline_max_hold_s}")

    @property
    def bar_width(self) -> int:
        """Width of every panel bar's track."""
        panel_inner = self.panel_width - 2 * self.panel_gap - 2 * self.panel_padding
        return panel_inner - self.label_width - self.value_width

    @property
    def panel_height(self) -> int:
        # rows: title, detail (degraded / waiting), 6 emotions, laughter, 5 traits; a heading per group
        rows = 2 + len(EMOTION_LABELS) + 1 + len(PERSONALITY_TRAITS)
        return rows * self.row_height + len(GROUP_HEADINGS) * self.heading_height + 2 * self.panel_padding

    @property
    def lane_height(self) -> int:
        return self.emotion_band_height + self.laughter_band_height + self.speaking_band_height + 4  # 1 px gaps + 1 below

    @property
    def timeline_height(self) -> int:
        return self.timeline_header_height + self.timeline_lanes * self.lane_height + 2

    def face_colour(self, face_id: int | None) -> BGR:
        """Stable colour per face id: the same id gets the same colour on every frame."""
        if face_id is None:
            return self.audio_only_colour
        return self.face_palette[face_id % len(self.face_palette)]


@dataclass(frozen=True)
class FaceView:
    """One face on the current frame."""

    face_id: int | None  # None: the audio-only stream (no face, no box)
    box: FaceBox | None  # where the tracker sees it on this frame; None: not in this frame
    result: SocialPerception | None  # latest perception; None: no window finished yet
    flash: bool = False  # a laughter onset happened in the last second: the meter flashes


@dataclass(frozen=True)
class StatusView:
    backend: str  # e.g. "torch fp32 cpu"
    windows_per_s: float
    inference_ms: float | None
    latency_ms: float | None  # end to end
    skipped_windows: int
    mic_level_dbfs: float | None  # None: no microphone
    notices: tuple[str, ...] = ()  # drawn as a banner at the top of the frame
    paused: bool = False
    audio_label: str = "mic"  # the level meter's name: "mic" for a microphone, "audio" for a file's sound


@dataclass(frozen=True)
class Bar:
    """The full-scale track of one bar; a value v in [0, 1] fills `filled(v)` px from x."""

    x: int
    y: int
    width: int
    height: int

    def filled(self, value: float) -> int:
        if math.isnan(value):
            return 0
        return int(round(min(1.0, max(0.0, value)) * self.width))


@dataclass(frozen=True)
class PanelLayout:
    face_id: int | None
    rect: tuple[int, int, int, int]  # x, y, w, h on the canvas
    emotion: dict[str, Bar]
    laughter: Bar
    personality: dict[str, Bar]
    headings: tuple[tuple[str, int], ...] = ()  # (text, top y) of each group heading


@dataclass(frozen=True)
class OverlayLayout:
    canvas_size: tuple[int, int]  # (height, width)
    frame_rect: tuple[int, int, int, int]  # x, y, w, h
    column_rect: tuple[int, int, int, int]
    strip_rect: tuple[int, int, int, int]
    timeline_rect: tuple[int, int, int, int]  # x, y, w, h: under the frame and column, above the strip
    panels: tuple[PanelLayout, ...]  # the first len(panels) faces, in the order given
    hidden_faces: int  # faces that did not fit: the column says "+N more"
    more_origin: tuple[int, int] | None  # text origin (x, baseline y) of "+N more"; None: all fit
    mic_meter: Bar | None  # None: the canvas is too narrow for a meter


class OverlayRenderer:
    """Renders frames + perception into a fixed-size BGR canvas (see the module docstring)."""

    def __init__(self, config: OverlayConfig | None = None) -> None:
        self.config = config or OverlayConfig()
        self._line = cv2.LINE_AA if self.config.antialias else cv2.LINE_8
        (_, self._text_height), _ = cv2.getTextSize("Ag", _FONT, self.config.font_scale, 1)
        self._layouts: dict[tuple, OverlayLayout] = {}
        self._fitted: dict[tuple[str, int, float], str] = {}
        self._statics: dict[tuple, np.ndarray] = {}  # (canvas size, face ids) -> column + strip

    # -- geometry --------------------------------------------------------------------------------

    def canvas_size(self, frame_height: int, frame_width: int) -> tuple[int, int]:
        """(height, width) of the canvas for frames of this size, whatever the faces."""
        return (frame_height + self.config.timeline_height + self.config.strip_height,
                frame_width + self.config.panel_width)

    def layout(self, frame_height: int, frame_width: int, face_ids: Sequence[int | None]) -> OverlayLayout:
        if frame_height <= 0 or frame_width <= 0:
            raise ValueError(f"frame size must be positive, got {frame_height}x{frame_width} (height x width)")
        cfg = self.config
        canvas_h, canvas_w = self.canvas_size(frame_height, frame_width)
        step = cfg.panel_height + cfg.panel_gap  # panel i's top: gap + i * step
        shown = len(face_ids)
        more_origin = None
        if cfg.panel_gap + shown * step > frame_height:
            # Overflow: keep one row at the bottom of the column for "+N more".
            shown = max(0, (frame_height - cfg.panel_gap - cfg.row_height) // step)
            more_x = frame_width + cfg.panel_gap + cfg.panel_padding
            more_origin = (more_x, cfg.panel_gap + shown * step + self._baseline_offset(cfg.row_height))
        panels = tuple(
            self._panel_layout(face_id, frame_width + cfg.panel_gap, cfg.panel_gap + i * step)
            for i, face_id in enumerate(face_ids[:shown])
        )
        return OverlayLayout(
            canvas_size=(canvas_h, canvas_w),
            frame_rect=(0, 0, frame_width, frame_height),
            column_rect=(frame_width, 0, cfg.panel_width, frame_height),
            strip_rect=(0, frame_height + cfg.timeline_height, canvas_w, cfg.strip_height),
            timeline_rect=(0, frame_height, canvas_w, cfg.timeline_height),
            panels=panels,
            hidden_faces=len(face_ids) - shown,
            more_origin=more_origin,
            mic_meter=self._mic_meter_bar(frame_height + cfg.timeline_height, canvas_w),
        )

    def _panel_layout(self, face_id: int | None, x: int, y: int) -> PanelLayout:
        cfg = self.config
        bar_x = x + cfg.panel_padding + cfg.label_width
        bar_dy = (cfg.row_height - cfg.bar_height) // 2  # centre the bar in its row

        def bar(row: int, headings: int) -> Bar:
            top = y + cfg.panel_padding + row * cfg.row_height + headings * cfg.heading_height
            return Bar(bar_x, top + bar_dy, cfg.bar_width, cfg.bar_height)

        def heading_top(row: int, headings: int) -> int:
            return y + cfg.panel_padding + row * cfg.row_height + headings * cfg.heading_height

        first = 2  # rows 0, 1: title and detail line
        emotion = {label: bar(first + i, 1) for i, label in enumerate(EMOTION_LABELS)}
        laughter_row = first + len(EMOTION_LABELS)
        laughter = bar(laughter_row, 2)
        first_trait = laughter_row + 1
        personality = {trait: bar(first_trait + i, 3) for i, trait in enumerate(PERSONALITY_TRAITS)}
        headings = ((GROUP_HEADINGS[0], heading_top(first, 0)), (GROUP_HEADINGS[1], heading_top(laughter_row, 1)),
                    (GROUP_HEADINGS[2], heading_top(first_trait, 2)))
        rect = (x, y, cfg.panel_width - 2 * cfg.panel_gap, cfg.panel_height)
        return PanelLayout(face_id, rect, emotion, laughter, personality, headings)

    def _mic_meter_bar(self, frame_height: int, canvas_w: int) -> Bar | None:
        cfg = self.config
        pad = cfg.panel_padding
        # [status text ...] "no mic" [meter] "-60 dBFS" |  right-aligned in the strip
        x = canvas_w - pad - cfg.value_width * 2 - cfg.mic_meter_width
        if x - cfg.value_width * 2 < pad:  # no room for the label and some status text
            return None
        y = frame_height + (cfg.strip_height - cfg.bar_height) // 2
        return Bar(x, y, cfg.mic_meter_width, cfg.bar_height)

    def _baseline_offset(self, row_height: int) -> int:
        # baseline of text vertically centred in a row of this height
        return (row_height + self._text_height) // 2

    def _cached_layout(self, frame_height: int, frame_width: int, face_ids: tuple) -> OverlayLayout:
        key = (frame_height, frame_width, face_ids)
        cached = self._layouts.get(key)
        if cached is None:
            if len(self._layouts) >= _CACHE_LIMIT:
                self._layouts.clear()
            cached = self._layouts[key] = self.layout(frame_height, frame_width, face_ids)
        return cached

    # -- rendering -------------------------------------------------------------------------------

    def render(self, frame_bgr: np.ndarray, faces: Sequence[FaceView], status: StatusView,
               timeline: TimelineView | None = None) -> np.ndarray:
        """A new uint8 [H + timeline_height + strip_height, W + panel_width, 3] canvas; `frame_bgr`
        is not modified. `timeline`: the last seconds per face (None: an empty timeline)."""
        check_bgr_frame(frame_bgr)
        frame_h, frame_w = frame_bgr.shape[:2]
        face_ids = tuple(face.face_id for face in faces)
        layout = self._cached_layout(frame_h, frame_w, face_ids)
        static = self._static_layer(layout, face_ids)
        canvas = np.empty_like(static)  # [H + strip, W + column, 3]
        canvas[:frame_h, :frame_w] = frame_bgr
        canvas[:frame_h, frame_w:] = static[:frame_h, frame_w:]
        canvas[frame_h:] = static[frame_h:]

        for face in faces:
            self._draw_box(canvas, face, frame_h, frame_w)
        for panel, face in zip(layout.panels, faces):
            self._draw_panel(canvas, panel, face)
        # Drawn last over the frame so that no box or label hides them.
        self._draw_notices(canvas, status.notices, frame_h, frame_w)
        if status.paused:
            self._draw_paused(canvas, frame_h, frame_w)
        if timeline is not None:
            self._draw_timeline(canvas, layout, timeline)
        self._draw_strip(canvas, layout, status)
        return canvas

    def _static_layer(self, layout: OverlayLayout, face_ids: tuple) -> np.ndarray:
        """Column and strip as they look before any result: drawn once per layout, copied per frame.

        Text is the costly part of a frame; titles, row labels and empty tracks only change when
        the set of faces does, so they are drawn here and each frame draws only the values.
        """
        key = (layout.canvas_size, face_ids)
        static = self._statics.get(key)
        if static is not None:
            return static
        cfg = self.config
        frame_w, frame_h = layout.frame_rect[2:]
        static = np.empty((*layout.canvas_size, 3), dtype=np.uint8)  # frame area left unset: never copied
        static[:frame_h, frame_w:] = cfg.column_background
        static[frame_h:] = cfg.strip_background
        self._draw_timeline_static(static, layout)
        for panel in layout.panels:
            self._draw_panel_static(static, panel)
        if layout.more_origin is not None:
            self._text(static, f"+{layout.hidden_faces} more", layout.more_origin, cfg.text_colour)
        if len(self._statics) >= _STATIC_CACHE_LIMIT:
            self._statics.clear()
        self._statics[key] = static
        return static

    def _draw_box(self, canvas: np.ndarray, face: FaceView, frame_h: int, frame_w: int) -> None:
        if face.face_id is None or face.box is None:  # the audio-only stream has no box
            return
        box = face.box
        if not all(math.isfinite(v) for v in (box.x0, box.y0, box.x1, box.y1)):
            raise ValueError(f"face {face.face_id} has a box with non-finite coordinates {box}")
        # Inclusive pixel extents, clamped to the frame (x1, y1 are exclusive in FaceBox).
        x0, y0 = max(0, int(round(box.x0))), max(0, int(round(box.y0)))
        x1, y1 = min(frame_w, int(round(box.x1))) - 1, min(frame_h, int(round(box.y1))) - 1
        if x1 < x0 or y1 < y0:  # wholly outside the frame, or empty
            return
        colour = self.config.face_colour(face.face_id)
        t = self.config.box_thickness
        # Numpy edges lie exactly inside the box; cv2.rectangle would centre thick lines on it.
        canvas[y0 : min(y0 + t, y1 + 1), x0 : x1 + 1] = colour
        canvas[max(y1 - t + 1, y0) : y1 + 1, x0 : x1 + 1] = colour
        canvas[y0 : y1 + 1, x0 : min(x0 + t, x1 + 1)] = colour
        canvas[y0 : y1 + 1, max(x1 - t + 1, x0) : x1 + 1] = colour
        self._draw_box_label(canvas, f"face {face.face_id}", colour, x0, y0, frame_h, frame_w)

    def _draw_box_label(
        self, canvas: np.ndarray, text: str, colour: BGR, x0: int, y0: int, frame_h: int, frame_w: int
    ) -> None:
        (text_w, text_h), _ = cv2.getTextSize(text, _FONT, self.config.font_scale, 1)
        label_h = text_h + 6
        # Above the box if there is room, else just inside its top edge; always inside the frame.
        top = y0 - label_h if y0 >= label_h else min(y0 + self.config.box_thickness, max(0, frame_h - label_h))
        left = max(0, min(x0, frame_w - text_w - 6))
        canvas[top : min(top + label_h, frame_h), left : min(left + text_w + 6, frame_w)] = colour
        self._text(canvas, text, (left + 3, top + label_h - 3), (0, 0, 0))

    def _draw_panel_static(self, canvas: np.ndarray, panel: PanelLayout) -> None:
        """Background, accent stripe, title, row labels and empty tracks: the panel of "no result"."""
        cfg = self.config
        x, y, width, height = panel.rect
        colour = cfg.face_colour(panel.face_id)
        canvas[y : y + height, x : x + width] = cfg.panel_background
        canvas[y : y + height, x : x + 3] = colour  # accent stripe: ties the panel to its box
        title = AUDIO_ONLY_TITLE if panel.face_id is None else f"face {panel.face_id}"
        title_baseline = y + cfg.panel_padding + self._baseline_offset(cfg.row_height)
        self._text(canvas, title, (x + cfg.panel_padding, title_baseline), colour, cfg.title_font_scale)
        rows = [*panel.emotion.items(), ("laughter", panel.laughter), *panel.personality.items()]
        for label, bar in rows:
            canvas[bar.y : bar.y + bar.height, bar.x : bar.x + bar.width] = cfg.track_colour
            self._draw_label(canvas, bar, label, cfg.text_colour)
        for text, top in panel.headings:
            baseline = top + cfg.heading_height - 2
            self._text(canvas, text, (x + cfg.panel_padding, baseline), cfg.heading_colour, cfg.heading_font_scale)
            (text_w, _), _ = cv2.getTextSize(text, _FONT, cfg.heading_font_scale, 1)
            line_y = top + cfg.heading_height // 2
            canvas[line_y, x + cfg.panel_padding + text_w + 4 : x + width - cfg.panel_padding] = cfg.heading_colour

    def _draw_panel(self, canvas: np.ndarray, panel: PanelLayout, face: FaceView) -> None:
        """What changes per frame on top of the static panel: tag, detail line, fills, values."""
        cfg = self.config
        x, y, width, _ = panel.rect
        result = face.result
        if face.flash:  # a laughter onset: an outline lights up around the meter (its track stays dark)
            bar = panel.laughter
            top, bottom = bar.y - 2, bar.y + bar.height + 1
            left, right = bar.x - 2, bar.x + bar.width + 1
            canvas[top, left : right + 1] = canvas[bottom, left : right + 1] = cfg.laughter_flash_colour
            canvas[top : bottom + 1, left] = canvas[top : bottom + 1, right] = cfg.laughter_flash_colour
        text_x = x + cfg.panel_padding
        row_top = y + cfg.panel_padding
        detail_origin = (text_x, row_top + cfg.row_height + self._baseline_offset(cfg.row_height))
        if result is None:
            self._text(canvas, WAITING_TEXT, detail_origin, cfg.dim_text_colour)
            return

        tag = MODALITY_TAGS.get(result.modality, result.modality)
        (tag_w, _), _ = cv2.getTextSize(tag, _FONT, cfg.font_scale, 1)
        title_baseline = row_top + self._baseline_offset(cfg.row_height)
        self._text(canvas, tag, (x + width - cfg.panel_padding - tag_w, title_baseline), cfg.text_colour)
        if result.degraded:
            reason = self._fit(result.degraded, width - 2 * cfg.panel_padding, cfg.font_scale)
            self._text(canvas, reason, detail_origin, cfg.warning_colour)

        emotion = result.emotion
        top = result.top_emotion
        for label, bar in panel.emotion.items():
            value = None if emotion is None else emotion.get(label)
            self._draw_value(canvas, bar, value, cfg.emotion_colours[label])
        if top is not None and top[0] in panel.emotion:  # the top emotion: its label on a chip of its colour
            self._draw_chip(canvas, panel.emotion[top[0]], top[0], cfg.emotion_colours[top[0]])

        laughing = bool(result.laughing)
        fill = cfg.laughter_laughing_colour if laughing else cfg.laughter_idle_colour
        self._draw_value(canvas, panel.laughter, result.laughter_probability, fill)
        if laughing:
            self._draw_chip(canvas, panel.laughter, "LAUGHING", cfg.laughter_laughing_colour)

        traits = result.personality
        for trait, bar in panel.personality.items():
            value = None if traits is None else traits.get(trait)
            self._draw_value(canvas, bar, value, cfg.personality_colour)

    def _draw_value(self, canvas: np.ndarray, bar: Bar, value: float | None, fill: BGR) -> None:
        """Fill the (already drawn) track and write the value, or "n/a", right of the bar."""
        if value is not None and math.isnan(value):
            value = None  # a NaN head output reads as missing, not as zero
        if value is not None:
            canvas[bar.y : bar.y + bar.height, bar.x : bar.x + bar.filled(value)] = fill
        text = MISSING_TEXT if value is None else f"{value:.2f}"
        self._text(canvas, text, (bar.x + bar.width + 4, self._bar_baseline(bar)), self.config.text_colour)

    def _draw_label(self, canvas: np.ndarray, bar: Bar, text: str, colour: BGR, clear: bool = False) -> None:
        """A row's label, left of its bar; `clear` first blanks the static label it replaces."""
        cfg = self.config
        left = bar.x - cfg.label_width
        if clear:
            row_top = bar.y - (cfg.row_height - cfg.bar_height) // 2
            canvas[row_top : row_top + cfg.row_height, left : bar.x] = cfg.panel_background
        self._text(canvas, text, (left, self._bar_baseline(bar)), colour)

    def _draw_chip(self, canvas: np.ndarray, bar: Bar, text: str, colour: BGR) -> None:
        """A row's label in dark text on a rectangle of `colour`: the row that wins stands out
        whatever its colour (a light grey "neutral" included)."""
        cfg = self.config
        left = bar.x - cfg.label_width
        row_top = bar.y - (cfg.row_height - cfg.bar_height) // 2
        canvas[row_top : row_top + cfg.row_height, left - 2 : bar.x - 4] = colour
        self._text(canvas, text, (left, self._bar_baseline(bar)), cfg.winner_text_colour)

    # -- the timeline ------------------------------------------------------------------------------

    def timeline_plot(self, layout: OverlayLayout) -> tuple[int, int]:
        """(x of the timeline's left edge, its width): the span's oldest instant to now."""
        cfg = self.config
        x, _, width, _ = layout.timeline_rect
        left = x + cfg.panel_padding + cfg.timeline_label_width
        return left, x + width - cfg.panel_padding - left

    def _draw_timeline_static(self, canvas: np.ndarray, layout: OverlayLayout) -> None:
        cfg = self.config
        x, y, width, height = layout.timeline_rect
        canvas[y : y + height, x : x + width] = cfg.timeline_background
        left, plot_w = self.timeline_plot(layout)
        baseline = y + self._baseline_offset(cfg.timeline_header_height)
        self._text(canvas, "last 30 s", (x + cfg.panel_padding, baseline), cfg.dim_text_colour)
        for seconds in TIMELINE_TICKS_S:
            tick_x = left + int(round(plot_w * (1 - seconds / TIMELINE_TICKS_S[0])))
            self._text(canvas, f"-{seconds} s", (tick_x, baseline), cfg.dim_text_colour)
        (now_w, _), _ = cv2.getTextSize("now", _FONT, cfg.font_scale, 1)
        self._text(canvas, "now", (left + plot_w - now_w, baseline), cfg.dim_text_colour)
        for lane in range(cfg.timeline_lanes):
            top = y + cfg.timeline_header_height + lane * cfg.lane_height
            laughter_top = top + cfg.emotion_band_height + 1
            canvas[laughter_top : laughter_top + cfg.laughter_band_height, left : left + plot_w] = cfg.panel_background

    def _draw_timeline(self, canvas: np.ndarray, layout: OverlayLayout, view: TimelineView) -> None:
        """One lane per face: the top emotion's colour, the laughter probability as an area (the
        laughing colour while laughing), onsets as vertical lines, speaking as a thin band."""
        cfg = self.config
        _, y, _, _ = layout.timeline_rect
        left, plot_w = self.timeline_plot(layout)
        start = view.now_ns - view.span_ns
        hold_ns = int(cfg.timeline_max_hold_s * 1e9)

        def column(time_ns: int) -> int:
            return left + int(round(min(max((time_ns - start) / view.span_ns, 0.0), 1.0) * plot_w))

        for index, lane in enumerate(view.lanes[: cfg.timeline_lanes]):
            top = y + cfg.timeline_header_height + index * cfg.lane_height
            laughter_top = top + cfg.emotion_band_height + 1
            laughter_bottom = laughter_top + cfg.laughter_band_height
            speaking_top = laughter_bottom + 1
            name = "audio" if lane.face_id is None else f"face {lane.face_id}"
            self._text(canvas, name, (layout.timeline_rect[0] + cfg.panel_padding, laughter_bottom - 3),
                       cfg.face_colour(lane.face_id))
            moments = lane.moments
            for i, moment in enumerate(moments):
                until = min(moments[i + 1].time_ns if i + 1 < len(moments) else view.now_ns, moment.time_ns + hold_ns)
                x0, x1 = column(max(moment.time_ns, start)), column(until)
                if x1 <= x0:
                    x1 = min(x0 + 1, left + plot_w)  # the newest record: at least one column
                if moment.top_emotion in cfg.emotion_colours:
                    canvas[top : top + cfg.emotion_band_height, x0:x1] = cfg.emotion_colours[moment.top_emotion]
                if moment.laughter is not None and not math.isnan(moment.laughter):
                    filled = int(round(min(1.0, max(0.0, moment.laughter)) * cfg.laughter_band_height))
                    fill = cfg.laughter_laughing_colour if moment.laughing else cfg.laughter_idle_colour
                    canvas[laughter_bottom - filled : laughter_bottom, x0:x1] = fill
                if moment.speaking:
                    canvas[speaking_top : speaking_top + cfg.speaking_band_height, x0:x1] = cfg.speaking_colour
            for onset in lane.onsets_ns:
                x = min(column(onset), left + plot_w - 2)
                canvas[top : speaking_top + cfg.speaking_band_height, x : x + 2] = cfg.onset_colour

    def _bar_baseline(self, bar: Bar) -> int:
        return bar.y + (bar.height + self._text_height) // 2

    def _draw_notices(self, canvas: np.ndarray, notices: Sequence[str], frame_h: int, frame_w: int) -> None:
        cfg = self.config
        height = cfg.row_height + 6
        for i, notice in enumerate(notices):
            top = i * height
            if top + height > frame_h:
                break
            canvas[top : top + height, :frame_w] = cfg.notice_background
            text = self._fit(notice, frame_w - 2 * cfg.panel_padding, cfg.title_font_scale)
            origin = (cfg.panel_padding, top + self._baseline_offset(height))
            self._text(canvas, text, origin, cfg.notice_text_colour, cfg.title_font_scale)

    def _draw_paused(self, canvas: np.ndarray, frame_h: int, frame_w: int) -> None:
        scale = max(0.5, min(1.5, frame_w / 400))
        (text_w, text_h), _ = cv2.getTextSize("PAUSED", _FONT, scale, 2)
        origin = ((frame_w - text_w) // 2, (frame_h + text_h) // 2)
        cv2.putText(canvas, "PAUSED", origin, _FONT, scale, (0, 0, 0), 5, self._line)  # dark outline
        cv2.putText(canvas, "PAUSED", origin, _FONT, scale, self.config.paused_colour, 2, self._line)

    def _draw_strip(self, canvas: np.ndarray, layout: OverlayLayout, status: StatusView) -> None:
        cfg = self.config
        strip_x, strip_y, strip_w, strip_h = layout.strip_rect
        baseline = strip_y + self._baseline_offset(strip_h)
        parts = [
            status.backend,
            f"{status.windows_per_s:.1f} win/s",
            f"infer {_ms(status.inference_ms)}",
            f"e2e {_ms(status.latency_ms)}",
            f"skipped {status.skipped_windows}",
        ]
        meter = layout.mic_meter
        mic_label = status.audio_label if status.mic_level_dbfs is not None else f"no {status.audio_label}"
        if meter is None:  # narrow canvas: the mic state goes in the text
            parts.append(mic_label if status.mic_level_dbfs is None else
                         f"{status.audio_label} {status.mic_level_dbfs:.0f} dBFS")
            text_right = strip_x + strip_w - cfg.panel_padding
        else:
            text_right = meter.x - cfg.value_width * 2
        text = self._fit(" | ".join(parts), text_right - cfg.panel_padding - strip_x, cfg.font_scale)
        self._text(canvas, text, (strip_x + cfg.panel_padding, baseline), cfg.text_colour)
        if meter is None:
            return

        canvas[meter.y : meter.y + meter.height, meter.x : meter.x + meter.width] = cfg.track_colour
        (label_w, _), _ = cv2.getTextSize(mic_label, _FONT, cfg.font_scale, 1)
        self._text(canvas, mic_label, (meter.x - 4 - label_w, baseline), cfg.text_colour)
        dbfs = status.mic_level_dbfs
        if dbfs is None or math.isnan(dbfs):
            return
        fraction = (dbfs - cfg.mic_floor_dbfs) / -cfg.mic_floor_dbfs  # floor -> 0, 0 dBFS -> 1
        fill = cfg.mic_hot_colour if dbfs >= cfg.mic_hot_dbfs else cfg.mic_colour
        canvas[meter.y : meter.y + meter.height, meter.x : meter.x + meter.filled(fraction)] = fill
        self._text(canvas, f"{dbfs:.0f} dBFS", (meter.x + meter.width + 4, baseline), cfg.text_colour)

    # -- text ------------------------------------------------------------------------------------

    def _text(
        self, canvas: np.ndarray, text: str, origin: tuple[int, int], colour: BGR, scale: float | None = None
    ) -> None:
        scale = self.config.font_scale if scale is None else scale
        cv2.putText(canvas, text, origin, _FONT, scale, colour, 1, self._line)

    def _fit(self, text: str, max_width: int, scale: float) -> str:
        """`text`, cut and ended with ".." where wider than `max_width` px."""
        key = (text, max_width, scale)
        fitted = self._fitted.get(key)
        if fitted is not None:
            return fitted
        fitted = text
        if cv2.getTextSize(text, _FONT, scale, 1)[0][0] > max_width:
            lo, hi = 0, len(text)  # longest prefix that fits with ".." appended: binary search
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if cv2.getTextSize(text[:mid] + "..", _FONT, scale, 1)[0][0] <= max_width:
                    lo = mid
                else:
                    hi = mid - 1
            fitted = text[:lo] + ".."
        if len(self._fitted) >= _CACHE_LIMIT:
            self._fitted.clear()
        self._fitted[key] = fitted
        return fitted


def _ms(value: float | None) -> str:
    return "-- ms" if value is None else f"{value:.1f} ms"
