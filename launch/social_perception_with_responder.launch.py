"""Launch social_perception and the laugh_responder behaviour listening to its laughter onsets.

    ros2 launch socialmae_rt social_perception_with_responder.launch.py source:=0 model:=small
    ros2 launch socialmae_rt social_perception_with_responder.launch.py namespace:=robot1 \
        command:=giggle cooldown_s:=3.0
    ros2 launch socialmae_rt social_perception_with_responder.launch.py --show-args

Every argument of social_perception.launch.py works here too (the perception node is started by
that file's own code). The responder runs in the same namespace and its onset_topic is set to
the perception node's ~/laughter_onset there, e.g. /robot1/social_perception/laughter_onset.
Its other parameters come from `responder_params_file` (default config/laugh_responder.yaml),
then from the pass-through arguments given on the command line.
"""

import importlib.util
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

LAUNCH_DIR = os.path.dirname(os.path.abspath(__file__))
PERCEPTION_LAUNCH_FILE = "social_perception.launch.py"  # beside this file, installed with it
RESPONDER_NAME = "laugh_responder"
RESPONDER_EXECUTABLE = "laugh_responder"  # lib/socialmae_rt/laugh_responder, written by setup.py

# Arguments that configure the launch, not the responder (the perception file's are its own).
LAUNCH_ONLY_ARGUMENTS = ("responder_params_file",)

# Pass-through arguments -> type of the laugh_responder parameter of the same name.
PARAMETER_TYPES = {
    "command": "str",
    "cooldown_s": "float",
    "sound": "str",
}


def onset_topic(namespace, perception_node="social_perception"):
    """The perception node's ~/laughter_onset in `namespace` ("", "robot1" or "/robot1")."""
    return "/" + "/".join([part for part in namespace.split("/") if part] + [perception_node, "laughter_onset"])


def _load_perception_launch():
    path = os.path.join(LAUNCH_DIR, PERCEPTION_LAUNCH_FILE)
    spec = importlib.util.spec_from_file_location("socialmae_rt_social_perception_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_launch_description():
    perception = _load_perception_launch()

    def responder_node(context):
        given = {name: LaunchConfiguration(name).perform(context) for name in PARAMETER_TYPES}
        namespace = LaunchConfiguration("namespace").perform(context)  # declared by the perception file
        return [Node(
            package=perception.PACKAGE,
            executable=RESPONDER_EXECUTABLE,
            name=RESPONDER_NAME,
            namespace=namespace,
            parameters=[
                LaunchConfiguration("responder_params_file").perform(context),
                {  # after the file: the last value of a parameter wins
                    **perception.typed_overrides(given, PARAMETER_TYPES),
                    "onset_topic": onset_topic(namespace, perception.NODE_NAME),
                },
            ],
            ros_arguments=["--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
        )]

    return LaunchDescription([
        *perception.launch_entities(),
        DeclareLaunchArgument(
            "responder_params_file", default_value=os.path.join(LAUNCH_DIR, "config", "laugh_responder.yaml"),
            description="YAML parameter file for laugh_responder (key /**/laugh_responder)"),
        DeclareLaunchArgument(
            "command", default_value="",
            description="behaviour command sent on each laughter onset; empty: from responder_params_file"),
        DeclareLaunchArgument(
            "cooldown_s", default_value="",
            description="no second command sooner than this many seconds; empty: from responder_params_file"),
        DeclareLaunchArgument(
            "sound", default_value="",
            description="WAV file played with each command; empty: from responder_params_file"),
        OpaqueFunction(function=responder_node),
    ])
