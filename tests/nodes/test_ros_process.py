"""Parameter files are read before rcl: a malformed one is one error line, one that does not name
the node is a warning (rcl would ignore it silently)."""

import subprocess
import sys
from pathlib import Path

import pytest

from socialmae_rt.nodes.ros_process import check_params_files


def test_a_file_without_a_section_for_the_node_is_a_warning(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("camera_driver:\n  ros__parameters:\n    fps: 30\n")
    ours = tmp_path / "ours.yaml"
    ours.write_text("/robot/social_perception:\n  ros__parameters:\n    hop: 1.0\n")
    wildcard = tmp_path / "all.yaml"
    wildcard.write_text("/**:\n  ros__parameters:\n    use_sim_time: false\n")
    argv = ["x", "--ros-args", "--params-file", str(other), "--params-file", str(ours), "--params-file", str(wildcard)]
    (warning,) = check_params_files(argv, "social_perception")
    assert str(other) in warning and "its sections are camera_driver, so none of its parameters apply" in warning


def test_a_malformed_file_is_one_error_line_from_the_node(tmp_path, context):
    bad = tmp_path / "bad.yaml"
    bad.write_text("social_perception:\n  ros__parameters:\n    hop: [1.0\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        check_params_files(["x", "--params-file", str(bad)], "social_perception")
    env_script = Path(sys.executable).with_name("socialmae-rt-node")
    result = subprocess.run([str(env_script), "--ros-args", "--params-file", str(bad)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"social_perception: error: --params-file {bad} is not valid YAML" in result.stderr
