"""The JSON Schemas shipped with the package (`schemas/` in the source tree): invoice, receipt, ..."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = ["bundled_schema", "bundled_schema_names"]


def _folder() -> Any:
    """Where the bundled schemas are: inside the installed package, else the source tree's `schemas/`."""
    packaged = resources.files("extractor") / "_bundled_schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


def bundled_schema_names() -> list[str]:
    """The names of the bundled schemas, sorted (`invoice`, `receipt`, ...)."""
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def bundled_schema(name: str) -> dict[str, Any]:
    """The bundled JSON Schema called `name` (with or without `.json`; `-` and `_` alike)."""
    wanted = name.removesuffix(".json").replace("-", "_").lower()
    if wanted not in bundled_schema_names():
        known = ", ".join(bundled_schema_names()) or "none found"
        raise ConfigurationError(f"no bundled schema named {name!r} (bundled: {known})")
    data: dict[str, Any] = json.loads((_folder() / f"{wanted}.json").read_text(encoding="utf-8"))
    return data
