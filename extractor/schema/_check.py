"""Checks a JSON Schema must pass before it is compiled: its meta-schema, and no `$ref` loop.

Both raise `SchemaCompileError` with a one-line message that says where the problem is, so that a
broken schema is refused before anything is sent rather than compiled into something meaningless
(or into a validator that recurses forever on the first answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.protocols import Validator

from ..errors import SchemaCompileError
from ._refs import RefResolver, UnresolvableRef

__all__ = ["check_json_schema", "find_ref_loop"]

#: keywords whose subschemas apply to the same instance as their parent (a loop through them never ends)
_SAME_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_ONE = ("not", "if", "then", "else")
_SAME_MAPS = ("dependentSchemas", "dependencies")
_REFS = ("$ref", "$recursiveRef", "$dynamicRef")
#: keywords whose subschemas apply to a part of the instance (a property, an item, a key)
_CHILD_ONE = (
    "additionalProperties", "items", "additionalItems", "contains", "propertyNames", "unevaluatedItems",
    "unevaluatedProperties",
)  # fmt: skip
_CHILD_LISTS = ("items", "prefixItems")
_CHILD_MAPS = ("properties", "patternProperties")
_MESSAGE_LIMIT = 300


def _pointer_part(key: str | int) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _subschemas(node: dict[str, Any], where: str) -> Iterator[tuple[Any, str, bool]]:
    """(subschema, its location, whether it applies to the same instance) for each subschema of `node`."""
    for key in _SAME_LISTS + _CHILD_LISTS:
        value = node.get(key)
        if isinstance(value, list):
            same = key in _SAME_LISTS
            for index, sub in enumerate(value):
                yield sub, f"{where}/{key}/{index}", same
    for key in _SAME_ONE + _CHILD_ONE:
        value = node.get(key)
        if isinstance(value, dict):
            yield value, f"{where}/{key}", key in _SAME_ONE
    for key in _SAME_MAPS + _CHILD_MAPS:
        value = node.get(key)
        if isinstance(value, dict):
            same = key in _SAME_MAPS
            for name, sub in value.items():
                yield sub, f"{where}/{key}/{_pointer_part(name)}", same


def find_ref_loop(schema: Any) -> list[str] | None:
    """The `$ref`s of a loop that comes back to the same instance without going into a property or
    an item (`#/$defs/a -> #/$defs/b -> #/$defs/a`), or None when there is none.

    Such a schema describes no value: a validator following it never stops. A recursive schema whose
    recursion goes through `properties`, `items` and the like (a tree node and its children) is fine.
    Only the part of the schema reachable from its root is looked at; unresolvable refs are ignored.
    """
    if not isinstance(schema, dict):
        return None
    resolver = RefResolver(schema)
    state: dict[int, int] = {}  # id of a schema node -> _ON_CHAIN or _DONE
    pending: list[tuple[dict[str, Any], str]] = [(schema, "#")]
    while pending:
        start, where = pending.pop()
        if id(start) in state:
            continue
        # a depth-first walk along the same-instance edges; every other edge starts a new walk later
        chain: list[tuple[dict[str, Any], str, Iterator[tuple[Any, str, str | None]]]] = []
        labels: list[str | None] = []  # the `$ref` that led to each node of the chain (None: not a $ref)
        _enter(start, where, None, chain, labels, state, pending, resolver)
        while chain:
            node, _, edges = chain[-1]
            step = next(edges, None)
            if step is None:
                state[id(node)] = _DONE
                chain.pop()
                labels.pop()
                continue
            target, location, ref = step
            if not isinstance(target, dict):
                continue
            mark = state.get(id(target))
            if mark == _ON_CHAIN:
                if ref is None:  # the same dict object nested in itself: no $ref to name
                    return [location, location]
                first = next(i for i, (n, _, _) in enumerate(chain) if n is target)
                head = labels[first] or chain[first][1]
                return [head, *(label for label in labels[first + 1 :] if label is not None), ref]
            if mark is None:
                _enter(target, location, ref, chain, labels, state, pending, resolver)
    return None


_ON_CHAIN = 1
_DONE = 2


def _enter(
    node: dict[str, Any],
    where: str,
    ref: str | None,
    chain: list[tuple[dict[str, Any], str, Iterator[tuple[Any, str, str | None]]]],
    labels: list[str | None],
    state: dict[int, int],
    pending: list[tuple[dict[str, Any], str]],
    resolver: RefResolver,
) -> None:
    """Put `node` on the chain: its same-instance edges are walked now, the others queued in `pending`."""
    state[id(node)] = _ON_CHAIN
    same: list[tuple[Any, str, str | None]] = []
    for sub, location, same_instance in _subschemas(node, where):
        if same_instance:
            same.append((sub, location, None))
        elif isinstance(sub, dict):
            pending.append((sub, location))
    for key in _REFS:
        value = node.get(key)
        if not isinstance(value, str):
            continue
        try:
            canon, target = resolver.resolve(value)
        except UnresolvableRef:
            continue
        same.append((target, canon, value))
    chain.append((node, where, iter(same)))
    labels.append(ref)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 3] + "..."


def check_json_schema(schema: Any, cls: type[Validator]) -> None:
    """Raise `SchemaCompileError` if `schema` is not valid against the meta-schema of its draft
    (`cls`), or holds a `$ref` loop; the message names the first problem and where it is.

    Formats are not checked here: a `pattern` in ECMA-262 syntax that Python cannot run is the
    compiler's business (it is noted and left to the model), not a reason to refuse the schema.
    """
    try:
        cls.check_schema(schema, format_checker=None)  # type: ignore[call-arg]
    except jsonschema.exceptions.SchemaError as exc:
        raise SchemaCompileError(f"not a valid JSON Schema: at {exc.json_path}: {_one_line(exc.message)}") from None
    loop = find_ref_loop(schema)
    if loop is not None:
        raise SchemaCompileError(
            f"$ref loop that never reaches a property or an item: {' -> '.join(loop)} "
            "(a recursive schema must recurse through properties or items)"
        )
