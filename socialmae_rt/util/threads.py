"""Compute threads that give the CPU back when idle, as many as the cores this process may use.

A robot runs other nodes beside us. OpenMP threads that spin-wait between parallel regions
then fight those nodes for the cores: torch fp32 tiny took 2.1-7.0 s per window instead of
0.4-0.5 s under load 6-9, and OMP_WAIT_POLICY=PASSIVE put it back. OpenMP reads these variables
once, when its library loads (with torch), so every entry point (the CLI, the nodes) calls
`yield_idle_threads` before anything imports torch; a program that embeds socialmae_rt calls it
first thing too. Every backend sizes its pool with `compute_threads`.
"""

from __future__ import annotations

import os
import sys

from socialmae_rt.util.machine import usable_cores

# libgomp (torch's CPU wheels): sleep at once when idle; KMP_BLOCKTIME: the same for Intel's OpenMP.
IDLE_THREAD_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}

_late: list[bool] = []  # one entry per call: True when torch was already loaded


def yield_idle_threads() -> None:
    """Set IDLE_THREAD_SETTINGS where the environment leaves them unset (the user's values win)."""
    _late.append("torch" in sys.modules and not all(name in os.environ for name in IDLE_THREAD_SETTINGS))
    for name, value in IDLE_THREAD_SETTINGS.items():
        os.environ.setdefault(name, value)


def idle_threads_spin() -> bool:
    """True when torch's OpenMP threads spin when idle: nothing set the wait policy before torch loaded."""
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        return True
    return bool(_late) and _late[0]


def compute_threads(threads: int | None) -> int:
    """The thread count a backend uses: as given (>= 1), else every core this process may use."""
    if threads is None:
        return usable_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer (or None for every usable core), got {threads!r}")
    return threads
