"""Build ROS 2 interface packages (.msg folders with package.xml + CMakeLists.txt) into the venv.

    .venv/bin/python scripts/build_interfaces.py socialmae_rt_msgs [more package folders ...]

The generators come from the PyPI ROS wheels (the `ros-msgs` extra); cmake and a C/C++ compiler
from the system. Installed into the venv's prefix, the messages import with no environment
set-up (the ROS wheels' start-up hook sets the library path). A package is rebuilt only when one
of its files changed: the sha256 of its files is kept in <venv>/share/<name>/socialmae_rt_build.sha256.
Exit 1 with the build log's tail when a step fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = "socialmae_rt_build.sha256"
# Lets packages written for a ROS install (the test copies of hri_msgs, audio_common_msgs) build
# from the PyPI wheels as well: socialmae_rt_msgs includes it itself.
REPOINT = ROOT / "socialmae_rt_msgs" / "cmake" / "repoint_python_includes.cmake"


def package_name(folder: Path) -> str:
    manifest = folder / "package.xml"
    if not manifest.is_file():
        raise SystemExit(f"{folder}: no package.xml (an interface package folder was expected)")
    name = ElementTree.parse(manifest).getroot().findtext("name")
    if not name:
        raise SystemExit(f"{manifest}: no <name>")
    return name.strip()


def content_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(Path(__file__).read_bytes() + REPOINT.read_bytes())  # a changed recipe rebuilds too
    return digest.hexdigest()


def run_step(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise SystemExit(f"{' '.join(command[:2])} failed (exit {done.returncode}); the end of {log}:\n{tail}")


def build(folder: Path, prefix: Path, build_root: Path, force: bool = False) -> bool:
    """Configure, build and install one package into `prefix`; False when it was up to date."""
    name = package_name(folder)
    stamp = prefix / "share" / name / STAMP
    sha = content_sha256(folder)
    if not force and stamp.is_file() and stamp.read_text().strip() == sha:
        print(f"interfaces: {name} is up to date")
        return False
    for tool in ("cmake", "make", "cc", "c++"):
        if shutil.which(tool) is None:
            raise SystemExit(f"interfaces: {tool} not found; install cmake and g++ (scripts/install_system_deps.sh)")
    build_dir = build_root / name
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    log = build_dir / "build.log"
    env = dict(os.environ, CMAKE_PREFIX_PATH=str(prefix), AMENT_PREFIX_PATH=str(prefix),
               PATH=f"{prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    started = time.monotonic()
    print(f"interfaces: building {name} into {prefix} (log: {log})", flush=True)
    run_step(["cmake", str(folder.resolve()), "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}",
              f"-DCMAKE_INSTALL_PREFIX={prefix}", f"-DCMAKE_PROJECT_INCLUDE={REPOINT}"], build_dir, env, log)
    run_step(["cmake", "--build", ".", "--parallel", str(os.cpu_count() or 1)], build_dir, env, log)
    run_step(["cmake", "--install", "."], build_dir, env, log)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(sha + "\n")
    print(f"interfaces: {name} built in {time.monotonic() - started:.0f} s", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+", help="interface package folders (each with package.xml)")
    parser.add_argument("--prefix", default=sys.prefix, help="install prefix (default: this Python's venv)")
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "interfaces"),
                        help="where the build trees go (default: build/interfaces)")
    parser.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    args = parser.parse_args(argv)
    for folder in args.packages:
        build(Path(folder), Path(args.prefix), Path(args.build_dir), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
