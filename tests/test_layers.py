"""The import graph, read from the source (ast, every import, also those inside functions): layers
only point down, and no modules import each other in a circle (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folders and the import names they install under (pyproject.toml package-dir).
FOLDERS = {"socialmae_rt": "socialmae_rt", "engines": "socialmae_rt.engines", "nodes": "socialmae_rt.nodes",
           "training": "socialmae_rt.training"}
# Lowest first: a module may import its own layer and those below it, never one above.
LAYERS = [
    ("util", ("socialmae_rt.util",)),
    ("core", ("socialmae_rt", "socialmae_rt.messages", "socialmae_rt.results", "socialmae_rt.tasks",
              "socialmae_rt.backend", "socialmae_rt.capture", "socialmae_rt.faces", "socialmae_rt.features",
              "socialmae_rt.model", "socialmae_rt.weights", "socialmae_rt.stream", "socialmae_rt.sinks",
              "socialmae_rt.media")),
    ("training", ("socialmae_rt.training",)),
    ("engines", ("socialmae_rt.engines",)),
    ("app", ("socialmae_rt.app",)),
    ("top", ("socialmae_rt.cli", "socialmae_rt.demo", "socialmae_rt.nodes", "socialmae_rt.bench")),
]
# The top layer's parts stay apart, except the command line, which runs the demo and the benchmarks,
# and bench-node, which listens to the node with a ROS subscriber (rclpy lives in nodes/).
TOP_PEERS_ALLOWED = {("socialmae_rt.cli", "socialmae_rt.demo"), ("socialmae_rt.cli", "socialmae_rt.bench"),
                     ("socialmae_rt.bench", "socialmae_rt.nodes")}  # bench-node hears the node it measures


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([FOLDERS[parts[0]], *parts[1:]])


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the file; `from a import b` gives both a and a.b."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; this tree imports absolutely"
            found.append((node.module or "", node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name == "socialmae_rt" or name.startswith("socialmae_rt.")]


def source_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def graph() -> dict[str, list[tuple[str, int]]]:
    return {module_name(path): imports_of(path) for path in source_files()}


def longest_prefix(name: str, prefixes) -> str | None:
    matches = [p for p in prefixes if name == p or name.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def layer_of(name: str) -> tuple[int, str]:
    """(layer index, the part it belongs to) of a module name."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        prefix = longest_prefix(name, prefixes)
        if prefix is not None and (best is None or len(prefix) > len(best[1])):
            best = (index, prefix)
    assert best is not None, f"{name} belongs to no layer: add its package to LAYERS"
    return best


def forbidden_edges(modules: dict[str, list[tuple[str, int]]]) -> list[str]:
    problems = []
    top = len(LAYERS) - 1
    for module, imported in modules.items():
        here, part = layer_of(module)
        for name, line in imported:
            if name == "socialmae_rt":  # the package itself (its version): nothing above it
                continue
            there, other = layer_of(name)
            if there > here:
                problems.append(f"{module}:{line} imports {name}: {LAYERS[here][0]} may not import {LAYERS[there][0]}")
            elif here == there == top and part != other and (part, other) not in TOP_PEERS_ALLOWED:
                problems.append(f"{module}:{line} imports {name}: {part} and {other} stay apart")
    return problems


def circles(modules: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's algorithm)."""
    known = set(modules)
    edges = {}
    for module, imported in modules.items():
        targets = set()
        for name, _ in imported:
            target = longest_prefix(name, known)
            # a package's own __init__ importing its modules (or they it) is how packages work
            if target and target != module and not module.startswith(target + ".") and not target.startswith(module + "."):
                targets.add(target)
        edges[module] = sorted(targets)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_layers_only_point_down():
    problems = forbidden_edges(graph())
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_no_modules_import_each_other_in_a_circle():
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(group) for group in found)


def test_rclpy_only_in_the_nodes():
    for path in source_files():
        module = module_name(path)
        if module.startswith("socialmae_rt.nodes"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("rclpy", "std_msgs", "sensor_msgs") for n in names), \
                f"{module}:{node.lineno} imports ROS outside nodes/"


@pytest.mark.parametrize("importer, imported, why", [
    ("socialmae_rt.stream.pipeline", "socialmae_rt.engines.factory", "core may not import engines"),
    ("socialmae_rt.engines.factory", "socialmae_rt.app.runner", "engines may not import app"),
    ("socialmae_rt.app.runner", "socialmae_rt.nodes.social_perception", "app may not import top"),
    ("socialmae_rt.nodes.social_perception", "socialmae_rt.cli", "cli and nodes stay apart"),
    ("socialmae_rt.util.threads", "socialmae_rt.messages", "util may not import core"),
])
def test_the_rule_catches_an_upward_import(importer, imported, why):
    """The checks above are only as good as their rule: one import added against it is caught."""
    modules = graph()
    modules[importer] = [*modules[importer], (imported, 1)]
    problems = forbidden_edges(modules)
    assert any(p.startswith(f"{importer}:1 imports {imported}") for p in problems), why


def test_the_circle_check_catches_a_circle():
    modules = graph()
    modules["socialmae_rt.messages"] = [*modules["socialmae_rt.messages"], ("socialmae_rt.results", 1)]
    assert ["socialmae_rt.messages", "socialmae_rt.results"] in circles(modules) or any(
        {"socialmae_rt.messages", "socialmae_rt.results"} <= set(group) for group in circles(modules))
