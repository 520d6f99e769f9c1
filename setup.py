"""ament_python entry point: colcon and `ros2 run` read this; pip reads pyproject.toml.

Package metadata and dependencies live in pyproject.toml; this adds the files a ROS 2 install
expects under share/ (package index marker, package.xml, launch files and their configs).
"""

from glob import glob

from setuptools import setup

PACKAGE = "socialmae_rt"

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/launch/config", glob("launch/config/*.yaml")),
    ],
)
