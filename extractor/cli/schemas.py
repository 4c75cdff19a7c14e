"""The SCHEMA argument of the commands: a JSON Schema file, `module:Model`, or a bundled schema's name.

Whatever is wrong with it (a file that cannot be read or is not JSON, a module that fails to import,
an attribute that is not a schema, a JSON Schema its meta-schema refuses, a `$ref` loop) is one
`ConfigurationError` or `SchemaCompileError` line that names the spec, raised before anything is sent.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from ..bundled import bundled_schema, bundled_schema_names
from ..errors import ConfigurationError, SchemaCompileError
from ..schema import compile_schema

__all__ = ["resolve_schema"]

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_MESSAGE_LIMIT = 300


def _one_line(text: str) -> str:
    """The first line of `text` with its whitespace collapsed, cut to a readable length."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    flat = " ".join(first.split())
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 3] + "..."


def _json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type (`an array`, `a string`, ...)."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number"


def _read_file(path: Path, spec: str) -> Any:
    """The JSON Schema in file `path`; ConfigurationError if it cannot be read or is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"schema file {spec}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"schema file {spec}: not readable JSON (not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"schema file {spec}: not readable JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ConfigurationError(f"schema file {spec}: not JSON this reader accepts (nested too deeply)") from None
    if not isinstance(value, dict | bool):
        raise ConfigurationError(f"schema file {spec}: a JSON Schema is an object, this file holds {_json_kind(value)}")
    return value


def _where(exc: BaseException) -> str:
    """` (at file.py:12)`: the innermost place of the traceback outside the import machinery, or ``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen ")]
    if isinstance(exc, SyntaxError) or not frames:
        return ""  # a SyntaxError's message says where already
    frame = frames[-1]
    filename = Path(frame.filename)
    try:
        shown = str(filename.relative_to(Path.cwd()))
    except ValueError:
        shown = str(filename)
    return f" (at {shown}:{frame.lineno})"


def _import(spec: str) -> Any:
    """The object `package.module:Attr.ibute` names; ConfigurationError if the import fails in any way."""
    module_name, _, attribute = spec.partition(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise ConfigurationError(
                f"schema {spec}: cannot import {module_name} (no module named {missing!r})"
            ) from None
        raise ConfigurationError(
            f"schema {spec}: importing {module_name} failed: ModuleNotFoundError: {_one_line(str(exc))}{_where(exc)}"
        ) from None
    except (Exception, SystemExit) as exc:  # anything the module raises while it runs: its bug, not ours
        raise ConfigurationError(
            f"schema {spec}: importing {module_name} failed: {type(exc).__name__}: {_one_line(str(exc))}{_where(exc)}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigurationError(f"schema {spec}: {module_name} has no attribute {attribute}")
        target = getattr(target, part)
    return target


def _checked(schema: Any, spec: str) -> Any:
    """`schema`, once it compiles; else SchemaCompileError naming `spec` (compiled schemas are cached,
    so the command's own compilation that follows costs nothing)."""
    try:
        compile_schema(schema)
    except SchemaCompileError as exc:
        message = _one_line(str(exc))
        raise SchemaCompileError(
            f"schema {spec} is {message}" if message.startswith("not ") else f"schema {spec}: {message}"
        ) from None
    return schema


def resolve_schema(spec: str) -> tuple[Any, str]:
    """The schema `spec` names, checked to compile, and a label for messages.

    `spec` is a JSON Schema file (`invoice.schema.json`), a pydantic model importable from the current
    directory (`package.module:Model`), or the name of a bundled schema (`invoice`, `receipt`, ...).
    Raises ConfigurationError or SchemaCompileError, one line naming `spec`, when it is none of them
    or does not compile.
    """
    path = Path(spec)
    if path.is_file():
        return _checked(_read_file(path, spec), spec), str(path)
    if _IMPORT_PATH.match(spec):
        return _checked(_import(spec), spec), spec
    if spec.replace("-", "_").lower().removesuffix(".json") in bundled_schema_names():
        return bundled_schema(spec), f"bundled:{spec}"
    if path.is_dir():
        raise ConfigurationError(f"schema file {spec} is a directory, not a JSON Schema file")
    if path.exists():
        raise ConfigurationError(f"schema file {spec} is not a regular file")
    if spec.endswith(".json") or "/" in spec:
        raise ConfigurationError(f"schema file {spec} not found")
    raise ConfigurationError(
        f"unknown schema {spec!r}: give a JSON Schema file, package.module:Model, or one of the bundled "
        f"schemas: {', '.join(bundled_schema_names())}"
    )
