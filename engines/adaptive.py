"""The backend a live run gets: no waiting at a first start, and a shadow check on approximations.

`create_live_backend(name, ...)` is what `run`, `demo` and the ROS node use:
- `auto`: the first candidate of engines/auto.py whose files are cached starts now. When the best
  one is not built yet (a first start: ONNX export, OpenVINO IR, int8 graphs and their gate take
  minutes), the run starts on the first candidate that needs no build and is not int8 (torch at
  worst, which loads in seconds), and the better ones are built in a background process and
  switched to between two windows as soon as one passes (switching.py).
- an explicit int8 or bf16 backend (`ov-int8`, `ort-int8`, `torch-bf16`, ...): built now as asked,
  then shadow-checked like `auto`'s, with its float sibling as the fallback.
- anything else (torch, ort, ov fp32, trt, triton): as `create_backend` makes it.
- with a site recorder (socialmae_rt/app/site_calibration.py), `ov-int8` is calibrated on the run's
  own input: its background build waits for the recording, on a float backend meanwhile.

Readiness is read from the caches without loading a model (`readiness`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from socialmae_rt.backend import Backend, Int8Refused
from socialmae_rt.engines.auto import BACKEND_OPTIONS, Installed, candidates
from socialmae_rt.engines.switching import Candidate, ShadowConfig, SwitchingBackend, spec_for
from socialmae_rt.util.machine import CpuDescription
from socialmae_rt.weights.bundle import parse_weights

log = logging.getLogger(__name__)

READY, BUILD, REFUSED = "ready", "build", "refused"
INT8 = ("ov-int8", "ort-int8")
# An approximate backend asked for by name falls back to these (in order) when its shadow check fails.
FALLBACKS = {"ov-int8": ("ov", "torch"), "ort-int8": ("ort", "torch"), "torch-bf16": ("torch",)}


def readiness(name: str, weights, config, *, cache_dir=None, seed: int = 0, min_cosine: float | None = None,
              max_prob_diff: float | None = None) -> str:
    """READY (loads from the cache in seconds), BUILD (something must be built first) or REFUSED
    (its int8 graphs were refused before, by the gate or a live shadow check). The bars: the int8
    gate's (None: its defaults), as the backend would be asked for them."""
    spec = parse_weights(None if weights is None else str(weights))
    bars = {k: v for k, v in (("min_cosine", min_cosine), ("max_prob_diff", max_prob_diff)) if v is not None}
    if spec.is_bundle:
        states = [readiness(name, entry.path, None, cache_dir=cache_dir, seed=seed, **bars) for entry in spec.entries]
        return REFUSED if REFUSED in states else BUILD if BUILD in states else READY
    if name in ("torch", "torch-bf16"):
        return READY
    if name not in ("ort", "ort-int8", "ov", "ov-int8"):
        return BUILD
    export = cached_export(spec.single, config, cache_dir=cache_dir, seed=seed)
    if export is None:
        return BUILD
    if name == "ort":
        return READY
    if name == "ort-int8":
        from socialmae_rt.engines.ort_int8 import check_int8_refusal, has_int8

        try:
            check_int8_refusal(export, **bars)
        except Int8Refused:
            return REFUSED
        return READY if has_int8(export, **bars) else BUILD
    from socialmae_rt.engines.int8_gate import MAX_BINARY_PROB_DIFF, MIN_INT8_COSINE
    from socialmae_rt.engines.openvino_ir import OpenVinoIRError, _passed_int8, ir_home, ir_key, load_ir

    home = ir_home(export, cache_dir)
    if name == "ov":
        try:
            load_ir(home / f"fp32-{ir_key(export, 'fp32')[:16]}")
        except OpenVinoIRError:
            return BUILD
        return READY
    cosine, prob = bars.get("min_cosine", MIN_INT8_COSINE), bars.get("max_prob_diff", MAX_BINARY_PROB_DIFF)
    if _passed_int8(home, export, cosine, prob) is not None:
        return READY
    sample_key = ir_key(export, "int8", ["bundled sample clip"], cosine, max_prob_diff=prob)
    return REFUSED if (home / f"int8-{sample_key[:16]}.refused.json").is_file() else BUILD


def cached_export(weights, config, *, cache_dir=None, seed: int = 0):
    """The ONNX export these weights have in the cache (or are), without loading the model; None if none."""
    from socialmae_rt.engines.engine_cache import cache_root
    from socialmae_rt.engines.exports import source_key
    from socialmae_rt.engines.onnx_export import MANIFEST, ExportError, load_export

    try:
        if weights is not None and (Path(weights) / MANIFEST).is_file():
            return load_export(weights)
        root = Path(cache_dir or cache_root()) / "onnx"
        source = root / "sources" / source_key(weights, config, seed)[:32]
        return load_export(root / source.read_text().strip()) if source.is_file() else None
    except (ExportError, OSError):
        return None


def refuse_live(backend: Backend, why: str) -> None:
    """Remember that the live shadow check refused this backend's int8 graphs (each bundle member's)."""
    from socialmae_rt.engines import openvino_ir, ort_int8

    members = getattr(backend, "members", None)
    for member in [m.backend for m in members] if members else [backend]:
        ir, export = getattr(member, "ir", None), getattr(member, "export", None)
        if ir is not None and ir.kind == "int8":
            openvino_ir.refuse_live(ir, why)
        elif export is not None and member.info.precision == "int8":
            ort_int8.refuse_live(export, why)


def create_live_backend(create: Callable[..., Backend], name: str, weights, config, *,
                        shadow: ShadowConfig | None = None, cpu: CpuDescription | None = None,
                        installed: Installed | None = None, background: bool = True, site=None,
                        **options: Any) -> Backend:
    """The backend for a live run (module docstring). `create` is engines.create_backend.
    `background=False` (an unpaced file, where waiting loses nothing): `auto` builds its best
    candidate now, as before, and is shadow-checked the same way.
    `site` (a socialmae_rt.app.site_calibration.SiteRecorder that the pipeline feeds): where `auto`
    would build `ov-int8` (or it was asked for), it is calibrated on the recording's first part and
    gated on its last part too, built once the recording is complete; meanwhile the run goes on on
    a float backend. Where no such build is needed (a passing int8 IR is cached), the recorder is
    cancelled, saying why."""
    spec = parse_weights(None if weights is None else str(weights))
    if spec.is_bundle:
        from socialmae_rt.engines.bundle_backend import check_bundle_entries

        check_bundle_entries(spec)  # before anything is said or built
    shadow = shadow or ShadowConfig()
    say = options.get("on_status") or (lambda message: log.info("%s", message))
    cache_dir, seed = options.get("cache_dir"), options.get("seed", 0)
    bars = {k: options[k] for k in ("min_cosine", "max_prob_diff") if options.get(k) is not None}

    def state(candidate_name: str) -> str:
        return readiness(candidate_name, weights, config, cache_dir=cache_dir, seed=seed, **bars)

    def own(candidate: str) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k in BACKEND_OPTIONS.get(candidate, set())}

    def candidate(candidate_name: str, state: str) -> Candidate:
        if candidate_name == SITE_CALIBRATED and site_build:
            return site_candidate()
        return Candidate(candidate_name, state == READY,
                         lambda: create(candidate_name, weights, config, **own(candidate_name)),
                         spec_for(candidate_name, weights, config, own(candidate_name)))

    def site_candidate() -> Candidate:
        calibrated = {**own(SITE_CALIBRATED), "calibration_clips": [str(site.calibrate_path)],
                      "held_out_clips": [str(site.gate_path)]}
        return Candidate(SITE_CALIBRATED, False, lambda: create(SITE_CALIBRATED, weights, config, **calibrated),
                         spec_for(SITE_CALIBRATED, weights, config, calibrated),
                         before_build=lambda stop: site.wait(stop),
                         waiting=f"recording input to calibrate {SITE_CALIBRATED} on site")

    site_build = site is not None and _site_build_needed(site, name, state, cpu, installed)

    def reference() -> Backend:
        return create("ort", weights, config, **{**own("ort"), "threads": 1, "on_status": None})

    def switching(backend: Backend, upgrades: list[Candidate], fallbacks: list[Candidate],
                  start: Candidate | None = None) -> Backend:
        return SwitchingBackend(backend, upgrades=upgrades, fallbacks=fallbacks, start=start, reference=reference,
                                shadow=shadow, refuse=refuse_live, on_status=say)

    if name == SITE_CALIBRATED and site_build:  # built once the site recording is complete; float meanwhile
        start_name = next(n for n in FALLBACKS[name] if state(n) == READY or n == "torch")
        say(f"{name}: starting on {start_name} while recording input to calibrate {name} on site")
        return switching(create(start_name, weights, config, **own(start_name)), [site_candidate()],
                         [candidate(n, state(n)) for n in FALLBACKS[name] if n != start_name])
    if name in FALLBACKS:  # asked for by name: built now, then watched
        backend = create(name, weights, config, **own(name))
        return switching(backend, [], [candidate(n, state(n)) for n in FALLBACKS[name]])
    if name != "auto":
        return create(name, weights, config, **options)
    cpu = cpu or CpuDescription.this_machine()
    installed = installed or Installed.here()
    order = candidates(cpu, installed)
    if order[0][0] == "trt":  # GPU plans build on the GPU: the synchronous path, as before
        from socialmae_rt.engines.auto import create_auto_backend

        return create_auto_backend(create, weights, config, cpu=cpu, installed=installed, **options)
    states = [(n, BUILD if n == SITE_CALIBRATED and site_build else state(n)) for n, _ in order]
    for refused in [n for n, state in states if state == REFUSED]:
        say(f"auto: {refused} skipped (its int8 graphs were refused before)")
    states = [(n, state) for n, state in states if state != REFUSED]
    why = dict(order)
    if not background:
        for index, (candidate_name, _) in enumerate(states):
            say(f"auto: {candidate_name} ({why[candidate_name]}; {cpu.summary()})")
            try:
                backend = create(candidate_name, weights, config, **own(candidate_name))
            except Int8Refused as refused:
                say(f"auto: {candidate_name} refused ({refused}); trying the next one")
                continue
            return switching(backend, [], [candidate(n, state) for n, state in states[index + 1:]])
    start = start_index(states)
    start_name = states[start][0]
    upgrades = [candidate(n, state) for n, state in states[:start]]
    say(f"auto: {start_name} ({why[start_name]}; {cpu.summary()})"
        + (f"; starting now, building {', '.join(c.name for c in upgrades)} in the background to switch to"
           if upgrades else ""))
    backend = create(start_name, weights, config, **own(start_name))
    fallbacks = [candidate(n, state) for n, state in states[start + 1:]]
    return switching(backend, upgrades, fallbacks, start=candidate(start_name, READY))


SITE_CALIBRATED = "ov-int8"  # the int8 backend a site recording calibrates (ONNX Runtime's int8 is not calibrated)


def _site_build_needed(site, name: str, state: Callable[[str], str], cpu: CpuDescription | None,
                       installed: Installed | None) -> bool:
    """Whether this run builds ov-int8 from the site recording; if not, the recorder is cancelled
    with the reason (said once)."""
    if name not in ("auto", SITE_CALIBRATED):
        why = f"backend {name} uses no calibrated int8 model"
    elif name == "auto" and SITE_CALIBRATED not in [n for n, _ in candidates(cpu or CpuDescription.this_machine(),
                                                                            installed or Installed.here())][:1]:
        why = f"auto does not pick {SITE_CALIBRATED} on this CPU or install (see `socialmae-rt info`)"
    elif state(SITE_CALIBRATED) == READY:
        why = (f"an {SITE_CALIBRATED} model that passed its gate is cached already (recalibrate with "
               "`socialmae-rt prepare-backend --calibrate-live SECONDS`)")
    else:
        return True
    site.cancel(why)
    return False


def plan(weights, config, *, cache_dir=None, seed: int = 0, cpu: CpuDescription | None = None,
         installed: Installed | None = None) -> tuple[str, list[str]]:
    """(what `auto` runs now, what may replace it later) for `socialmae-rt info`."""
    cpu = cpu or CpuDescription.this_machine()
    order = candidates(cpu, installed or Installed.here())
    if order[0][0] == "trt":
        return "trt", []
    states = [(n, readiness(n, weights, config, cache_dir=cache_dir, seed=seed)) for n, _ in order]
    states = [(n, state) for n, state in states if state != REFUSED]
    start = start_index(states)
    return states[start][0], [n for n, _ in states[:start]]


def start_index(states: list[tuple[str, str]]) -> int:
    """Where a live `auto` start begins in (candidate, readiness) order, refused ones left out: the
    best candidate when it is ready, else the first ready one that is not int8 (torch always is);
    the candidates before it are built in the background."""
    if states[0][1] == READY:
        return 0
    return next(i for i, (name, state) in enumerate(states) if state == READY and name not in INT8)
