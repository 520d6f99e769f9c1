"""Start capturing before the pipeline exists: the window fills while the model loads.

A live run needs `window_s` (4 s) of data before its first result. Loading torch, MediaPipe
and the model takes a few seconds more; started in that order, the two add up. Wrapping each
live source in a `PrefetchedSource` and calling `start()` right after opening it makes them
overlap: capture runs in its own thread and holds what arrives until the pipeline iterates.
"""

from __future__ import annotations

import collections
import threading
from typing import Iterator

from socialmae_rt.messages import AudioChunk, VideoFrame

DEFAULT_MAX_HELD = 512  # ~17 s of 30 fps video, or several seconds of video plus audio chunks


class PrefetchedSource:
    """A Source that reads its inner source from `start()` on, in a thread of its own."""

    def __init__(self, inner, max_held: int = DEFAULT_MAX_HELD) -> None:
        if max_held < 1:
            raise ValueError(f"max_held must be >= 1, got {max_held}")
        self.inner = inner
        self.max_held = max_held
        self._held: collections.deque = collections.deque()
        self._ready = threading.Condition()
        self._finished = False  # the inner iterator ended
        self._closed = False
        self._thread: threading.Thread | None = None

    # The Source contract, delegated: health and stream kinds are the inner source's.
    @property
    def status(self):
        return self.inner.status

    @property
    def has_video(self) -> bool:
        return self.inner.has_video

    @property
    def has_audio(self) -> bool:
        return self.inner.has_audio

    @property
    def clock(self) -> str:
        return self.inner.clock

    @property
    def duration_s(self):
        return getattr(self.inner, "duration_s", None)

    def open(self) -> None:
        self.inner.open()

    def start(self) -> "PrefetchedSource":
        if self._thread is None:
            self.inner.open()
            self._thread = threading.Thread(target=self._read, name=f"prefetch-{self.status.name}", daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        try:
            for item in self.inner:
                with self._ready:
                    if self._closed:
                        return
                    if len(self._held) >= self.max_held:  # nobody reads yet: keep the newest
                        self._held.popleft()
                        self.inner.status.count("prefetch_dropped")
                    self._held.append(item)
                    self._ready.notify()
        finally:
            with self._ready:
                self._finished = True
                self._ready.notify_all()

    def __iter__(self) -> Iterator[VideoFrame | AudioChunk]:
        self.start()
        while True:
            with self._ready:
                while not self._held and not self._finished and not self._closed:
                    self._ready.wait(timeout=0.1)
                if self._closed or (self._finished and not self._held):
                    return
                items = list(self._held)
                self._held.clear()
            yield from items

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._held.clear()
            self._ready.notify_all()
        self.inner.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
