"""ROS test fixtures: an rclpy context on a random domain with discovery kept on this machine."""

import random
import time

import pytest
import rclpy


@pytest.fixture
def context(monkeypatch):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=random.randint(1, 200))
    yield ctx
    rclpy.shutdown(context=ctx)


@pytest.fixture
def spin_until():
    """spin_until(executor, condition, timeout_s=10): spin until condition() holds, or fail."""

    def spin(executor, condition, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            executor.spin_once(timeout_sec=0.05)

    return spin
