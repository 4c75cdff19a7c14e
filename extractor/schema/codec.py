"""Codecs between the user's JSON shape and the compiled (strict) shape.

The compiler pairs every compiled node with a codec. `decode` turns a value that follows the compiled
schema back into the user's shape (unwrap the root, key-value arrays to maps, JSON strings to values,
positional objects to tuples, nulls to omitted fields); `encode` is its inverse. Both are tolerant:
a value of an unexpected shape passes through unchanged, so that validation reports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._shape import Opaque, fits
from ..output.limits import check_depth

__all__ = [
    "IDENTITY",
    "ArrayCodec",
    "Codec",
    "JsonStringCodec",
    "MapCodec",
    "ObjectCodec",
    "RefCodec",
    "TupleCodec",
    "UnionCodec",
    "Verbatim",
    "WrapCodec",
    "is_identity",
]


class Verbatim(Opaque):
    """A user value with no compiled form (an explicit null where null means "absent"), carried by
    `encode` so that `decode` gives it back as it was and validation judges it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Verbatim({self.value!r})"


class Codec:
    """The identity codec: the compiled shape is the user's shape. Subclasses override `_decode`/`_encode`."""

    def decode(self, value: Any) -> Any:
        """The user's value for compiled `value`."""
        if isinstance(value, Verbatim):
            return value.value
        return self._decode(value)

    def encode(self, value: Any) -> Any:
        """The compiled value for user `value`."""
        return self._encode(value)

    def _decode(self, value: Any) -> Any:
        return value

    def _encode(self, value: Any) -> Any:
        return value


IDENTITY = Codec()


class ObjectCodec(Codec):
    """An object: per-property codecs; `omit_null` properties are optional fields whose null means absent."""

    def __init__(self, properties: Mapping[str, Codec], omit_null: frozenset[str]) -> None:
        self.properties = dict(properties)
        self.omit_null = omit_null

    def _decode(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None and key in self.omit_null:
                continue
            codec = self.properties.get(key)
            out[key] = codec.decode(item) if codec is not None else Codec.decode(IDENTITY, item)
        return out

    def _encode(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, codec in self.properties.items():
            if key not in value:
                if key in self.omit_null:
                    out[key] = None
            elif value[key] is None and key in self.omit_null:
                out[key] = Verbatim(None)  # an explicit null the schema does not allow
            else:
                out[key] = codec.encode(value[key])
        for key, item in value.items():
            if key not in out:
                out[key] = item
        return out


class ArrayCodec(Codec):
    """A list whose items have a codec of their own."""

    def __init__(self, items: Codec) -> None:
        self.items = items

    def _decode(self, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [self.items.decode(v) for v in value]

    def _encode(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [self.items.encode(v) for v in value]


class TupleCodec(Codec):
    """A tuple (`prefixItems`) compiled as an object `{"item_0": .., "item_1": .., "rest": [..]}`.

    The positions from `required` on may be left out: a null there (`absent` lists those the compiler
    made nullable) ends the tuple when no value follows it. Nothing given is dropped: a null followed
    by a value stays a null, and positions past the tuple's (`item_5` in a 2-tuple) are extra items,
    for validation to refuse; a key that is no position leaves the object as it is, refused likewise.
    """

    def __init__(
        self,
        names: Sequence[str],
        items: Sequence[Codec],
        required: int,
        rest: Codec | None,
        absent: frozenset[int] = frozenset(),
    ) -> None:
        self.names = list(names)
        self.items = list(items)
        self.required = required
        self.rest = rest
        self.absent = absent
        self._index = {name: index for index, name in enumerate(self.names)}

    def _position(self, key: str) -> int | None:
        """The position key `key` stands for (`item_<n>`, also past the tuple's), or None."""
        index = self._index.get(key)
        if index is None and key.startswith("item_") and key[5:].isdigit() and key[5:] == str(int(key[5:])):
            index = int(key[5:])
        return index

    def _decode(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        given: dict[int, Any] = {}
        for key, item in value.items():
            index = self._position(key) if key != "rest" else None
            if index is None and key != "rest":
                return value  # not a positional object: validation reports it as it is
            if index is not None:
                given[index] = item
        rest = value.get("rest")
        extra = rest if isinstance(rest, list) else []
        # the tuple runs to the last position given a value (all of them when more items follow)...
        count = 1 + max((i for i, item in given.items() if item is not None), default=-1)
        if extra:
            count = max(count, len(self.names))
        # ... and through the positions that may not be left out, while they are there (a null there is
        # the answer's value, for validation to judge)
        while count < min(self.required, len(self.names)) and count in given:
            count += 1
        if any(i not in given for i in range(count)):
            return value  # a position missing before one given: no list says that
        out = [
            (self.items[i] if i < len(self.items) else (self.rest or IDENTITY)).decode(given[i]) for i in range(count)
        ]
        out.extend((self.rest or IDENTITY).decode(v) for v in extra)
        return out

    def _encode(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        out: dict[str, Any] = {}
        for index, (name, codec) in enumerate(zip(self.names, self.items, strict=True)):
            if index >= len(value):
                out[name] = None
            elif value[index] is None and index in self.absent:
                out[name] = Verbatim(None)  # an explicit null the schema does not allow there
            else:
                out[name] = codec.encode(value[index])
        extra = value[len(self.names) :]
        if self.rest is not None or extra:
            rest = self.rest or IDENTITY
            out["rest"] = [rest.encode(v) for v in extra]
        return out


class MapCodec(Codec):
    """A free-form map compiled as an array of `{"key": .., "value": ..}` objects."""

    def __init__(self, values: Codec) -> None:
        self.values = values

    def _decode(self, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out: dict[str, Any] = {}
        for entry in value:
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), str) and "value" in entry):
                return value  # not a key-value list: leave it for validation to report
            out[entry["key"]] = self.values.decode(entry["value"])
        return out

    def _encode(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return [{"key": k, "value": self.values.encode(v)} for k, v in value.items()]


class JsonStringCodec(Codec):
    """An untyped value (`Any`, `{}`) compiled as a string holding JSON.

    Decoding raises `OutputInvalidError` when the string's brackets nest deeper than
    `limits.MAX_DEPTH` levels (whether or not it is valid JSON: telling would take reading it).
    """

    def _decode(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        check_depth(value)
        try:
            return json.loads(value)
        except ValueError:
            return value  # plain text where any value is allowed: the text itself

    def _encode(self, value: Any) -> Any:
        return json.dumps(value, ensure_ascii=False)


class WrapCodec(Codec):
    """A non-object root compiled as `{"value": <root>}` (`key`: "value", or another key when an object
    the root may be has a property "value", so that no answer is both the wrapper and a root's value)."""

    def __init__(self, inner: Codec, key: str = "value") -> None:
        self.inner = inner
        self.key = key

    def _decode(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1 and self.key in value:
            return self.inner.decode(value[self.key])
        return value  # not the wrapper: the root's value as it is, or for validation to refuse

    def _encode(self, value: Any) -> Any:
        return {self.key: self.inner.encode(value)}


class RefCodec(Codec):
    """The codec of a compiled `$defs` entry, looked up when used (definitions may be recursive)."""

    def __init__(self, name: str, table: Mapping[str, Codec]) -> None:
        self.name = name
        self.table = table

    def _decode(self, value: Any) -> Any:
        return self.table[self.name].decode(value)

    def _encode(self, value: Any) -> Any:
        return self.table[self.name].encode(value)


class UnionCodec(Codec):
    """`anyOf` branches with codecs: the branch whose compiled schema the value fits decodes it."""

    def __init__(self, branches: Sequence[tuple[dict[str, Any], Codec]], defs: Mapping[str, Any]) -> None:
        self.branches = list(branches)
        self.defs = defs

    def _decode(self, value: Any) -> Any:
        for schema, codec in self.branches:
            if fits(value, schema, self.defs):
                return codec.decode(value)
        return value

    def _encode(self, value: Any) -> Any:
        for schema, codec in self.branches:
            encoded = codec.encode(value)
            if fits(encoded, schema, self.defs) and self.decode(encoded) == value:
                return encoded
        return Verbatim(value)  # no branch gives it back: carried as it is, for validation to judge


def is_identity(codec: Codec, table: Mapping[str, Codec], *, except_nulls: bool = False) -> bool:
    """Whether `codec` changes nothing, looking through the `$defs` codecs in `table` (recursion allowed).

    With `except_nulls`, objects whose only change is "null means absent" count as unchanged: a value
    without such nulls is then already in the user's shape.
    """
    identical = dict.fromkeys(table, True)

    def visit(c: Codec) -> bool:
        if type(c) is Codec:
            return True
        if isinstance(c, RefCodec):
            return identical.get(c.name, False)
        if isinstance(c, ObjectCodec):
            return (except_nulls or not c.omit_null) and all(visit(p) for p in c.properties.values())
        if isinstance(c, ArrayCodec):
            return visit(c.items)
        if isinstance(c, UnionCodec):
            return all(visit(b) for _, b in c.branches)
        return False

    changed = True
    while changed:  # the greatest fixed point: definitions are identities unless shown otherwise
        changed = False
        for name, c in table.items():
            if identical[name] and not visit(c):
                identical[name] = False
                changed = True
    return visit(codec)
