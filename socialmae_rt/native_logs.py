"""MediaPipe's C++ side (TensorFlow Lite, absl) writes straight to file descriptor 2 when a graph
starts ("Created TensorFlow Lite XNNPACK delegate", "All log messages before absl::InitializeLog()
...", feedback-tensor notices): lines a user cannot act on, on every start. They are muted while
our graphs are built and first run; SOCIALMAE_RT_NATIVE_LOGS=1 keeps them (for debugging)."""

from __future__ import annotations

import contextlib
import os
import sys

KEEP_ENV = "SOCIALMAE_RT_NATIVE_LOGS"


@contextlib.contextmanager
def native_stderr_muted():
    """fd 2 goes to /dev/null for the block (the whole process: keep the block short)."""
    if os.environ.get(KEEP_ENV):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
