"""MediaPipe's C++ side (TensorFlow Lite, absl) writes straight to file descriptor 2 when a graph
starts ("Created TensorFlow Lite XNNPACK delegate", "All log messages before absl::InitializeLog()
...", feedback-tensor notices): lines a user cannot act on, on every start. They are muted while
our graphs are built and first run; SOCIALMAE_RT_NATIVE_LOGS=1 keeps them (for debugging)."""

from __future__ import annotations

import contextlib
import os
import sys

KEEP_ENV = "SOCIALMAE_RT_NATIVE_LOGS"
OPENCV_LOG_SILENT = 0  # cv::utils::logging::LOG_LEVEL_SILENT


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


@contextlib.contextmanager
def opencv_logs_muted():
    """OpenCV's own log lines ("[ WARN:0@0.1] global cap_v4l.cpp ... can't open camera by index")
    off for the block: the caller says what failed in its own words. Process-wide: keep it short."""
    if os.environ.get(KEEP_ENV):
        yield
        return
    import cv2

    previous = cv2.getLogLevel()
    cv2.setLogLevel(OPENCV_LOG_SILENT)
    try:
        yield
    finally:
        cv2.setLogLevel(previous)
