"""The README's quick start, run as pasted as far as this machine allows: bash from the repository
root, a fresh HOME, Google Drive answered by a server on 127.0.0.1 (the released files replaced by
tiny ones of the same format). No camera here: the camera lines must fail in one line, before any
model loads, and run through when the camera is replaced by a file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_blocks() -> list[list[str]]:
    """The bash blocks under '## Quick start', each as its command lines (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
            for block in blocks]


def bash(lines: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -e\n" + "\n".join(lines)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sample_clip(tmp_path_factory) -> Path:
    from socialmae_rt.media.sample import build_sample_clip

    return build_sample_clip(tmp_path_factory.mktemp("clip") / "sample.mp4", seconds=8.0).path


@pytest.fixture
def fresh_home(tmp_path, fake_drive, released_files):
    from socialmae_rt.weights.released import RELEASED

    for item in RELEASED.values():
        fake_drive.files[item.drive_id] = released_files[item.task].read_bytes()
    home = tmp_path / "home"
    home.mkdir()
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("SOCIALMAE_RT_CACHE", "_ROS_WHEELS_BOOTSTRAP_COMPLETE",
                                                            "VIRTUAL_ENV")}
    # the venv's bin off the PATH: activating it is the README's job
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not p.startswith(str(ROOT / ".venv")))
    env.update(HOME=str(home), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID="71")
    return env


def test_the_quick_start_blocks_are_what_the_test_runs():
    console, ros, hri, make = quick_start_blocks()
    assert console[0] == ros[0] == "make setup && source .venv/bin/activate"
    assert console[1] == ros[1] == "socialmae-rt weights get"
    assert len(console) <= 3 and len(ros) <= 4  # webcam to console in three lines, to ROS topics in four
    assert make == ["make demo", "make test"]
    assert len(hri) == 1 and hri[0].startswith("socialmae-rt-node --ros-args ")  # the ROS4HRI mode, one command


def test_the_ros4hri_line_sets_only_parameters_the_node_has_to_values_it_takes():
    from socialmae_rt.nodes.social_perception import FACE_MODES, NodeConfig, parameter_names

    line = quick_start_blocks()[2][0]
    given = dict(re.findall(r"-p (\w+):=(\S+)", line))
    assert given["faces"] == "hri" and given["source"] == "ros" and given["faces"] in FACE_MODES
    assert set(given) <= set(parameter_names())
    NodeConfig(faces=given["faces"])  # accepted


def test_the_console_quick_start_runs_as_pasted(fresh_home, tmp_path, sample_clip):
    console = quick_start_blocks()[0]
    done = bash(console[:2] + ["command -v socialmae-rt"], fresh_home)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(ROOT / ".venv" / "bin" / "socialmae-rt")
    bundle = Path(fresh_home["HOME"]) / ".cache" / "socialmae_rt" / "weights" / "bundle"
    assert {p.name for p in bundle.glob("*.safetensors")} == {"emotion.safetensors", "laughter.safetensors",
                                                              "personality.safetensors", "encoder.safetensors"}
    # the camera line: no camera on this machine, so one line saying so
    no_camera = bash([console[0], console[2]], fresh_home, timeout=300)
    assert no_camera.returncode == 2
    errors = [line for line in no_camera.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "camera" in errors[0].lower(), no_camera.stderr[-2000:]
    # the same line with the camera replaced by a file runs, on the downloaded weights
    with_file = console[2].replace("--source 0", f"--source {sample_clip} --duration 5 --backend torch")
    ran = bash([console[0], with_file], fresh_home, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "done: " in ran.stdout and "emotion <- " in ran.stdout and "random" not in ran.stdout.split("done: ")[0]


def test_the_ros_quick_start_runs_as_pasted(fresh_home, sample_clip):
    ros = quick_start_blocks()[1]
    assert bash(ros[:2], fresh_home).returncode == 0
    no_camera = bash([ros[0], ros[2]], fresh_home, timeout=300)
    assert no_camera.returncode == 2 and "camera" in no_camera.stderr.lower(), no_camera.stderr[-2000:]
    with_file = ros[2] + f" -p source:={sample_clip} -p backend:=torch -p exit_at_end:=true -p hop:=1.0"
    ran = bash([ros[0], with_file], fresh_home, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "first result" in ran.stderr and "input ended" in ran.stderr
