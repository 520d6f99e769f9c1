"""DemoOptions: a run (RunOptions, the flags `run` and `demo` share) plus what only the demo has;
light to import, so the command line builds its parser without the pipeline."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

from socialmae_rt.app.options import RunOptions
from socialmae_rt.demo.overlay import OverlayConfig
from socialmae_rt.util.options import option


@dataclass
class DemoOptions:
    """The `socialmae-rt demo` options: a run (RunOptions, its flags shared with `run`) plus what
    only the demo has."""

    camera: str = option("0", "camera index, /dev/videoN or stream URL (default: %(default)s)")
    source: str | None = option(None, "a media file instead of the camera (it brings its own audio)")
    record: str | None = option(None, "write the annotated video and the audio to this .mp4")
    headless: bool = option(False, "no window (servers, tests): use with --record or --snapshot")
    # a file: None = real time in a window, as fast as possible headless
    realtime: bool | None = option(None, "pace a file at real time (default: yes in a window; headless, as fast as "
                                   "it goes, every frame)", action=argparse.BooleanOptionalAction)
    screenshot_dir: str = option(".", "where the s key saves PNGs (default: %(default)s)")
    snapshot: str | None = option(None, "save the canvas drawn --snapshot-at seconds in to this PNG")
    snapshot_at: float = option(0.0, "seconds from the first frame (default: %(default)g)")
    laughter_flash_s: float = 1.0  # how long a laughter onset lights up that face's meter
    window_name: str = "socialmae-rt demo"
    run: RunOptions = field(default_factory=RunOptions)  # source, pacing and console output are the demo's
    overlay: OverlayConfig = field(default_factory=OverlayConfig)

    def __post_init__(self) -> None:
        if self.snapshot_at < 0:
            raise ValueError(f"snapshot_at must be >= 0 seconds, got {self.snapshot_at}")
        if self.record is not None and not self.record.lower().endswith(".mp4"):
            raise ValueError(f"--record writes an mp4: give a path ending in .mp4, got {self.record!r}")

    @property
    def paced(self) -> bool:
        return self.realtime if self.realtime is not None else not self.headless

    def run_options(self) -> RunOptions:
        """The run the demo draws: its source (the file, else the camera), paced as the demo says, no console lines."""
        return dataclasses.replace(self.run, source=self.source if self.source is not None else self.camera,
                                   realtime=self.paced, quiet=True)


# The demo's own flags, in --help order (--camera and --source come before the run flags).
DEMO_FLAGS = ("camera", "source", "record", "headless", "realtime", "screenshot_dir", "snapshot", "snapshot_at")
