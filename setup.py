"""ament_python entry point: colcon and `ros2 run` read this; pip reads pyproject.toml.

Package metadata, dependencies and console scripts live in pyproject.toml; this adds what a ROS 2
install expects: files under share/ (package index marker, package.xml, launch files and their
configs) and the node executables `ros2 run socialmae_rt <executable>` looks for in
lib/socialmae_rt/ (setup.cfg points setuptools' script directory there).
"""

from glob import glob

from setuptools import setup
from setuptools.command.install_scripts import install_scripts

PACKAGE = "socialmae_rt"

# `ros2 run socialmae_rt <name>` and launch files' Node(executable=<name>). These are not console
# scripts: pip must not put generic names like `social_perception` on PATH (its commands are the
# socialmae-rt-* scripts in pyproject.toml), so they are written only by a `setup.py install`.
ROS_EXECUTABLES = {
    "social_perception": "socialmae_rt.nodes.social_perception",
    "managed_perception": "socialmae_rt.nodes.managed_perception",
    "laugh_responder": "socialmae_rt.nodes.laugh_responder",
}

ROS_EXECUTABLE_TEMPLATE = """\
#!{python}
# `ros2 run {package} {name}`: written by {package}'s setup.py at install time.
import sys

from {module} import main

if __name__ == "__main__":
    sys.exit(main())
"""


class install_scripts_with_ros_executables(install_scripts):
    """setuptools' install_scripts, plus the ROS node executables.

    colcon's ament_python build runs `setup.py install`, where setuptools writes the console
    scripts itself (into lib/socialmae_rt/, setup.cfg); the ROS executables go beside them, with
    the same interpreter. Wheels (pip install, pip wheel) set `no_ep`: console scripts are left to
    the installer, which writes only those in entry_points.txt, so the ROS names never reach it.
    """

    def run(self) -> None:
        super().run()
        if self.no_ep:
            return
        python = self.get_finalized_command("build_scripts").executable
        for name, module in ROS_EXECUTABLES.items():
            self.write_script(name, ROS_EXECUTABLE_TEMPLATE.format(python=python, package=PACKAGE, name=name,
                                                                   module=module))


dist = setup(
    cmdclass={"install_scripts": install_scripts_with_ros_executables},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        (f"share/{PACKAGE}/launch/config", sorted(glob("launch/config/*.yaml"))),
    ],
)

# colcon reads the package's metadata by running this file up to configuration (stop_after="config")
# and ast.literal_eval-ing repr() of the distribution's attributes. setuptools keeps pyproject's
# `requires-python` as a SpecifierSet, whose repr is not a literal, and colcon stops with
# "invalid syntax" (colcon-python-setup-py issue 56). The same requirement as a plain string reads
# fine. Builds are unaffected: setup() has run every command by the time it returns.
if dist is not None and dist.python_requires is not None:
    dist.python_requires = dist.metadata.python_requires = str(dist.python_requires)
