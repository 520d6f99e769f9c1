"""social_perception: the streaming pipeline as a ROS 2 node.

Parameters are the `socialmae-rt run` flags (RunOptions fields, underscores: `source`, `mic`,
`weights`, `model`, `backend`, `hop`, `realtime`, `zmq`, ...) plus the postprocessing settings
(PostprocessConfig: `laughter_on`, `emotion_smoothing`, ...), one source of defaults for both.
Postprocessing parameters change at run time; the others are fixed once the node runs.

Outputs (node namespace, reliable, depth 10):
  ~/results         std_msgs/String            the JSON record (face id, window start/end, ...)
  ~/emotion         std_msgs/Float32MultiArray 6 probabilities; dim[0].label = class labels,
                                               dim[1].label = "face_id=<id>" ("face_id=none": audio only)
  ~/laughter        std_msgs/Float32           smoothed laughter probability of the latest record
  ~/laughter_onset  std_msgs/Header            stamp = estimated onset (capture clock), frame_id = face id
  ~/personality     std_msgs/Float32MultiArray [O, C, E, A, N], labelled like ~/emotion
  ~/embedding       std_msgs/Float32MultiArray pooled encoder output (with `embedding:=true`)
  /diagnostics      diagnostic_msgs/DiagnosticArray at 1 Hz

The pipeline runs in its own thread, off the executor: ROS callbacks never wait on inference.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32, Float32MultiArray, Header, MultiArrayDimension, MultiArrayLayout, String

from socialmae_rt.messages import NS_PER_SECOND, SourceError
from socialmae_rt.postprocess import PERSONALITY_TRAITS, LaughterEvent, LaughterEventKind, PostprocessConfig
from socialmae_rt.results import SocialPerception
from socialmae_rt.runner import RunOptions, build_pipeline, build_sources, open_sources, output_sinks, run_pipeline

from .ros_process import run_node

NODE_NAME = "social_perception"
# RunOptions fields that mean nothing for a node (console output).
CONSOLE_ONLY = ("quiet",)
POSTPROCESS_PARAMETERS = tuple(f.name for f in dataclasses.fields(PostprocessConfig) if f.name != "emotion_labels")
_TYPES = {"str": Parameter.Type.STRING, "int": Parameter.Type.INTEGER, "float": Parameter.Type.DOUBLE,
          "bool": Parameter.Type.BOOL}


def run_option_parameters() -> list[tuple[str, Any, Parameter.Type]]:
    """(name, default or None, type) for every RunOptions field the node exposes."""
    declared = []
    defaults = RunOptions()
    for field in dataclasses.fields(RunOptions):
        if field.name in CONSOLE_ONLY or field.name == "postprocess":
            continue
        base = field.type.replace(" | None", "")  # annotations are strings (postponed evaluation)
        declared.append((field.name, getattr(defaults, field.name), _TYPES[base]))
    return declared


def _stamp(header: Header, stamp_ns: int) -> None:
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), NS_PER_SECOND)


def labelled_array(values, labels, face_id: int | None) -> Float32MultiArray:
    face = "none" if face_id is None else str(face_id)
    layout = MultiArrayLayout(dim=[
        MultiArrayDimension(label=",".join(labels), size=len(values), stride=len(values)),
        MultiArrayDimension(label=f"face_id={face}", size=1, stride=1),
    ])
    return Float32MultiArray(layout=layout, data=[float(v) for v in values])


class RosSink:
    """A pipeline sink publishing on the node's topics (rclpy publishers are thread-safe)."""

    def __init__(self, node: Node, include_embedding: bool) -> None:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.include_embedding = include_embedding
        self.results = node.create_publisher(String, "~/results", reliable)
        self.emotion = node.create_publisher(Float32MultiArray, "~/emotion", reliable)
        self.laughter = node.create_publisher(Float32, "~/laughter", reliable)
        self.onset = node.create_publisher(Header, "~/laughter_onset", reliable)
        self.personality = node.create_publisher(Float32MultiArray, "~/personality", reliable)
        self.embedding = node.create_publisher(Float32MultiArray, "~/embedding", reliable)

    def write_result(self, result: SocialPerception) -> None:
        self.results.publish(String(data=json.dumps(result.to_json(self.include_embedding))))
        if result.emotion is not None:
            self.emotion.publish(labelled_array(result.emotion.values(), result.emotion.keys(), result.face_id))
        if result.laughter_probability is not None:
            self.laughter.publish(Float32(data=float(result.laughter_probability)))
        if result.personality is not None:
            values = [result.personality[t] for t in PERSONALITY_TRAITS]
            self.personality.publish(labelled_array(values, PERSONALITY_TRAITS, result.face_id))
        if self.include_embedding and result.embedding is not None:
            self.embedding.publish(labelled_array(result.embedding, ["embedding"], result.face_id))

    def write_event(self, event: LaughterEvent) -> None:
        if event.kind is LaughterEventKind.ONSET:
            header = Header(frame_id="none" if event.face_id is None else str(event.face_id))
            _stamp(header, event.time_ns)
            self.onset.publish(header)

    def write_status(self, status: dict[str, Any]) -> None:
        pass  # diagnostics are published by the node's own 1 Hz timer

    def close(self) -> None:
        pass


class SocialPerceptionNode(Node):
    def __init__(self, **node_options) -> None:
        super().__init__(NODE_NAME, **node_options)
        for name, default, kind in run_option_parameters():
            self.declare_parameter(name, default if default is not None else kind)
        post_defaults = PostprocessConfig()
        for name in POSTPROCESS_PARAMETERS:
            self.declare_parameter(name, getattr(post_defaults, name),
                                   ParameterDescriptor(description="changes at run time"))
        self.options = self._options_from_parameters()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._stop_requested = threading.Event()
        self.sources = open_sources(build_sources(self.options))
        self.sinks = [RosSink(self, self.options.embedding), *output_sinks(self.options)]
        self.pipeline = build_pipeline(self.options, self.sinks)
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self.worker = threading.Thread(target=self._run, name="social-perception-pipeline", daemon=True)
        self.worker.start()
        info = self.pipeline.backend.info
        self.get_logger().info(f"running {info.name} ({info.precision}) on {self.options.source}")

    def _value(self, name: str) -> Any:
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:  # an optional flag nobody set: None, as on the CLI
            return None

    def _options_from_parameters(self) -> RunOptions:
        values = {name: self._value(name) for name, _, _ in run_option_parameters()}
        post = PostprocessConfig(**{name: self.get_parameter(name).value for name in POSTPROCESS_PARAMETERS})
        return RunOptions(**values, postprocess=post)

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
            run_pipeline(self.pipeline, self.options, self.sources, self._stop_requested)
        except (SourceError, RuntimeError) as err:
            self.get_logger().error(f"pipeline stopped: {err}")

    def _publish_diagnostics(self) -> None:
        status = self.pipeline.status(self.sources)
        states = [s["state"] for s in status["sources"]]
        if not any(state in ("starting", "running") for state in states) and status["windows"] == 0:
            level, message = DiagnosticStatus.ERROR, "no source is delivering"
        elif status["expect"]["why"]:
            level, message = DiagnosticStatus.WARN, status["expect"]["why"]
        else:
            level, message = DiagnosticStatus.OK, status["last"]
        values = {
            "backend": status["backend"]["name"], "precision": status["backend"]["precision"],
            "weights": status["backend"]["weights"], "model": self.options.model,
            "windows": status["windows"], "windows_per_s": round(status["windows_per_s"], 3),
            "skipped_windows": status["skipped_windows"],
            "latency_ms_p50": status["latency_ms_p50"], "latency_ms_p95": status["latency_ms_p95"],
            **{f"source {s['name']}": f"{s['state']} {s['detail']}".strip() for s in status["sources"]},
        }
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()  # health is about now, unlike results
        array.status = [DiagnosticStatus(level=level, name=f"{self.get_name()}: pipeline", message=message,
                                         hardware_id="socialmae_rt",
                                         values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])]
        self.diagnostics.publish(array)

    def stop(self) -> None:
        """Stop the pipeline thread and the sources; the node can then be destroyed."""
        self._stop_requested.set()
        for source in self.sources:
            source.close()
        self.worker.join(timeout=5.0)
        for sink in self.sinks:
            sink.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(SocialPerceptionNode, NODE_NAME, MultiThreadedExecutor, argv,
                    start_errors=(SourceError, FileNotFoundError), stop=SocialPerceptionNode.stop)


if __name__ == "__main__":
    sys.exit(main())
