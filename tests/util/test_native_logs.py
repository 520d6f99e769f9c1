"""Native (fd 2) writes are muted inside the block only, and kept when asked for."""

import os

from socialmae_rt.util.native_logs import KEEP_ENV, native_stderr_muted


def test_fd2_is_muted_only_inside_the_block(capfd, monkeypatch):
    monkeypatch.delenv(KEEP_ENV, raising=False)
    os.write(2, b"before\n")
    with native_stderr_muted():
        os.write(2, b"native notice\n")  # as C++ code writes: straight to the file descriptor
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"


def test_the_environment_keeps_native_logs(capfd, monkeypatch):
    monkeypatch.setenv(KEEP_ENV, "1")
    with native_stderr_muted():
        os.write(2, b"native notice\n")
    assert capfd.readouterr().err == "native notice\n"
