"""`socialmae-rt` command line: one module per command group, each subcommand a small function
whose heavy imports happen inside it; logging is set up once, here."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from socialmae_rt import __version__
from socialmae_rt.cli import bench, engines, info, perception, weights
from socialmae_rt.util.threads import yield_idle_threads

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
GROUPS = (info, perception, bench, engines, weights)  # the order of `socialmae-rt --help`


def build_parser() -> argparse.ArgumentParser:
    from socialmae_rt.training.cli import SUBCOMMANDS as TRAINING

    parser = argparse.ArgumentParser(
        prog="socialmae-rt",
        description="Real-time Social-MAE perception: emotion, laughter and personality from camera + microphone.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        for add in group.SUBCOMMANDS:
            add(sub)
    for add in TRAINING:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    yield_idle_threads()  # before any subcommand imports torch
    args = build_parser().parse_args(argv)
    # Warnings to stderr; a subcommand that prints tables of its own asks for less (set_defaults(log_level=...)).
    logging.basicConfig(level=getattr(args, "log_level", logging.WARNING), format=LOG_FORMAT)
    try:
        return args.handler(args)
    except KeyboardInterrupt:  # SIGINT/SIGTERM before the pipeline ran (e.g. while the model loaded)
        print(f"socialmae-rt {args.command}: interrupted before it started; nothing was written", file=sys.stderr)
        return 130
    except (FileNotFoundError, FileExistsError, ValueError, TypeError, ImportError) as err:
        return _one_line(args.command, err)  # bad input, missing library (with its install hint)
    except RuntimeError as err:
        if type(err).__module__.startswith("socialmae_rt"):  # ours: SourceError, ExportError, ...
            return _one_line(args.command, err)
        raise  # anything else is a bug and keeps its traceback


def _one_line(command: str, err: Exception) -> int:
    """Expected failures: one clear line naming what went wrong, no traceback, exit code 2."""
    print(f"socialmae-rt {command}: error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
