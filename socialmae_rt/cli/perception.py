"""`socialmae-rt run` and `socialmae-rt demo`: their flags are RunOptions' (and DemoOptions') fields."""

from __future__ import annotations

import argparse

from socialmae_rt.app.options import PERCEPTION_OPTIONS, RunOptions
from socialmae_rt.util.options import add_flags, flag_values, from_flat

RUN_ONLY = ("realtime", "max_frame_side", "quiet", "embedding", "status", "zmq", "zmq_curve_key", "zmq_curve_clients")


def _run(args: argparse.Namespace) -> int:
    """Stream a camera (+ microphone) or a media file through the model; print and/or write JSONL."""
    from socialmae_rt.app.runner import run

    run(from_flat(RunOptions, flag_values(args, args.option_names)))
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="live perception from a camera + microphone, or from a media file",
        description="Stream a camera (+ microphone) or a media file through Social-MAE and print one line per "
        "window and face; --output writes the JSON records.",
    )
    names = add_flags(p, RunOptions, ("source", *PERCEPTION_OPTIONS, *RUN_ONLY))
    p.set_defaults(handler=_run, option_names=names)


def _demo(args: argparse.Namespace) -> int:
    """The live overlay: video with face boxes, per-face bars and a status strip."""
    from socialmae_rt.demo.app import run_demo
    from socialmae_rt.demo.options import DemoOptions

    run = from_flat(RunOptions, flag_values(args, PERCEPTION_OPTIONS))
    run_demo(from_flat(DemoOptions, flag_values(args, args.demo_names), base=DemoOptions(run=run)))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from socialmae_rt.demo.options import DEMO_FLAGS, DemoOptions

    p = sub.add_parser(
        "demo",
        help="live webcam demo: the video with face boxes, emotion/laughter/personality bars and a status strip",
        description="Show what the robot perceives: an OpenCV window with each tracked face boxed, per-face bars "
        "for the six emotions, a laughter meter that flashes on onset, Big-Five bars, the modality in use, and a "
        "status strip (backend, windows/s, latencies, skipped windows, microphone level). Keys: q quits, space "
        "pauses the view, s saves a screenshot. --record writes the annotated video with its audio to an mp4; "
        "--headless draws without a window.",
    )
    add_flags(p, DemoOptions, DEMO_FLAGS[:2])  # --camera, --source
    add_flags(p, RunOptions, PERCEPTION_OPTIONS)
    names = add_flags(p, DemoOptions, DEMO_FLAGS[2:])
    p.set_defaults(handler=_demo, demo_names=DEMO_FLAGS[:2] + tuple(names))


SUBCOMMANDS = [_add_run, _add_demo]
