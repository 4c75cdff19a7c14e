"""Numbers and booleans written as strings in a decoded answer, found with the user's own schema.

The aligner converts such strings where the compiled schema wants a number; what it leaves (a string
that is ambiguous, not a number, a fraction where a whole number is wanted) and what the compiled
schema does not show as a number (a pydantic `Decimal` is compiled as "number or string") is found
here, by walking the answer in the user's shape with the user's schema:

- for a JSON Schema, where its `type` says `number`, `integer` or `boolean` (and not `string`);
- for a pydantic type, where pydantic validates an `int`, `float`, `Decimal` or `bool` (its JSON
  Schema generated with these marked, see `NumberView`) and no validator of the user's own
  (before, wrap or plain) receives the value first: there the value is the user's to interpret.

Every such string is either converted, with a repair record, or refused with a clear error. The one
rule for the text (`output.numbers`) is the same everywhere: "12.50", "1,234.50", "1.234,50",
"$1,234.50", "-3", "1e3" are read; "1,234" and "1.234" are refused as ambiguous; an integer is read
from "12.0" but not from "12.5". Nothing is guessed where the schema leaves a choice (a union with a
string branch, several object branches with nothing to tell them apart): validation judges those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pydantic_core
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, JsonSchemaWarningKind
from pydantic_core import core_schema

from .._jsonpath import format_path
from ..errors import ErrorDetail
from ..output.limits import MAX_DEPTH
from ..output.numbers import ambiguity_message, read_bool, read_number
from ..output.repairs import Repair, RepairKind
from ._refs import RefResolver, UnresolvableRef
from .compile import STRICT_MARK

__all__ = ["ALL_KINDS", "MARK", "NumberView", "ScalarStrings", "StrictMarks", "StringFix", "unmark"]

#: the key marking, in a pydantic type's JSON Schema, the nodes pydantic validates as int, float, Decimal, bool
MARK: Final = "x-extractor-scalar"
#: every kind of scalar a string may stand for
ALL_KINDS: Final = frozenset({"integer", "number", "decimal", "boolean"})

_JSON_SCALARS: Final = frozenset({"integer", "number", "boolean"})
_NUMERIC: Final = frozenset({"integer", "number", "decimal"})
_MAX_STEPS: Final = 4 * MAX_DEPTH  # calls deep: a few per level of the answer
_MAX_HOPS: Final = 32  # nested unions and references looked through for one value
# pydantic's error types for a string that is not a number of the kind / a value not of the kind
_PYDANTIC_PARSING: Final = {
    "integer": "int_parsing",
    "number": "float_parsing",
    "decimal": "decimal_parsing",
    "boolean": "bool_parsing",
}
_PYDANTIC_TYPE: Final = {
    "integer": "int_type",
    "number": "float_type",
    "decimal": "decimal_type",
    "boolean": "bool_type",
}
_JSON_TYPE_NAME: Final = {"integer": "integer", "number": "number", "decimal": "number", "boolean": "boolean"}


class StrictMarks(GenerateJsonSchema):
    """A pydantic type's JSON Schema (validation mode) with `STRICT_MARK` on every scalar pydantic
    validates strictly: `strict=True` on the field or type (`StrictInt`, `Field(strict=True)`), or in
    the config of the model, dataclass or TypedDict holding it (unless the field says `strict=False`)."""

    def generate_inner(self, schema: Any) -> JsonSchemaValue:
        """The JSON Schema of core schema `schema`, marked when it is a strict scalar."""
        configs: list[bool] = self.__dict__.setdefault("_strict_configs", [])
        kind = schema.get("type")
        if kind in _CONFIGURED:
            config = schema.get("config")
            configs.append(bool(isinstance(config, Mapping) and config.get("strict")))
            try:
                return super().generate_inner(schema)
            finally:
                configs.pop()
        out = super().generate_inner(schema)
        if kind in _STRICT_SCALARS and "$ref" not in out:
            own = schema.get("strict")
            if own is True or (own is None and configs and configs[-1]):
                out = {**out, STRICT_MARK: True}
        return out


#: core schemas whose config may make their fields strict, and the scalars strictness applies to
_CONFIGURED: Final = frozenset({"model", "dataclass", "typed-dict"})
_STRICT_SCALARS: Final = frozenset({"int", "float", "decimal", "bool", "str", "literal", "enum"})


def unmark(schema: Any) -> Any:
    """`schema` (a JSON Schema from `StrictMarks`) without its marks, changed in place."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            node.pop(STRICT_MARK, None)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


class NumberView(StrictMarks):
    """A pydantic type's JSON Schema (validation mode) with `MARK` on every int, float, Decimal and bool,
    a `Decimal` shown as the number it is, and nothing below a validator of the user's own (before,
    wrap, plain): what such a validator accepts is not for the library to read. Strict scalars also
    carry `STRICT_MARK`: a string there is never converted, only refused when it is ambiguous."""

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        """An integer, marked."""
        return {**super().int_schema(schema), MARK: "integer"}

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        """A number, marked."""
        return {**super().float_schema(schema), MARK: "number"}

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        """A number read exactly, marked (pydantic shows it as a number or a string)."""
        return {"type": "number", MARK: "decimal"}

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        """A boolean, marked."""
        return {**super().bool_schema(schema), MARK: "boolean"}

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        """Anything: the user's validator sees the value first."""
        return {}

    def function_wrap_schema(self, schema: core_schema.WrapValidatorFunctionSchema) -> JsonSchemaValue:
        """Anything: the user's validator sees the value first."""
        return {}

    def function_plain_schema(self, schema: core_schema.PlainValidatorFunctionSchema) -> JsonSchemaValue:
        """Anything: the user's validator is all the validation there is."""
        return {}

    def render_warning_message(self, kind: JsonSchemaWarningKind, detail: str) -> str | None:
        """No warning: the schema sent to the model was made (and warned about) already."""
        return None


@dataclass
class StringFix:
    """The answer with its scalar strings converted, the repairs that took, and the strings refused."""

    value: Any
    repairs: list[Repair]
    problems: list[ErrorDetail]


class _Run:
    """The state of one walk: which kinds to convert, the repairs made and the strings refused."""

    __slots__ = ("convert", "problems", "repairs")

    def __init__(self, convert: frozenset[str]) -> None:
        self.convert = convert
        self.repairs: list[Repair] = []
        self.problems: list[ErrorDetail] = []


_SCHEMA_LISTS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONES: Final = ("items", "additionalItems", "additionalProperties")


class ScalarStrings:
    """Finds and converts the numbers and booleans written as strings in answers of one schema.

    `marked`: the schema is a `NumberView` (only marked nodes are scalars) rather than a JSON Schema
    (nodes whose `type` says so); messages then read like pydantic's, else like `jsonschema`'s.
    """

    def __init__(self, schema: Any, *, marked: bool) -> None:
        self._schema = schema
        self._marked = marked
        self._resolver = RefResolver(schema)
        self._refs: dict[int, Any] = {}
        self._reach = self._reaching(schema)
        self.active = id(schema) in self._reach

    # --- the schema ------------------------------------------------------------------------

    def _target(self, node: Mapping[str, Any]) -> Any:
        """What the node's `$ref` points to (None without one, or when it cannot be resolved)."""
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return None
        key = id(node)
        if key not in self._refs:
            try:
                self._refs[key] = self._resolver.resolve(ref)[1]
            except UnresolvableRef:
                self._refs[key] = None
        return self._refs[key]

    def _children(self, node: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        target = self._target(node)
        if target is not None:
            out.append(target)
        for key in _SCHEMA_LISTS:
            value = node.get(key)
            if isinstance(value, list):
                out.extend(value)
        for key in _SCHEMA_ONES:
            value = node.get(key)
            if isinstance(value, dict):
                out.append(value)
            elif key == "items" and isinstance(value, list):
                out.extend(value)
        props = node.get("properties")
        if isinstance(props, dict):
            out.extend(props.values())
        return [c for c in out if isinstance(c, dict)]

    def _own_kinds(self, node: Mapping[str, Any]) -> frozenset[str] | None:
        """The scalar kinds the node itself wants a string converted to; None when it says nothing
        (no mark, or no `type`), empty when it says a string is fine or no scalar is wanted."""
        if self._marked:
            mark = node.get(MARK)
            return frozenset({mark}) if mark in ALL_KINDS else None
        declared = node.get("type")
        types = {declared} if isinstance(declared, str) else set(declared) if isinstance(declared, list) else None
        if types is None:
            return None
        return frozenset() if "string" in types else frozenset(types & _JSON_SCALARS)

    def _reaching(self, root: Any) -> set[int]:
        """The ids of the schema's nodes from which a scalar node can be reached (themselves included)."""
        nodes: dict[int, Mapping[str, Any]] = {}
        parents: dict[int, list[int]] = {}
        stack = [root] if isinstance(root, dict) else []
        for defs in ("$defs", "definitions"):
            if isinstance(root, dict) and isinstance(root.get(defs), dict):
                stack.extend(v for v in root[defs].values() if isinstance(v, dict))
        while stack:
            node = stack.pop()
            if id(node) in nodes:
                continue
            nodes[id(node)] = node
            for child in self._children(node):
                parents.setdefault(id(child), []).append(id(node))
                stack.append(child)
        self._nodes = list(nodes.values())
        reach = {key for key, node in nodes.items() if self._own_kinds(node)}
        todo = list(reach)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in reach:
                    reach.add(parent)
                    todo.append(parent)
        return reach

    def keys_of(self, kind: str) -> frozenset[str] | None:
        """The names of the properties under which a scalar of `kind` may sit (as the property's value,
        in a union or a list there); None when one may also sit elsewhere (at the root, as a map value)."""
        # the nodes from which `kind` is reached without entering an object: through references,
        # unions and items only
        parents: dict[int, list[int]] = {}
        for node in self._nodes:
            subs: list[Any] = [self._target(node), node.get("additionalItems")]
            for name in ("allOf", "anyOf", "oneOf", "prefixItems", "items"):
                value = node.get(name)
                subs.extend(value if isinstance(value, list) else [value])
            for sub in subs:
                if isinstance(sub, dict):
                    parents.setdefault(id(sub), []).append(id(node))
        direct = {id(node) for node in self._nodes if kind in (self._own_kinds(node) or ())}
        todo = list(direct)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in direct:
                    direct.add(parent)
                    todo.append(parent)
        if id(self._schema) in direct:
            return None
        names: set[str] = set()
        for node in self._nodes:
            extra = node.get("additionalProperties")
            if isinstance(extra, dict) and id(extra) in direct:
                return None
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(name for name, sub in props.items() if id(sub) in direct)
        return frozenset(names)

    def _string_kinds(self, node: Mapping[str, Any], hops: int) -> frozenset[str]:
        """The kinds a string at `node` stands for: empty when the schema takes a string there as it is,
        or leaves a choice (a union with a branch that takes strings)."""
        own = self._own_kinds(node)
        if own is not None and (own or not self._marked):
            return own
        if hops > _MAX_HOPS:
            return frozenset()
        target = self._target(node)
        subs = [target] if isinstance(target, dict) else []
        subs += [s for s in node.get("allOf") or () if isinstance(s, dict)]
        for sub in subs:
            kinds = self._string_kinds(sub, hops + 1)
            if kinds:
                return kinds
        found: set[str] = set()
        for key in ("anyOf", "oneOf"):
            branches = [b for b in node.get(key) or () if isinstance(b, dict)]
            if any(self._takes_string(b, hops + 1) for b in branches):
                return frozenset()
            for branch in branches:
                found |= self._string_kinds(branch, hops + 1)
        return frozenset(found)

    def _strict_at(self, node: Mapping[str, Any], hops: int) -> bool:
        """Whether a scalar that `_string_kinds` finds at `node` is one pydantic validates strictly."""
        if node.get(STRICT_MARK) is True:
            return True
        if hops > _MAX_HOPS or node.get(MARK) in ALL_KINDS:
            return False
        target = self._target(node)
        subs = [target] if isinstance(target, dict) else []
        subs += [b for key in ("allOf", "anyOf", "oneOf") for b in node.get(key) or () if isinstance(b, dict)]
        return any(self._strict_at(sub, hops + 1) for sub in subs)

    def _takes_string(self, node: Mapping[str, Any], hops: int) -> bool:
        """Whether a string may be valid as it is at `node` (True when unsure)."""
        if hops > _MAX_HOPS:
            return True
        if self._marked and node.get(MARK) in ALL_KINDS:
            return False
        declared = node.get("type")
        if declared is not None:
            types = {declared} if isinstance(declared, str) else set(declared) if isinstance(declared, list) else set()
            # in a pydantic view, an unmarked number is a type of the user's own: whatever it takes
            return "string" in types or (self._marked and bool(types & _JSON_SCALARS))
        if "enum" in node:
            return any(isinstance(v, str) for v in node["enum"] or ())
        if "const" in node:
            return isinstance(node["const"], str)
        target = self._target(node)
        if isinstance(target, dict) and not self._takes_string(target, hops + 1):
            return False
        if any(not self._takes_string(s, hops + 1) for s in node.get("allOf") or () if isinstance(s, dict)):
            return False
        for key in ("anyOf", "oneOf"):
            branches = [b for b in node.get(key) or () if isinstance(b, dict)]
            if branches and not any(self._takes_string(b, hops + 1) for b in branches):
                return False
        return True

    def _holds(self, node: Mapping[str, Any], value: dict[str, Any] | list[Any], hops: int) -> bool:
        """Whether `node` is a branch for a value of the container type of `value`."""
        want = "object" if isinstance(value, dict) else "array"
        declared = node.get("type")
        if declared is not None:
            return want == declared or (isinstance(declared, list) and want in declared)
        if hops > _MAX_HOPS:
            return False
        target = self._target(node)
        if isinstance(target, dict):
            return self._holds(target, value, hops + 1)
        subs = [s for key in ("anyOf", "oneOf", "allOf") for s in node.get(key) or () if isinstance(s, dict)]
        if subs:
            return any(self._holds(s, value, hops + 1) for s in subs)
        keys = ("properties", "additionalProperties", "required") if want == "object" else ("items", "prefixItems")
        return any(k in node for k in keys)

    def _branch(self, value: dict[str, Any] | list[Any], node: Mapping[str, Any], key: str) -> Any:
        """The one branch of `node[key]` the container `value` is meant for, or None when that is unclear."""
        discriminator = node.get("discriminator")
        if isinstance(value, dict) and isinstance(discriminator, dict):
            tag = value.get(discriminator.get("propertyName", ""))
            mapping = discriminator.get("mapping")
            if isinstance(tag, str) and isinstance(mapping, dict) and isinstance(mapping.get(tag), str):
                try:
                    return self._resolver.resolve(mapping[tag])[1]
                except UnresolvableRef:
                    return None
        branches = [b for b in node.get(key) or () if isinstance(b, dict) and self._holds(b, value, 0)]
        if len(branches) > 1 and isinstance(value, dict):
            branches = [b for b in branches if self._consts_match(b, value)]
        return branches[0] if len(branches) == 1 else None

    def _consts_match(self, node: Mapping[str, Any], value: dict[str, Any]) -> bool:
        """False when a property of `value` differs from the `const` the branch fixes for it."""
        target = self._target(node)
        props = (target if isinstance(target, dict) else node).get("properties")
        if not isinstance(props, dict):
            return True
        for name, sub in props.items():
            if isinstance(sub, dict) and "const" in sub and name in value and value[name] != sub["const"]:
                return False
        return True

    # --- the answer ------------------------------------------------------------------------

    def fix(self, value: Any, convert: frozenset[str] = ALL_KINDS) -> StringFix:
        """`value` (in the user's shape) with its scalar strings of the `convert` kinds converted;
        strings of other kinds, and those that cannot be read, are refused (`problems`).

        Converted containers are copies; `value` itself is not changed.
        """
        run = _Run(convert)
        fixed = self._walk(run, value, self._schema, (), 0)
        return StringFix(fixed, run.repairs, run.problems)

    def _walk(self, run: _Run, value: Any, node: Any, loc: tuple[str | int, ...], steps: int) -> Any:
        if steps > _MAX_STEPS or not isinstance(node, dict) or id(node) not in self._reach:
            return value
        if type(value) is str:
            kinds = self._string_kinds(node, 0)
            if not kinds:
                return value
            if self._strict_at(node, 0):  # the user's strict type judges the string as it is
                return self._ambiguous(run, value, kinds, loc)
            return self._string(run, value, kinds, loc)
        if type(value) is dict:
            value = self._object(run, value, node, loc, steps)
        elif type(value) is list:
            value = self._array(run, value, node, loc, steps)
        else:
            return value
        target = self._target(node)
        if target is not None:
            value = self._walk(run, value, target, loc, steps + 1)
        for sub in node.get("allOf") or ():
            value = self._walk(run, value, sub, loc, steps + 1)
        for key in ("anyOf", "oneOf"):
            if node.get(key) and isinstance(value, dict | list):
                branch = self._branch(value, node, key)
                if branch is not None:
                    value = self._walk(run, value, branch, loc, steps + 1)
        return value

    def _object(
        self, run: _Run, value: dict[str, Any], node: Mapping[str, Any], loc: tuple[str | int, ...], steps: int
    ) -> Any:
        props = node.get("properties")
        props = props if isinstance(props, dict) else {}
        extra = node.get("additionalProperties")
        out: dict[str, Any] | None = None
        for key, item in value.items():
            if not (type(item) is str or type(item) is dict or type(item) is list):
                continue
            sub = props.get(key) if key in props else extra
            if not isinstance(sub, dict) or id(sub) not in self._reach:
                continue
            new = self._walk(run, item, sub, (*loc, key), steps + 1)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out

    def _array(
        self, run: _Run, value: list[Any], node: Mapping[str, Any], loc: tuple[str | int, ...], steps: int
    ) -> Any:
        prefix = node.get("prefixItems")
        items = node.get("items")
        if isinstance(items, list):  # draft 4-7 tuples
            prefix, items = items, node.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        out: list[Any] | None = None
        for index, item in enumerate(value):
            if not (type(item) is str or type(item) is dict or type(item) is list):
                continue
            sub = prefix[index] if index < len(prefix) else items
            if not isinstance(sub, dict) or id(sub) not in self._reach:
                continue
            new = self._walk(run, item, sub, (*loc, index), steps + 1)
            if new is not item:
                if out is None:
                    out = list(value)
                out[index] = new
        return value if out is None else out

    # --- one string ------------------------------------------------------------------------

    def _string(self, run: _Run, raw: str, kinds: frozenset[str], loc: tuple[str | int, ...]) -> Any:
        """`raw` converted to one of `kinds` (recorded), or left as it is with a problem noted."""
        if "boolean" in kinds:
            flag = read_bool(raw)
            if flag is not None:
                if "boolean" not in run.convert:
                    return self._refuse(run, raw, "boolean", loc, parsing=False)
                run.repairs.append(Repair(RepairKind.BOOL_STRING, format_path(loc), f"{raw!r} -> {flag}"))
                return flag
            if not kinds & _NUMERIC:
                return self._refuse(run, raw, "boolean", loc, parsing=True)
        numeric = kinds & _NUMERIC
        kind = "decimal" if "decimal" in numeric else "number" if "number" in numeric else "integer"
        reading = read_number(raw)
        number = reading.number
        if reading.ambiguous:
            return self._problem(run, raw, loc, ambiguity_message(raw, reading), kind)
        if number is None:
            return self._refuse(run, raw, kind, loc, parsing=True)
        if kind == "integer" and isinstance(number, float):
            if not number.is_integer():
                return self._problem(run, raw, loc, f"{raw!r} is not a whole number", kind)
            number = int(number)
        if kind not in run.convert:
            return self._refuse(run, raw, kind, loc, parsing=False)
        path = format_path(loc)
        if kind == "decimal":
            run.repairs.append(Repair(RepairKind.NUMBER_STRING, path, f"{raw!r} -> {reading.text}"))
            return reading.text  # exact: pydantic reads every digit of a decimal from its text
        run.repairs.append(Repair(RepairKind.NUMBER_STRING, path, f"{raw!r} -> {number!r}"))
        return number

    def _ambiguous(self, run: _Run, raw: str, kinds: frozenset[str], loc: tuple[str | int, ...]) -> str:
        """`raw` where a strict scalar of `kinds` is wanted: never converted, refused when it is ambiguous
        (the validator may read it as one of the two numbers it can be)."""
        reading = read_number(raw)
        if reading.ambiguous and kinds & _NUMERIC:
            kind = "decimal" if "decimal" in kinds else "number" if "number" in kinds else "integer"
            return self._problem(run, raw, loc, ambiguity_message(raw, reading), kind)
        return raw

    def _refuse(self, run: _Run, raw: str, kind: str, loc: tuple[str | int, ...], *, parsing: bool) -> str:
        """A string that is not (`parsing`) or may not be taken as a value of `kind`: refused as the
        validator would refuse it."""
        if self._marked:
            error = (_PYDANTIC_PARSING if parsing else _PYDANTIC_TYPE)[kind]
            message = pydantic_core.PydanticKnownError(error).message()  # type: ignore[arg-type]
            return self._problem(run, raw, loc, message, kind, error)
        return self._problem(run, raw, loc, f"{raw!r} is not of type {_JSON_TYPE_NAME[kind]!r}", kind, "type")

    @staticmethod
    def _problem(
        run: _Run, raw: str, loc: tuple[str | int, ...], message: str, kind: str, error: str | None = None
    ) -> str:
        detail_kind = "number" if kind in _NUMERIC else error or "type"  # as the validator's errors are kinded
        run.problems.append(ErrorDetail(format_path(loc), message, raw, True, loc, detail_kind))
        return raw
