"""WindowScheduler: which window to run next, on a fixed hop grid, never building a backlog.

Window ends lie on a grid anchored at the first data: t0 = first stamp + window, t0 + hop, ...
Given how far the data is complete, `next_window` returns the window end to run now:
- latest-wins (live): the newest complete window; grid points passed over are counted as skipped.
- every-window (offline files): the oldest window not yet run, so a file yields every window.
Either way the scheduler holds one integer of state: no queue exists to grow.
"""

from __future__ import annotations

from dataclasses import dataclass

from socialmae_rt.messages import seconds_to_ns

MIN_HOP_S = 0.25


@dataclass
class SchedulerConfig:
    hop_s: float = 0.5
    window_s: float = 4.0
    latest_wins: bool = True

    def __post_init__(self) -> None:
        if not MIN_HOP_S <= self.hop_s <= self.window_s:
            raise ValueError(
                f"hop must be between {MIN_HOP_S} s and the window ({self.window_s} s), got {self.hop_s} s"
            )


class WindowScheduler:
    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.hop_ns = seconds_to_ns(self.config.hop_s)
        self.window_ns = seconds_to_ns(self.config.window_s)
        self.reset()

    def reset(self) -> None:
        self.first_end_ns: int | None = None
        self.last_index: int = -1  # grid index of the last window handed out
        self.windows = 0
        self.skipped = 0

    def anchor(self, first_stamp_ns: int) -> None:
        """Fix the grid at the first data; later calls are ignored."""
        if self.first_end_ns is None:
            self.first_end_ns = first_stamp_ns + self.window_ns

    def window_end(self, index: int) -> int:
        return self.first_end_ns + index * self.hop_ns

    def next_window(self, complete_until_ns: int | None) -> int | None:
        """The end time of the window to run now, or None if no new window is complete."""
        if self.first_end_ns is None or complete_until_ns is None or complete_until_ns < self.first_end_ns:
            return None
        newest = (complete_until_ns - self.first_end_ns) // self.hop_ns
        if newest <= self.last_index:
            return None
        if self.config.latest_wins:
            self.skipped += newest - self.last_index - 1
            self.last_index = newest
        else:
            self.last_index += 1
        self.windows += 1
        return self.window_end(self.last_index)

    def pending(self, complete_until_ns: int | None) -> int:
        """How many complete windows have not been handed out yet (for progress displays)."""
        if self.first_end_ns is None or complete_until_ns is None or complete_until_ns < self.first_end_ns:
            return 0
        return max(0, (complete_until_ns - self.first_end_ns) // self.hop_ns - self.last_index)
