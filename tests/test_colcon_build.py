"""`colcon build` of a copy of this repository as an ament_python package, and what `ros2 run`
and `ros2 launch` would find in its install space.

colcon comes from the dev extra (colcon-core, colcon-ros); the `ros2` command itself needs a ROS 2
install, so `ros2 run` is reproduced: the workspace's setup.sh sourced, the package prefix looked
up in the ament index, the executable taken from <prefix>/lib/socialmae_rt/ and started.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name("colcon")
PACKAGE = "socialmae_rt"
MESSAGES = "socialmae_rt_msgs"
# Top-level paths that are not sources: the venv, build outputs, colcon's own folders, VCS.
NOT_SOURCES = {".venv", "build", "install", "log", "outputs", "dist", ".git", ".pytest_cache"}


def copy_sources(destination: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skipped | (NOT_SOURCES & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, destination, ignore=ignore)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A colcon workspace with this package built (plain install, as a robot would build it)."""
    ws = tmp_path_factory.mktemp("ws")
    copy_sources(ws / "src" / PACKAGE)
    # colcon does not look inside a package's folder: the interface package sits beside it, as the
    # docs say; the generators come from the venv's PyPI ROS wheels.
    shutil.copytree(ROOT / MESSAGES, ws / "src" / MESSAGES)
    env = dict(os.environ, CMAKE_PREFIX_PATH=sys.prefix, AMENT_PREFIX_PATH=sys.prefix)
    result = subprocess.run(
        [str(COLCON), "build", "--base-paths", "src", "--event-handlers", "console_direct+"],
        cwd=ws, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return ws


def in_workspace(ws: Path, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command in a shell that sourced the workspace's install/setup.sh, on a private ROS domain."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    env.update(ROS_DOMAIN_ID=str(random.randint(1, 200)), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    script = '. "$WS/install/setup.sh" && exec "$@"'
    return subprocess.run(["bash", "-c", script, "bash", *command], env={**env, "WS": str(ws)}, cwd=ws,
                          capture_output=True, text=True, timeout=timeout)


def test_install_space_has_the_ament_files(workspace):
    prefix = workspace / "install" / PACKAGE
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    assert (prefix / "share" / PACKAGE / "package.xml").read_bytes() == (ROOT / "package.xml").read_bytes()
    launch = prefix / "share" / PACKAGE / "launch"
    for pattern in ("*.launch.py", "config/*.yaml"):
        assert sorted(p.name for p in launch.glob(pattern)) == sorted(p.name for p in (ROOT / "launch").glob(pattern))
    assert len(list(launch.glob("*.launch.py"))) == 2 and len(list((launch / "config").glob("*.yaml"))) == 3
    # Executables live in lib/<package>/ (setup.cfg); nothing generic lands on PATH.
    assert not (prefix / "bin").exists()


def test_ros2_run_finds_every_executable_in_the_package(workspace):
    # What `ros2 run socialmae_rt <executable>` does: package prefix from the ament index (set up by
    # install/setup.sh), then an executable file of that name in <prefix>/lib/<package>/.
    lookup = (
        "import os, socialmae_rt; from ament_index_python.packages import get_package_prefix;"
        f"lib = os.path.join(get_package_prefix('{PACKAGE}'), 'lib', '{PACKAGE}');"
        "print([n for n in ('social_perception', 'managed_perception', 'laugh_responder')"
        " if os.access(os.path.join(lib, n), os.X_OK)]);"
        "print(socialmae_rt.__file__)"
    )
    result = in_workspace(workspace, sys.executable, "-c", lookup)
    assert result.returncode == 0, result.stderr
    found, imported = result.stdout.splitlines()
    assert found == "['social_perception', 'managed_perception', 'laugh_responder']"
    # The workspace's copy is the one imported, not the editable install of the venv.
    assert Path(imported).is_relative_to(workspace / "install" / PACKAGE)


def test_social_perception_executable_runs_the_node(workspace):
    executable = workspace / "install" / PACKAGE / "lib" / PACKAGE / "social_perception"
    result = in_workspace(workspace, str(executable), "--ros-args", "-p", "source:=/nonexistent/clip.mp4",
                          "-p", "mic:=none", "-p", "model:=tiny")
    # The node declared its parameters, built its options and refused the missing file: one line, exit 2.
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("social_perception: error:")
    assert "/nonexistent/clip.mp4" in result.stderr


def test_laugh_responder_executable_runs_the_node(workspace):
    executable = workspace / "install" / PACKAGE / "lib" / PACKAGE / "laugh_responder"
    config = workspace / "install" / PACKAGE / "share" / PACKAGE / "launch" / "config" / "laugh_responder.yaml"
    result = in_workspace(workspace, str(executable), "--ros-args", "--params-file", str(config),
                          "-p", "cooldown_s:=-1.0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "laugh_responder: error: cooldown_s must be a number of seconds >= 0" in result.stderr


def test_the_interface_package_builds_beside_it_and_its_messages_import_from_the_workspace(workspace):
    prefix = workspace / "install" / MESSAGES
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / MESSAGES).is_file()
    probe = ("import socialmae_rt_msgs.msg as m; from rclpy.serialization import deserialize_message, serialize_message;"
             "p = m.Perception(face_id='face2', emotion_labels=['happy'], emotion=[1.0]);"
             "q = deserialize_message(serialize_message(p), m.Perception);"
             "print(m.__file__); print(q.face_id, list(q.emotion_labels), m.LaughterEvent.OFFSET)")
    result = in_workspace(workspace, sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr[-3000:]
    where, values = result.stdout.splitlines()
    assert where.startswith(str(prefix))  # the workspace's build, not the venv's
    assert values == "face2 ['happy'] 1"
