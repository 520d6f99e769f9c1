"""How every node of this package runs as a process: init, spin, clean stop on SIGINT/SIGTERM."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node


# Declared by rclpy itself, or overrides ROS tools pass to every node.
ROS_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")


def reject_unknown_parameters(node: Node) -> None:
    """rclpy silently ignores an override nobody declared, so `-p modle:=tiny` would do nothing;
    call after declaring every parameter: a name the node does not have is an error naming it."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy keeps the overrides it was given here
    unknown = sorted(name for name in given if not node.has_parameter(name)
                     and name not in ROS_OWN_PARAMETERS and not name.startswith("qos_overrides."))
    if unknown:
        known = sorted(name for name in node._parameters if name not in ROS_OWN_PARAMETERS)
        raise ValueError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"{node.get_name()} has: {', '.join(known)}")


def params_files(argv: list[str]) -> list[str]:
    """The `--params-file PATH` arguments of a ROS command line."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]


def check_params_files(argv: list[str], node_name: str) -> list[str]:
    """Read every --params-file before rcl does: a malformed one is a ValueError naming the file and
    the YAML error (rcl would raise an RCLError traceback); one with no section for this node is
    returned as a warning (rcl would silently ignore it)."""
    import yaml

    warnings = []
    for path in params_files(argv):
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise ValueError(f"--params-file {path}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ValueError(f"--params-file {path} is not valid YAML: {err}") from err
        if not isinstance(document, dict):
            raise ValueError(f"--params-file {path}: expected a mapping of node names to "
                             f"{{ros__parameters: ...}}, got {type(document).__name__}")
        keys = [str(key) for key in document]
        if not any(key == "/**" or key.rstrip("/").split("/")[-1] in (node_name, "*", "**") for key in keys):
            warnings.append(f"--params-file {path} has no section for this node ({node_name}): its sections are "
                            f"{', '.join(keys) or 'none'}, so none of its parameters apply")
    return warnings


def run_node(
    make_node: Callable[[], Node],
    name: str,
    executor_factory: Callable[[], Executor],
    argv: list[str] | None = None,
    start_errors: tuple[type[BaseException], ...] = (),
    stop: Callable[[Node], None] | None = None,
) -> int:
    """Spin one node until SIGINT/SIGTERM (or until the node shuts ROS down itself); returns the exit
    code: the node's `exit_code` (1 after a fatal error), 0 after a clean stop.

    An invalid start (bad parameter, missing source: `start_errors`) prints one line and returns 2.
    We own the executor and shut it down ourselves: rclpy.spin's global executor prints an error
    from its __del__ at exit after SIGINT.
    """
    argv = argv if argv is not None else sys.argv
    try:
        for warning in check_params_files(argv, name):
            print(f"{name}: warning: {warning}", file=sys.stderr)
    except ValueError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    rclpy.init(args=argv)
    executor = executor_factory()
    node = None
    try:
        node = make_node()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException, *start_errors) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError:
        # A signal that arrives while the node is still starting shuts ROS down under it, and rcl
        # then raises "context is not valid" instead of ExternalShutdownException: a stop as well.
        if rclpy.ok():
            raise
    finally:
        executor.shutdown()
        if node is not None:
            if stop is not None:
                stop(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return getattr(node, "exit_code", 0) or 0
