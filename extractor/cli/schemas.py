"""The SCHEMA argument of the commands: a JSON Schema file, `module:Model`, or a bundled schema's name."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..bundled import bundled_schema, bundled_schema_names
from ..errors import ConfigurationError

__all__ = ["resolve_schema"]

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def resolve_schema(spec: str) -> tuple[Any, str]:
    """The schema `spec` names, and a label for messages.

    `spec` is a JSON Schema file (`invoice.schema.json`), a pydantic model importable from the current
    directory (`package.module:Model`), or the name of a bundled schema (`invoice`, `receipt`, ...).
    """
    path = Path(spec)
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8")), str(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigurationError(f"schema file {spec}: not readable JSON ({exc})") from None
    if _IMPORT_PATH.match(spec):
        module_name, _, attribute = spec.partition(":")
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(f"schema {spec}: cannot import {module_name} ({exc})") from None
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise ConfigurationError(f"schema {spec}: {module_name} has no attribute {attribute}")
            target = getattr(target, part)
        return target, spec
    if spec.replace("-", "_").lower().removesuffix(".json") in bundled_schema_names():
        return bundled_schema(spec), f"bundled:{spec}"
    if spec.endswith(".json") or "/" in spec:
        raise ConfigurationError(f"schema file {spec} not found")
    raise ConfigurationError(
        f"unknown schema {spec!r}: give a JSON Schema file, package.module:Model, or one of the bundled "
        f"schemas: {', '.join(bundled_schema_names())}"
    )
