"""Package namespaces whose names load on first use (PEP 562).

Reading a configuration must not import torch: a live node opens its camera and microphone
first and loads the model while the first window fills.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for `package`, where `homes` maps each name to its submodule."""
    namespace = importlib.import_module(package).__dict__

    def get(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def names() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return get, names
