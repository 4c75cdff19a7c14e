"""Schema-aligned repairs: a parsed answer brought into the compiled schema's shape where that is lossless.

Only what does not fit is touched: keys in the wrong case or style, a bare list where an object with
one field is expected, one object where a list is expected, enum values in the wrong case, numbers
and booleans written as strings, keys the schema does not have. A value that already has the right
type is never changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._jsonpath import join_path
from .._shape import fits, json_type_ok
from .numbers import parse_number, read_bool
from .repairs import Repair, RepairKind

__all__ = ["AlignHints", "align", "parse_number"]


@dataclass(frozen=True)
class AlignHints:
    """What the compiled schema alone does not say: field-name aliases and which strings hold JSON."""

    #: a field's name -> the property name the schema uses (its alias)
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: whether a compiled string node stands for an untyped value written as a JSON string
    json_string: Callable[[Mapping[str, Any]], bool] = lambda node: False
    #: whether a compiled scalar node is one the user validates strictly: no repair changes a value's type there
    strict: Callable[[Mapping[str, Any]], bool] = lambda node: False
    #: the root's one property when the root is a wrapped non-object (`{"value": [...]}`), else None
    wrapper_key: str | None = None


_KEY_NOISE = re.compile(r"[^0-9a-z]+")


def _norm_key(key: str) -> str:
    return _KEY_NOISE.sub("", key.lower())


class _Aligner:
    def __init__(self, schema: Mapping[str, Any], hints: AlignHints) -> None:
        self.defs: Mapping[str, Any] = schema.get("$defs", {})
        self.hints = hints
        self.repairs: list[Repair] = []
        self._alias_by_norm = {_norm_key(name): alias for name, alias in hints.aliases.items()}
        self._mains: dict[int, str | None] = {}

    def resolve(self, node: Any) -> Mapping[str, Any]:
        for _ in range(16):
            if not isinstance(node, Mapping):
                return {}
            ref = node.get("$ref")
            if not isinstance(ref, str):
                return node
            node = self.defs.get(ref.rsplit("/", 1)[-1], {})
        return {}

    def note(self, kind: RepairKind, path: str, detail: str = "") -> None:
        self.repairs.append(Repair(kind, path, detail))

    def fits(self, value: Any, node: Any) -> bool:
        return fits(value, node, self.defs)

    def visit(self, value: Any, node: Any, path: str, depth: int = 0) -> Any:
        node = self.resolve(node)
        if depth > 64 or not node:
            return value
        if "anyOf" in node:
            return self.union(value, node["anyOf"], path, depth)
        kind = node.get("type")
        if kind == "object":
            return self.object(value, node, path, depth)
        if kind == "array":
            return self.array(value, node, path, depth)
        return self.scalar(value, node, path)

    # --- unions ---------------------------------------------------------------------------

    def union(self, value: Any, branches: list[Any], path: str, depth: int) -> Any:
        for branch in branches:
            if self.fits(value, branch):
                return self.visit(value, branch, path, depth + 1)
        for branch in branches:
            trial = _Aligner.__new__(_Aligner)
            trial.defs, trial.hints, trial.repairs = self.defs, self.hints, []
            trial._alias_by_norm, trial._mains = self._alias_by_norm, self._mains
            aligned = trial.visit(value, branch, path, depth + 1)
            if self.fits(aligned, branch):
                self.repairs.extend(trial.repairs)
                return aligned
        return value

    # --- objects --------------------------------------------------------------------------

    def _main_property(self, props: Mapping[str, Any]) -> str | None:
        """The one property a bare value can be meant for: the only one, or the only non-nullable one."""
        if len(props) == 1:
            return next(iter(props))
        key = id(props)
        if key not in self._mains:
            required = [k for k, v in props.items() if not self.fits(None, v)]
            self._mains[key] = required[0] if len(required) == 1 else None
        return self._mains[key]

    def match_key(self, key: str, props: Mapping[str, Any]) -> str | None:
        norm = _norm_key(key)
        alias = self._alias_by_norm.get(norm)
        if alias is not None and alias in props:
            return alias
        matches = [p for p in props if _norm_key(p) == norm]
        return matches[0] if len(matches) == 1 else None

    def object(self, value: Any, node: Mapping[str, Any], path: str, depth: int) -> Any:
        props: Mapping[str, Any] = node.get("properties", {})
        if isinstance(value, dict) and path == "$" and self.hints.wrapper_key is not None:
            named = self._named_list(value, node)
            if named is not _NONE:
                return named
        if isinstance(value, dict):
            if _is_tuple(props) or not props:
                return value
            targets = {k: k if k in props else self.match_key(k, props) for k in value}
            unmatched = [k for k, t in targets.items() if t is None]
            # a whole object meant for the only field: no key matches, or (for a one-field wrapper
            # like the root's `value`) the one key that matches does not hold what the field wants
            main = self._main_property(props) if unmatched else None
            if main is not None and (
                len(unmatched) == len(value) or (len(props) == 1 and not self.fits(value.get(main), props[main]))
            ):
                wrapped = self._wrap(value, props[main], join_path(path, main), depth, RepairKind.WRAPPED_OBJECT)
                if wrapped is not None:
                    return {main: wrapped}
            out: dict[str, Any] = {k: v for k, v in value.items() if k in props}
            for key, item in value.items():
                target = targets[key]
                if target == key:
                    continue
                if target is not None and target not in out:
                    out[target] = item
                    self.note(RepairKind.KEY_CASE, join_path(path, target), f"{key!r} -> {target!r}")
                else:
                    out[key] = item  # unknown keys stay: validation against the original judges them
            return {
                k: self.visit(v, props[k], join_path(path, k), depth + 1) if k in props else v for k, v in out.items()
            }
        if isinstance(value, list) and _is_tuple(props):
            names = [k for k in props if k != "rest"]
            self.note(RepairKind.TUPLE_LIST, path, f"{len(value)} items")
            out = {name: value[i] if i < len(value) else None for i, name in enumerate(names)}
            if "rest" in props:
                out["rest"] = value[len(names) :]
            else:  # items past the tuple's positions: kept, for validation to refuse
                out.update({f"item_{i}": v for i, v in enumerate(value[len(names) :], len(names))})
            return self.object(out, node, path, depth)
        main = self._main_property(props)
        if main is None:
            return value
        kind = RepairKind.WRAPPED_LIST if isinstance(value, list) else RepairKind.WRAPPED_SCALAR
        wrapped = self._wrap(value, props[main], join_path(path, main), depth, kind)
        return value if wrapped is None else {main: wrapped}

    def _named_list(self, value: dict[str, Any], node: Mapping[str, Any]) -> Any:
        """A list root answered inside an object (`{"tasks": [...]}` for `list[Task]`; other keys, holding
        no list, dropped as any key the schema does not have): the list, unless reading the object as
        the root's value fits (then `_NONE`: read as before), or both fit (then the object as it is, for
        validation to refuse: which one is meant is a guess). An object with two lists is not read.
        A list that fits only reshaped (its items put into objects or lists) is no reading of its own;
        one that does not fit at all is still the list, for validation to say what is wrong in it."""
        key = str(self.hints.wrapper_key)
        props: Mapping[str, Any] = node.get("properties", {})
        lists = [name for name, item in value.items() if isinstance(item, list)]
        if len(lists) != 1 or list(props) != [key] or any(self.match_key(name, props) for name in value):
            return _NONE
        name = lists[0]
        items = value[name]
        path = join_path("$", str(key))
        trial = _Aligner.__new__(_Aligner)
        trial.defs, trial.hints, trial.repairs = self.defs, self.hints, []
        trial._alias_by_norm, trial._mains = self._alias_by_norm, self._mains
        as_list = trial.visit(items, props[key], path, 1)
        list_fits = fits(as_list, props[key], self.defs, absent=True)
        reshaped = any(r.kind in _RESHAPED for r in trial.repairs)
        object_trial = _Aligner.__new__(_Aligner)
        object_trial.defs, object_trial.hints, object_trial.repairs = self.defs, self.hints, []
        object_trial._alias_by_norm, object_trial._mains = self._alias_by_norm, self._mains
        as_object = object_trial.visit([value], props[key], path, 1)  # the object as the list's one record
        object_fits = fits(as_object, props[key], self.defs, absent=True)
        if not object_fits:  # or as whatever else the whole object is read as the root's value
            object_fits = object_trial._wrap(value, props[key], path, 0, RepairKind.WRAPPED_OBJECT) is not None
        if list_fits and not reshaped:
            if object_fits:
                return value
        elif object_fits or list_fits:
            return _NONE
        self.repairs.append(Repair(RepairKind.NAMED_LIST, path, f"the list under {name!r}"))
        for other in value:
            if other != name:  # as for any key the schema does not have
                self.note(RepairKind.EXTRA_KEY, join_path("$", other), "dropped: the schema does not allow it")
        self.repairs.extend(trial.repairs)
        return {key: as_list}

    def _wrap(self, value: Any, node: Any, path: str, depth: int, kind: RepairKind) -> Any:
        """`value` aligned to `node` if it then fits (recording `kind`), else None."""
        mark = len(self.repairs)
        aligned = self.visit(value, node, path, depth + 1)
        if not self.fits(aligned, node):
            del self.repairs[mark:]
            return None
        self.repairs.insert(mark, Repair(kind, path))
        return aligned

    # --- arrays ---------------------------------------------------------------------------

    def array(self, value: Any, node: Mapping[str, Any], path: str, depth: int) -> Any:
        items = node.get("items", {})
        if isinstance(value, list):
            return [self.visit(v, items, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        entry = self.resolve(items)
        entry_props = entry.get("properties", {})
        if isinstance(value, dict) and set(entry_props) == {"key", "value"} and set(value) != {"key", "value"}:
            self.note(RepairKind.MAP_OBJECT, path, f"{len(value)} entries")
            pairs = [{"key": k, "value": v} for k, v in value.items()]
            return [self.visit(p, items, f"{path}[{i}]", depth + 1) for i, p in enumerate(pairs)]
        if value is None:
            return value
        mark = len(self.repairs)
        aligned = self.visit(value, items, f"{path}[0]", depth + 1)
        if self.fits(aligned, items):
            self.repairs.insert(mark, Repair(RepairKind.SINGLE_TO_LIST, path))
            return [aligned]
        del self.repairs[mark:]
        return value

    # --- scalars --------------------------------------------------------------------------

    def _single_item(self, value: list[Any], node: Mapping[str, Any], path: str) -> Any:
        """The one item of `value` where `node` wants one scalar, when it then fits (recorded); else `value`."""
        mark = len(self.repairs)
        item = self.scalar(value[0], node, path)
        if not self.fits(item, node):
            del self.repairs[mark:]
            return value
        self.repairs.insert(mark, Repair(RepairKind.SINGLE_ITEM, path, "a list of one item where one value is wanted"))
        return item

    def scalar(self, value: Any, node: Mapping[str, Any], path: str) -> Any:
        kind = node.get("type")
        if isinstance(kind, str) and "enum" not in node and "const" not in node and json_type_ok(value, kind):
            return value
        if self.fits(value, node):
            return value
        if kind == "string" and isinstance(value, dict | list) and self.hints.json_string(node):
            self.note(RepairKind.INLINE_JSON, path)
            return json.dumps(value, ensure_ascii=False)
        strict = self.hints.strict(node)  # the user's strict type: no repair changes the value's type
        if isinstance(value, list) and len(value) == 1 and not strict:
            return self._single_item(value, node, path)
        if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool) and not strict:
            text = _number_text(value)
            if self.fits(text, node):
                self.note(RepairKind.NUMBER_TEXT, path, f"{text} -> {text!r}")
                return text
            return value
        if not isinstance(value, str):
            return value
        choices = node.get("enum") if "enum" in node else ([node["const"]] if "const" in node else None)
        if choices is not None:
            wanted = value.strip().casefold()
            matches = [c for c in choices if isinstance(c, str) and c.strip().casefold() == wanted]
            if len(matches) == 1:
                self.note(RepairKind.ENUM_CASE, path, f"{value!r} -> {matches[0]!r}")
                return matches[0]
        if strict:
            return value
        if kind in ("number", "integer"):
            number = parse_number(value)
            if number is not None and kind == "integer" and isinstance(number, float):
                number = int(number) if number.is_integer() else None
            if number is not None and json_type_ok(number, kind):
                self.note(RepairKind.NUMBER_STRING, path, f"{value!r} -> {number!r}")
                return number
        elif kind == "boolean":
            flag = read_bool(value)
            if flag is not None:
                self.note(RepairKind.BOOL_STRING, path, f"{value!r} -> {flag}")
                return flag
        elif kind == "null" and value.strip().casefold() in ("null", "none"):
            self.note(RepairKind.NULL_STRING, path)
            return None
        return value


#: no reading of that kind applies
_NONE: Any = object()
#: repairs that change a value's shape (a value put into an object or a list)
_RESHAPED: Final = frozenset(
    {RepairKind.WRAPPED_LIST, RepairKind.WRAPPED_SCALAR, RepairKind.WRAPPED_OBJECT, RepairKind.SINGLE_TO_LIST}
)


def _number_text(value: int | float) -> str:
    """A number's text as the answer wrote it (`1.50`), as JSON writes it when that is unknown."""
    text = getattr(value, "text", None)
    return text if isinstance(text, str) else json.dumps(value)


def _is_tuple(props: Mapping[str, Any]) -> bool:
    """Whether an object's properties are the compiler's positional tuple (`item_0`, `item_1`, `rest`)."""
    names = [k for k in props if k != "rest"]
    return bool(names) and names == [f"item_{i}" for i in range(len(names))]


def align(value: Any, schema: Mapping[str, Any], hints: AlignHints | None = None) -> tuple[Any, list[Repair]]:
    """`value` brought into compiled `schema`'s shape where that is lossless, and the repairs made."""
    aligner = _Aligner(schema, hints or AlignHints())
    return aligner.visit(value, schema, "$"), aligner.repairs
