"""`socialmae-rt weights list | download | import`: from the released files to a task bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from socialmae_rt.weights.released import AUTHORS_README, HEAD_MEANINGS, RELEASED, TASKS


def default_weights_dir() -> Path:
    """Downloads and the default bundle: $SOCIALMAE_RT_CACHE/weights, else ~/.cache/socialmae_rt/weights."""
    from socialmae_rt.engines.engine_cache import cache_root

    return cache_root() / "weights"


def _size(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 2**20:.0f} MiB"


def _list(args: argparse.Namespace) -> int:
    from socialmae_rt.weights.bundle import BUNDLE_FILE, read_bundle
    from socialmae_rt.weights.download import verify
    from socialmae_rt.weights.importer import recorded_sha256

    where = Path(args.dir) if args.dir else default_weights_dir()
    print(f"Released Social-MAE checkpoints ({AUTHORS_README}); local folder {where}\n")
    for item in RELEASED.values():
        local = where / item.file_name
        if local.is_file():
            recorded = recorded_sha256(local)
            state = (f"present, {verify(local)}; {_size(local.stat().st_size)}"
                     + (f", sha256 {recorded}" if recorded else ""))
        else:
            state = "not downloaded"
        print(f"{item.name}  [{item.task}]  fine-tuned on {item.fine_tuned_on}, batch {item.batch}")
        print(f"    outputs: {item.outputs}")
        print(f"    source:  {item.link}; size {_size(item.size_bytes)}")
        print(f"    local:   {local} ({state})")
    bundle = Path(args.bundle) if args.bundle else where / "bundle"
    if (bundle / BUNDLE_FILE).is_file():
        spec = read_bundle(bundle)
        print(f"\nbundle {bundle}: " + ", ".join(f"{e.task} <- {Path(e.path).name}" for e in spec.entries)
              + (f", encoder <- {Path(spec.encoder).name}" if spec.encoder else "")
              + f"\n    run it: socialmae-rt run --weights {bundle}")
    else:
        print(f"\nno bundle at {bundle} yet: socialmae-rt weights get (downloads and imports all four), or "
              f"socialmae-rt weights import FILE.pth --task TASK --out {bundle}")
    return 0


def _chosen(names: list[str], everything: bool) -> list[str]:
    if everything and names:
        raise ValueError("give checkpoint names or --all, not both")
    if not everything and not names:
        raise ValueError(f"name a checkpoint ({', '.join(RELEASED)}) or pass --all")
    for name in names:
        if name not in RELEASED:
            raise ValueError(f"unknown checkpoint {name!r}; released: {', '.join(RELEASED)}")
    return list(RELEASED) if everything else names


def _download(args: argparse.Namespace) -> int:
    names = _chosen(args.names, args.all)
    if (args.url or args.size or args.sha256) and len(names) != 1:
        raise ValueError("--url, --size and --sha256 describe one file: name one checkpoint")
    folder = Path(args.dest) if args.dest else default_weights_dir()
    for name in names:
        fetch_released(name, folder, url=args.url, size=args.size, sha256=args.sha256, skip_present=args.all)
    return 0


def fetch_released(name: str, folder: Path, *, url: str | None = None, size: int | None = None,
                   sha256: str | None = None, skip_present: bool = False) -> Path:
    """Download one released checkpoint into `folder` (from its Google Drive file unless `url`
    says otherwise); with `skip_present`, a file already there whose hash still matches is kept."""
    from socialmae_rt.weights.download import download, verify

    item = RELEASED[name]
    dest = folder / item.file_name
    if skip_present and dest.is_file():
        state = verify(dest)
        if state == "changed":
            raise ValueError(f"{dest} differs from the file that was downloaded (sha256 changed): remove it and run "
                             "again to download it afresh")
        print(f"{dest}: present ({state}), kept")
        return dest
    print(f"{item.name}: downloading {url or item.link}", flush=True)
    done = download(url or item.link, dest, size=size or item.size_bytes, sha256=sha256 or item.sha256)
    resumed = f", resumed at {done.resumed_from} bytes" if done.resumed_from else ""
    print(f"{done.path}: {done.size} bytes{resumed}, sha256 {done.sha256} (recorded in {done.path.name}.sha256)")
    if not skip_present:
        print(f"next: socialmae-rt weights import {done.path} --task {item.task}")
    return dest


def _import(args: argparse.Namespace) -> int:
    from socialmae_rt.weights.importer import import_released

    out = Path(args.out) if args.out else default_weights_dir() / "bundle"
    if args.all:
        if args.path or args.task or args.labels or args.laughing_class is not None:
            raise ValueError("--all imports every downloaded released file as its own task with the documented "
                             "head order; give a PATH and --task (and --labels) to import one file your way")
        return _import_all(Path(args.dir) if args.dir else default_weights_dir(), out, args.force)
    if not args.path or not args.task:
        raise ValueError("give the released .pth and its --task (or --all for every downloaded released file)")
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


def _import_all(folder: Path, out: Path, force: bool) -> int:
    from socialmae_rt.weights.importer import import_released

    found = [item for item in RELEASED.values() if (folder / item.file_name).is_file()]
    if not found:
        raise FileNotFoundError(f"no released checkpoint in {folder}: socialmae-rt weights download --all first")
    for item in found:
        target = out / f"{item.task}.safetensors"
        if target.is_file() and not force:
            print(f"{item.task}: {target} present, kept (--force to import again)")
            continue
        result = import_released(folder / item.file_name, item.task, out, force=force)
        print(result.describe())
    missing = [item.name for item in RELEASED.values() if item not in found]
    if missing:
        print(f"not downloaded (so not in the bundle): {', '.join(missing)}", file=sys.stderr)
    print(f"bundle: {out} (run it: socialmae-rt run --weights {out})")
    return 0


def _get(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else default_weights_dir()
    out = Path(args.out) if args.out else folder / "bundle"
    for name in RELEASED:
        fetch_released(name, folder, skip_present=True)
    return _import_all(folder, out, force=False)


def add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="the released checkpoints: get, list, download, import into a task bundle",
                       description="From the authors' released .pth files to a task bundle every command runs: "
                       "`get` downloads all four and imports them into one bundle, "
                       "`list` shows them, `download` fetches them (the only command that uses the network), "
                       "`import` checks one strictly and writes our .safetensors + .json into a bundle folder.")
    group = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    ls = group.add_parser("list", help="the four released checkpoints and what is present locally")
    ls.add_argument("--dir", help="download folder (default: $SOCIALMAE_RT_CACHE/weights or ~/.cache/socialmae_rt/weights)")
    ls.add_argument("--bundle", help="bundle folder to show (default: <dir>/bundle)")
    ls.set_defaults(handler=_list)

    get = group.add_parser("get", help="download the four released checkpoints and import them into one bundle "
                           "(what `download --all` then `import --all` do)")
    get.add_argument("--dir", help="download folder (default: $SOCIALMAE_RT_CACHE/weights or ~/.cache/socialmae_rt/weights)")
    get.add_argument("--out", help="bundle folder (default: <dir>/bundle)")
    get.set_defaults(handler=_get)

    dl = group.add_parser("download", help="fetch released checkpoints by name from the authors' Google Drive "
                          "(resumable, sha256 recorded)")
    dl.add_argument("names", nargs="*", metavar="NAME", help=f"which: {', '.join(RELEASED)}")
    dl.add_argument("--all", action="store_true", help="all four (files already there and unchanged are kept)")
    dl.add_argument("--dest", help="folder to save it in (default: the weights folder, see `weights list`)")
    dl.add_argument("--url", help="fetch from this link instead of the authors' Google Drive file")
    dl.add_argument("--size", type=int, help="expected size in bytes (checked)")
    dl.add_argument("--sha256", help="expected sha256 (checked)")
    dl.set_defaults(handler=_download)

    imp = group.add_parser("import", help="a released .pth -> <task>.safetensors + .json in a bundle folder",
                           description="Read a released .pth strictly (size and head width from its tensors), put "
                           "its head outputs in the order the pipeline reads, and write <out>/<task>.safetensors with "
                           "its JSON (task, labels, source sha256, preprocessing) and <out>/bundle.json.")
    imp.add_argument("path", nargs="?", help="the released .pth")
    imp.add_argument("--task", choices=list(TASKS), help="what the checkpoint was fine-tuned for "
                     "(encoder: the pretrained checkpoint)")
    imp.add_argument("--all", action="store_true", help="every released file in the download folder, each as its "
                     "own task (the documented head orders)")
    imp.add_argument("--dir", help="--all: the download folder (default: as for `weights list`)")
    imp.add_argument("--out", help="bundle folder (default: <weights folder>/bundle)")
    imp.add_argument("--labels", nargs="+", help="the head's outputs in order, when you know them (e.g. "
                     "--labels neutral smile laughter); default: this project's documented assumption")
    imp.add_argument("--laughing-class", dest="laughing_class", type=int,
                     help="laughter: the index of the output that means laughing")
    imp.add_argument("--force", action="store_true", help="replace the bundle's checkpoint for this task")
    imp.set_defaults(handler=_import)


SUBCOMMANDS = [add_weights]
