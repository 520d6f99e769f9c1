"""One way to put a run together: sources, sinks, backend, capture and pipeline, opened in one
order and, when a step fails, closed again in reverse (an ExitStack). `run`, `demo`, the ROS node,
`soak` and `bench-pipeline` all start through `assemble()`.

The order, and why:
1. sources open: a missing camera or file is said in a second, before any model loads;
2. a file shorter than one window is refused;
3. the output sinks (JSONL, ZeroMQ) open: a bad --output fails now, not after a build of minutes;
4. the backend is made when it may build first (export, IR, int8 calibration), before capture
   starts, so that no live input is captured and dropped while it builds;
5. capture starts (live sources prefetch), so the first window fills while a light model loads;
6. the pipeline (face detector, tracker, the backend if not made yet) takes the sinks.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

from socialmae_rt.app.options import RunOptions, is_camera, mic_device, model_config_for
from socialmae_rt.backend import Backend, StatusCallback
from socialmae_rt.messages import SourceError, seconds_to_ns
from socialmae_rt.sinks import ConsoleSink, JsonlSink
from socialmae_rt.sinks.base import Sink
from socialmae_rt.stream.speakers import SpeakerConfig
from socialmae_rt.stream.status import PipelineStatus

if TYPE_CHECKING:  # the pipeline imports torch: only once a run is assembled (the node sets threads first)
    from socialmae_rt.stream.pipeline import FaceObserver, IngestObserver, Pipeline

log = logging.getLogger(__name__)

# Backends that only load (seconds): made while the first window fills. Every other one may build
# something the first time (an ONNX export, OpenVINO IR, int8 calibration, TensorRT plans: minutes).
LOAD_ONLY_BACKENDS = ("torch", "torch-bf16")


def status_to_stderr(message: str) -> None:
    print(f"socialmae-rt: {message}", file=sys.stderr, flush=True)


def build_sources(options: RunOptions) -> list:
    """The sources `options.source` and `options.mic` name (not opened yet)."""
    if is_camera(options.source):
        from socialmae_rt.capture.camera import CameraConfig, CameraSource

        device = int(options.source) if options.source.isdigit() else options.source
        sources = [CameraSource(CameraConfig(device=device, width=options.width, height=options.height, fps=options.fps,
                                             max_frame_side=options.max_frame_side))]
        if options.mic_enabled:
            from socialmae_rt.capture.microphone import MicConfig, MicSource

            sources.append(MicSource(MicConfig(device=mic_device(options.mic))))
        return sources
    path = Path(options.source)
    if not path.is_file():
        raise FileNotFoundError(
            f"--source {options.source!r} is neither a camera (index, /dev/video*, URL) nor an existing file"
        )
    from socialmae_rt.capture.media_file import MediaFileConfig, MediaFileSource

    return [MediaFileSource(MediaFileConfig(path=str(path), realtime=options.realtime,
                                            max_frame_side=options.max_frame_side))]


def open_sources(sources: list, failed: list | None = None) -> list:
    """Open each source; one that fails is left out with a warning (and appended to `failed` as
    (source, error)), unless none is left."""
    opened, failures = [], []
    for source in sources:
        try:
            source.open()
            opened.append(source)
        except SourceError as err:
            failures.append(str(err))
            if failed is not None:
                failed.append((source, err))
            log.warning("%s; continuing without it", err)
    if not opened:
        raise SourceError("no source could be opened: " + "; ".join(failures))
    return opened


def close_all(closeables: Sequence) -> None:
    for closeable in closeables:
        closeable.close()


def check_long_enough(sources: list) -> None:
    """A file shorter than one window can give no result: say so before the model loads."""
    from socialmae_rt.stream.buffer import BufferConfig

    window_s = BufferConfig().window_s
    for source in sources:
        duration = getattr(source, "duration_s", None)
        if source.clock == "media" and duration is not None and duration < window_s:
            name = getattr(source, "path", None)
            raise ValueError(f"{'clip ' + Path(name).name if name else source.status.name} is {duration:.1f} s, "
                             f"shorter than the {window_s:g} s window: no window can be formed")


def runs_offline(sources: list) -> bool:
    """A single file, not paced (stamped on the media clock): every window in order, as fast as the
    backend goes."""
    return len(sources) == 1 and sources[0].clock == "media"


def start_capture(sources: list) -> list:
    """Live sources start capturing now, so that the first window fills while the model loads
    (capture/prefetch.py); an unpaced file is read by the pipeline itself, as fast as it goes."""
    if runs_offline(sources):
        return sources
    from socialmae_rt.capture.prefetch import PrefetchedSource

    return [PrefetchedSource(source).start() for source in sources]


def make_backend(options: RunOptions, on_status: StatusCallback = status_to_stderr, background: bool = True) -> Backend:
    """The backend of a live run: `auto` starts at once on what is built and switches to better ones
    built in the background; approximate backends are shadow-checked (engines/adaptive.py)."""
    from socialmae_rt.engines import create_backend
    from socialmae_rt.engines.adaptive import create_live_backend
    from socialmae_rt.engines.switching import ShadowConfig

    backend_options: dict[str, Any] = {"on_status": on_status}
    if options.threads is not None:
        backend_options["threads"] = options.threads
    if options.backend == "triton":
        backend_options["triton"] = options.triton
    shadow = ShadowConfig(enabled=options.shadow_check_s > 0, every_s=options.shadow_check_s)
    site = None
    if options.calibrate_live_s:
        from socialmae_rt.app.site_calibration import SiteCalibrationConfig, SiteRecorder

        site = SiteRecorder(SiteCalibrationConfig(seconds=options.calibrate_live_s), on_status=on_status)
        background = True  # the build waits for the recording, which the run itself makes
    backend = create_live_backend(create_backend, options.backend, options.weights, model_config_for(options),
                                  shadow=shadow, background=background, site=site, **backend_options)
    if site is not None and not site.cancelled:
        backend.site_recorder = site  # build_pipeline feeds it what the pipeline ingests
    return backend


def backend_before_capture(options: RunOptions, on_status: StatusCallback = status_to_stderr,
                           background: bool = True) -> Backend | None:
    """The backend, made now when it may have to build first, so that no live input is captured
    and dropped while it builds; None for backends that load in seconds (made while the first
    window fills). `background=False`: `auto` builds its best candidate now instead of starting on
    a ready one (an unpaced file, where waiting loses nothing)."""
    if options.backend in LOAD_ONLY_BACKENDS:
        return None
    return make_backend(options, on_status, background=background)


def output_sinks(options: RunOptions, out: TextIO | None = None) -> list[Sink]:
    """The JSONL file and the ZeroMQ publisher, when asked for (the CLI and the ROS node alike)."""
    out = out or sys.stdout  # looked up now: a default bound at import would outlive a replaced stdout
    sinks: list[Sink] = []
    try:
        if options.output:
            sinks.append(JsonlSink(options.output, include_embedding=options.embedding, include_status=options.status,
                                   fresh=options.fresh_output))
        if options.zmq:
            from socialmae_rt.sinks.zmq_publisher import ZmqConfig, ZmqSink

            publisher = ZmqSink(ZmqConfig(endpoint=options.zmq, curve_secret_key_file=options.zmq_curve_key,
                                          curve_allowed_clients=options.zmq_curve_clients,
                                          include_embedding=options.embedding))
            out.write(f"socialmae-rt: publishing on ZeroMQ {publisher.endpoint} (topics results, laughter_onset, "
                      "laughter_offset, status)\n")
            sinks.append(publisher)
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def build_pipeline(options: RunOptions, sinks: Sequence[Sink], observers: Sequence["IngestObserver"] = (),
                   backend: Backend | None = None, on_status: StatusCallback = status_to_stderr,
                   face_observers: Sequence["FaceObserver"] = (), detect_faces: bool = True) -> "Pipeline":
    """The pipeline, on `backend` if one was made already (backend_before_capture); with
    `detect_faces=False` no detector or tracker (faces come found, as DetectedFaces)."""
    # Heavy imports (torch, MediaPipe) happen here, after the sources started capturing.
    from socialmae_rt.faces import FaceDetector, FaceDetectorConfig, FaceTracker, TrackerConfig
    from socialmae_rt.stream.pipeline import Pipeline, PipelineConfig

    made_here = backend is None
    backend = backend or make_backend(options, on_status)
    try:
        site = getattr(backend, "site_recorder", None)
        observers = (*observers, site) if site is not None else tuple(observers)
        tracker = None
        if detect_faces:
            detector = FaceDetector(FaceDetectorConfig(max_faces=options.max_faces))
            tracker = FaceTracker(detector, TrackerConfig(max_tracks=options.max_faces))
        config = PipelineConfig(hop_s=options.hop, include_embedding=options.embedding, postprocess=options.postprocess,
                                speakers=SpeakerConfig(enabled=options.speakers, audio_to=options.speakers_audio))
        config.buffer.max_faces = options.max_faces
        return Pipeline(backend, tracker, sinks, config, observers=observers, face_observers=face_observers)
    except BaseException:
        if made_here:
            backend.close()
        raise


def input_limit_ns(duration_s: float | None) -> int | None:
    """`--duration` as a media-time bound for offline runs (None: the whole input)."""
    return None if duration_s is None else seconds_to_ns(duration_s)


@dataclass
class Assembly:
    """What `assemble()` put together; `close()` (or leaving a `with` block) releases all of it:
    the sinks (flushed), the pipeline (detector, backend), the sources."""

    options: RunOptions
    sources: list  # what a driver runs: started live sources, or the unpaced file itself
    sinks: list[Sink]
    pipeline: "Pipeline"
    failed: list = field(default_factory=list)  # (source, SourceError) of sources that could not open
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def offline(self) -> bool:
        return runs_offline(self.sources)

    @property
    def backend(self) -> Backend:
        return self.pipeline.backend

    def run(self, stop, on_progress: Callable[[int], None] | None = None) -> int:
        """Drive the input through the pipeline until it ends, `options.duration` passes or `stop`
        is set; returns records. `duration` means seconds of the input everywhere: media time for an
        unpaced file (which runs faster than real time), capture time live."""
        from socialmae_rt.stream import drive

        if self.offline:
            return drive.run_offline(self.pipeline, self.sources[0], stop, on_progress=on_progress,
                                     until_ns=input_limit_ns(self.options.duration))
        return drive.run_live(self.pipeline, self.sources, stop, max_seconds=self.options.duration)

    def status(self) -> PipelineStatus:
        return self.pipeline.status(self.sources)

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> "Assembly":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def assemble(options: RunOptions, *, sources: list | None = None,
             capture: Callable[[list], list] | None = None,
             sinks: Sequence[Sink] = (), observers: Sequence["IngestObserver"] = (),
             face_observers: Sequence["FaceObserver"] = (),
             console: TextIO | None = None, on_status: StatusCallback = status_to_stderr,
             background: bool | None = None, check_length: bool = True, backend: Backend | None = None,
             detect_faces: bool = True) -> Assembly:
    """Open everything a run needs, in the order of this module's docstring.

    `sources`: sources to open instead of those `options` name ([] with `capture`: none of our own).
    `capture(opened)`: the live sources, made after the backend (default: start_capture; the ROS
    node subscribes its topics here). `sinks` (closed with the assembly) come first (a demo board,
    the ROS sink), then JSONL (`observers` see every ingested item, `face_observers` each frame's faces)
    and ZeroMQ as `options` ask, then a console line per window when `console` is given and
    `options.quiet` is not. `background=None`: `auto` builds in the background unless the input is
    an unpaced file. `backend`: one made already (a managed node loads it at configure); the
    assembly closes it like its own. `detect_faces=False`: the sources deliver faces already found
    (a ROS4HRI detector), so no detector is made. Failure at any step closes what the earlier steps opened."""
    # Closed in reverse: live sources, the output sinks, the sinks handed over (with the console
    # one), the pipeline (detector, backend), the opened sources. Sinks flush before the pipeline goes.
    with contextlib.ExitStack() as stack:
        failed: list = []
        wanted = build_sources(options) if sources is None else sources
        opened = open_sources(wanted, failed) if wanted or capture is None else []
        stack.callback(close_all, opened)
        built: list = []  # the pipeline, once made: it owns the backend from then on
        stack.callback(close_all, built)
        front = list(sinks)  # the sinks handed over are the assembly's to close
        stack.callback(close_all, front)
        if check_length:
            check_long_enough(opened)
        offline = capture is None and runs_offline(opened)
        outputs = output_sinks(options, console)
        stack.callback(close_all, outputs)
        with contextlib.ExitStack() as backend_stack:  # the backend's until the pipeline owns it
            if backend is None:
                backend = backend_before_capture(options, on_status, background=not offline if background is None
                                                 else background)
            if backend is not None:
                backend_stack.callback(backend.close)
            live = (capture or start_capture)(opened)
            stack.callback(close_all, live)
            if console is not None and not options.quiet:
                # Offline files are stamped from 0; live stamps are monotonic: the line counts from the first.
                front.insert(0, ConsoleSink(console, origin_ns=0 if offline else None,
                                            duration_s=getattr(live[0], "duration_s", None) if live else None))
            every_sink = front + outputs
            built.append(build_pipeline(options, every_sink, observers=observers, backend=backend,
                                        on_status=on_status, face_observers=face_observers,
                                        detect_faces=detect_faces))
            backend_stack.pop_all()
        return Assembly(options, live, every_sink, built[0], failed, stack.pop_all())
