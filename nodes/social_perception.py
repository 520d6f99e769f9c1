"""social_perception: the streaming pipeline as a ROS 2 node.

Parameters are the `socialmae-rt run` flags (RunOptions fields, underscores: `source`, `mic`,
`weights`, `model`, `backend`, `hop`, `realtime`, `zmq`, ...) plus the postprocessing settings
(PostprocessConfig: `laughter_on`, `emotion_smoothing`, ...), one source of defaults for both,
plus the ROS input settings (RosInputConfig, prefixed `input_`), plus the node's own (NodeConfig:
`exit_at_end`, `summary_every_s`). Postprocessing parameters change at run time; the others are
fixed once the node runs.

The log says what happens: the backend, the first result (how long it took, on what), a one-line
summary every `summary_every_s`, every source that goes silent or fails (naming its topics), and
the end of a file input (then exit 0 with `exit_at_end:=true`, else the node stays up).

Inputs: its own camera/microphone/file (`source:=0`, `source:=clip.mp4`), or ROS topics with
`source:=ros`: `image` (sensor_msgs/Image) and `image/compressed` (CompressedImage) with the
sensor-data QoS, and `audio` (see ros_inputs.py; `mic:=none` for video only). Remap them with
`-r image:=/camera/image_raw -r audio:=/audio`.

Outputs (node namespace, reliable, depth 10):
  ~/results         std_msgs/String            the JSON record (face id, window start/end, ...)
  ~/emotion         std_msgs/Float32MultiArray 6 probabilities; dim[0].label = class labels,
                                               dim[1].label = "face_id=<id>" ("face_id=none": audio only)
  ~/laughter        std_msgs/Float32           smoothed laughter probability of the latest record
  ~/laughter_onset  std_msgs/Header            stamp = estimated onset (capture clock), frame_id = face id
  ~/personality     std_msgs/Float32MultiArray [O, C, E, A, N], labelled like ~/emotion
  ~/embedding       std_msgs/Float32MultiArray pooled encoder output (with `embedding:=true`)
  ~/perception      socialmae_rt_msgs/Perception    the record, typed (when socialmae_rt_msgs is built)
  ~/laughter_events socialmae_rt_msgs/LaughterEvent onsets and offsets, typed (idem)
  ~/person_estimates socialmae_rt_msgs/PersonEstimate each face's Big Five over its windows so far (idem)
  /diagnostics      diagnostic_msgs/DiagnosticArray at 1 Hz (WARN: a stream is missing or silent,
                                               or a remote backend is down; ERROR: no input at all,
                                               or the backend down past its grace)
  /humans/faces/tracked, /humans/faces/face<id>/{roi,cropped,expression}  REP-155 (ROS4HRI), with
                    hri_msgs/IdsList, NormalizedRegionOfInterest2D, sensor_msgs/Image and hri_msgs/Expression,
                    when hri_msgs is installed (nodes/rep155.py)

Stamps are the capture clock: header stamps of ROS inputs (ROS time), CLOCK_MONOTONIC for local
devices and real-time files, media time for unpaced files.

The pipeline runs in its own thread, off the executor: ROS callbacks never wait on inference.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32, Float32MultiArray, Header, MultiArrayDimension, MultiArrayLayout, String

from socialmae_rt.app.assemble import Assembly, assemble, close_all
from socialmae_rt.app.options import NO_MIC, RunOptions
from socialmae_rt.faces.upstream import FaceIds
from socialmae_rt.messages import SourceError, SourceState
from socialmae_rt.nodes.hri_inputs import HriFaceInput
from socialmae_rt.nodes.rep155 import HriFaces
from socialmae_rt.nodes.ros_inputs import RosInputConfig, RosInputs
from socialmae_rt.nodes.ros_process import reject_unknown_parameters, run_node
from socialmae_rt.nodes.typed_messages import (
    BUILD_HINT, INTERFACE_PACKAGE, interface_module, laughter_event_message, perception_message,
    person_estimate_message, set_stamp)
from socialmae_rt.results import SocialPerception
from socialmae_rt.stream.postprocess import LaughterEvent, LaughterEventKind, PostprocessConfig
from socialmae_rt.stream.status import PipelineStatus, SwitchingHealth
from socialmae_rt.tasks import PERCEPTION_TASKS, PERSONALITY_TRAITS
from socialmae_rt.util.field_help import wants_help
from socialmae_rt.util.options import from_flat, options_of
from socialmae_rt.util.threads import yield_idle_threads

NODE_NAME = "social_perception"
WORKER_JOIN_S = 5.0  # how long the pipeline thread may take to finish a window once stopped
FATAL_LINGER_S = 1.5  # after a fatal error: time for /diagnostics ERROR to go out before the process ends
ROS_INPUT = "ros"  # `source:=ros` / `mic:=ros`: read the ROS input topics
FACE_MODES = ("own", "hri")
INPUT_PREFIX = "input_"
# RunOptions fields that mean nothing for a node (console output).
CONSOLE_ONLY = ("quiet",)
POSTPROCESS_PARAMETERS = tuple(f.name for f in dataclasses.fields(PostprocessConfig) if f.name != "emotion_labels")
_TYPES = {"str": Parameter.Type.STRING, "int": Parameter.Type.INTEGER, "float": Parameter.Type.DOUBLE,
          "bool": Parameter.Type.BOOL}
# What a task publishes: named in the warning when the weights have no head for it.
TASK_TOPICS = {"emotion": ("~/emotion",), "laughter": ("~/laughter", "~/laughter_onset"),
               "personality": ("~/personality",)}


@dataclasses.dataclass
class NodeConfig:
    """What only the node has (its other parameters are the run flags)."""

    exit_at_end: bool = False  # when a file source ends: exit 0 (true), or stay up with /diagnostics (false)
    summary_every_s: float = 60.0  # a one-line summary in the log this often (seconds; 0: none)
    faces: str = "own"  # own: our face detector | hri: faces from a ROS4HRI detector (/humans/faces, with source:=ros)

    def __post_init__(self) -> None:
        if self.faces not in FACE_MODES:
            raise ValueError(f"faces must be one of {', '.join(FACE_MODES)}, got {self.faces!r}")
        if self.summary_every_s < 0:
            raise ValueError(f"summary_every_s must be >= 0 seconds (0: no summary), got {self.summary_every_s}")


def run_option_parameters() -> list[tuple[str, Any, Parameter.Type]]:
    """(name, default or None, type) for every run option the node exposes (util/options.py)."""
    return [(o.name, o.default, _TYPES[o.kind.__name__]) for o in options_of(RunOptions) if o.name not in CONSOLE_ONLY]


def parameter_names() -> list[str]:
    """Every parameter the node declares (launch files and YAML configs may use only these)."""
    names = [name for name, _, _ in run_option_parameters()] + list(POSTPROCESS_PARAMETERS)
    names += [f.name for f in dataclasses.fields(NodeConfig)]
    return names + [INPUT_PREFIX + f.name for f in dataclasses.fields(RosInputConfig)]


def ros_input_streams(options: RunOptions, faces: str = "own") -> tuple[bool, bool]:
    """(video, audio) to take from ROS topics. ROS stamps (ROS time) and local devices
    (CLOCK_MONOTONIC) cannot be aligned, so a run takes both from ROS or neither; faces from a
    ROS4HRI detector (faces:=hri) are ROS input too."""
    video = options.source == ROS_INPUT
    if faces == "hri" and not video:
        raise ValueError(f"faces:=hri takes the faces from ROS4HRI topics: it needs source:=ros (got "
                         f"source:={options.source}); audio then comes from the ROS audio topic or mic:=none")
    mic = (options.mic or "none").lower()
    if video:
        if mic in NO_MIC:
            return True, False
        if mic in ("default", ROS_INPUT):
            return True, True
        raise ValueError(f"mic:={options.mic} cannot go with source:=ros: use mic:=ros (the ROS audio topic) "
                         "or mic:=none; a local microphone stamps on another clock than ROS messages")
    if mic == ROS_INPUT:
        raise ValueError("mic:=ros needs source:=ros (video from the ROS image topics as well); "
                         f"source:={options.source} stamps on another clock than ROS messages")
    return False, False


def labelled_array(values, labels, face: str) -> Float32MultiArray:
    layout = MultiArrayLayout(dim=[
        MultiArrayDimension(label=",".join(labels), size=len(values), stride=len(values)),
        MultiArrayDimension(label=f"face_id={face}", size=1, stride=1),
    ])
    return Float32MultiArray(layout=layout, data=[float(v) for v in values])


class RosSink:
    """A pipeline sink publishing on the node's topics (rclpy publishers are thread-safe).

    `face_ids` names faces in every output: ours ("face3") or, with faces:=hri, the ROS4HRI
    detector's; std_msgs topics label faces with our integer id unless the detector named them."""

    def __init__(self, node: Node, include_embedding: bool, faces: str = "own", face_ids: FaceIds | None = None,
                 voices: bool = False) -> None:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.include_embedding = include_embedding
        self.face_ids = face_ids or FaceIds()
        self.named_upstream = faces == "hri"
        # REP-155: faces tracked, roi, cropped (ours only), expression; voices with speaker attribution
        self.faces = HriFaces(node, reliable, detections=not self.named_upstream, face_name=self.face_ids.name,
                              voices=voices)
        self.results = node.create_publisher(String, "~/results", reliable)
        self.emotion = node.create_publisher(Float32MultiArray, "~/emotion", reliable)
        self.laughter = node.create_publisher(Float32, "~/laughter", reliable)
        self.onset = node.create_publisher(Header, "~/laughter_onset", reliable)
        self.personality = node.create_publisher(Float32MultiArray, "~/personality", reliable)
        self.embedding = node.create_publisher(Float32MultiArray, "~/embedding", reliable)
        # socialmae_rt_msgs, when built: the same records and events, typed
        self.typed = interface_module()
        if self.typed is None:
            node.get_logger().info(f"{INTERFACE_PACKAGE} is not built here: ~/perception, ~/laughter_events and "
                                   f"~/person_estimates are off ({BUILD_HINT}); ~/results carries the same numbers")
        else:
            self.perception = node.create_publisher(self.typed.Perception, "~/perception", reliable)
            self.laughter_events = node.create_publisher(self.typed.LaughterEvent, "~/laughter_events", reliable)
            self.person_estimates = node.create_publisher(self.typed.PersonEstimate, "~/person_estimates", reliable)

    def destroy(self) -> None:
        """Take the topics down (a managed node's cleanup): every publisher this sink made."""
        publishers = [self.results, self.emotion, self.laughter, self.onset, self.personality, self.embedding]
        if self.typed is not None:
            publishers += [self.perception, self.laughter_events, self.person_estimates]
        for publisher in publishers:
            self.node.destroy_publisher(publisher)
        self.faces.destroy()

    def _label(self, face_id: int | None) -> str:
        """A face in a std_msgs label or frame_id: "none" for the audio-only stream."""
        if face_id is None:
            return "none"
        return self.face_ids.name(face_id) if self.named_upstream else str(face_id)

    def _stopping(self) -> bool:
        return not self.node.context.ok()  # SIGINT/SIGTERM shut ROS down: nothing can be published now

    def write_result(self, result: SocialPerception) -> None:
        if self._stopping():
            return
        self.results.publish(String(data=json.dumps(result.to_json(self.include_embedding), allow_nan=False)))
        face = self._label(result.face_id)
        self.faces.publish_record(result)
        if result.emotion is not None:
            self.emotion.publish(labelled_array(result.emotion.values(), result.emotion.keys(), face))
        if result.laughter_probability is not None:
            self.laughter.publish(Float32(data=float(result.laughter_probability)))
        if result.personality is not None:
            values = [result.personality[t] for t in PERSONALITY_TRAITS]
            self.personality.publish(labelled_array(values, PERSONALITY_TRAITS, face))
        if self.include_embedding and result.embedding is not None:
            self.embedding.publish(labelled_array(result.embedding, ["embedding"], face))
        if self.typed is not None:
            self.perception.publish(perception_message(self.typed, result, self.face_ids.name))
            if result.person is not None:
                self.person_estimates.publish(person_estimate_message(self.typed, result.person, result.stream,
                                                                      self.face_ids.name))

    def write_event(self, event: LaughterEvent) -> None:
        if self._stopping():
            return
        if event.kind is LaughterEventKind.ONSET:
            header = Header(frame_id=self._label(event.face_id))
            set_stamp(header.stamp, event.time_ns)
            self.onset.publish(header)
        if self.typed is not None:
            self.laughter_events.publish(laughter_event_message(self.typed, event, face_name=self.face_ids.name))

    def write_status(self, status: PipelineStatus) -> None:
        pass  # diagnostics are published by the node's own 1 Hz timer

    def close(self) -> None:
        pass


def declare_perception_parameters(node: Node) -> None:
    """Every parameter (run options, postprocessing, ROS inputs, the node's own); unknown ones are refused."""
    for name, default, kind in run_option_parameters():
        node.declare_parameter(name, default if default is not None else kind)
    post_defaults = PostprocessConfig()
    for name in POSTPROCESS_PARAMETERS:
        node.declare_parameter(name, getattr(post_defaults, name), ParameterDescriptor(description="changes at run time"))
    input_defaults = RosInputConfig()
    for field in dataclasses.fields(RosInputConfig):
        node.declare_parameter(INPUT_PREFIX + field.name, getattr(input_defaults, field.name))
    node_defaults = NodeConfig()
    for field in dataclasses.fields(NodeConfig):
        node.declare_parameter(field.name, getattr(node_defaults, field.name))
    reject_unknown_parameters(node)


def _value(node: Node, name: str) -> Any:
    try:
        return node.get_parameter(name).value
    except ParameterUninitializedException:  # an optional flag nobody set: None, as on the CLI
        return None


def read_perception_parameters(node: Node) -> tuple[RunOptions, NodeConfig, RosInputConfig]:
    values = {name: _value(node, name) for name, _, _ in run_option_parameters()}
    post = PostprocessConfig(**{name: node.get_parameter(name).value for name in POSTPROCESS_PARAMETERS})
    options = from_flat(RunOptions, values, base=RunOptions(postprocess=post))
    node_config = NodeConfig(**{f.name: node.get_parameter(f.name).value for f in dataclasses.fields(NodeConfig)})
    inputs = RosInputConfig(**{f.name: node.get_parameter(INPUT_PREFIX + f.name).value
                               for f in dataclasses.fields(RosInputConfig)})
    return options, node_config, inputs


def assemble_for_node(node: Node, options: RunOptions, input_config: RosInputConfig, sink: RosSink,
                      faces: str = "own", **assemble_options) -> Assembly:
    """A node's run (app/assemble.py) publishing through `sink`: its own camera, microphone or file,
    or with source:=ros the input topics, subscribed as the capture step (`node.ros_inputs`); with
    faces:=hri the faces come from a ROS4HRI detector (`node.hri_faces`) and ours stays off."""
    ros_video, ros_audio = ros_input_streams(options, faces)
    from_hri = faces == "hri"

    def subscribe(_opened: list) -> list:  # source:=ros: the topics are the capture
        node.ros_inputs = RosInputs(node, input_config, video=not from_hri, audio=ros_audio,
                                    log_error=node.get_logger().error,
                                    callback_group=MutuallyExclusiveCallbackGroup(),
                                    max_frame_side=options.max_frame_side)
        sources = list(node.ros_inputs.sources)
        if from_hri:
            node.hri_faces = HriFaceInput(node, input_config, sink.face_ids, log_error=node.get_logger().error,
                                          callback_group=MutuallyExclusiveCallbackGroup())
            sources += node.hri_faces.sources
        return sources

    return assemble(options, sources=[] if ros_video else None, capture=subscribe if ros_video else None,
                    sinks=[sink], face_observers=[sink.faces] if sink.faces.enabled else [],
                    on_status=node.get_logger().info, check_length=False, detect_faces=not from_hri,
                    **assemble_options)


class SocialPerceptionNode(Node):
    def __init__(self, **node_options) -> None:
        super().__init__(NODE_NAME, **node_options)
        self._started = time.monotonic()
        declare_perception_parameters(self)
        self.options, self.node_config, self.input_config = read_perception_parameters(self)
        self._first_result_logged = False
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._stop_requested = threading.Event()
        self.fatal: str | None = None  # why perception stopped for good
        self.exit_code = 0
        self.exit_on_failure = False  # main(): a fatal error shuts the process down (exit code 1)
        self.ros_inputs = None
        self.hri_faces = None  # faces:=hri: the ROS4HRI detector's topics
        # app/assemble.py: the input opens first (a missing camera or file is said at once), a first
        # build (export, IR, int8 calibration) happens before any input is taken in, then capture starts.
        sink = RosSink(self, self.options.embedding, faces=self.node_config.faces, voices=self.options.speakers)
        self.assembly = assemble_for_node(self, self.options, self.input_config, sink, faces=self.node_config.faces,
                                          background=True)
        self.pipeline, self.sources, self.sinks = self.assembly.pipeline, self.assembly.sources, self.assembly.sinks
        self._last_states = {s.status.name: s.status.state for s in self.sources}
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        if self.node_config.summary_every_s:
            self.create_timer(self.node_config.summary_every_s, self._log_summary)
        self.worker = threading.Thread(target=self._run, name="social-perception-pipeline", daemon=True)
        self.worker.start()
        info = self.pipeline.backend.info
        self.get_logger().info(f"running {info.name} ({info.precision}) on {self.options.source}")
        served, missing = served_tasks(self.pipeline.backend)
        if missing:  # a subscriber cannot tell "no laughter" from "no laughter head": say it once
            silent = [topic for task in missing for topic in TASK_TOPICS[task]]
            self.get_logger().warning(
                f"serving {', '.join(served) or 'no task'}; the weights have no {', '.join(missing)} head, so "
                f"{', '.join(silent)} will not publish (give a bundle with those tasks)")

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        changes = {}
        for parameter in parameters:
            if parameter.name not in POSTPROCESS_PARAMETERS:
                return SetParametersResult(
                    successful=False,
                    reason=f"{parameter.name} is fixed once the node runs; run-time parameters: "
                           f"{', '.join(POSTPROCESS_PARAMETERS)}",
                )
            changes[parameter.name] = parameter.value
        live = self.pipeline.postprocessor.config
        try:
            dataclasses.replace(live, **changes)  # validates the combination before anything changes
        except (ValueError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        for name, value in changes.items():
            setattr(live, name, value)
        return SetParametersResult(successful=True)

    def _run(self) -> None:
        try:
            self.assembly.run(self._stop_requested)
        except Exception as err:  # noqa: BLE001 - whatever ends perception must end the process too
            if self._stop_requested.is_set():
                return  # stopping: the sources closed under the pipeline
            self._fail(f"{type(err).__name__}: {err}")
            return
        failed = [s.status for s in self.sources if s.status.state is SourceState.FAILED]
        if not self._stop_requested.is_set() and failed and len(failed) == len(self.sources):
            self._fail("no source left: " + "; ".join(f"{s.name}: {s.detail}" for s in failed))
        elif not self._stop_requested.is_set():
            self._input_ended()

    def _input_ended(self) -> None:
        """A file source reached its end: say so plainly, then exit 0 or stay up (exit_at_end)."""
        status = self.pipeline.status(self.sources)
        said = (f"input ended ({self.options.source}): {status.windows} windows, {status.results} records; "
                + ("exiting (exit_at_end)" if self.node_config.exit_at_end else
                   "staying up with /diagnostics (set exit_at_end:=true to exit when the input ends)"))
        self.get_logger().info(said)
        if self.node_config.exit_at_end:
            self.exit_code = 0
            self._publish_diagnostics()
            rclpy.shutdown(context=self.context)

    def _fail(self, cause: str) -> None:
        """Perception is over for good: /diagnostics says ERROR with the cause, and a node started
        as a process (main) exits non-zero, so `respawn` or a supervisor restarts it. Never a live
        node that silently does nothing."""
        self.fatal = cause
        self.exit_code = 1
        self.get_logger().error(f"perception stopped: {cause}")
        self._publish_diagnostics()
        if self.exit_on_failure:
            time.sleep(FATAL_LINGER_S)  # let /diagnostics reach subscribers before the node goes
            rclpy.shutdown(context=self.context)

    def _log_source_changes(self) -> None:
        for source in self.sources:
            state, before = source.status.state, self._last_states.get(source.status.name)
            if state is before:
                continue
            self._last_states[source.status.name] = state
            if state in (SourceState.SILENT, SourceState.FAILED):
                self.get_logger().warning(f"{source.status.name} {state.value}: {source.status.detail}")
            elif state is SourceState.RUNNING and before in (SourceState.SILENT, SourceState.FAILED):
                self.get_logger().info(f"{source.status.name} delivering again")

    def _log_first_result(self, status: PipelineStatus) -> None:
        if self._first_result_logged or not status.results:
            return
        self._first_result_logged = True
        p50 = status.latency_ms_p50
        self.get_logger().info(
            f"first result {time.monotonic() - self._started:.1f} s after start, on {status.backend.name} "
            f"({status.backend.precision}){'' if p50 is None else f', latency {p50:.0f} ms'}: {status.last}")

    def _log_summary(self) -> None:
        status = self.pipeline.status(self.sources)
        sources = ", ".join(f"{s.name} {s.state.value}" for s in status.sources)
        self.get_logger().info(
            f"{status.windows} windows ({status.windows_per_s:.2f}/s), {status.results} records, "
            f"{status.skipped_windows} skipped; latency {status.latency_text()}; {status.backend.name}; {sources}; "
            f"last: {status.last}")

    def _publish_diagnostics(self) -> None:
        self._log_source_changes()
        status = self.pipeline.status(self.sources)
        self._log_first_result(status)
        level, message = (DiagnosticStatus.ERROR, f"perception stopped: {self.fatal}") if self.fatal else health(status)
        self.diagnostics.publish(diagnostic_array(self, level, message, pipeline_values(
            status, self.pipeline.backend, self.options.model)))

    def stop(self) -> None:
        """Stop the pipeline thread and the sources; the node can then be destroyed."""
        self._stop_requested.set()
        close_all(self.sources)
        self.worker.join(timeout=WORKER_JOIN_S)
        if not self.worker.is_alive():
            self.assembly.close()
        else:  # a worker still inside a window keeps the pipeline it is using; the outputs close
            close_all(self.sinks)


def pipeline_values(status: PipelineStatus, backend, model: str) -> dict[str, Any]:
    """What /diagnostics says of a running pipeline: backend, tasks, windows, latency, drops, each
    source's state and its counters (bad messages by kind among them)."""
    served, missing = served_tasks(backend)
    health_of_backend = status.backend
    return {
        "backend": health_of_backend.name, "precision": health_of_backend.precision,
        "weights": health_of_backend.weights, "model": model,
        **{f"task {task}": path for task, path in health_of_backend.tasks.items()},
        "tasks_served": ", ".join(served) or "none",
        "tasks_not_served": ", ".join(missing) or "none",
        "windows": status.windows, "windows_per_s": round(status.windows_per_s, 3),
        "skipped_windows": status.skipped_windows,
        "latency_ms_p50": status.latency_ms_p50, "latency_ms_p95": status.latency_ms_p95,
        "dropped_windows": ", ".join(f"{why}: {n}" for why, n in status.dropped.items()) or "none",
        "last_error": status.last_error or "none",
        **{f"source {s.name}": f"{s.state.value} {s.detail}".strip() for s in status.sources},
        **{f"source {s.name} counts": ", ".join(f"{k}: {v}" for k, v in sorted(s.counters.items())) or "none"
           for s in status.sources},
        **switching_values(health_of_backend.switching),
    }


def diagnostic_array(node: Node, level: bytes, message: str, values: dict[str, Any]) -> DiagnosticArray:
    """One DiagnosticArray for the node's pipeline, stamped now (health is about now, unlike results)."""
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [DiagnosticStatus(level=level, name=f"{node.get_name()}: pipeline", message=message,
                                     hardware_id="socialmae_rt",
                                     values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])]
    return array


def served_tasks(backend) -> tuple[list[str], list[str]]:
    """(tasks whose topics publish, tasks whose topics stay silent: no head for them)."""
    heads = backend.model_config.head_sizes
    return [t for t in PERCEPTION_TASKS if t in heads], [t for t in PERCEPTION_TASKS if t not in heads]


def switching_values(switching: SwitchingHealth | None) -> dict[str, str]:
    """The switching backend's state as diagnostic key/values (none for a plain backend)."""
    if switching is None:
        return {}
    values = {"backend_pending": switching.pending or "none",
              "backend_switches": "; ".join(f"{s.from_backend} -> {s.to_backend} at {s.at_s} s: {s.why}"
                                            for s in switching.switches) or "none"}
    shadow = switching.shadow
    if shadow is not None:
        values.update({"shadow_check": "on" if shadow.active else "off (the backend is the fp32 reference)",
                       "shadow_checks": str(shadow.checks),
                       "shadow_agreeing": f"{shadow.agreeing}/{shadow.of_last}",
                       "shadow_lowest_cosine": "n/a" if shadow.rolling_min_cosine is None
                       else f"{shadow.rolling_min_cosine:.5f}"})
    return values


def health(status: PipelineStatus) -> tuple[bytes, str]:
    """Diagnostic level and message from the pipeline status: ERROR when no input delivers at all,
    WARN when a stream is missing (silent topic, failed device, stalled audio), else OK."""
    backend = status.backend
    if backend.down_s is not None:
        level = DiagnosticStatus.ERROR if backend.down_s > backend.down_grace_s else DiagnosticStatus.WARN
        return level, f"backend down for {backend.down_s:.0f} s: {backend.down_reason}"
    delivering = [s for s in status.sources if s.state in (SourceState.STARTING, SourceState.RUNNING)]
    trouble = [f"{s.name} {s.state.value}: {s.detail}".rstrip(": ") for s in status.sources
               if s.state in (SourceState.SILENT, SourceState.FAILED)]
    if not delivering:
        ended = all(s.state is SourceState.ENDED for s in status.sources)
        return (DiagnosticStatus.WARN, "all sources ended") if ended else (
            DiagnosticStatus.ERROR, "no input: " + "; ".join(trouble))
    if trouble or status.expect.reason:
        return DiagnosticStatus.WARN, "; ".join(trouble) or status.expect.reason
    switching = backend.switching
    if switching is not None and switching.fallback_reason:
        left = next((s.from_backend for s in reversed(switching.switches) if s.why == switching.fallback_reason), None)
        return DiagnosticStatus.WARN, (f"backend {left} left for {backend.name}: " if left else
                                       f"backend {backend.name} being replaced: ") + switching.fallback_reason
    return DiagnosticStatus.OK, status.last


def _process_node() -> SocialPerceptionNode:
    node = SocialPerceptionNode()
    node.exit_on_failure = True
    if node.fatal is not None:  # failed while starting, before the flag was set
        rclpy.shutdown(context=node.context)
    return node


def node_help() -> str:
    """Every parameter: name, type, default, meaning (from the run flags and the configs' comments)."""
    from socialmae_rt.util.field_help import field_comments, parameter_table

    rows = [(o.name, o.kind.__name__, o.default, o.help_text()) for o in options_of(RunOptions)
            if o.name not in CONSOLE_ONLY]
    post, post_comments = PostprocessConfig(), field_comments(PostprocessConfig)
    rows += [(name, type(getattr(post, name)).__name__, getattr(post, name),
              (post_comments.get(name) or "smoothing weight of the previous value") + " (changes at run time)")
             for name in POSTPROCESS_PARAMETERS]
    node, node_comments = NodeConfig(), field_comments(NodeConfig)
    rows += [(f.name, type(getattr(node, f.name)).__name__, getattr(node, f.name), node_comments.get(f.name, ""))
             for f in dataclasses.fields(NodeConfig)]
    inputs, input_comments = RosInputConfig(), field_comments(RosInputConfig)
    rows += [(INPUT_PREFIX + f.name, type(getattr(inputs, f.name)).__name__, getattr(inputs, f.name),
              input_comments.get(f.name, "")) for f in dataclasses.fields(RosInputConfig)]
    return (f"usage: socialmae-rt-node [--ros-args -p NAME:=VALUE ... | --params-file FILE]\n\n"
            f"The {NODE_NAME} ROS 2 node: camera/microphone or ROS image/audio topics in, emotion, laughter,\n"
            "personality and results out (docs/ros.md). Parameters:\n\n" + parameter_table(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    if wants_help(sys.argv[1:] if argv is None else argv[1:]):
        print(node_help())
        return 0
    yield_idle_threads()  # before the backend imports torch
    return run_node(_process_node, NODE_NAME, MultiThreadedExecutor, argv,
                    start_errors=(SourceError, FileNotFoundError), stop=SocialPerceptionNode.stop)


if __name__ == "__main__":
    sys.exit(main())
