"""Example instances of a compiled schema: what a model following the schema could answer.

Used by the test server (`extractor.testing`) to answer requests and by the coverage benchmark.
Deterministic: the same schema gives the same instance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

try:  # the regular-expression parser moved in Python 3.11
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre

from .compile import UNTYPED_OBJECT_NOTE

__all__ = ["sample_instance", "sample_string"]

_FORMATS = {
    "date-time": "2024-01-15T10:30:00Z",
    "date": "2024-01-15",
    "time": "10:30:00Z",
    "duration": "P1D",
    "email": "jane.doe@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "uri": "https://example.com/",
}


def sample_string(pattern: str) -> str | None:
    """A string matching the regular expression `pattern`, or None when none could be made."""
    try:
        parsed = _sre.parse(pattern)
    except (re.error, RecursionError, ValueError):
        return None
    out: list[str] = []

    def emit(items: Any, depth: int = 0) -> None:
        if depth > 40:
            raise ValueError("pattern too deep")
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "NOT_LITERAL":
                out.append("a" if chr(arg) != "a" else "b")
            elif name == "ANY":
                out.append("a")
            elif name == "IN":
                out.append(_pick_in(arg))
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, high, sub = arg
                count = low if low > 0 else min(1, high)
                if count > 1000:
                    raise ValueError("pattern repeats too often")
                for _ in range(count):
                    emit(sub, depth + 1)
            elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
                emit(arg[-1], depth + 1)
            elif name == "BRANCH":
                emit(arg[1][0], depth + 1)
            elif name == "CATEGORY":
                out.append(_category(str(arg)))
            elif name in ("AT", "ASSERT", "ASSERT_NOT", "GROUPREF"):
                continue
            else:
                raise ValueError(f"unsupported regex element {name}")

    try:
        emit(parsed)
    except (ValueError, TypeError, OverflowError):
        return None
    text = "".join(out)
    try:
        return text if re.search(pattern, text) else None
    except re.error:
        return None


def _category(name: str) -> str:
    if "NOT_DIGIT" in name:
        return "a"
    if "DIGIT" in name:
        return "1"
    if "NOT_SPACE" in name or ("WORD" in name and "NOT_WORD" not in name):
        return "a"
    if "SPACE" in name:
        return " "
    return "-"


def _pick_in(items: Any) -> str:
    negate = any(str(op) == "NEGATE" for op, _ in items)
    if negate:
        banned = {chr(a) for op, a in items if str(op) == "LITERAL"}
        return next(c for c in "aZ0_-x" if c not in banned)
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return _category(str(arg))
    return "a"


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    exclusive_low = schema.get("exclusiveMinimum")
    exclusive_high = schema.get("exclusiveMaximum")
    step = schema.get("multipleOf")
    value: float = 1
    if isinstance(low, int | float):
        value = low
    elif isinstance(exclusive_low, int | float):
        value = exclusive_low + (step if isinstance(step, int | float) else 1)
    elif isinstance(high, int | float) and high < value:
        value = high
    elif isinstance(exclusive_high, int | float) and exclusive_high <= value:
        value = exclusive_high - (step if isinstance(step, int | float) else 1)
    if isinstance(step, int | float) and step > 0:
        value = (value // step) * step
        if isinstance(low, int | float) and value < low:
            value += step
    if integer:
        return int(value) if float(value).is_integer() else int(value) + 1
    return value


def sample_instance(schema: Mapping[str, Any], *, nulls: bool = False, max_depth: int = 8) -> Any:
    """An instance of compiled `schema` with every property present; `nulls` prefers null where allowed."""
    defs: Mapping[str, Any] = schema.get("$defs", {})

    def make(node: Any, depth: int) -> Any:
        if not isinstance(node, Mapping):
            return None
        ref = node.get("$ref")
        if isinstance(ref, str):
            return make(defs.get(ref.rsplit("/", 1)[-1], {}), depth + 1)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        if "anyOf" in node:
            branches = list(node["anyOf"])
            null = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "null"]
            rest = [b for b in branches if b not in null]
            if null and (nulls or depth >= max_depth or not rest):
                return None
            return make(rest[0], depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object":
            props = node.get("properties", {})
            return {k: make(v, depth + 1) for k, v in props.items()}
        if kind == "array":
            count = node.get("minItems", 0 if depth >= max_depth else 1)
            if isinstance(node.get("maxItems"), int):
                count = min(count, node["maxItems"])
            return [make(node.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "string":
            description = node.get("description", "")
            if isinstance(description, str) and description.startswith(UNTYPED_OBJECT_NOTE):
                return "{}"
            fmt = node.get("format")
            if isinstance(fmt, str) and fmt in _FORMATS:
                return _FORMATS[fmt]
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                made = sample_string(pattern)
                if made is not None:
                    return made
            return "text"
        if kind == "integer":
            return _number(node, True)
        if kind == "number":
            return _number(node, False)
        if kind == "boolean":
            return True
        return None

    return make(schema, 0)
