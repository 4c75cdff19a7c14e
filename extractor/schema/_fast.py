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
import operator
import types
import typing
from collections.abc import Callable
from typing import Any, Final, cast

import pydantic
import pydantic_core
from typing_extensions import is_typeddict

from ..output.syntax import loads_strict

__all__ = ["Members", "fast_validator", "keys_once", "uncounted"]

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


_FIELDS_SET: Final = operator.attrgetter("__pydantic_fields_set__")


def _record_type(tp: Any) -> tuple[bool, type[pydantic.BaseModel]] | None:
    """`(many, model)` for a field of type `model`, `list[model]` (`many`), or either or None; else None."""
    args = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    if len(args) != 1:
        return None
    tp = args[0]
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    many = typing.get_origin(tp) is list
    if many:
        inner = typing.get_args(tp)
        tp = inner[0] if len(inner) == 1 else None
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return many, tp
    return None


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


class Members:
    """Counts the members of a validated value: the keys its records were given (pydantic's fields set,
    a TypedDict's keys). None when it cannot tell (a dataclass). Each model gets a count of its own,
    made once: its fields set, and the records of the fields that hold some."""

    def __init__(self) -> None:
        self._counts: dict[type, Callable[[Any], int | None]] = {}

    def counter(self, root: Any) -> Callable[[Any], int | None]:
        """The count for values of type `root` (a model's own when it is one)."""
        if isinstance(root, type) and issubclass(root, pydantic.BaseModel):
            return self._of(root)
        return self.count

    def _of(self, cls: type[pydantic.BaseModel]) -> Callable[[Any], int | None]:
        """The count of a `cls` instance's members, at any depth."""
        known = self._counts.get(cls)
        if known is not None:
            return known
        self._counts[cls] = self.count  # while it is made (a recursive model): the general count
        fields: list[tuple[str, bool, Callable[[Any], int | None] | None]] = []
        for name, info in cls.model_fields.items():
            holds = _holds_records(info.annotation, set())
            if holds is None:
                self._counts[cls] = _unknown
                return _unknown
            if holds:
                record = _record_type(info.annotation)
                if record is None:
                    fields.append((name, False, None))  # records some other way: the general count
                else:
                    many, model = record
                    sub = self._of(model)
                    fields.append((name, many, None if sub is _flat else sub))
        count = _flat if not fields else self._composed(tuple(fields))
        self._counts[cls] = count
        return count

    def _composed(
        self, fields: tuple[tuple[str, bool, Callable[[Any], int | None] | None], ...]
    ) -> Callable[[Any], int | None]:
        general = self.count

        def count(value: Any) -> int | None:
            given = getattr(value, "__pydantic_fields_set__", None)
            if given is None:
                return general(value)
            total = len(given)
            held = value.__dict__
            for name, many, sub in fields:
                if name not in given or held[name] is None:
                    continue
                item = held[name]
                if sub is None and not many:
                    more = general(item) if not isinstance(item, pydantic.BaseModel) else len(_FIELDS_SET(item))
                elif sub is None:
                    more = sum(map(len, map(_FIELDS_SET, item)))  # records of flat models
                elif many:
                    parts = list(map(sub, item))
                    more = None if None in parts else sum(cast(list[int], parts))
                else:
                    more = sub(item)
                if more is None:
                    return None
                total += more
            return total

        return count

    def count(self, value: Any) -> int | None:
        """How many members the objects of the text `value` was validated from had (None: unknown)."""
        total = 0
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, pydantic.BaseModel):
                own = self._of(type(node))
                if own is not self.count:
                    more = own(node)
                    if more is None:
                        return None
                    total += more
                    continue
                given = node.__pydantic_fields_set__
                total += len(given)
                stack += [node.__dict__[name] for name in given]
            elif isinstance(node, list | tuple | set | frozenset):
                stack += node
            elif isinstance(node, dict):
                total += len(node)
                stack += node.values()
            elif dataclasses.is_dataclass(node):
                return None
        return total


def _flat(value: Any) -> int | None:
    """The members of a model none of whose fields holds a record (None: not a model after all)."""
    given = getattr(value, "__pydantic_fields_set__", None)
    return None if given is None else len(given)


def _unknown(value: Any) -> int | None:
    """The members of a model that may hold a record whose keys cannot be counted (a dataclass)."""
    return None


def keys_once(text: str) -> bool:
    """Whether valid JSON `text` gives no key twice in one object (decoded strictly to tell)."""
    try:
        loads_strict(text)
    except (ValueError, RecursionError):
        return False
    return True


def uncounted(value: Any) -> int | None:
    """No count of members: the keys of the text are checked by decoding it."""
    return None
