"""The life of one window: ingest -> AV ring buffer -> scheduled window -> preprocess -> backend
-> postprocess -> records to the sinks.

Capture threads call `ingest()` with frames and audio; `process_due()` asks the scheduler for the
next complete window, preprocesses it exactly as the released weights saw their inputs, runs one
batched encoder pass for every face in it, smooths the outputs and hands records to the sinks.
How a file or live sources are driven through it (threads, pacing, the end of input) is drive.py's job.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

import numpy as np

from socialmae_rt.backend import Backend, BackendOutput, BackendUnavailable, task_sources
from socialmae_rt.features import audio_to_model_input, frames_to_model_input
from socialmae_rt.messages import (
    NS_PER_SECOND, AudioChunk, DetectedFaces, FaceCrop, SourceState, VideoFrame, seconds_to_ns)
from socialmae_rt.model.modality import Modality
from socialmae_rt.results import Latency, SocialPerception
from socialmae_rt.sinks.base import Sink
from socialmae_rt.stream.buffer import AVRingBuffer, BufferConfig, FaceWindow
from socialmae_rt.stream.persons import PersonEstimates
from socialmae_rt.stream.postprocess import LaughterEventKind, LaughterStateMachine, PostprocessConfig, Postprocessor
from socialmae_rt.stream.scheduler import SchedulerConfig, WindowScheduler
from socialmae_rt.stream.speakers import SpeakerAttribution, SpeakerConfig, Speaking
from socialmae_rt.stream.status import BackendStatus, Expectation, PipelineStatus

log = logging.getLogger(__name__)


class IngestObserver(Protocol):
    """Sees what the pipeline ingests, on the capture thread, after the tracker ran (the demo's
    overlay and recording). Must be quick: it holds up capture."""

    def on_frame(self, frame: VideoFrame) -> None: ...

    def on_audio(self, chunk: AudioChunk) -> None: ...


class FaceObserver(Protocol):
    """Sees each moment's faces, on the capture thread, after the tracker ran (REP-155 topics): the
    crops cut now (at the detection rate; [] in between), the ids tracked, those gone, and the frame
    they came from (None when an upstream detector sent the faces)."""

    def on_faces(self, faces: DetectedFaces, frame: VideoFrame | None) -> None: ...


class FaceTrackerLike(Protocol):
    def update(self, frame: VideoFrame) -> list[FaceCrop]: ...

    def active_tracks(self) -> list: ...

    def drain_lost(self) -> list[int]: ...

    def drain_gone(self) -> list[int]: ...

    def reset(self) -> None: ...


@dataclass
class PipelineConfig:
    hop_s: float = 0.5
    min_face_fill: float = 0.25  # a face needs at least 2 of the 8 frame slots to be reported
    audio_stall_s: float = 1.0  # live: audio this far behind video counts as absent (video-only)
    stream: str = "default"
    include_embedding: bool = False
    status_interval_s: float = 1.0
    # This many windows failing in a row means the backend is unusable: the run stops with
    # PipelineFailed (a node then exits non-zero, so a supervisor can restart it).
    max_consecutive_failures: int = 10
    # A remote backend (Triton) down for longer than this is an ERROR in diagnostics (until then a WARN).
    # Its windows are counted, not failures: the run waits for the server instead of ending.
    backend_down_grace_s: float = 5.0
    buffer: BufferConfig = field(default_factory=BufferConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    speakers: SpeakerConfig = field(default_factory=SpeakerConfig)  # who speaks (off by default)

    def __post_init__(self) -> None:
        SchedulerConfig(hop_s=self.hop_s, window_s=self.buffer.window_s)  # validates the hop
        if not 0.0 < self.min_face_fill <= 1.0:
            raise ValueError(f"PipelineConfig.min_face_fill must be in (0, 1], got {self.min_face_fill}")
        if self.audio_stall_s <= 0:
            raise ValueError(f"PipelineConfig.audio_stall_s must be > 0, got {self.audio_stall_s}")
        if self.max_consecutive_failures < 1:
            raise ValueError(f"PipelineConfig.max_consecutive_failures must be >= 1, got {self.max_consecutive_failures}")
        if self.backend_down_grace_s < 0:
            raise ValueError(f"PipelineConfig.backend_down_grace_s must be >= 0, got {self.backend_down_grace_s}")


class PipelineFailed(RuntimeError):
    """Perception cannot go on (every window fails): the cause is in the message."""


NONFINITE = "non-finite model output"
NOT_THE_SPEAKER = "not the speaker: the window's audio went to the face that speaks (speakers.audio_to)"


@dataclass
class _Window:
    end_ns: int
    picked_mono_ns: int
    audio: np.ndarray | None  # float32 [64000]
    faces: list[FaceWindow]
    problem: str | None = None  # why a delivered stream is missing from this window (NaN/Inf samples)
    speaking: dict[int, Speaking] = field(default_factory=dict)  # face id -> judged (attribution on)
    # face id -> upstream name, taken with the window: the face may be gone (its name forgotten) by
    # the time a slow inference pass makes its record.
    names: dict[int, str] = field(default_factory=dict)


class Pipeline:
    def __init__(
        self,
        backend: Backend,
        tracker: FaceTrackerLike | None,
        sinks: Sequence[Sink] = (),
        config: PipelineConfig | None = None,
        observers: Sequence[IngestObserver] = (),
        face_observers: Sequence[FaceObserver] = (),
    ) -> None:
        self.config = config or PipelineConfig()
        self.observers = list(observers)
        self.face_observers = list(face_observers)
        self.backend = backend
        self.tracker = tracker
        self.sinks = list(sinks)
        self.preprocess = backend.preprocess
        self.buffer = AVRingBuffer(self.config.buffer)
        self.scheduler = WindowScheduler(SchedulerConfig(self.config.hop_s, self.config.buffer.window_s))
        self.postprocessor = Postprocessor(self.config.postprocess)
        self.postprocessor.check_heads(backend.model_config.head_sizes, backend.model_config.head_labels)
        self.persons = PersonEstimates()  # each face's personality over its windows
        self.face_names: dict[int, str] = {}  # face id -> an upstream detector's id (faces:=hri)
        self.expect = Expectation()
        self.clock = "media"  # "monotonic"/"realtime" when stamps are capture times (latency vs window end)
        self._lock = threading.Lock()
        self._data = threading.Condition(self._lock)
        self._sink_lock = threading.Lock()
        self._latencies = collections.deque(maxlen=200)
        self._reported_faces: set[int | None] = set()
        self.last_reason = "waiting for data"
        self.results = 0
        self.dropped: collections.Counter[str] = collections.Counter()  # why -> windows (or rows) dropped
        self.last_error: str | None = None
        self._consecutive_failures = 0
        self.backend_down_since_ns: int | None = None  # monotonic; a remote backend out of reach
        self.backend_down_reason = ""
        self.started_mono_ns = time.monotonic_ns()
        self.speakers: SpeakerAttribution | None = None
        self._mouths = None
        if self.config.speakers.enabled:
            from socialmae_rt.faces.mouth import MouthMeter

            self.speakers = SpeakerAttribution(self.config.speakers, self.config.buffer.window_s,
                                               self.preprocess.audio.sample_rate)
            self._mouths = MouthMeter()
        # With attribution, laughter is one sound in the room: one onset/offset stream, each onset
        # carrying the face that speaks when it starts (None: nobody visible speaks).
        self._room_laughter = LaughterStateMachine(self.config.postprocess) if self.speakers is not None else None
        self._room_laugher: int | None = None

    # Ingest (capture threads) ---------------------------------------------------------------
    def ingest(self, item: VideoFrame | DetectedFaces | AudioChunk) -> None:
        if isinstance(item, VideoFrame):
            faces = self._track(item)
            self._ingest_faces(faces)
            for observer in self.observers:
                observer.on_frame(item)
            for face_observer in self.face_observers:
                face_observer.on_faces(faces, item)
        elif isinstance(item, DetectedFaces):  # faces:=hri: found upstream, our tracker stays off
            self._ingest_faces(item)
            for face_observer in self.face_observers:
                face_observer.on_faces(item, None)
        elif isinstance(item, AudioChunk):
            with self._data:
                self.scheduler.anchor(item.stamp_ns)
                self.buffer.add_audio(item)
                self._data.notify_all()
            for observer in self.observers:
                observer.on_audio(item)
        else:
            raise TypeError(f"pipeline ingests VideoFrame, DetectedFaces or AudioChunk, got {type(item).__name__}")

    def _track(self, frame: VideoFrame) -> DetectedFaces:
        """Our own detector and tracker on one frame (no tracker: a frame with no faces)."""
        if self.tracker is None:
            return DetectedFaces(frame.stamp_ns, [], [], [])
        crops = self.tracker.update(frame)
        lost, gone = self.tracker.drain_lost(), self.tracker.drain_gone()
        tracked = [track.face_id for track in self.tracker.active_tracks()]
        # Lost: the tracker gave up on it (its windows end); gone: past re-identification too.
        return DetectedFaces(frame.stamp_ns, crops, tracked, gone, lost=lost)

    def _ingest_faces(self, faces: DetectedFaces) -> None:
        mouths = [self._mouths.opening(crop.bgr) for crop in faces.crops] if self._mouths is not None else []
        with self._data:
            self.scheduler.anchor(faces.stamp_ns)
            for face_id in {*faces.lost, *faces.gone}:  # stop reporting that face
                self.buffer.drop_face(face_id)
            for face_id in faces.gone:  # past re-identification: that person's estimate is over
                self.persons.forget(face_id)
                self.face_names.pop(face_id, None)
                if self.speakers is not None:
                    self.speakers.forget(face_id)
            self.face_names.update(faces.names)
            for crop in faces.crops:
                self.buffer.add_crop(crop)
            for crop, opening in zip(faces.crops, mouths):
                self.speakers.add(crop.face_id, crop.stamp_ns, opening)
            self.buffer.mark_video(faces.stamp_ns)
            self._data.notify_all()

    def ingest_or_count(self, item: VideoFrame | AudioChunk) -> None:
        """Ingest one item; one that fails (e.g. the detector on a broken frame) is dropped and
        counted like a failed window, and capture goes on."""
        try:
            self.ingest(item)
        except Exception as err:  # noqa: BLE001 - one bad frame must not end capture
            kind = f"ingest {type(err).__name__}"
            if kind not in self.dropped:
                log.error("%s at %.2f s dropped: %s (further ones are counted, not logged)", type(item).__name__,
                          item.stamp_ns / NS_PER_SECOND, err)
            self.dropped[kind] += 1
            self.last_error = f"{kind}: {err}"

    # Scheduling -------------------------------------------------------------------------------
    def wait_for_data(self, timeout_s: float) -> None:
        """Until something is ingested (or `timeout_s` passes): a driver with no window due waits here."""
        with self._data:
            self._data.wait(timeout=timeout_s)

    def complete_until(self) -> int | None:
        """How far every expected stream has delivered (None: an expected stream has nothing yet)."""
        untils = []
        if self.expect.video:
            untils.append(self.buffer.video_until_ns)
        if self.expect.audio:
            untils.append(self.buffer.audio_until_ns)
        if not untils:
            # Nothing expected any more (sources ended): what was delivered is all there is.
            held = [t for t in (self.buffer.video_until_ns, self.buffer.audio_until_ns) if t is not None]
            return max(held) if held else None
        if any(t is None for t in untils):
            return None
        return min(untils)

    def update_expectation(self, sources: Sequence) -> None:
        """Wait only for streams that are being delivered; say why one is not."""
        video = audio = False
        reasons = []
        for source in sources:
            alive = source.status.state in (SourceState.STARTING, SourceState.RUNNING)
            if not alive:
                reasons.append(f"{source.status.name} {source.status.state.value}: {source.status.detail}".rstrip(": "))
            video |= alive and source.has_video
            audio |= alive and source.has_audio
        with self._lock:
            v_until, a_until = self.buffer.video_until_ns, self.buffer.audio_until_ns
            anchored = self.scheduler.first_end_ns
        if audio and video and v_until is not None and anchored is not None:
            # No audio yet counts as audio up to the first data of any stream.
            audio_until = a_until if a_until is not None else anchored - self.scheduler.window_ns
            if v_until - audio_until > seconds_to_ns(self.config.audio_stall_s):
                audio = False
                reasons.append("audio stalled")
        self.expect = Expectation(video=video, audio=audio, reason="; ".join(reasons))

    def _pick_window(self) -> _Window | None:
        with self._lock:
            end_ns = self.scheduler.next_window(self.complete_until())
            if end_ns is None:
                return None
            audio = self.buffer.audio_window(end_ns)
            faces = self.buffer.face_windows(end_ns, self.config.min_face_fill)
            problem = self.buffer.audio_problem(end_ns) if audio is None else None
            speaking = ({} if self.speakers is None or not faces else
                        self.speakers.judge(end_ns, audio, [face.face_id for face in faces]))
            names = {face.face_id: self.face_names[face.face_id] for face in faces if face.face_id in self.face_names}
        return _Window(end_ns, time.monotonic_ns(), audio, faces, problem, speaking, names)

    def process_due(self) -> list[SocialPerception] | None:
        """Run the window the scheduler picks now: its records ([] if it had nothing to perceive, or
        if it failed: dropped and counted), or None when no window is due."""
        window = self._pick_window()
        if window is None:
            return None
        try:
            records = self._run_window(window)
        except BackendUnavailable as err:
            self._backend_unavailable(window, err)
            return []
        except Exception as err:  # noqa: BLE001 - one window's failure must not end perception
            self._window_failed(window, err)
            return []
        self._consecutive_failures = 0
        if self.backend_down_since_ns is not None:
            log.warning("backend back after %.1f s down; windows run again", self.backend_down_s())
            self.backend_down_since_ns, self.backend_down_reason = None, ""
        return records

    def _backend_unavailable(self, window: _Window, err: BackendUnavailable) -> None:
        """The window is counted, not failed: capture goes on and later windows try again."""
        if self.backend_down_since_ns is None:
            self.backend_down_since_ns = time.monotonic_ns()
            log.warning("backend unavailable (%s); capture goes on, windows are counted until it is back", err)
        self.backend_down_reason = str(err)
        self.dropped["backend unavailable"] += 1
        self.last_reason = f"window ending {window.end_ns / NS_PER_SECOND:.2f} s not run: backend down ({err})"

    def backend_down_s(self) -> float | None:
        """How long a remote backend has been out of reach (None: it answers)."""
        if self.backend_down_since_ns is None:
            return None
        return (time.monotonic_ns() - self.backend_down_since_ns) / NS_PER_SECOND

    def _window_failed(self, window: _Window, err: Exception) -> None:
        kind = type(err).__name__
        if kind not in self.dropped:  # logged once per kind; counted every time
            log.error("window ending %.2f s dropped: %s: %s (further %s failures are counted, not logged)",
                      window.end_ns / NS_PER_SECOND, kind, err, kind)
        self.dropped[kind] += 1
        self.last_error = f"{kind}: {err}"
        self.last_reason = f"window ending {window.end_ns / NS_PER_SECOND:.2f} s dropped ({self.last_error})"
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.config.max_consecutive_failures:
            raise PipelineFailed(f"{self._consecutive_failures} windows in a row failed, the last with {self.last_error}"
                                 ) from err

    def _finite_rows(self, output) -> np.ndarray:
        """[B] which rows of a backend output are finite everywhere (heads and embedding)."""
        finite = np.isfinite(output.embedding).all(axis=1)
        for values in output.heads.values():
            finite &= np.isfinite(values).all(axis=1)
        if not finite.all():
            if NONFINITE not in self.dropped:
                log.error("the model produced NaN/Inf for %d of %d row(s); such rows are dropped and counted "
                          "(further ones are not logged)", int((~finite).sum()), len(finite))
            self.dropped[NONFINITE] += int((~finite).sum())
        return finite

    # One window ---------------------------------------------------------------------------------
    def _run_window(self, window: _Window) -> list[SocialPerception]:
        if window.audio is None and not window.faces:
            self.last_reason = (
                f"window ending {window.end_ns / NS_PER_SECOND:.2f} s: no face and no audio "
                f"({window.problem or self.expect.reason or 'nothing in the buffer for it'})"
            )
            self._forget_faces_except(set())
            return []
        start = time.perf_counter()
        audio = video = None
        if window.audio is not None:
            features = audio_to_model_input(window.audio, self.preprocess.audio.sample_rate, self.preprocess.audio)
            audio = np.repeat(features[None], max(1, len(window.faces)), axis=0)  # [B, 1024, 128]
        if window.faces:
            clips = [frames_to_model_input(f.frames, self.preprocess.video) for f in window.faces]
            video = np.stack(clips)  # [B, 3, 224, 224, 8]
        preprocess_ms = (time.perf_counter() - start) * 1e3
        hears = None  # every row hears the window's audio (if there is any)
        if audio is not None and video is not None and self.config.speakers.audio_to == "speakers":
            hears = np.array([window.speaking[f.face_id].is_speaker for f in window.faces])
        start = time.perf_counter()
        output, modalities = self._infer(audio, video, hears)
        inference_ms = (time.perf_counter() - start) * 1e3
        modality = modalities[0]
        face_ids: list[int | None] = [f.face_id for f in window.faces] or [None]
        fills = [f.fill for f in window.faces] or [1.0]
        self._forget_faces_except(set(face_ids))
        finite = self._finite_rows(output)
        records = []
        for row, (face_id, fill) in enumerate(zip(face_ids, fills)):
            if not finite[row]:
                continue
            modality = modalities[row]
            heads = {name: values[row] for name, values in output.heads.items()}
            perceived = self.postprocessor.update(face_id, heads, window.end_ns)
            person = (self.persons.update(face_id, perceived.window_personality, window.end_ns)
                      if face_id is not None and perceived.window_personality is not None else None)
            record = SocialPerception(
                face_id=face_id,
                face_name=window.names.get(face_id),
                window_start_ns=window.end_ns - seconds_to_ns(self.config.buffer.window_s),
                window_end_ns=window.end_ns,
                modality=modality,
                emotion=perceived.emotion,
                laughter_probability=perceived.laughter_probability,
                laughing=perceived.laughing,
                personality=perceived.personality,
                window_fill=fill,
                latency=Latency(preprocess_ms, inference_ms, self._since_window_ns(window) / 1e6),
                stream=self.config.stream,
                embedding=output.embedding[row].tolist() if self.config.include_embedding else None,
                # Only a record missing a stream says why; an audiovisual window heard and saw everything.
                degraded=None if modality == Modality.AUDIOVISUAL.value else (
                    NOT_THE_SPEAKER if hears is not None and not hears[row]
                    else window.problem or self.expect.reason or None),
                speaking=window.speaking.get(face_id),
                random_weights=self.backend.info.random_weights,
                person=person,
            )
            self._emit(record, [] if self._room_laughter is not None else perceived.events)
            records.append(record)
        if self._room_laughter is not None and window.audio is not None:
            self._room_laughter_events(window, records)
        self.last_reason = f"ok: {len(records)} record(s), {modality}"
        return records

    def _room_laughter_events(self, window: _Window, records: list[SocialPerception]) -> None:
        """One laughter state for the room, fed by the speaker's record (else the most laughing one)."""
        heard = {r.face_id: r.laughter_probability for r in records
                 if r.laughter_probability is not None and r.modality != Modality.VIDEO.value}
        if not heard:
            return
        speaker = next((face_id for face_id, s in window.speaking.items() if s.is_speaker), None)
        probability = heard[speaker] if speaker in heard else max(heard.values())
        events = []
        for event in self._room_laughter.update(probability, window.end_ns):
            if event.kind is LaughterEventKind.ONSET:
                self._room_laugher = speaker
            events.append(dataclasses.replace(event, face_id=self._room_laugher))
        if events:
            with self._sink_lock:
                for sink in self.sinks:
                    for event in events:
                        sink.write_event(event)

    def _infer(self, audio: np.ndarray | None, video: np.ndarray | None, hears: np.ndarray | None):
        """(output, modality per row): one backend pass, or with audio for the speakers only, an
        audiovisual pass for the rows that hear and a video-only pass for the rest. When no visible
        face speaks every face hears the window (the sound may come from off camera)."""
        if hears is None or hears.all() or not hears.any():
            output = self.backend.infer(audio, video)
            return output, [Modality.of(audio, video).value] * output.embedding.shape[0]
        heard = self.backend.infer(audio[hears], video[hears])
        unheard = self.backend.infer(None, video[~hears])
        embedding = np.empty((len(hears), heard.embedding.shape[1]), heard.embedding.dtype)
        embedding[hears], embedding[~hears] = heard.embedding, unheard.embedding
        heads = {}
        for name, values in heard.heads.items():
            heads[name] = np.empty((len(hears), values.shape[1]), values.dtype)
            heads[name][hears], heads[name][~hears] = values, unheard.heads[name]
        modalities = [Modality.AUDIOVISUAL.value if h else Modality.VIDEO.value for h in hears]
        return BackendOutput(embedding=embedding, heads=heads), modalities

    def _since_window_ns(self, window: _Window) -> int:
        """Publish time minus window end on the capture clock; offline, minus when it was picked."""
        if self.clock == "monotonic":
            return time.monotonic_ns() - window.end_ns
        if self.clock == "realtime":  # ROS topic stamps (system time)
            return time.time_ns() - window.end_ns
        return time.monotonic_ns() - window.picked_mono_ns

    def _forget_faces_except(self, present: set[int | None]) -> None:
        for face_id in self._reported_faces - present:
            self.postprocessor.forget(face_id)
        self._reported_faces = present

    def _emit(self, record: SocialPerception, events) -> None:
        self.results += 1
        self._latencies.append(record.latency.total_ms)
        with self._sink_lock:  # the status thread writes to the same sinks
            for sink in self.sinks:
                sink.write_result(record)
                for event in events:
                    sink.write_event(event)

    # Status --------------------------------------------------------------------------------------
    def status(self, sources: Iterable = ()) -> PipelineStatus:
        latencies = np.array(self._latencies) if self._latencies else None
        elapsed = (time.monotonic_ns() - self.started_mono_ns) / NS_PER_SECOND
        info = self.backend.info
        health = getattr(self.backend, "health", None)  # a switching backend: builds, switches, shadow check
        backend = BackendStatus(name=info.name, precision=info.precision, device=info.device, weights=info.weights,
                                tasks=task_sources(self.backend), down_s=self.backend_down_s(),
                                down_reason=self.backend_down_reason or None,
                                down_grace_s=self.config.backend_down_grace_s,
                                switching=health() if health is not None else None)
        return PipelineStatus(
            backend=backend,
            windows=self.scheduler.windows,
            skipped_windows=self.scheduler.skipped,
            results=self.results,
            windows_per_s=self.scheduler.windows / elapsed if elapsed > 0 else 0.0,
            latency_ms_p50=None if latencies is None else float(np.percentile(latencies, 50)),
            latency_ms_p95=None if latencies is None else float(np.percentile(latencies, 95)),
            expect=self.expect,
            last=self.last_reason,
            dropped=dict(self.dropped),
            nonfinite_audio_samples=self.buffer.audio.nonfinite,
            last_error=self.last_error,
            faces=self.buffer.face_ids(),
            sources=[s.status.snapshot() for s in sources],
        )

    def write_status(self, sources: Iterable = ()) -> None:
        status = self.status(sources)
        with self._sink_lock:
            for sink in self.sinks:
                sink.write_status(status)

    def close(self) -> None:
        """Release the face detector and the backend once the pipeline has stopped: an unreleased
        MediaPipe graph keeps its threads, and a process that builds many pipelines (the test
        suite) crashed in the garbage collector with dozens left over."""
        close = getattr(self.tracker, "close", None)
        if close is not None:
            close()
        if self._mouths is not None:
            self._mouths.close()
        self.backend.close()

    def reset(self) -> None:
        with self._lock:
            self.buffer.reset()
            self.scheduler.reset()
            self.postprocessor.reset()
            self.persons.reset()
            if self.tracker is not None:
                self.tracker.reset()
