"""managed_perception: the social_perception pipeline as a managed (lifecycle) ROS 2 node, for
behaviour managers that pause and resume perception (`ros2 lifecycle set`, Nav2-style managers).

Same parameters, topics and records as social_perception (socialmae-rt-node); the transitions:
- configure: reads the parameters, loads the weights and builds or loads the backend;
- activate: opens the sources, starts capture and publishing;
- deactivate: pauses: the sources (camera, microphone, file, topics) are closed, no window runs;
  the backend stays loaded, so activating again is quick;
- cleanup: frees the backend; shutdown: all of the above from any state.
A transition that fails (a bad parameter, a missing camera) returns FAILURE with the reason in the
log, and the node stays in the state it was in. A transition asked for out of order (activate
while unconfigured, ...) is refused, logged once per kind and counted. /diagnostics at 1 Hz says
the lifecycle state, those counts, and while active everything the plain node says. The plain
node (socialmae-rt-node) stays as it is.
"""

from __future__ import annotations

import collections
import sys
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from socialmae_rt.app.assemble import Assembly, close_all, make_backend
from socialmae_rt.backend import Backend
from socialmae_rt.messages import SourceError
from socialmae_rt.nodes.ros_inputs import RosInputs
from socialmae_rt.nodes.ros_process import run_node
from socialmae_rt.nodes.social_perception import (
    RosSink, assemble_for_node, declare_perception_parameters, diagnostic_array, health, pipeline_values,
    read_perception_parameters, ros_input_streams)
from socialmae_rt.util.field_help import wants_help
from socialmae_rt.util.threads import yield_idle_threads

NODE_NAME = "social_perception"
WORKER_JOIN_S = 5.0  # how long the pipeline thread may take to finish its window once paused
# lifecycle_msgs/Transition ids -> names ("activate"), for a request that gives only the id.
TRANSITION_LABELS = {getattr(Transition, name): name.removeprefix("TRANSITION_").lower()
                     for name in dir(Transition) if name.startswith("TRANSITION_") and name.isupper()}


class KeptOpen:
    """The configured backend as an activation borrows it: an assembly's close() leaves it loaded."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def close(self) -> None:
        pass  # freed at cleanup


class ManagedPerceptionNode(LifecycleNode):
    def __init__(self, **node_options) -> None:
        super().__init__(NODE_NAME, **node_options)
        declare_perception_parameters(self)
        self.backend: Backend | None = None
        self.sink: RosSink | None = None
        self.assembly: Assembly | None = None
        self.ros_inputs: RosInputs | None = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.hri_faces = None
        self.activations = 0
        self.options = None
        self.refused: collections.Counter[str] = collections.Counter()  # "activate from unconfigured" -> times
        self.failed_transitions: collections.Counter[str] = collections.Counter()  # transition -> times it failed
        self._count_refused_transitions()
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)

    def _count_refused_transitions(self) -> None:
        """Wrap the ChangeState service: a transition not available from the current state is
        refused by rclpy (success false); count it and say it once per kind."""
        service = self._service_change_state
        answer = service.callback

        def counted(request: ChangeState.Request, response: ChangeState.Response) -> ChangeState.Response:
            state = self._state_machine.current_state[1]
            available = [(t[0], t[1]) for t in self._state_machine.available_transitions]  # (id, label)
            label, transition_id = request.transition.label, request.transition.id
            wanted = label or TRANSITION_LABELS.get(transition_id, str(transition_id))
            if not any((t_label == label) if label else (t_id == transition_id) for t_id, t_label in available):
                kind = f"{wanted} from {state}"
                if kind not in self.refused:
                    self.get_logger().error(
                        f"transition {wanted} refused: not possible from {state} (possible: "
                        f"{', '.join(sorted(label for _, label in available)) or 'none'}); further ones are counted")
                self.refused[kind] += 1
                response.success = False
                return response
            response = answer(request, response)
            if not response.success:
                self.failed_transitions[wanted] += 1
            return response

        service.callback = counted

    # Transitions ---------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.options, self.node_config, self.input_config = read_perception_parameters(self)
            ros_input_streams(self.options, self.node_config.faces)  # source/mic/faces combinations are refused here
            self.backend = make_backend(self.options, on_status=self.get_logger().info)
        except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as err:
            self.get_logger().error(f"configure failed: {type(err).__name__}: {err}")
            return TransitionCallbackReturn.FAILURE
        self.sink = RosSink(self, self.options.embedding, faces=self.node_config.faces, voices=self.options.speakers)
        info = self.backend.info
        self.get_logger().info(f"configured: {info.name} ({info.precision}) loaded; activate to start perceiving")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.assembly = assemble_for_node(self, self.options, self.input_config, self.sink,
                                              faces=self.node_config.faces, backend=KeptOpen(self.backend))
        except (SourceError, FileNotFoundError, ValueError) as err:
            self.get_logger().error(f"activate failed: {err}")
            return TransitionCallbackReturn.FAILURE
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, args=(self.assembly, self._stop),
                                        name="managed-perception-pipeline", daemon=True)
        self._worker.start()
        self.activations += 1
        self.get_logger().info(f"active: perceiving {self.options.source}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._pause()
        self.get_logger().info("inactive: sources closed, no inference; the backend stays loaded")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        self.get_logger().info("unconfigured: backend freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._pause()
        self._free()
        return TransitionCallbackReturn.SUCCESS

    # Running -------------------------------------------------------------------------------------
    def _run(self, assembly: Assembly, stop: threading.Event) -> None:
        try:
            assembly.run(stop)
        except Exception as err:  # noqa: BLE001 - logged; the manager sees it in the log and can re-activate
            if not stop.is_set():
                self.get_logger().error(f"perception stopped: {type(err).__name__}: {err}")

    def _pause(self) -> None:
        if self.assembly is None:
            return
        self._stop.set()
        close_all(self.assembly.sources)
        if self._worker is not None:
            self._worker.join(timeout=WORKER_JOIN_S)
        for inputs in (self.ros_inputs, self.hri_faces):
            if inputs is not None:
                inputs.destroy()
        self.ros_inputs = self.hri_faces = None
        self.assembly.close()
        self.assembly = None

    def _free(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        if self.sink is not None:  # its topics go with it; the next configure makes them again
            self.sink.destroy()
            self.sink = None

    def _publish_diagnostics(self) -> None:
        state = self._state_machine.current_state[1]
        values: dict[str, Any] = {"lifecycle_state": state, "activations": self.activations,
                                  "transitions_refused": sum(self.refused.values()),
                                  "transitions_failed": sum(self.failed_transitions.values())}
        values.update({f"refused {kind}": n for kind, n in self.refused.items()})
        assembly = self.assembly
        if assembly is not None:
            status = assembly.status()
            level, message = health(status)
            values.update(pipeline_values(status, assembly.backend, self.options.model))
        else:
            level = DiagnosticStatus.OK
            message = {"unconfigured": "unconfigured: configure loads the backend",
                       "inactive": "inactive: paused (activate to perceive)"}.get(state, state)
        self.diagnostics.publish(diagnostic_array(self, level, message, values))

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()


def main(argv: list[str] | None = None) -> int:
    if wants_help(sys.argv[1:] if argv is None else argv[1:]):
        from socialmae_rt.nodes.social_perception import node_help

        print(node_help().replace("socialmae-rt-node", "socialmae-rt-managed-node", 1)
              + "\nManaged (lifecycle): configure loads the backend, activate perceives, deactivate pauses.\n")
        return 0
    yield_idle_threads()  # before the backend imports torch
    return run_node(ManagedPerceptionNode, NODE_NAME, MultiThreadedExecutor, argv,
                    start_errors=(SourceError, FileNotFoundError), stop=lambda node: node.on_shutdown(None))


if __name__ == "__main__":
    sys.exit(main())
