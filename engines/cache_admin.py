"""What the engine cache holds, with sizes, and pruning what no backend will use again.

    <cache>/onnx/<export>/            an ONNX export (fp32 graphs; int8 and fp16 copies; manifest)
    <cache>/onnx/<export>/openvino/   its OpenVINO IRs (fp32-<key>, int8-<key>), refusal markers
    <cache>/onnx/sources/             checkpoint hash -> export (small)
    <cache>/openvino/                 IRs of exports in read-only folders
    <cache>/heldout/                  the int8 gate's held-out suite and its windows
    <cache>/trt/                      TensorRT plans

`prune` removes what no backend loads: staging leftovers of interrupted builds (names starting
with '.'), int8 IRs refused (by the gate or a live shadow check), int8 IRs other than the newest
passing one of their export, IRs built by another OpenVINO version, ONNX Runtime int8 graphs that
were refused live, and source links whose export is gone. `--unused-days N` also removes whole
exports not loaded for N days. It never touches what the running version would load.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Entry:
    path: Path
    what: str
    bytes: int
    remove_why: str | None = None  # set when prune would remove it


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def survey(root: Path, unused_days: float | None = None, openvino_version: str | None = None) -> list[Entry]:
    """Every cache entry under `root`, each marked with why prune would remove it (or None)."""
    entries: list[Entry] = []
    if not root.is_dir():
        return entries
    onnx = root / "onnx"
    for export in sorted(p for p in onnx.glob("*") if p.is_dir() and p.name != "sources") if onnx.is_dir() else []:
        entries += _export_entries(export, unused_days, openvino_version)
    sources = onnx / "sources"
    for link in sorted(sources.glob("*")) if sources.is_dir() else []:
        target = onnx / link.read_text().strip()
        if not (target / "manifest.json").is_file():
            entries.append(Entry(link, "source link", size_of(link), f"its export {target.name} is gone"))
    for home in sorted((root / "openvino").glob("*")) if (root / "openvino").is_dir() else []:
        entries += _ir_entries(home, openvino_version)
    for name, what in (("heldout", "held-out suite (int8 gate)"), ("trt", "TensorRT plans")):
        if (root / name).is_dir():
            entries.append(Entry(root / name, what, size_of(root / name)))
    return entries


def _export_entries(export: Path, unused_days: float | None, openvino_version: str | None) -> list[Entry]:
    if export.name.startswith("."):
        return [Entry(export, "staging leftover", size_of(export), "left by an interrupted build")]
    manifest = _read_json(export / "manifest.json")
    found: list[Entry] = []
    loose = sum(p.stat().st_size for p in export.iterdir() if p.is_file())
    source = manifest.get("source", "?")
    age_days = (time.time() - (export / "manifest.json").stat().st_mtime) / 86400 if manifest else 0.0
    stale = unused_days is not None and age_days > unused_days
    found.append(Entry(export, f"ONNX export of {source} (graphs and manifest)", loose,
                       f"not used for {age_days:.0f} days" if stale else None))
    refused = manifest.get("int8_refused") or {}
    if refused.get("live") and not stale:
        for modality, graph in manifest.get("graphs", {}).items():
            int8 = graph.get("int8") or {}
            file = export / int8.get("file", "")
            if int8 and file.is_file():
                found.append(Entry(file, f"ONNX Runtime int8 {modality} graph", file.stat().st_size,
                                   "refused by the live shadow check"))
    home = export / "openvino"
    if home.is_dir():
        for entry in _ir_entries(home, openvino_version):
            if stale and entry.remove_why is None:
                entry.remove_why = f"its export was not used for {age_days:.0f} days"
            found.append(entry)
    if stale:  # the whole folder goes: its parts are listed, the folder carries the total
        found[0].bytes = size_of(export)
    return found


def _ir_entries(home: Path, openvino_version: str | None) -> list[Entry]:
    entries = []
    int8_passed = []
    for item in sorted(home.iterdir()):
        if item.name.startswith("."):
            entries.append(Entry(item, "staging leftover", size_of(item), "left by an interrupted build"))
            continue
        if item.suffix == ".json":  # a refusal marker: small, and it spares the next start a rebuild
            entries.append(Entry(item, "int8 refusal marker", size_of(item)))
            continue
        manifest = _read_json(item / "manifest.json")
        kind = manifest.get("kind", item.name.split("-")[0])
        entry = Entry(item, f"OpenVINO {kind} IR", size_of(item))
        if item.with_name(item.name + ".refused.json").is_file():
            entry.remove_why = "refused (gate or live shadow check)"
        elif openvino_version and manifest.get("openvino") not in (None, openvino_version):
            entry.remove_why = f"built by OpenVINO {manifest.get('openvino')} (this is {openvino_version})"
        elif kind == "int8":
            int8_passed.append(entry)
        entries.append(entry)
    for older in sorted(int8_passed, key=lambda e: e.path.stat().st_mtime)[:-1]:
        older.remove_why = "a newer int8 IR of the same export passed"
    return entries


def prune(entries: list[Entry]) -> int:
    """Remove every entry marked for removal; bytes freed."""
    freed = 0
    for entry in entries:
        if entry.remove_why is None or not entry.path.exists():
            continue
        freed += entry.bytes
        if entry.path.is_dir():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
    return freed


def format_size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
