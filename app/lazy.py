"""Package names that load their module on first use (PEP 562), so importing a package for one pure piece
does not import the rest: the node imports `aurora.app.search.chunking` without the laptop's store."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, homes: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `homes` maps each exported name to its submodule; a name is
    imported once, then kept in `namespace` (the package's globals) so later lookups are plain."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value
        return value

    return __getattr__
