"""Per-person estimates: personality is a trait, so each face's Big Five are accumulated over that
person's windows (a running mean and spread, Welford's update), kept while the tracker keeps the
face's id (through short absences and re-identification) and dropped when it gives the id up."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from socialmae_rt.results import PersonEstimate


@dataclass
class _Running:
    windows: int = 0
    mean: dict[str, float] = field(default_factory=dict)
    squares: dict[str, float] = field(default_factory=dict)  # sum of squared deviations from the mean

    def add(self, values: dict[str, float]) -> None:
        self.windows += 1
        for trait, value in values.items():
            old = self.mean.get(trait, 0.0)
            new = old + (value - old) / self.windows
            self.mean[trait] = new
            self.squares[trait] = self.squares.get(trait, 0.0) + (value - old) * (value - new)


class PersonEstimates:
    """update() on the inference thread, forget() on the capture thread: one lock between them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._people: dict[int, _Running] = {}

    def update(self, face_id: int, personality: dict[str, float], window_end_ns: int) -> PersonEstimate:
        with self._lock:
            running = self._people.setdefault(face_id, _Running())
            running.add(personality)
            return PersonEstimate(
                face_id=face_id, windows=running.windows, personality_mean=dict(running.mean),
                personality_std={trait: math.sqrt(total / running.windows) for trait, total in running.squares.items()},
                last_window_end_ns=window_end_ns)

    def forget(self, face_id: int) -> None:
        """The track is gone for good: the next face under a new id starts afresh."""
        with self._lock:
            self._people.pop(face_id, None)

    def reset(self) -> None:
        with self._lock:
            self._people.clear()

    def __contains__(self, face_id: int) -> bool:
        with self._lock:
            return face_id in self._people
