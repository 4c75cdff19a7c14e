"""The schema a part of a long document is asked with: the user's compiled schema with every field
allowed to be null, lists allowed to be empty, and one note for "nothing asked for is in this part".

A part states only some of a record: asked for the full strict schema, a model must invent the
required fields its part does not hold. Asked for the part schema, it can say null; the parts'
values are merged and the merged record is then validated against the user's full schema.
Objects stay closed and every property stays required (strict output needs both): only what a
value may be widens, but for constants (a discriminated union's tag), which a part always states.
Objects reached through fields are loosened all the way down; the items of a list are not (an item
a part lists must be whole).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ..schema.compiled import CompiledSchema, compile_schema
from ..schema.dialects import Dialect

__all__ = ["NOTE_DESCRIPTION", "PartSchema", "part_schema"]

T = TypeVar("T")

NOTE_DESCRIPTION: Final = (
    "Null, unless this part of the document states none of the fields asked for, or only continues "
    "something from an earlier part: then say so in a few words."
)
_REF_PREFIX: Final = "#/$defs/"


@dataclass(frozen=True)
class PartSchema(Generic[T]):
    """`compiled`: what each part is asked with and read by; `note`: the property holding the model's
    note (removed before the parts are merged); `full`: the user's schema, that the merge is validated by."""

    compiled: CompiledSchema[Any]
    note: str
    full: CompiledSchema[T]

    def user_value(self, value: Any) -> tuple[Any, str | None]:
        """A part's answer (a value of `compiled`) in the user's JSON shape, not validated, and its note."""
        note = None
        if isinstance(value, dict):
            value = dict(value)
            said = value.pop(self.note, None)
            note = said.strip() or None if isinstance(said, str) else None
        return self.full.decode(value), note


def _is_nullable(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(isinstance(branch, dict) and _is_nullable(branch) for branch in node.get("anyOf", ()))


class _Loosener:
    """One walk over a compiled schema, loosening the fields it reaches (see the module's docstring)."""

    def __init__(self, schema: dict[str, Any], dialect: Dialect) -> None:
        self.dialect = dialect
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.loose: dict[str, str] = {}  # definition -> its loosened copy's name

    def root(self, node: dict[str, Any]) -> dict[str, Any]:
        return {**node, "properties": {key: self.field(value) for key, value in node["properties"].items()}}

    def field(self, node: Any) -> Any:
        """A field's schema that also takes null (and, for a list, no items; for an object, loose fields)."""
        if not isinstance(node, dict) or "const" in node:
            return node  # a constant (a union's tag) is always stated: null would only break the union
        loosened = self.value(node)
        return loosened if _is_nullable(loosened) else self.dialect.nullable(loosened)

    def value(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref[len(_REF_PREFIX) :]
            target = self.defs.get(name)
            if isinstance(target, dict) and isinstance(target.get("properties"), dict):
                return {**node, "$ref": _REF_PREFIX + self.loose_def(name, target)}
            return node
        if node.get("type") == "object" and isinstance(node.get("properties"), dict):
            return {**node, "properties": {key: self.field(value) for key, value in node["properties"].items()}}
        if node.get("type") == "array" or (isinstance(node.get("type"), list) and "array" in node["type"]):
            return {key: value for key, value in node.items() if key != "minItems"}
        if "anyOf" in node:
            return {**node, "anyOf": [self.value(b) if isinstance(b, dict) else b for b in node["anyOf"]]}
        return node

    def loose_def(self, name: str, target: dict[str, Any]) -> str:
        """The name of the loosened copy of definition `name` (made once; recursion refers back to it)."""
        made = self.loose.get(name)
        if made is not None:
            return made
        made = f"{name}_part"
        while made in self.defs:
            made += "_"
        self.loose[name] = made
        self.defs[made] = {}  # reserved before the walk, for definitions that refer to themselves
        self.defs[made] = self.value(target)
        return made


def _reachable(root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The definitions `root` still refers to, directly or through each other (loosening leaves some unused)."""
    seen: dict[str, None] = {}
    todo: list[Any] = [{k: v for k, v in root.items() if k != "$defs"}]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                name = ref[len(_REF_PREFIX) :]
                if name not in seen and name in defs:
                    seen[name] = None
                    todo.append(defs[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return {name: defs[name] for name in defs if name in seen}


def part_schema(full: CompiledSchema[T]) -> PartSchema[T]:
    """The schema the parts of a long document are asked with, for the user's compiled schema `full`."""
    schema = copy.deepcopy(full.json_schema)
    walker = _Loosener(schema, full.dialect)
    loosened = walker.root(schema)
    defs = _reachable(loosened, walker.defs)
    if defs:
        loosened["$defs"] = defs
    else:
        loosened.pop("$defs", None)
    note = "part_note"
    while note in loosened["properties"]:
        note = "_" + note
    # not required: compiled, it is sent as a required nullable field; an answer without it is read all the same
    loosened["properties"] = {**loosened["properties"], note: {"type": "string", "description": NOTE_DESCRIPTION}}
    if "propertyOrdering" in loosened:
        loosened["propertyOrdering"] = [*loosened["propertyOrdering"], note]
    loosened.setdefault("title", full.name)
    return PartSchema(compile_schema(loosened, dialect=full.dialect), note, full)
