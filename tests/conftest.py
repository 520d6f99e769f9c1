"""The test session: its own engine cache, and the fixtures the whole tree shares.

Test modules cannot import each other (pytest --import-mode=importlib), so what they share lives
in tests/fixtures/ (media files, a PulseAudio server, ROS contexts, checkpoint layouts, a loopback
Google Drive, typed statuses), loaded below as pytest plugins.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# tests/ on the path for the fixture package (importlib mode does not put it there).
sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = [
    "fixtures.media",
    "fixtures.pulse_audio",
    "fixtures.ros",
    "fixtures.checkpoints",
    "fixtures.google_drive",
    "fixtures.status",
]

# The engine cache (ONNX exports, OpenVINO IR) of this test session: one folder shared by every
# test and the commands they start, so the tiny model's graphs are built once per session and
# never land in (or come from) the user's own ~/.cache/socialmae_rt.
_SESSION_CACHE: "tempfile.TemporaryDirectory[str] | None" = None


def pytest_configure(config) -> None:  # noqa: ANN001 (pytest hook)
    global _SESSION_CACHE
    if "SOCIALMAE_RT_CACHE" not in os.environ:
        _SESSION_CACHE = tempfile.TemporaryDirectory(prefix="socialmae-rt-test-cache-")
        os.environ["SOCIALMAE_RT_CACHE"] = _SESSION_CACHE.name


def pytest_unconfigure(config) -> None:  # noqa: ANN001 (pytest hook)
    if _SESSION_CACHE is not None:
        os.environ.pop("SOCIALMAE_RT_CACHE", None)
        _SESSION_CACHE.cleanup()
