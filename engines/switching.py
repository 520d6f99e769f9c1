"""A backend that changes engines between two windows while the robot keeps perceiving.

`SwitchingBackend` runs one backend now and may replace it, without stopping the pipeline:
- **upgrade**: at a first start nothing is built yet, so it starts at once on a backend that only
  loads (e.g. torch fp32), builds the faster one (ONNX export, OpenVINO IR, int8 graphs and their
  accuracy gate) in a child process at the lowest CPU priority, loads it, and switches when it is
  ready; an int8 build that fails its gate moves on to the next candidate;
- **shadow check**: while an approximate backend runs (int8, bf16), every `every_s` seconds one
  live window is run again through the fp32 reference (ONNX Runtime, one thread, on a thread at the
  lowest CPU priority, never on the window's path) and compared. When `fail_after` checks in a row
  miss the bar, the backend's int8 graphs are marked refused (the next start does not pick them)
  and the next candidate is loaded and switched to.

The swap itself happens under the lock `infer` holds for a whole window, so a window runs on one
backend from start to end and none is lost.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from socialmae_rt.backend import Backend, BackendOutput, Int8Refused, StatusCallback
from socialmae_rt.engines.build_child import REFUSED_EXIT
from socialmae_rt.engines.int8_gate import MAX_BINARY_PROB_DIFF, MIN_INT8_COSINE, cosine_report, failures
from socialmae_rt.stream.status import ShadowHealth, Switch, SwitchingHealth

log = logging.getLogger(__name__)

LOWEST_PRIORITY = 19  # nice value of the shadow thread and of build processes


@dataclass
class ShadowConfig:
    """The live shadow check of an approximate backend against the fp32 reference."""

    enabled: bool = True
    every_s: float = 30.0  # one live window re-run through fp32 this often (0: every window, for tests)
    fail_after: int = 3  # this many checks in a row below the bar switch to the next backend
    min_cosine: float = MIN_INT8_COSINE  # the int8 gate's bar (laughter: probability within max_prob_diff)
    max_prob_diff: float = MAX_BINARY_PROB_DIFF
    history: int = 20  # rolling agreement over this many checks
    nice: int = LOWEST_PRIORITY  # the shadow thread's CPU priority (19: only idle time)

    def __post_init__(self) -> None:
        if self.every_s < 0:
            raise ValueError(f"ShadowConfig.every_s must be >= 0 seconds, got {self.every_s}")
        if self.fail_after < 1:
            raise ValueError(f"ShadowConfig.fail_after must be >= 1, got {self.fail_after}")
        if not 0 < self.min_cosine <= 1:
            raise ValueError(f"ShadowConfig.min_cosine must be in (0, 1], got {self.min_cosine}")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"ShadowConfig.nice must be 0..19, got {self.nice}")


@dataclass(frozen=True)
class Candidate:
    """A backend the switcher may move to: its name, whether it loads without building, and how."""

    name: str
    ready: bool  # its files are cached: loads in seconds, no child process
    load: Callable[[], Backend]  # in this process, from the cache
    build_spec: dict[str, Any] = field(default_factory=dict)  # for the build child (when not ready)
    # called on the loader thread before building, with the switcher's closing event; may block
    # (a site calibration waits for its recording) and raise to skip this candidate
    before_build: Callable[[threading.Event], None] | None = None
    waiting: str = ""  # what `pending` says while before_build blocks

    @property
    def pending(self) -> str:
        """What the switcher is doing about this candidate, for status and /diagnostics."""
        if self.before_build is not None and self.waiting:
            return self.waiting
        return f"{'loading' if self.ready else 'building'} {self.name}"


def approximate(backend: Backend) -> bool:
    """Runs in a precision below the fp32 reference (int8, bf16, fp16)."""
    precision = backend.info.precision
    return any(kind in precision for kind in ("int8", "bf16", "fp16"))


def lower_this_threads_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority (Linux: per thread; threads it starts inherit it)."""
    if nice > 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError as err:  # not permitted in some containers: run at normal priority, say so
            log.warning("could not lower the priority of %s (%s)", threading.current_thread().name, err)


class SwitchingBackend:
    """The Backend protocol over a backend that may be replaced between two windows."""

    def __init__(self, backend: Backend, *, upgrades: list[Candidate] = (), fallbacks: list[Candidate] = (),
                 start: Candidate | None = None,
                 reference: Callable[[], Backend] | None = None, shadow: ShadowConfig | None = None,
                 refuse: Callable[[Backend, str], None] | None = None, on_status: StatusCallback | None = None) -> None:
        self._current = backend
        self._lock = threading.Lock()  # held for a whole window, and for a swap
        self.model_config = backend.model_config
        self.preprocess = backend.preprocess
        self.shadow_config = shadow or ShadowConfig()
        self._say = on_status or (lambda message: log.info("%s", message))
        self._reference_factory = reference
        self._refuse = refuse
        self._fallbacks = list(fallbacks)
        self._start_candidate = start  # how to load the backend running now again (a fallback after an upgrade)
        self.switches: list[Switch] = []
        self.pending: str | None = None  # what is being built or loaded now
        self.problems: list[str] = []  # said once each: a shadow check or an upgrade that cannot run
        self.fallback_reason: str | None = None  # why the shadow check left an approximate backend
        self._leaving = False  # a fallback is on its way: no more verdicts on the backend being left
        self._started = time.monotonic()
        self._closed = threading.Event()
        # shadow check state
        self._offer = threading.Condition()
        self._offered: tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray], str] | None = None
        self._last_offer = -float("inf")
        self._scores: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.shadow_config.history)
        self.checks = 0
        self.failing_in_a_row = 0
        self.shadow_reference: str | None = None
        self._threads: list[threading.Thread] = []
        self._builds: list[subprocess.Popen] = []  # build children, killed at close
        # Loads happen on this thread, started here at the caller's priority: a backend's compute
        # threads inherit the priority of the thread that creates them.
        self._jobs: queue.Queue[tuple[list[Candidate], str | None]] = queue.Queue()
        self._start(self._loader, name="backend-loader")
        if upgrades:
            self.pending = upgrades[0].pending
            self._jobs.put((list(upgrades), None))
        if self.shadow_config.enabled and reference is not None:
            self._start(self._shadow_loop, name="backend-shadow-check")

    # The Backend protocol --------------------------------------------------------------------
    @property
    def info(self):
        return self._current.info

    @property
    def current(self) -> Backend:
        return self._current

    def __getattr__(self, name: str) -> Any:
        # What else a backend carries (export, ir, members, tasks): the current one's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._current, name)

    def infer(self, audio: np.ndarray | None = None, video: np.ndarray | None = None) -> BackendOutput:
        with self._lock:
            backend = self._current
            output = backend.infer(audio, video)
        self._maybe_offer(backend, audio, video, output)
        return output

    def close(self) -> None:
        self._closed.set()
        for child in self._builds:
            if child.poll() is None:
                child.kill()
                self._say(f"background build stopped unfinished ({self.pending}); the next start tries again, or "
                          "build it ahead with `socialmae-rt prepare-backend`")
        with self._offer:
            self._offer.notify_all()
        for thread in self._threads:
            thread.join(timeout=30.0)
        with self._lock:
            self._current.close()

    # Switching --------------------------------------------------------------------------------
    def switch_to(self, backend: Backend, why: str) -> None:
        """Replace the running backend between two windows; the old one is closed."""
        with self._lock:
            old, self._current = self._current, backend
            self.failing_in_a_row = 0
            self._leaving = False
            self._scores.clear()
        self.switches.append(Switch(round(time.monotonic() - self._started, 1), old.info.name, backend.info.name, why))
        log.warning("switched backend %s -> %s (%s)", old.info.name, backend.info.name, why)
        self._say(f"switched from {old.info.name} to {backend.info.name} ({backend.info.precision}): {why}")
        old.close()

    def _start(self, target, *args, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _loader(self) -> None:
        while not self._closed.is_set():
            try:
                candidates, why = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            self._move_to_first_of(candidates, why)

    def _move_to_first_of(self, candidates: list[Candidate], why: str | None) -> None:
        """Build (in a child process when not cached) and load the first candidate that works, then
        switch to it. `why`: the reason to leave the running backend (None: an upgrade)."""
        for index, candidate in enumerate(candidates):
            if self._closed.is_set():
                return
            self.pending = candidate.pending
            try:
                if candidate.before_build is not None:
                    candidate.before_build(self._closed)
                    if self._closed.is_set():
                        return
                    self.pending = f"building {candidate.name}"
                if not candidate.ready:
                    build_in_child(candidate.build_spec, lambda line: self._say(f"background build: {line}"),
                                   self._closed, started=self._builds.append)
                if self._closed.is_set():
                    return
                backend = candidate.load()
            except Int8Refused as refused:
                self._say(f"background build: {candidate.name} refused ({refused}); trying the next one")
                continue
            except Exception as err:  # noqa: BLE001 - a failed upgrade leaves the running backend as it is
                self._problem(f"{candidate.name} could not be built or loaded ({type(err).__name__}: {err}); "
                              f"staying on {self.info.name}")
                continue
            finally:
                self.pending = None
            if self._closed.is_set():
                backend.close()
                return
            if why is None:  # upgraded: should it fail its shadow check, the rest of the order remains
                self._fallbacks = (candidates[index + 1:] + [c for c in (self._start_candidate,) if c is not None]
                                   + self._fallbacks)
            self.switch_to(backend, why or f"{candidate.name} is ready (built in the background)")
            return
        if why is not None:
            self._leaving = False
            self._problem(f"no backend left to fall back to; staying on {self.info.name}")

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)
            log.warning("%s", message)
            self._say(message)

    # The shadow check ----------------------------------------------------------------------------
    def _maybe_offer(self, backend: Backend, audio, video, output: BackendOutput) -> None:
        """Hand one row of this window to the shadow thread when a check is due (copies: the
        caller's arrays are reused)."""
        if not self.shadow_config.enabled or self._reference_factory is None or not approximate(backend):
            return
        now = time.monotonic()
        if now - self._last_offer < self.shadow_config.every_s:
            return
        with self._offer:
            if self._offered is not None:  # the last one is still being checked: never queue
                return
            self._last_offer = now
            row = {"embedding": output.embedding[:1].copy(), **{k: v[:1].copy() for k, v in output.heads.items()}}
            self._offered = (None if audio is None else audio[:1].copy(), None if video is None else video[:1].copy(),
                             row, backend.info.name)
            self._offer.notify_all()

    def _shadow_loop(self) -> None:
        lower_this_threads_priority(self.shadow_config.nice)
        reference = None
        try:
            while not self._closed.is_set():
                with self._offer:
                    while self._offered is None and not self._closed.is_set():
                        self._offer.wait(timeout=1.0)
                    offered = self._offered
                if offered is None:
                    return
                try:
                    if reference is None:
                        reference = self._reference_factory()  # created here: its threads inherit the low priority
                        self.shadow_reference = f"{reference.info.name} ({reference.info.precision})"
                    self._check(reference, *offered)
                except Exception as err:  # noqa: BLE001 - a shadow check that cannot run must not stop perception
                    self._problem(f"shadow check cannot run ({type(err).__name__}: {err}); the run goes on unchecked")
                    return
                finally:
                    with self._offer:
                        self._offered = None
        finally:
            if reference is not None:
                reference.close()

    def _check(self, reference: Backend, audio, video, got: dict[str, np.ndarray], checked: str) -> None:
        out = reference.infer(audio, video)
        expected = {"embedding": out.embedding, **out.heads}
        report = cosine_report(expected, {name: got[name] for name in expected})
        below = failures({"live": report}, self.shadow_config.min_cosine, self.shadow_config.max_prob_diff)
        multi = [s["min_cosine"] for s in report.values() if "max_prob_diff" not in s]
        probs = [s["max_prob_diff"] for s in report.values() if "max_prob_diff" in s]
        if checked != self.info.name or self._leaving:  # switched or leaving meanwhile: nothing to judge
            return
        self.checks += 1
        self._scores.append({"min_cosine": min(multi) if multi else 1.0, "max_prob_diff": max(probs, default=0.0),
                             "ok": not below})
        self.failing_in_a_row = self.failing_in_a_row + 1 if below else 0
        if below and self.failing_in_a_row >= self.shadow_config.fail_after:
            self._fall_back("the live shadow check disagreed with fp32 in "
                            f"{self.failing_in_a_row} checks in a row: " + "; ".join(b.removeprefix("live ") for b in below))

    def _fall_back(self, why: str) -> None:
        """Remember the refusal, then move to the next candidate on the loader thread."""
        current = self._current
        if self._refuse is not None:
            try:
                self._refuse(current, why)
            except OSError as err:  # a read-only cache: the refusal is not remembered, the switch still happens
                self._problem(f"could not remember the refusal of {current.info.name} ({err})")
        log.warning("%s: %s; switching to the next backend", current.info.name, why)
        self.fallback_reason = why
        self._leaving = True
        fallbacks, self._fallbacks = self._fallbacks, []
        self._jobs.put((fallbacks, why))

    # Status ------------------------------------------------------------------------------------
    def health(self) -> SwitchingHealth:
        """For status records, the console and /diagnostics."""
        scores = list(self._scores)
        shadow = None
        if self._reference_factory is not None and self.shadow_config.enabled:
            shadow = ShadowHealth(
                reference=self.shadow_reference, every_s=self.shadow_config.every_s, checks=self.checks,
                agreeing=sum(s["ok"] for s in scores), of_last=len(scores),
                rolling_min_cosine=min((s["min_cosine"] for s in scores), default=None),
                rolling_max_prob_diff=max((s["max_prob_diff"] for s in scores), default=None),
                failing_in_a_row=self.failing_in_a_row, active=approximate(self._current))
        return SwitchingHealth(pending=self.pending, switches=tuple(self.switches), fallback_reason=self.fallback_reason,
                               problems=tuple(self.problems), shadow=shadow)


def build_in_child(spec: dict[str, Any], progress: Callable[[str], None], stop: threading.Event,
                   started: Callable[[subprocess.Popen], None] = lambda child: None) -> None:
    """Build a backend's cached files in a child process at the lowest CPU priority (so that
    capture and the running backend keep their cores, and the build's memory is returned when it
    ends). Raises Int8Refused when its int8 graphs fail their gate, RuntimeError on any other failure."""
    environment = dict(os.environ)
    # The child imports no ROS; the ROS wheels' bootstrap marker without their library path breaks imports.
    environment.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    child = subprocess.Popen([sys.executable, "-m", "socialmae_rt.engines.build_child", json.dumps(spec)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    started(child)
    last = []
    assert child.stdout is not None
    for line in child.stdout:
        line = line.rstrip()
        if line.startswith("status: "):
            progress(line.removeprefix("status: "))
        elif line:
            last = (last + [line])[-20:]
        if stop.is_set():
            child.kill()
            break
    code = child.wait()
    message = next((line.split(": ", 1)[1] for line in reversed(last) if line.startswith(("refused: ", "failed: "))),
                   "; ".join(last[-3:]) or f"exit status {code}")
    if code == REFUSED_EXIT:
        raise Int8Refused(message)
    if code != 0 and not stop.is_set():
        raise RuntimeError(f"building {spec.get('backend')} failed: {message}")


def spec_for(name: str, weights, config, options: dict[str, Any]) -> dict[str, Any]:
    """What the build child needs to build backend `name` exactly as this process would load it."""
    return {"backend": name, "weights": None if weights is None else str(weights),
            "config": None if config is None else config.to_dict(),
            "options": {k: (str(v) if k == "cache_dir" and v is not None else v) for k, v in options.items()
                        if k not in ("on_status",)}}


