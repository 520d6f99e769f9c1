"""A real rclpy subscriber on a node's ~/results, on its own context: how `bench-node` hears the
node it measures (rclpy stays in nodes/)."""

from __future__ import annotations

import json
import os
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String


class ResultsListener:
    """Collects (arrival on CLOCK_MONOTONIC in ns, record) for every record published on `topic`,
    on ROS domain `domain_id` with discovery kept on this machine. Spin it with `spin_once`."""

    def __init__(self, domain_id: int, topic: str = "/social_perception/results") -> None:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.arrivals: list[tuple[int, dict]] = []
        self.node = rclpy.create_node("bench_listener", context=self.context)
        self.node.create_subscription(String, topic,
                                      lambda m: self.arrivals.append((time.monotonic_ns(), json.loads(m.data))),
                                      QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def diagnostics(self) -> list[dict[str, str]]:
        """Subscribe /diagnostics too: the returned list gets each message's first status as key/values."""
        from diagnostic_msgs.msg import DiagnosticArray

        statuses: list[dict[str, str]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics",
                                      lambda m: statuses.append({kv.key: kv.value for kv in m.status[0].values}), 10)
        return statuses

    def spin_once(self, timeout_s: float) -> None:
        self.executor.spin_once(timeout_sec=timeout_s)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
