"""The structure of a JSON value against a compiled schema: types, enums, keys (no string constraints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Opaque", "fits", "json_type_of", "json_type_ok"]


class Opaque:
    """A value carried through a compiled shape untouched; it fits anywhere and is judged later."""

    __slots__ = ()


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "boolean": (bool,),
    "null": (type(None),),
}


def json_type_of(value: Any) -> str:
    """The JSON Schema type of a JSON value (`integer` for whole floats)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_type_ok(value: Any, json_type: str) -> bool:
    """Whether `value` is of JSON Schema type `json_type` (1.0 is an integer; true is not a number)."""
    if json_type == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if json_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES.get(json_type, ()))


def fits(value: Any, schema: Any, defs: Mapping[str, Any], depth: int = 0, *, absent: bool = False) -> bool:
    """Whether `value` has the structure of compiled `schema`: types, enums, keys (not string constraints).
    With `absent`, a required key may be missing where null is allowed (null stands for absent)."""
    if depth > 12 or schema is True or isinstance(value, Opaque):
        return True
    if not isinstance(schema, dict):
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        return target is not None and fits(value, target, defs, depth + 1, absent=absent)
    if "anyOf" in schema:
        return any(fits(value, s, defs, depth + 1, absent=absent) for s in schema["anyOf"])
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    json_type = schema.get("type")
    if isinstance(json_type, str) and not json_type_ok(value, json_type):
        return False
    if isinstance(json_type, list) and not any(json_type_ok(value, t) for t in json_type):
        return False
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        if schema.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        for key in schema.get("required", ()):
            if key not in value and not (absent and fits(None, props.get(key, {}), defs, depth + 1)):
                return False
        return all(fits(v, props[k], defs, depth + 1, absent=absent) for k, v in value.items() if k in props)
    if isinstance(value, list) and "items" in schema:
        return all(fits(v, schema["items"], defs, depth + 1, absent=absent) for v in value[:8])
    return True
