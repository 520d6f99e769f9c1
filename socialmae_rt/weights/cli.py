"""`socialmae-rt weights list | download | import`: from the released files to a task bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .released import AUTHORS_README, HEAD_MEANINGS, RELEASED, TASKS


def default_weights_dir() -> Path:
    """Downloads and the default bundle: $SOCIALMAE_RT_CACHE/weights, else ~/.cache/socialmae_rt/weights."""
    from socialmae_rt.engines.engine_cache import cache_root

    return cache_root() / "weights"


def _size(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 2**20:.0f} MiB"


def _list(args: argparse.Namespace) -> int:
    from .bundle import BUNDLE_FILE, read_bundle
    from .download import verify

    where = Path(args.dir) if args.dir else default_weights_dir()
    print(f"Released Social-MAE checkpoints (links: {AUTHORS_README}); local folder {where}\n")
    for item in RELEASED.values():
        local = where / item.file_name
        state = f"present, {verify(local)}" if local.is_file() else "not downloaded"
        print(f"{item.name}  [{item.task}]  fine-tuned on {item.fine_tuned_on}, batch {item.batch}")
        print(f"    outputs: {item.outputs}")
        print(f"    source:  {item.url or 'the Google Drive link in ' + AUTHORS_README}; size {_size(item.size_bytes)}")
        print(f"    local:   {local} ({state})")
    bundle = Path(args.bundle) if args.bundle else where / "bundle"
    if (bundle / BUNDLE_FILE).is_file():
        spec = read_bundle(bundle)
        print(f"\nbundle {bundle}: " + ", ".join(f"{e.task} <- {Path(e.path).name}" for e in spec.entries)
              + (f", encoder <- {Path(spec.encoder).name}" if spec.encoder else "")
              + f"\n    run it: socialmae-rt run --weights {bundle}")
    else:
        print(f"\nno bundle at {bundle} yet: socialmae-rt weights import FILE.pth --task TASK --out {bundle}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from .download import download

    if args.name not in RELEASED:
        raise ValueError(f"unknown checkpoint {args.name!r}; released: {', '.join(RELEASED)}")
    item = RELEASED[args.name]
    dest = (Path(args.dest) if args.dest else default_weights_dir()) / item.file_name
    url = args.url or item.url
    if url is None:
        raise ValueError(f"no download link for {item.name} is known to this version: copy its Google Drive link from "
                         f"{AUTHORS_README} and pass --url LINK, or download it in a browser and save it as {dest}")
    done = download(url, dest, size=args.size or item.size_bytes, sha256=args.sha256 or item.sha256)
    resumed = f", resumed at {done.resumed_from} bytes" if done.resumed_from else ""
    print(f"{done.path}: {done.size} bytes{resumed}, sha256 {done.sha256} (recorded in {done.path.name}.sha256)")
    print(f"next: socialmae-rt weights import {done.path} --task {item.task}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .importer import import_released

    out = Path(args.out) if args.out else default_weights_dir() / "bundle"
    labels = None
    if args.labels:
        labels = [label for item in args.labels for label in item.split(",") if label]
    result = import_released(args.path, args.task, out, labels=labels, laughing_class=args.laughing_class,
                             force=args.force)
    print(result.describe())
    if result.assumed and result.labels is not None:
        print(f"  note: {HEAD_MEANINGS[result.task].reasoning}", file=sys.stderr)
    print(f"bundle: {out} (run it: socialmae-rt run --weights {out})")
    return 0


def add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="the released checkpoints: list, download, import into a task bundle",
                       description="From the authors' released .pth files to a task bundle every command runs: "
                       "`list` shows them, `download` fetches one (the only command that uses the network), "
                       "`import` checks one strictly and writes our .safetensors + .json into a bundle folder.")
    group = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    ls = group.add_parser("list", help="the four released checkpoints and what is present locally")
    ls.add_argument("--dir", help="download folder (default: $SOCIALMAE_RT_CACHE/weights or ~/.cache/socialmae_rt/weights)")
    ls.add_argument("--bundle", help="bundle folder to show (default: <dir>/bundle)")
    ls.set_defaults(handler=_list)

    dl = group.add_parser("download", help="fetch a released checkpoint (resumable, size and sha256 checked)")
    dl.add_argument("name", choices=list(RELEASED), help="which checkpoint")
    dl.add_argument("--dest", help="folder to save it in (default: the weights folder, see `weights list`)")
    dl.add_argument("--url", help="the link to fetch (the Google Drive link from the authors' README)")
    dl.add_argument("--size", type=int, help="expected size in bytes (checked)")
    dl.add_argument("--sha256", help="expected sha256 (checked)")
    dl.set_defaults(handler=_download)

    imp = group.add_parser("import", help="a released .pth -> <task>.safetensors + .json in a bundle folder",
                           description="Read a released .pth strictly (size and head width from its tensors), put "
                           "its head outputs in the order the pipeline reads, and write <out>/<task>.safetensors with "
                           "its JSON (task, labels, source sha256, preprocessing) and <out>/bundle.json.")
    imp.add_argument("path", help="the released .pth")
    imp.add_argument("--task", required=True, choices=list(TASKS), help="what the checkpoint was fine-tuned for "
                     "(encoder: the pretrained checkpoint)")
    imp.add_argument("--out", help="bundle folder (default: <weights folder>/bundle)")
    imp.add_argument("--labels", nargs="+", help="the head's outputs in order, when you know them (e.g. "
                     "--labels neutral smile laughter); default: this project's documented assumption")
    imp.add_argument("--laughing-class", dest="laughing_class", type=int,
                     help="laughter: the index of the output that means laughing")
    imp.add_argument("--force", action="store_true", help="replace the bundle's checkpoint for this task")
    imp.set_defaults(handler=_import)
