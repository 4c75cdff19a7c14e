"""Merging the values extracted from the chunks of one document into one value, remembering where each part
came from.

The default rule, for plain JSON values (dicts, lists, scalars):

- objects merge key by key, recursively (keys in first-seen order);
- lists are concatenated in chunk order, every item kept: the chunks of a document whose schema has
  lists never overlap (`sources.chunking`, `rows`), so two equal items are two rows the document
  prints (two coffees on one day), never one row read twice;
- scalars take the first non-null value; differing non-null values (compared by canonical JSON: keys
  sorted, `1.0` equal to `1`) are listed in `Merged.conflicts`;
- a chunk whose value is None (nothing found, or the chunk failed) is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._canonical import canonical_key
from .._jsonpath import join_path

__all__ = ["Merged", "merge_results"]


@dataclass
class Merged:
    """The merged `value`; `provenance` maps the JSON path of every non-null scalar and list item in it (`$.items[2]`,
    `$.items[2].sku`, `$.total`) to the index of the chunk it came from; `conflicts` maps the path of a
    scalar that chunks disagreed on to every `(chunk index, value)` offered."""

    value: Any
    provenance: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)


def _record(value: Any, path: str, chunk: int, provenance: dict[str, int]) -> None:
    """Every scalar and list item under `path` (and `path` itself for a scalar) came from `chunk`."""
    if isinstance(value, dict):
        for key, item in value.items():
            _record(item, join_path(path, key), chunk, provenance)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            item_path = join_path(path, i)
            provenance[item_path] = chunk
            if isinstance(item, (dict, list)):
                _record(item, item_path, chunk, provenance)
    elif value is not None:
        provenance[path] = chunk


def _combine(items: list[tuple[int, Any]], path: str, merged: Merged) -> Any:
    """The merged value of the `(chunk, value)` pairs found at `path`."""
    present = [(chunk, value) for chunk, value in items if value is not None]
    if not present:
        return None
    if all(isinstance(value, dict) for _, value in present):
        keys: dict[str, None] = {}
        for _, value in present:
            keys.update(dict.fromkeys(value))
        return {
            key: _combine(
                [(chunk, value[key]) for chunk, value in present if key in value], join_path(path, key), merged
            )
            for key in keys
        }
    if all(isinstance(value, list) for _, value in present):
        out: list[Any] = []
        for chunk, value in present:
            for item in value:
                item_path = join_path(path, len(out))
                out.append(item)
                merged.provenance[item_path] = chunk
                if isinstance(item, (dict, list)):
                    _record(item, item_path, chunk, merged.provenance)
        return out
    chunk, first = present[0]
    distinct = {canonical_key(value) for _, value in present}
    if len(distinct) > 1:
        merged.conflicts[path] = present
    _record(first, path, chunk, merged.provenance)
    return first


def _lookup(value: Any, parts: list[str | int]) -> tuple[bool, Any]:
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return False, None
        elif not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _guess_provenance(result: Any, values: list[Any]) -> dict[str, int]:
    """For a user's merge: each scalar of `result` is credited to the first chunk holding an equal value at the
    same path (best effort; scalars found in no chunk at that path are left out)."""
    provenance: dict[str, int] = {}

    def walk(value: Any, parts: list[str | int], path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, [*parts, key], join_path(path, key))
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, [*parts, i], join_path(path, i))
            return
        for chunk, chunk_value in enumerate(values):
            found, at = _lookup(chunk_value, parts)
            if found and canonical_key(at) == canonical_key(value):
                provenance[path] = chunk
                return

    walk(result, [], "$")
    return provenance


def merge_results(values: list[Any], *, merge: Callable[[list[Any]], Any] | None = None) -> Merged:
    """One value from the values extracted from each chunk (in chunk order), with provenance.

    `merge`, when given, replaces the default rule: it receives `values` and returns the merged
    value; provenance is then matched by path and value, as far as it can be.
    """
    if merge is not None:
        result = merge(list(values))
        return Merged(value=result, provenance=_guess_provenance(result, values))
    merged = Merged(value=None)
    merged.value = _combine(list(enumerate(values)), "$", merged)
    return merged
