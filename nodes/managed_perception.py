"""managed_perception: the social_perception pipeline as a managed (lifecycle) ROS 2 node, for
behaviour managers that pause and resume perception (`ros2 lifecycle set`, Nav2-style managers).

Same parameters, topics and records as social_perception (socialmae-rt-node); the transitions:
- configure: reads the parameters, loads the weights and builds or loads the backend;
- activate: opens the sources, starts capture and publishing;
- deactivate: pauses: the sources (camera, microphone, file, topics) are closed, no window runs;
  the backend stays loaded, so activating again is quick;
- cleanup: frees the backend; shutdown: all of the above from any state.
A transition that fails (a bad parameter, a missing camera) returns FAILURE with the reason in the
log, and the node stays in the state it was in. The plain node (socialmae-rt-node) stays as it is.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from socialmae_rt.app.assemble import Assembly, close_all, make_backend
from socialmae_rt.backend import Backend
from socialmae_rt.messages import SourceError
from socialmae_rt.nodes.ros_process import run_node
from socialmae_rt.nodes.social_perception import (
    RosSink, assemble_for_node, declare_perception_parameters, read_perception_parameters, ros_input_streams)
from socialmae_rt.nodes.ros_inputs import RosInputs
from socialmae_rt.util.field_help import wants_help
from socialmae_rt.util.threads import yield_idle_threads

NODE_NAME = "social_perception"
WORKER_JOIN_S = 5.0  # how long the pipeline thread may take to finish its window once paused


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
        self.activations = 0

    # Transitions ---------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.options, self.node_config, self.input_config = read_perception_parameters(self)
            ros_input_streams(self.options)  # source/mic combinations are refused here
            self.backend = make_backend(self.options, on_status=self.get_logger().info)
        except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as err:
            self.get_logger().error(f"configure failed: {type(err).__name__}: {err}")
            return TransitionCallbackReturn.FAILURE
        self.sink = RosSink(self, self.options.embedding)
        info = self.backend.info
        self.get_logger().info(f"configured: {info.name} ({info.precision}) loaded; activate to start perceiving")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.assembly = assemble_for_node(self, self.options, self.input_config, self.sink,
                                              backend=KeptOpen(self.backend))
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
        if self.ros_inputs is not None:
            self.ros_inputs.destroy()
            self.ros_inputs = None
        self.assembly.close()
        self.assembly = None

    def _free(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        if self.sink is not None:  # its topics go with it; the next configure makes them again
            self.sink.destroy()
            self.sink = None

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
