"""Our versioned JSON files (checkpoint configs, bundles): read with one clear error each way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_versioned_json(path: Path, format_name: str, version: int, error: type[Exception] = ValueError,
                        what: str = "file") -> dict[str, Any]:
    """The document at `path` if it is valid JSON, says `"format": format_name` and is `version`."""
    try:
        document = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise error(f"{path} is not valid JSON: {err}") from err
    if not isinstance(document, dict) or document.get("format") != format_name:
        raise error(f"{path} is not a {format_name} {what} (missing 'format': '{format_name}')")
    if document.get("format_version") != version:
        raise error(f"{path} has format_version {document.get('format_version')!r}; this version reads {version}")
    return document
