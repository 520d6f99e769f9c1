"""laugh_responder with real rclpy on loopback (random domain, localhost discovery)."""

import json
import random
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, String

from socialmae_rt.nodes.laugh_responder import LaughResponder, LaughResponderConfig

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def onset(seconds: float, face: str) -> Header:
    header = Header(frame_id=face)
    header.stamp.sec, header.stamp.nanosec = int(seconds), int(round((seconds % 1) * 1e9))
    return header


def test_commands_with_cooldown_and_runtime_parameters(context, spin_until):
    responder = LaughResponder(context=context, parameter_overrides=[
        Parameter("cooldown_s", value=2.0), Parameter("command", value="giggle")])
    probe = rclpy.create_node("probe", context=context)
    onsets = probe.create_publisher(Header, "/social_perception/laughter_onset", RELIABLE)
    received = []
    probe.create_subscription(String, "/behavior/command", lambda m: received.append(json.loads(m.data)), RELIABLE)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(responder)
    executor.add_node(probe)
    try:
        spin_until(executor, lambda: onsets.get_subscription_count() >= 1
                   and responder.publisher.get_subscription_count() >= 1)
        for t, face in ((10.0, "1"), (11.0, "1"), (12.5, "2"), (13.0, "2")):
            onsets.publish(onset(t, face))
        spin_until(executor, lambda: len(received) == 2 and responder.suppressed == 2)
        assert received == [
            {"command": "giggle", "face_id": "1", "onset_ns": 10_000_000_000},
            {"command": "giggle", "face_id": "2", "onset_ns": 12_500_000_000},
        ]
        # Run-time changes: a bad value is refused with a reason, a good one applies at once.
        refused = responder.set_parameters([Parameter("cooldown_s", value=-1.0)])[0]
        assert not refused.successful and "cooldown_s must be a number of seconds >= 0" in refused.reason
        assert not responder.set_parameters([Parameter("onset_topic", value="/x")])[0].successful
        assert responder.set_parameters([Parameter("cooldown_s", value=0.0), Parameter("command", value="smile")])[0].successful
        onsets.publish(onset(13.1, "2"))
        spin_until(executor, lambda: len(received) == 3)
        assert received[2] == {"command": "smile", "face_id": "2", "onset_ns": 13_100_000_000}
    finally:
        executor.shutdown()
        responder.destroy_node()
        probe.destroy_node()


def test_invalid_configuration():
    with pytest.raises(ValueError, match="cooldown_s must be a number of seconds >= 0"):
        LaughResponderConfig(cooldown_s=-2)
    with pytest.raises(ValueError, match="command must be a non-empty string"):
        LaughResponderConfig(command=" ")


def _node_process(*ros_args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(random.randint(1, 200)))
    script = Path(sys.executable).with_name("socialmae-rt-laugh-responder")
    return subprocess.Popen([str(script), "--ros-args", *ros_args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_console_script_bad_parameter_is_one_line():
    process = _node_process("-p", "cooldown_s:=-1.0")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "laugh_responder: error: cooldown_s must be a number of seconds >= 0" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_console_script_stops_cleanly_on_signals(signal_name):
    import signal

    process = _node_process("-p", "cooldown_s:=1.0")
    try:
        deadline = time.monotonic() + 60
        while True:  # started once it logs that it listens (rclpy logs to stderr)
            line = process.stderr.readline()
            if "listening on /social_perception/laughter_onset" in line:
                break
            assert line and time.monotonic() < deadline, "node did not start"
        started = time.monotonic()
        process.send_signal(getattr(signal, signal_name))
        _, stderr = process.communicate(timeout=10)
        assert time.monotonic() - started < 15.0  # stops rather than hangs
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in stderr
