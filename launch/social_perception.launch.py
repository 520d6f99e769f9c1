"""Launch the social_perception node: camera + microphone (or ROS image/audio topics) in; emotion,
laughter and apparent personality topics out.

    ros2 launch socialmae_rt social_perception.launch.py
    ros2 launch socialmae_rt social_perception.launch.py source:=0 model:=small weights:=/path/ft.pth
    ros2 launch socialmae_rt social_perception.launch.py namespace:=robot1 \
        params_file:=$(ros2 pkg prefix --share socialmae_rt)/launch/config/ros_topics.yaml \
        image_topic:=/camera/image_raw audio_topic:=/audio/audio
    ros2 launch socialmae_rt social_perception.launch.py --show-args

The node's parameters come from `params_file` (default: config/social_perception.yaml beside this
file, installed to share/socialmae_rt/launch/config/), then from the pass-through arguments given
on the command line. A pass-through argument left empty (its default) is not passed at all, so
the file's value, or else the node's own default, stays.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "socialmae_rt"
NODE_NAME = "social_perception"
EXECUTABLE = "social_perception"  # lib/socialmae_rt/social_perception, written by setup.py
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config")

# Arguments that configure the launch, not the node: every other argument declared here has the
# name of a node parameter and is passed through to it (tests/launch checks both).
LAUNCH_ONLY_ARGUMENTS = ("params_file", "namespace", "log_level", "image_topic", "audio_topic")

# Pass-through arguments -> type of the node parameter of the same name. Launch arguments are
# strings; each one given is converted here, because ROS refuses an integer for a double
# parameter and launch_ros would read `source:=0` as the integer 0.
PARAMETER_TYPES = {
    "source": "str",
    "mic": "str",
    "weights": "str",
    "model": "str",
    "backend": "str",
    "hop": "float",
    "max_faces": "int",
    "threads": "int",
    "embedding": "bool",
    "output": "str",
    "realtime": "bool",
    "zmq": "str",
}


def typed_overrides(given, types):
    """{parameter: value of its type} for the arguments given a value; "" means not given."""
    overrides = {}
    for name, text in given.items():
        if text == "":
            continue
        kind = types[name]
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError(f"launch argument {name}:={text} must be true or false")
            overrides[name] = text.lower() == "true"
        elif kind in ("int", "float"):
            try:
                overrides[name] = int(text) if kind == "int" else float(text)
            except ValueError:
                expected = "an integer" if kind == "int" else "a number"
                raise ValueError(f"launch argument {name}:={text} must be {expected}") from None
        else:
            overrides[name] = text
    return overrides


def topic_remappings(image_topic, audio_topic):
    """Remap the node's input topics (`source:=ros`, `mic:=ros`); "" keeps a name as it is."""
    remappings = []
    if image_topic:
        remappings += [("image", image_topic), ("image/compressed", image_topic + "/compressed")]
    if audio_topic:
        remappings += [("audio", audio_topic), ("audio_info", audio_topic + "_info")]
    return remappings


def _perception_node(context):
    given = {name: LaunchConfiguration(name).perform(context) for name in PARAMETER_TYPES}
    parameters = [LaunchConfiguration("params_file").perform(context)]
    overrides = typed_overrides(given, PARAMETER_TYPES)
    if overrides:  # after the file: the last value of a parameter wins
        parameters.append(overrides)
    remappings = topic_remappings(LaunchConfiguration("image_topic").perform(context),
                                  LaunchConfiguration("audio_topic").perform(context))
    return [Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=LaunchConfiguration("namespace"),
        parameters=parameters,
        remappings=remappings,
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )]


def launch_entities():
    """The arguments and the node; social_perception_with_responder.launch.py reuses them."""
    return [
        DeclareLaunchArgument(
            "params_file", default_value=os.path.join(CONFIG_DIR, "social_perception.yaml"),
            description="YAML parameter file for the node (key /**/social_perception); "
                        "config/ros_topics.yaml beside it reads ROS image/audio topics"),
        DeclareLaunchArgument(
            "namespace", default_value="",
            description="ROS namespace of the node: its topics become /<namespace>/social_perception/..."),
        DeclareLaunchArgument(
            "log_level", default_value="info",
            description="ROS log level: debug, info, warn, error or fatal"),
        DeclareLaunchArgument(
            "image_topic", default_value="",
            description="with source:=ros, read sensor_msgs/Image from this topic (and CompressedImage "
                        "from <image_topic>/compressed); empty: the node's `image`"),
        DeclareLaunchArgument(
            "audio_topic", default_value="",
            description="with mic:=ros, read audio from this topic (and its format from <audio_topic>_info); "
                        "empty: the node's `audio`"),
        DeclareLaunchArgument(
            "source", default_value="",
            description="camera index (0), /dev/video*, URL, media file, or ros (image topics); "
                        "empty: from params_file"),
        DeclareLaunchArgument(
            "mic", default_value="",
            description="default, a device index or name substring, none, or ros (audio topic); "
                        "empty: from params_file"),
        DeclareLaunchArgument(
            "weights", default_value="",
            description="a bundle folder from `socialmae-rt weights import`, a released .pth, our .safetensors, or "
                        "'emotion=A laughter=B personality=C'; none anywhere: random weights (warned)"),
        DeclareLaunchArgument(
            "model", default_value="",
            description="model size when the weights do not say: base, small or tiny; empty: from params_file"),
        DeclareLaunchArgument(
            "backend", default_value="",
            description="torch, torch-bf16, ort, ort-int8 or trt; empty: from params_file"),
        DeclareLaunchArgument(
            "hop", default_value="",
            description="seconds between windows (0.25 to 4); empty: from params_file"),
        DeclareLaunchArgument(
            "max_faces", default_value="",
            description="most faces analysed per window; empty: from params_file"),
        DeclareLaunchArgument(
            "threads", default_value="",
            description="torch intra-op threads; empty: from params_file, else the library default"),
        DeclareLaunchArgument(
            "embedding", default_value="",
            description="true: also publish ~/embedding (pooled encoder output); empty: from params_file"),
        DeclareLaunchArgument(
            "output", default_value="",
            description="also append every record to this JSONL file; empty: from params_file"),
        DeclareLaunchArgument(
            "realtime", default_value="",
            description="true: pace a media file source at real time; empty: from params_file"),
        DeclareLaunchArgument(
            "zmq", default_value="",
            description="also publish records on this ZeroMQ PUB endpoint, e.g. tcp://127.0.0.1:5556"),
        OpaqueFunction(function=_perception_node),
    ]


def generate_launch_description():
    return LaunchDescription(launch_entities())
