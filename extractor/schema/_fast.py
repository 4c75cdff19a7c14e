"""Valid answers in one step: a pydantic validator that refuses what the reader refuses, and a count that
tells whether the text gave a key twice.

For a pydantic type whose compiled shape is its own (but for nulls), pydantic-core reads the answer's
text and validates it at once. The validator is built from the type's own core schema, with two changes
that only refuse more: every object refuses keys its type does not name (a key in another case would
otherwise pass unnoticed where the type ignores unknown keys and has defaults), and every float and
decimal refuses NaN, Infinity and numbers too large for a float (`1e999`). Whatever it refuses goes the
long way, through the reader, which repairs or refuses it with a record.

JSON readers keep the last of a key given twice without a word. Each member of an object holds one `:`
outside strings, so when the text holds exactly as many `:` as the validated value has members, no key
was given twice (and no string holds a `:`); otherwise a strict decoding tells.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, Final

import pydantic
import pydantic_core
from typing_extensions import is_typeddict

from ..output.syntax import loads_strict

__all__ = ["Members", "fast_validator", "keys_once"]

# objects that name their keys, and the numbers that must be finite
_OBJECTS: Final = frozenset({"model-fields", "typed-dict", "dataclass-args"})
_NUMBERS: Final = frozenset({"float", "decimal"})
# validators of the user's own around a whole record: what they give pydantic may not be the text's keys
_AROUND: Final = frozenset({"function-before", "function-wrap", "function-plain"})
_RECORDS: Final = frozenset({"model", "model-fields", "typed-dict", "dataclass", "dataclass-args"})


def _refusing(node: Any, around: list[bool]) -> Any:
    """A copy of core schema `node` whose objects refuse unknown keys and whose numbers refuse NaN and
    Infinity; `around` is set when a validator of the user's own receives a whole record."""
    if isinstance(node, list):
        return [_refusing(item, around) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _refusing(value, around) for key, value in node.items()}
    kind = out.get("type")
    if kind in _OBJECTS:
        out["extra_behavior"] = "forbid"
    elif kind in _NUMBERS:
        out["allow_inf_nan"] = False
    elif kind == "model" and out.get("post_init"):
        around.append(True)  # it may change the fields set
    elif kind in _AROUND and isinstance(node.get("schema"), dict) and node["schema"].get("type") in _RECORDS:
        around.append(True)
    return out


def fast_validator(core_schema: Any) -> tuple[pydantic_core.SchemaValidator, bool] | None:
    """A validator for `core_schema` refusing unknown keys and non-finite numbers, and whether the fields
    set of the records it makes are the keys of the text (no validator of the user's own rewrites a
    record's input). None when pydantic-core cannot build one."""
    around: list[bool] = []
    try:
        schema = _refusing(core_schema, around)
        try:
            # a model's own validator would be reused as it is ("prebuilt"): build every part anew
            validator = pydantic_core.SchemaValidator(schema, _use_prebuilt=False)
        except TypeError:  # a pydantic-core without prebuilt validators
            validator = pydantic_core.SchemaValidator(schema)
    except Exception:  # any schema pydantic-core cannot build: no fast path, the long way works
        return None
    return validator, not around


def _holds_records(tp: Any, seen: set[int], depth: int = 0) -> bool | None:
    """Whether a field of type `tp` may hold records (models or TypedDicts); None when it may hold one whose
    keys cannot be counted (a dataclass)."""
    if depth > 32 or id(tp) in seen:
        return False
    seen.add(id(tp))
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return True
    if is_typeddict(tp):
        return True
    if dataclasses.is_dataclass(tp):
        return None
    found = False
    for arg in typing.get_args(tp):
        holds = _holds_records(arg, seen, depth + 1)
        if holds is None:
            return None
        found = found or holds
    return found


class Members:
    """Counts the members of a validated value: the keys its records were given (pydantic's fields set,
    a TypedDict's keys). None when it cannot tell (a dataclass)."""

    def __init__(self) -> None:
        self._plans: dict[type, tuple[str, ...] | None] = {}

    def _plan(self, cls: type[pydantic.BaseModel]) -> tuple[str, ...] | None:
        """The fields of `cls` that may hold records (None: one may hold a record that cannot be counted)."""
        if cls not in self._plans:
            holding = {name: _holds_records(info.annotation, set()) for name, info in cls.model_fields.items()}
            countable = all(holds is not None for holds in holding.values())
            self._plans[cls] = tuple(name for name, holds in holding.items() if holds) if countable else None
        return self._plans[cls]

    def count(self, value: Any) -> int | None:
        """How many members the objects of the text `value` was validated from had (None: unknown)."""
        total = 0
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, pydantic.BaseModel):
                given = node.__pydantic_fields_set__
                total += len(given)
                plan = self._plan(type(node))
                if plan is None:
                    return None
                held = node.__dict__
                stack += [held[name] for name in plan if name in given]
            elif isinstance(node, list | tuple | set | frozenset):
                stack += node
            elif isinstance(node, dict):
                total += len(node)
                stack += node.values()
            elif dataclasses.is_dataclass(node):
                return None
        return total


def keys_once(text: str, value: Any, count: Callable[[Any], int | None]) -> bool:
    """Whether JSON `text`, which validated into `value`, gives no key twice in one object: `count(value)`
    members and as many `:` in the text say so at once; otherwise the text is decoded strictly."""
    if text.count(":") == count(value):
        return True
    try:
        loads_strict(text)
    except (ValueError, RecursionError):
        return False
    return True
