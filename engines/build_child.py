"""The child process that builds a backend's cached files in the background (switching.py).

    python -m socialmae_rt.engines.build_child '{"backend": "ov-int8", "weights": null, "config": {...}, "options": {...}}'

It runs at the lowest CPU priority, builds exactly what `create_backend` would build for the
same arguments (ONNX export, OpenVINO IR, int8 graphs and their gate), closes the backend and
exits: the parent then loads the cached files. Lines on stdout: `status: ...` (progress), and last
`refused: ...` (exit 3, the int8 gate said no) or `failed: ...` (exit 1).
"""

from __future__ import annotations

import json
import os
import sys

from socialmae_rt.util.threads import yield_idle_threads

REFUSED_EXIT = 3  # exit status: the int8 graphs failed their gate (switching.build_in_child reads it)
# Nice 10: about a tenth of a CPU the running pipeline keeps busy (at 19, about 1/70: on 2 cores
# with a busy pipeline, a build at 19 did not finish in 2 minutes even at tiny size), and all of an idle one.
BUILD_NICE = 10


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("failed: usage: python -m socialmae_rt.engines.build_child SPEC_JSON", flush=True)
        return 2
    spec = json.loads(argv[0])
    os.nice(int(spec.get("nice", BUILD_NICE)))  # below the robot's own work: capture and the running backend come first
    yield_idle_threads()
    from socialmae_rt.backend import Int8Refused
    from socialmae_rt.engines import create_backend
    from socialmae_rt.model.config import SocialMAEConfig

    config = None if spec.get("config") is None else SocialMAEConfig.from_dict(spec["config"])
    options = dict(spec.get("options") or {})
    try:
        backend = create_backend(spec["backend"], spec.get("weights"), config,
                                 on_status=lambda line: print(f"status: {line}", flush=True), **options)
        backend.close()
    except Int8Refused as refused:
        print(f"refused: {refused}", flush=True)
        return REFUSED_EXIT
    except Exception as err:  # noqa: BLE001 - reported to the parent in one line
        print(f"failed: {type(err).__name__}: {err}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
