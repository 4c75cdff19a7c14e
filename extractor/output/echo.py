"""Recognising an answer that echoes the schema instead of giving values: small models asked for JSON
"following this schema" often answer `{"type": "object", "properties": {...}}`."""

from __future__ import annotations

import json
from typing import Any, Final

from .limits import MAX_DEPTH, nesting_depth

__all__ = ["echoes_schema"]

_SCHEMA_WORDS: Final = frozenset({"$schema", "$defs", "definitions", "properties", "additionalProperties", "required"})


def _object_in(text: str) -> Any:
    """The JSON object in `text` (whole, or from its first `{` to its last `}`), or None (also for one
    nested deeper than `limits.MAX_DEPTH`: no schema is)."""
    if text.count("{") + text.count("[") > MAX_DEPTH and nesting_depth(text, MAX_DEPTH) > MAX_DEPTH:
        return None
    for candidate in (text.strip(), text[text.find("{") : text.rfind("}") + 1]):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    return None


def echoes_schema(text: str | None, json_schema: dict[str, Any]) -> bool:
    """Whether the answer `text` is a JSON Schema rather than a value of `json_schema`: an object with a
    `type` and `properties` (or `$schema`/`$defs`) where the schema's own root names no such fields."""
    if not text or "{" not in text:
        return False
    value = _object_in(text)
    if not isinstance(value, dict):
        return False
    own = set(json_schema.get("properties", {}))
    words = (set(value) & _SCHEMA_WORDS) - own
    if "$schema" in words or "$defs" in words:
        return True
    return "properties" in words and isinstance(value.get("properties"), dict) and "type" in value and "type" not in own
