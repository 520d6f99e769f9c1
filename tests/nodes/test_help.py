"""`--help` of the node executables: every parameter with its type, default and meaning, exit 0,
and nothing started (no ROS context, no camera, no microphone)."""

import subprocess
import sys
from pathlib import Path

import pytest

from socialmae_rt.app.options import RunOptions
from socialmae_rt.util.field_help import field_comments, wants_help
from socialmae_rt.util.options import option_named

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["socialmae-rt-node", "socialmae-rt-managed-node", "socialmae-rt-laugh-responder"])
def test_help_lists_every_parameter_and_starts_nothing(script):
    from socialmae_rt.nodes.laugh_responder import LaughResponderConfig
    from socialmae_rt.nodes.social_perception import parameter_names

    result = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # no ALSA/JACK probing, no ROS logging: nothing was opened
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    expected = set(parameter_names()) if script != "socialmae-rt-laugh-responder" else {
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
    from socialmae_rt.stream.pipeline import PipelineConfig

    comments = field_comments(PipelineConfig)
    assert comments["min_face_fill"] == "a face needs at least 2 of the 8 frame slots to be reported"
    assert comments["max_consecutive_failures"].startswith("This many windows failing in a row")  # the block above
    assert set(comments) <= set(PipelineConfig.__dataclass_fields__)


def test_run_options_carry_the_help_their_flag_and_parameter_show():
    source = option_named(RunOptions, "source")
    assert source.flag == "--source" and source.help_text() == (
        "camera index, /dev/videoN, stream URL, or a media file (mp4/mkv/avi/webm/flv) (default: 0)")
    timeout = option_named(RunOptions, "triton_timeout")  # a nested config's field, flattened with its prefix
    assert timeout.path == ("triton", "timeout_s") and timeout.flag == "--triton-timeout"
    assert timeout.help_text().endswith("(default: 10.0)")
    assert option_named(RunOptions, "calibrate_live_s").help_text().count("60 % ") == 1  # argparse's %% is one %


def test_message_types_the_help_and_docs_name_are_the_ones_the_nodes_use(context):
    """Every `pkg/Type` a --help row, the node's docstring or docs/ros.md's topic table gives for a
    topic is the type the running node really subscribes or publishes there."""
    import re

    import rclpy
    from rclpy.parameter import Parameter

    from socialmae_rt.nodes import laugh_responder, social_perception
    from socialmae_rt.nodes.laugh_responder import LaughResponder
    from socialmae_rt.nodes.social_perception import SocialPerceptionNode

    def type_name(msg_type) -> str:
        module = msg_type.__module__.split(".")[0]
        return f"{module}/{msg_type.__name__}"

    responder = LaughResponder(context=context)
    perception = SocialPerceptionNode(context=context, parameter_overrides=[
        Parameter("source", value="ros"), Parameter("mic", value="none"), Parameter("model", value="tiny"),
        Parameter("backend", value="torch")])
    try:
        help_text = laugh_responder.node_help()
        named = dict(re.findall(r"^  (onset_topic|command_topic)\s.*?\((\w+/\w+)", help_text, re.M))
        assert named == {"onset_topic": type_name(responder.subscription.msg_type),
                         "command_topic": type_name(responder.publisher.msg_type)}
        published = {pub.topic_name.removeprefix("/social_perception/"): type_name(pub.msg_type)
                     for pub in perception.publishers}
        docstring = re.findall(r"^  ~/(\w+)\s+(\w+/\w+)", social_perception.__doc__, re.M)
        # the node's own topics (~/name), and absolute ones it publishes from the start (/humans/faces/tracked)
        table = [(topic.removeprefix("~/"), kind) for topic, kind in re.findall(
            r"^\| `(~/\w+|/[\w/]+)` \| (\w+/\w+)", (ROOT / "docs" / "ros.md").read_text(), re.M)]
        assert len(docstring) >= 6 and len(table) >= 6
        for topic, kind in docstring + table:
            if topic in published:  # ~/embedding publishes only with embedding:=true
                assert kind == published[topic], f"~/{topic}: docs say {kind}, the node publishes {published[topic]}"
        assert {topic for topic, _ in table} >= set(published) - {"rosout", "parameter_events", "/diagnostics",
                                                                  "/rosout", "/parameter_events"}
    finally:
        perception.stop()
        perception.destroy_node()
        responder.destroy_node()
