"""laugh_responder: the template for a robot behaviour that reacts when someone laughs.

Subscribes to laughter onsets (std_msgs/Header: stamp = estimated onset on the capture clock,
frame_id = face id) and publishes a behaviour command (std_msgs/String, JSON) unless the last
command was less than `cooldown_s` ago, measured on the onsets' own stamps so that replayed or
delayed messages behave the same as live ones. Optionally plays a short sound.

    socialmae-rt-laugh-responder --ros-args -p command:=giggle -p cooldown_s:=3.0

To build your own behaviour, copy this file and replace `respond()`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, fields

from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, String

from socialmae_rt.nodes.ros_process import reject_unknown_parameters, run_node

NS_PER_SECOND = 1_000_000_000
SOUND_PLAYERS = ("paplay", "aplay")


@dataclass
class LaughResponderConfig:
    onset_topic: str = "/social_perception/laughter_onset"
    command_topic: str = "/behavior/command"
    command: str = "laugh_along"  # what the robot should do; sent in the JSON as "command"
    cooldown_s: float = 5.0  # no second command sooner than this after the last one
    sound: str = ""  # a WAV file to play on each command ("" = silent)

    def __post_init__(self) -> None:
        validate_field("cooldown_s", self.cooldown_s)
        validate_field("command", self.command)


def validate_field(name: str, value) -> None:
    """One rule per parameter, shared by start-up and run-time changes."""
    if name == "cooldown_s" and not (isinstance(value, (int, float)) and value >= 0):
        raise ValueError(f"cooldown_s must be a number of seconds >= 0, got {value!r}")
    if name == "command" and not (isinstance(value, str) and value.strip()):
        raise ValueError(f"command must be a non-empty string, got {value!r}")


def stamp_ns(header: Header) -> int:
    return header.stamp.sec * NS_PER_SECOND + header.stamp.nanosec


class LaughResponder(Node):
    def __init__(self, **overrides) -> None:
        super().__init__("laugh_responder", **overrides)
        defaults = LaughResponderConfig()
        for f in fields(LaughResponderConfig):
            self.declare_parameter(f.name, getattr(defaults, f.name))
        reject_unknown_parameters(self)
        self.config = LaughResponderConfig(**{f.name: self.get_parameter(f.name).value for f in fields(defaults)})
        self.add_on_set_parameters_callback(self._on_set_parameters)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.create_publisher(String, self.config.command_topic, reliable)
        self.subscription = self.create_subscription(Header, self.config.onset_topic, self._on_onset, reliable)
        self.last_command_ns: int | None = None
        self.commands = 0
        self.suppressed = 0
        self._player = shutil.which(SOUND_PLAYERS[0]) or shutil.which(SOUND_PLAYERS[1])
        self.get_logger().info(
            f"listening on {self.config.onset_topic}, commanding on {self.config.command_topic} "
            f"(cooldown {self.config.cooldown_s} s)"
        )

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Cooldown, command and sound change at run time; topics are fixed at start."""
        for parameter in parameters:
            if parameter.name in ("onset_topic", "command_topic"):
                return SetParametersResult(successful=False, reason=f"{parameter.name} is fixed once the node runs")
            try:
                validate_field(parameter.name, parameter.value)
            except ValueError as err:
                return SetParametersResult(successful=False, reason=str(err))
        for parameter in parameters:
            setattr(self.config, parameter.name, parameter.value)
        return SetParametersResult(successful=True)

    def _on_onset(self, header: Header) -> None:
        onset = stamp_ns(header)
        cooldown = int(self.config.cooldown_s * NS_PER_SECOND)
        if self.last_command_ns is not None and onset - self.last_command_ns < cooldown:
            self.suppressed += 1
            return
        self.last_command_ns = onset
        self.respond(face_id=header.frame_id, onset_ns=onset)

    def respond(self, face_id: str, onset_ns: int) -> None:
        """The behaviour: publish the command, play the sound. Replace this in your own node."""
        self.commands += 1
        payload = {"command": self.config.command, "face_id": face_id, "onset_ns": onset_ns}
        self.publisher.publish(String(data=json.dumps(payload)))
        if self.config.sound:
            self._play(self.config.sound)

    def _play(self, path: str) -> None:
        if self._player is None:
            self.get_logger().warning(f"cannot play {path}: neither {' nor '.join(SOUND_PLAYERS)} is installed")
            return
        # Fire and forget: a sound must never hold up the next message.
        subprocess.Popen([self._player, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def node_help() -> str:
    from socialmae_rt.util.field_help import field_comments, parameter_table

    defaults, comments = LaughResponderConfig(), field_comments(LaughResponderConfig)
    meanings = {"onset_topic": "laughter onsets to react to (std_msgs/Header: stamp = onset time, frame_id = face id)",
                "command_topic": "where the behaviour command goes (std_msgs/String JSON)"}
    rows = [(f.name, type(getattr(defaults, f.name)).__name__, getattr(defaults, f.name),
             comments.get(f.name) or meanings.get(f.name, "")) for f in dataclasses.fields(LaughResponderConfig)]
    return ("usage: socialmae-rt-laugh-responder [--ros-args -p NAME:=VALUE ...]\n\n"
            "Reacts to laughter onsets from social_perception with a behaviour command (and a sound).\n"
            "Parameters:\n\n" + parameter_table(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    from socialmae_rt.util.field_help import wants_help

    if wants_help(sys.argv[1:] if argv is None else argv[1:]):
        print(node_help())
        return 0
    return run_node(LaughResponder, "laugh_responder", SingleThreadedExecutor, argv)


if __name__ == "__main__":
    sys.exit(main())
