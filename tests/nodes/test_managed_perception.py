"""The managed (lifecycle) node through the lifecycle_msgs ChangeState and GetState services, on
loopback with real rclpy: configure loads the backend, activate perceives, deactivate pauses
(sources closed, nothing published, the backend kept), cleanup frees; /diagnostics says the
lifecycle state and counts transitions refused as out of order."""

from __future__ import annotations

import json
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from socialmae_rt.nodes.managed_perception import ManagedPerceptionNode

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def test_configure_activate_deactivate_activate_cleanup_and_a_transition_out_of_order(context, spin_until, tone_wav):
    clip = tone_wav(12.0)
    node = ManagedPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value=str(clip)), Parameter("realtime", value=True), Parameter("model", value="tiny"),
        Parameter("backend", value="torch"), Parameter("hop", value=1.0)])
    probe = rclpy.create_node("manager", context=context)
    records, diagnostics = [], []
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m.status[0]), 10)
    probe.create_subscription(String, "/social_perception/results", lambda m: records.append(json.loads(m.data)),
                              RELIABLE)
    change = probe.create_client(ChangeState, "/social_perception/change_state")
    get = probe.create_client(GetState, "/social_perception/get_state")
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)

    def call(client, request):
        future = client.call_async(request)
        spin_until(executor, future.done, 60)
        return future.result()

    def state() -> int:
        return call(get, GetState.Request()).current_state.id

    def transition(transition_id: int) -> bool:
        return call(change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def diagnosed(**wanted) -> bool:
        """The latest /diagnostics has these key/values (spins until one comes)."""
        seen = len(diagnostics)
        spin_until(executor, lambda: len(diagnostics) > seen, 10)
        values = {kv.key: kv.value for kv in diagnostics[-1].values}
        return all(values.get(key) == value for key, value in wanted.items())

    try:
        spin_until(executor, lambda: change.service_is_ready() and get.service_is_ready(), 30)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert not transition(Transition.TRANSITION_ACTIVATE)  # out of order: refused, the node goes on
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert diagnosed(lifecycle_state="unconfigured", transitions_refused="1",
                         **{"refused activate from unconfigured": "1"})
        assert not transition(Transition.TRANSITION_DEACTIVATE)  # another one: counted too
        assert diagnosed(transitions_refused="2")
        assert transition(Transition.TRANSITION_CONFIGURE) and state() == State.PRIMARY_STATE_INACTIVE
        backend = node.backend
        assert backend is not None and node.assembly is None and not records  # loaded, not perceiving
        assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
        spin_until(executor, lambda: records, 60)
        assert diagnosed(lifecycle_state="active", transitions_refused="2") and int(
            {kv.key: kv.value for kv in diagnostics[-1].values}["windows"]) >= 1  # the pipeline's figures too
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
        assert node.assembly is None and not node.running and node.backend is backend  # paused, backend kept
        paused_at = len(records)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # nothing is published while inactive
            executor.spin_once(timeout_sec=0.1)
        assert len(records) == paused_at
        assert diagnosed(lifecycle_state="inactive") and diagnostics[-1].message.startswith("inactive")
        assert transition(Transition.TRANSITION_ACTIVATE)  # quick: the backend is loaded already
        spin_until(executor, lambda: len(records) > paused_at, 60)
        assert node.backend is backend and node.activations == 2
        assert transition(Transition.TRANSITION_DEACTIVATE) and transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and node.backend is None
        assert not [pub for pub in node.publishers if pub.topic_name == "/social_perception/results"]  # topics down
        assert transition(Transition.TRANSITION_CONFIGURE)  # and made again, once
        assert len([pub for pub in node.publishers if pub.topic_name == "/social_perception/results"]) == 1
    finally:
        executor.shutdown()
        node.on_shutdown(None)
        node.destroy_node()
        probe.destroy_node()
