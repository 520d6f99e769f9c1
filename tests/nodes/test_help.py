"""`--help` of the node executables: every parameter with its type, default and meaning, exit 0,
and nothing started (no ROS context, no camera, no microphone)."""

import subprocess
import sys
from pathlib import Path

import pytest

from socialmae_rt.field_help import field_comments, wants_help
from socialmae_rt.runner import RunOptions

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["socialmae-rt-node", "socialmae-rt-laugh-responder"])
def test_help_lists_every_parameter_and_starts_nothing(script):
    from socialmae_rt.nodes.laugh_responder import LaughResponderConfig
    from socialmae_rt.nodes.social_perception import parameter_names

    result = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # no ALSA/JACK probing, no ROS logging: nothing was opened
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    expected = set(parameter_names()) if script == "socialmae-rt-node" else {
        name for name in LaughResponderConfig.__dataclass_fields__}
    assert listed == expected
    for line in result.stdout.splitlines():
        if line.startswith("  "):
            assert len(line.split()) >= 4, f"no meaning given: {line!r}"  # name, type, default, meaning


def test_an_emotion_only_checkpoint_says_which_topics_stay_silent():
    from types import SimpleNamespace

    from socialmae_rt.model import SocialMAEConfig
    from socialmae_rt.nodes.social_perception import served_tasks

    emotion_only = SimpleNamespace(model_config=SocialMAEConfig(extra_heads={}))  # as the released CREMA-D one
    assert served_tasks(emotion_only) == (["emotion"], ["laughter", "personality"])
    everything = SimpleNamespace(model_config=SocialMAEConfig(extra_heads={"laughter": 1, "personality": 5}))
    assert served_tasks(everything) == (["emotion", "laughter", "personality"], [])


def test_help_is_ours_only_before_ros_args():
    assert wants_help(["--help"]) and wants_help(["-h", "--ros-args", "-p", "a:=1"])
    assert not wants_help(["--ros-args", "--help"])  # after --ros-args the arguments are ROS's


def test_config_comments_are_read_from_the_source():
    comments = field_comments(RunOptions)
    assert comments["source"] == "camera index, /dev/video*, URL, or a media file"
    assert comments["triton_url"].startswith('backend "triton": the server')  # the comment block above it
    assert set(comments) <= set(RunOptions.__dataclass_fields__)
