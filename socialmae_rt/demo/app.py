"""`socialmae-rt demo`: watch and hear what the robot perceives.

Sources, model and pipeline are the `socialmae-rt run` ones (app/assemble.py). The demo adds a
PerceptionBoard (an ingest observer and a sink of the pipeline) and a render loop:

- live (camera, microphone, or a file paced in real time): the pipeline runs in a worker thread
  and this thread draws every new frame as it arrives, so the overlay keeps camera rate however
  slow inference is; results appear when their window is done.
- offline (a file, headless, not paced): one thread reads the file, runs every window in order
  and draws every frame after the windows due at it, so a recording is complete and repeatable.

A window (OpenCV) shows the canvas; keys q/Esc quit, space pauses the view, s saves a
screenshot. `--headless` draws without a window; `--record` writes the canvas and the audio to
an mp4. A camera or microphone that cannot be opened leaves a notice on screen, not a crash.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from socialmae_rt.app.assemble import Assembly, assemble
from socialmae_rt.backend import describe_tasks
from socialmae_rt.demo.board import BoardSnapshot, PerceptionBoard
from socialmae_rt.demo.options import DemoOptions
from socialmae_rt.demo.overlay import OverlayRenderer, StatusView
from socialmae_rt.demo.timeline import Timeline
from socialmae_rt.messages import NS_PER_SECOND, SourceState, VideoFrame
from socialmae_rt.stream.status import PipelineStatus

if TYPE_CHECKING:
    from socialmae_rt.media.recorder import AnnotatedRecorder, RecordingSummary

log = logging.getLogger(__name__)

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # 27: Esc
PAUSE_KEY = ord(" ")
SCREENSHOT_KEY = ord("s")
NO_VIDEO_FPS = 15.0  # canvas rate when there is no camera: the audio-only results still update
WORKER_JOIN_S = 10.0  # how long the inference thread may take to finish once stopped
STATUS_EVERY_S = 0.5  # pipeline.status() (percentiles, source snapshots) at most this often
RANDOM_WEIGHTS_NOTICE = "RANDOM WEIGHTS: outputs mean nothing (pass --weights)"


class DemoError(RuntimeError):
    """The demo cannot start (no display for a window, nothing to perceive); the message says why."""


@dataclass
class DemoSummary:
    frames_drawn: int
    draw_rate: float  # frames drawn per second of wall time, first to last
    records: int
    windows: int
    skipped_windows: int
    screenshots: list[str]
    recording: "RecordingSummary | None"


class DemoWindow:
    """The OpenCV window: show a canvas, return the key pressed (or a quit when it was closed)."""

    def __init__(self, name: str) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise DemoError("no display to open a window on (DISPLAY is not set); "
                            "use --headless with --record out.mp4 or --snapshot shot.png")
        import cv2

        self._cv2 = cv2
        self.name = name
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
        self._shown = False

    def show(self, canvas: np.ndarray) -> int:
        self._cv2.imshow(self.name, canvas)
        self._shown = True
        return self.poll()

    def poll(self) -> int:
        key = self._cv2.waitKey(1)
        if self._shown and self._cv2.getWindowProperty(self.name, self._cv2.WND_PROP_VISIBLE) < 1:
            return QUIT_KEYS[0]  # closed with the window manager's button
        return key & 0xFF if key >= 0 else -1

    def close(self) -> None:
        self._cv2.destroyWindow(self.name)
        self._cv2.waitKey(1)


class DemoView:
    """Draws board snapshots: renders, shows, records, takes screenshots, handles keys."""

    def __init__(self, options: DemoOptions, board: PerceptionBoard, pipeline, sources: list,
                 notices: list[str], window: DemoWindow | None, stop: threading.Event, out: TextIO) -> None:
        self.options = options
        self.board = board
        self.pipeline = pipeline
        self.sources = sources
        self.notices = notices
        self.window = window
        self.stop = stop
        self.out = out
        self.renderer = OverlayRenderer(options.overlay)
        self.has_video = any(s.has_video for s in sources)
        self.has_audio = any(s.has_audio for s in sources)
        self.live_devices = options.source is None  # a camera (and its microphone), not a file
        info = pipeline.backend.info
        self.backend_name = f"{info.name} {info.precision} {info.device}"
        self.seq = 0  # last frame drawn
        self.frames_drawn = 0
        self.drawn_at: list[float] = []
        self.paused = False
        self.screenshots: list[str] = []
        self.recorder: AnnotatedRecorder | None = None
        self.frame_size: tuple[int, int] | None = None  # (height, width) of the first frame: the canvas stays that size
        self.first_stamp_ns: int | None = None
        self.last_canvas: np.ndarray | None = None
        self._last_inputs: tuple[np.ndarray, BoardSnapshot] | None = None
        self._snapshot_due = options.snapshot is not None
        self._status: PipelineStatus | None = None
        self._status_at = -1.0
        self._blank_stamp_ns: int | None = None

    # Drawing ----------------------------------------------------------------------------------------
    def draw_new_frame(self) -> None:
        """Draw the newest frame if it was not drawn yet (live and offline)."""
        snapshot = self.board.snapshot()
        if snapshot.frame is None or snapshot.frame_seq == self.seq:
            return
        self.seq = snapshot.frame_seq
        self._draw(snapshot, snapshot.frame)

    def draw_blank(self, stamp_ns: int, catch_up: bool = False) -> None:
        """No camera: empty frames at NO_VIDEO_FPS so the audio-only results still show. Offline
        (`catch_up`) every frame of the grid up to `stamp_ns` is drawn, so a recording has them all;
        live only the newest."""
        step_ns = int(NS_PER_SECOND / NO_VIDEO_FPS)
        if self._blank_stamp_ns is None:
            self._blank_stamp_ns = stamp_ns - step_ns
        if stamp_ns - self._blank_stamp_ns < step_ns:
            return
        due = [stamp_ns]
        if catch_up:
            due = list(range(self._blank_stamp_ns + step_ns, stamp_ns + 1, step_ns))
        self._blank_stamp_ns = due[-1]
        height, width = self.frame_size or (self.options.run.height, self.options.run.width)
        for stamp in due:
            blank = VideoFrame(np.zeros((height, width, 3), np.uint8), stamp)
            self._draw(self.board.snapshot(now_ns=stamp), blank)

    def _draw(self, snapshot: BoardSnapshot, frame: VideoFrame) -> None:
        bgr = self._fixed_size(frame.bgr)
        if self.paused and self.last_canvas is not None:
            canvas = self.last_canvas  # the view holds still; perception goes on
        else:
            canvas = self.renderer.render(bgr, snapshot.faces, self._status_view(snapshot), snapshot.timeline)
            self.last_canvas, self._last_inputs = canvas, (bgr, snapshot)
        self.frames_drawn += 1
        self.drawn_at.append(time.monotonic())
        del self.drawn_at[1:-1]  # first and last are enough for the rate
        if self.first_stamp_ns is None:
            self.first_stamp_ns = frame.stamp_ns
        self._record(canvas, frame.stamp_ns)
        if self._snapshot_due and frame.stamp_ns - self.first_stamp_ns >= self.options.snapshot_at * NS_PER_SECOND:
            self._snapshot_due = False
            self._save_png(canvas, Path(self.options.snapshot))
        if self.window is not None:
            self.handle_key(self.window.show(canvas))

    def _fixed_size(self, bgr: np.ndarray) -> np.ndarray:
        if self.frame_size is None:
            self.frame_size = bgr.shape[:2]
        if bgr.shape[:2] != self.frame_size:  # a camera that changed mode: keep the canvas (and recording) size
            import cv2

            bgr = cv2.resize(bgr, (self.frame_size[1], self.frame_size[0]))
        return bgr

    def _status_view(self, snapshot: BoardSnapshot) -> StatusView:
        now = time.monotonic()
        if now - self._status_at >= STATUS_EVERY_S:
            self._status, self._status_at = self.pipeline.status(self.sources), now
        status = self._status
        latency = snapshot.last_record.latency if snapshot.last_record is not None else None
        return StatusView(
            backend=self.backend_name,
            windows_per_s=status.windows_per_s,
            inference_ms=latency.inference_ms if latency else None,
            latency_ms=latency.total_ms if latency else None,
            skipped_windows=status.skipped_windows,
            mic_level_dbfs=snapshot.mic_level_dbfs if self.has_audio else None,
            notices=tuple(self.notices) + tuple(_source_notices(status)),
            paused=self.paused,
            audio_label="mic" if self.live_devices else "audio",  # a file's sound is not a microphone
        )

    # Outputs -----------------------------------------------------------------------------------------
    def _record(self, canvas: np.ndarray, stamp_ns: int) -> None:
        if self.options.record is None:
            return
        if self.recorder is None:
            from socialmae_rt.media.recorder import AnnotatedRecorder, RecorderConfig

            # The header rate is nominal: frame times come from the capture stamps.
            config = RecorderConfig(self.options.record, fps=self.options.run.fps, audio=self.has_audio)
            self.recorder = AnnotatedRecorder(config, canvas.shape[1], canvas.shape[0], origin_ns=stamp_ns)
            if self.has_audio:
                self.board.hand_audio_to(self.recorder.write_audio)
        self.recorder.write_frame(canvas, stamp_ns)

    def _save_png(self, canvas: np.ndarray, path: Path) -> None:
        import cv2

        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), canvas):
            raise OSError(f"could not write the screenshot {path}")
        self.screenshots.append(str(path))
        self.out.write(f"socialmae-rt demo: saved {path}\n")

    def handle_key(self, key: int) -> None:
        if key in QUIT_KEYS:
            self.stop.set()
        elif key == PAUSE_KEY:
            self.paused = not self.paused
            if self.paused and self._last_inputs is not None:
                bgr, snapshot = self._last_inputs  # the held frame, drawn once more marked PAUSED
                self.last_canvas = self.renderer.render(bgr, snapshot.faces, self._status_view(snapshot), snapshot.timeline)
        elif key == SCREENSHOT_KEY and self.last_canvas is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = f"socialmae-demo-{stamp}-{len(self.screenshots) + 1}.png"
            self._save_png(self.last_canvas, Path(self.options.screenshot_dir) / name)

    def poll_window(self) -> None:
        if self.window is not None:
            self.handle_key(self.window.poll())

    def close(self) -> "RecordingSummary | None":
        summary = self.recorder.close() if self.recorder is not None else None
        if self.window is not None:
            self.window.close()
        return summary


def _source_notices(status: PipelineStatus) -> list[str]:
    notices = []
    for source in status.sources:
        if source.state in (SourceState.FAILED, SourceState.SILENT):
            notices.append(f"{source.name} {source.state.value}: {source.detail}".rstrip(": "))
    return notices


def _startup_notices(options: DemoOptions, failed: list, opened: list) -> list[str]:
    notices = [] if options.run.weights else [RANDOM_WEIGHTS_NOTICE]
    for source, error in failed:
        if source.has_video:
            notices.append(f"camera unavailable ({error}): audio only")
        else:
            notices.append(f"microphone unavailable ({error}): video only")
    if options.source is None and not options.run_options().mic_enabled:
        notices.append("microphone off (--mic none): video only")
    elif options.source is not None and not any(s.has_audio for s in opened):
        notices.append("the file has no audio: video only")
    if options.source is not None and not any(s.has_video for s in opened):
        notices.append("the file has no video: audio only")
    return notices


def run_demo(options: DemoOptions, out: TextIO | None = None) -> DemoSummary:
    out = out or sys.stdout  # looked up now, not bound at import
    run_options = options.run_options()
    board = PerceptionBoard(flash_s=options.laughter_flash_s,
                            timeline=Timeline(max_faces=options.overlay.timeline_lanes))  # as many lanes as drawn
    # live: auto starts on what is built and builds better ones in the background; an unpaced
    # (headless) file waits for its build, which loses nothing
    with assemble(run_options, sinks=[board], observers=(board,)) as assembly:
        board.tracker = assembly.pipeline.tracker
        notices = _startup_notices(options, assembly.failed, assembly.sources)
        for notice in notices:
            out.write(f"socialmae-rt demo: {notice}\n")
        window = DemoWindow(options.window_name) if not options.headless else None
        stop = threading.Event()
        view = DemoView(options, board, assembly.pipeline, assembly.sources, notices, window, stop, out)
        info = assembly.backend.info
        out.write(f"socialmae-rt demo: {info.name} ({info.precision}, {info.device}), {describe_tasks(assembly.backend)}, "
                  f"source {run_options.source}{'' if assembly.offline else ' (live)'}"
                  f"{', keys: q quit, space pause, s screenshot' if window else ', headless'}\n")
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if in_main else None
        recording = None
        try:
            if assembly.offline:
                _run_offline(view, assembly, stop)
            else:
                _run_live(view, assembly, stop)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            recording = view.close()
    status = assembly.status()
    span = view.drawn_at[-1] - view.drawn_at[0] if len(view.drawn_at) > 1 else 0.0
    rate = (view.frames_drawn - 1) / span if span > 0 else 0.0
    summary = DemoSummary(view.frames_drawn, rate, status.results, status.windows, status.skipped_windows,
                          view.screenshots, recording)
    out.write(_summary_line(summary))
    return summary


def _run_offline(view: DemoView, assembly: Assembly, stop: threading.Event) -> None:
    def after_item(stamp_ns: int) -> None:
        # Called once the windows due at this item have run: the frame shows its own results.
        if view.has_video:
            view.draw_new_frame()
        else:
            view.draw_blank(stamp_ns, catch_up=True)

    assembly.run(stop, on_progress=after_item)


def _run_live(view: DemoView, assembly: Assembly, stop: threading.Event) -> None:
    failure: list[BaseException] = []

    def infer() -> None:
        try:
            assembly.run(stop)
        except BaseException as error:  # noqa: BLE001 - re-raised on the main thread below
            failure.append(error)
            stop.set()

    worker = threading.Thread(target=infer, name="demo-inference", daemon=True)
    worker.start()
    try:
        while not stop.is_set() and worker.is_alive():
            if view.has_video:
                if view.board.wait_for_frame(view.seq, timeout_s=0.1):
                    view.draw_new_frame()
                else:
                    view.poll_window()  # no frame for a while (camera stalled): keep the window answering
            else:
                view.draw_blank(time.monotonic_ns())
                view.poll_window()
                stop.wait(1.0 / NO_VIDEO_FPS / 2)
    finally:
        stop.set()
        worker.join(timeout=WORKER_JOIN_S)
    if failure:
        raise failure[0]


def _summary_line(summary: DemoSummary) -> str:
    line = (f"demo done: {summary.frames_drawn} frames drawn ({summary.draw_rate:.1f}/s), {summary.windows} windows, "
            f"{summary.records} records, "
            f"{summary.skipped_windows} skipped")
    if summary.recording is not None:
        r = summary.recording
        line += f"; recorded {r.path}: {r.frames} frames, {r.audio_seconds:.1f} s audio"
    return line + "\n"
