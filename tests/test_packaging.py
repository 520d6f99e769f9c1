"""The tree installs as one `socialmae_rt` namespace and is also a valid ament_python package."""

import configparser
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mapped_subpackages_import_from_their_folders(tmp_path):
    # Run outside the repository so nothing resolves through the current directory.
    code = (
        "import importlib.util, socialmae_rt.engines as e, socialmae_rt.nodes as n, socialmae_rt.training as t;"
        "print(e.__file__); print(n.__file__); print(t.__file__);"
        "print([importlib.util.find_spec(m) for m in ('engines', 'nodes', 'training')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    engines, nodes, training, bare = out.stdout.splitlines()
    assert Path(engines) == ROOT / "engines" / "__init__.py"
    assert Path(nodes) == ROOT / "nodes" / "__init__.py"
    assert Path(training) == ROOT / "training" / "__init__.py"
    assert bare == "[None, None, None]"


def test_wheel_holds_only_the_namespace(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("socialmae_rt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"socialmae_rt"}
    # Every package in the tree is in the wheel, under the namespace (catches a missed `packages` entry).
    mapped = {"socialmae_rt": "socialmae_rt", "engines": "socialmae_rt/engines", "nodes": "socialmae_rt/nodes",
              "training": "socialmae_rt/training"}
    for folder, target in mapped.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.relative_to(ROOT / folder).as_posix()
            assert f"{target}/{relative}" in names, f"{folder}/{relative} is missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "socialmae-rt = socialmae_rt.cli:main" in text
    # pip puts exactly our three commands on PATH; the ROS executables setup.py writes for colcon
    # (`ros2 run socialmae_rt social_perception`) stay out of wheels: no entry point, no script file.
    groups = configparser.ConfigParser()
    groups.read_string(text)
    assert set(groups["console_scripts"]) == {"socialmae-rt", "socialmae-rt-node", "socialmae-rt-managed-node",
                                                "socialmae-rt-laugh-responder"}
    assert not [n for n in names if ".data/scripts/" in n]


def test_ament_python_package_files():
    manifest = ET.parse(ROOT / "package.xml").getroot()
    assert manifest.get("format") == "3"
    assert manifest.findtext("name") == "socialmae_rt"
    assert manifest.find("export/build_type").text == "ament_python"
    assert {d.text for d in manifest.findall("exec_depend")} >= {"rclpy", "std_msgs", "sensor_msgs", "diagnostic_msgs"}
    assert (ROOT / "resource" / "socialmae_rt").is_file()
    setup_py = (ROOT / "setup.py").read_text()
    assert "share/ament_index/resource_index/packages" in setup_py and "resource/{PACKAGE}" in setup_py
    assert "$base/lib/socialmae_rt" in (ROOT / "setup.cfg").read_text()
