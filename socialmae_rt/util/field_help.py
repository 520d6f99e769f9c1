"""What a config field means, read from its dataclass's source: the comment on the field's line,
or the comment lines right above it. Configs are the single source of defaults; this makes them the
single source of the help text too (the ROS nodes' `--help`)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

_FIELD = re.compile(r"^\s+(\w+)\s*:\s*[^=#]+(?:=[^#]*)?(?:#\s*(.*))?$")


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment ('' when it has none)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (a frozen build): names and defaults still print
        return {}
    comments: dict[str, str] = {}
    above: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").rstrip())
            continue
        match = _FIELD.match(line)
        if match and not stripped.startswith(("def ", "return", "@")):
            name, trailing = match.group(1), (match.group(2) or "").strip()
            comments.setdefault(name, trailing or " ".join(above))
        above = []
    fields = {f.name for f in dataclasses.fields(cls)}
    return {name: text for name, text in comments.items() if name in fields}


def parameter_table(rows: list[tuple[str, str, Any, str]]) -> str:
    """Rows of (name, type, default, meaning) as aligned text."""
    shown = [(name, kind, "(unset)" if default is None else repr(default), meaning)
             for name, kind, default, meaning in rows]
    width = [max(len(row[i]) for row in shown) for i in range(3)]
    return "\n".join(f"  {n:<{width[0]}}  {k:<{width[1]}}  {d:<{width[2]}}  {m}".rstrip() for n, k, d, m in shown)


def wants_help(argv: list[str]) -> bool:
    """-h/--help before any --ros-args (after it, the arguments are ROS's)."""
    own = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    return any(arg in ("-h", "--help") for arg in own)
