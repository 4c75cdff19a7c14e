"""The one walker over JSON Schema: any draft in, a provider's strict subset out, with a codec back.

`compile_json_schema(schema, dialect)` returns the compiled schema, the codec that maps answers back
to the user's shape, and the reasons it is not strict (if any). What the dialect cannot express is
written into the node's description (so the model sees it); validation enforces it afterwards
against the original schema.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice, product
from typing import Any

from .._jsonpath import join_path
from .._shape import json_type_of, json_type_ok
from ._refs import RefResolver, UnresolvableRef
from .codec import (
    IDENTITY,
    ArrayCodec,
    Codec,
    JsonStringCodec,
    MapCodec,
    ObjectCodec,
    RefCodec,
    TupleCodec,
    UnionCodec,
    WrapCodec,
    is_identity,
)
from .dialects import Dialect

__all__ = ["STRICT_MARK", "UNTYPED_NOTE", "UNTYPED_OBJECT_NOTE", "CompiledParts", "compile_json_schema"]

#: keywords that carry no constraint on the instance; dropped from compiled nodes
_ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "id", "$comment", "examples", "example", "default", "readOnly", "writeOnly",
        "deprecated", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "definitions", "$defs",
        "discriminator", "$vocabulary", "title", "description",
    }
)  # fmt: skip

#: validation keywords by the JSON type they apply to (those the compiler may have to describe)
_TYPE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "string": ("minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "array": ("minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains", "unevaluatedItems"),
    "object": (
        "minProperties", "maxProperties", "propertyNames", "dependencies", "dependentRequired",
        "dependentSchemas", "unevaluatedProperties",
    ),
}  # fmt: skip
_TYPE_KEYWORDS["integer"] = _TYPE_KEYWORDS["number"]
_ANY_TYPE_KEYWORDS = ("not", "if", "then", "else")

_OBJECT_HINTS = ("properties", "required", "additionalProperties", "patternProperties", "minProperties",
                 "maxProperties", "propertyNames", "dependentRequired", "dependencies")  # fmt: skip
_ARRAY_HINTS = ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "additionalItems")
_STRING_HINTS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_HINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_JSON_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")

#: marks a scalar node of a source schema whose value the user wants exactly as typed (pydantic's strict
#: mode): the compiled node takes no repair that changes a value's type (`CompiledParts.strict_nodes`)
STRICT_MARK = "x-extractor-strict"
#: descriptions of untyped nodes (compiled as JSON-encoded strings); `sample` reads them too
UNTYPED_NOTE = "Any JSON value, written as a JSON-encoded string."
UNTYPED_OBJECT_NOTE = "A JSON object, written as a JSON-encoded string."
_MAX_ALTERNATIVES = 64
#: the compiled node of a schema no value satisfies (`false`, contradictory type and enum); the
#: walker returns this very object so that the place using it can drop it or give a reason
_NEVER: dict[str, Any] = {"type": "null"}
_DEF_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class CompiledParts:
    """What the walker produces: the strict schema, the codec back, and why it is not strict."""

    schema: dict[str, Any]
    codec: Codec
    codecs: dict[str, Codec]
    wrapped: bool
    identity: bool
    identity_except_nulls: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the one property of the object a non-object root is wrapped in (when `wrapped`)
    wrapper_key: str = "value"
    #: the compiled scalar nodes (objects of `schema`) whose source was marked strict (`STRICT_MARK`)
    strict_nodes: tuple[dict[str, Any], ...] = ()


#: keywords that constrain an object without changing its shape
_CONSTRAINT_ONLY = frozenset({"not", "minProperties", "maxProperties", "dependencies", "dependentRequired", "$comment"})


def _constraint_only(schema: Any) -> bool:
    """Whether `schema` is a branch that only adds rules like `required` to its parent's shape."""
    return isinstance(schema, dict) and bool(schema) and all(k in _CONSTRAINT_ONLY for k in schema)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _substantive(schema: Any) -> bool:
    """Whether `schema` constrains anything (not `{}`, `true`, or annotations only)."""
    if schema is True:
        return False
    if not isinstance(schema, dict):
        return True
    return any(k not in _ANNOTATIONS and not k.startswith("x-") for k in schema)


def _normalize(schema: dict[str, Any]) -> dict[str, Any]:
    """Draft-4..7 spellings turned into 2020-12 ones (boolean exclusive bounds, array-form `items`)."""
    out = schema
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):
            out = dict(out)
            del out[bound]
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if isinstance(out.get("items"), list):
        out = dict(out)
        out["prefixItems"] = out.pop("items")
        out["items"] = out.pop("additionalItems", True)
    elif "additionalItems" in out:
        out = {k: v for k, v in out.items() if k != "additionalItems"}
    if "$recursiveRef" in out and "$ref" not in out:
        out = {**{k: v for k, v in out.items() if k != "$recursiveRef"}, "$ref": out["$recursiveRef"]}
    if "$dynamicRef" in out and "$ref" not in out:
        out = {**{k: v for k, v in out.items() if k != "$dynamicRef"}, "$ref": out["$dynamicRef"]}
    return out


def _describe_keyword(keyword: str, value: Any) -> str:
    simple = {
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "pattern": "must match the regular expression {}",
        "format": "format: {}",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
        "minProperties": "at least {} entries",
        "maxProperties": "at most {} entries",
        "minimum": ">= {}",
        "maximum": "<= {}",
        "exclusiveMinimum": "> {}",
        "exclusiveMaximum": "< {}",
        "multipleOf": "a multiple of {}",
        "contentEncoding": "encoded as {}",
        "contentMediaType": "media type {}",
    }
    if keyword in simple and not isinstance(value, dict | list):
        return simple[keyword].format(value)
    if keyword == "uniqueItems":
        return "items must be unique" if value else ""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{keyword}: {text}"


def _add_description(node: dict[str, Any], source: dict[str, Any], notes: Iterable[str]) -> dict[str, Any]:
    """`node` with the source's title and description, plus `notes` on what the dialect cannot express."""
    parts = [n for n in notes if n]
    description = source.get("description")
    text = description if isinstance(description, str) else ""
    if parts:
        text = f"{text} ({'; '.join(parts)})" if text else f"({'; '.join(parts)})"
    title = source.get("title")
    if isinstance(title, str) and title and "title" not in node:
        node["title"] = title
    if text:
        node["description"] = text
    return node


def _without_repeats(branch: dict[str, Any], union: dict[str, Any]) -> dict[str, Any]:
    """A union's branch without the title and description the union itself carries (sent once, not per branch)."""
    repeated = [k for k in ("description", "title") if k in branch and branch[k] == union.get(k)]
    return {k: v for k, v in branch.items() if k not in repeated} if repeated else branch


def _merge(a: Any, b: Any) -> Any:
    """The conjunction of two source schemas (for `allOf` and `$ref` siblings), as one schema."""
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    if a is False or b is False:
        return False
    if not isinstance(a, dict) or not isinstance(b, dict):
        return a if isinstance(a, dict) else b
    a, b = _close(b, a), _close(a, b)
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        mine = out[key]
        if mine == value:
            continue
        if key == "properties" and isinstance(mine, dict) and isinstance(value, dict):
            props = dict(mine)
            for name, sub in value.items():
                props[name] = _merge(props[name], sub) if name in props else sub
            out[key] = props
        elif key == "required" and isinstance(mine, list) and isinstance(value, list):
            out[key] = list(dict.fromkeys([*mine, *value]))
        elif key == "type":
            left = {mine} if isinstance(mine, str) else set(mine)
            right = {value} if isinstance(value, str) else set(value)
            common = left & right
            if "number" in left and "integer" in right:
                common.add("integer")
            if "number" in right and "integer" in left:
                common.add("integer")
            out[key] = sorted(common) if common else "__never__"
        elif key == "enum" and isinstance(mine, list) and isinstance(value, list):
            out[key] = [v for v in mine if v in value]
        elif key in ("minimum", "minLength", "minItems", "minProperties", "exclusiveMinimum"):
            out[key] = max(mine, value)
        elif key in ("maximum", "maxLength", "maxItems", "maxProperties", "exclusiveMaximum"):
            out[key] = min(mine, value)
        elif key in ("items", "additionalProperties", "propertyNames", "contains"):
            out[key] = _merge(mine, value)
        elif key in ("anyOf", "oneOf") and isinstance(mine, list) and isinstance(value, list):
            out[key] = [_merge(x, y) for x, y in product(mine, value)][:_MAX_ALTERNATIVES]
        elif key == "allOf" and isinstance(mine, list) and isinstance(value, list):
            out[key] = [*mine, *value]
        elif key == "description" and isinstance(mine, str) and isinstance(value, str):
            out[key] = _join_descriptions(mine, value)  # both are kept: each says something
        elif key in ("description", "title"):
            continue
        else:
            out.setdefault("allOf", [])
            out["allOf"] = [*out["allOf"], {key: value}]
    return out


def _join_descriptions(first: str, second: str) -> str:
    """Two descriptions as one paragraph after the other (the second left out when the first holds it)."""
    if not second or second == first or second in first.split("\n\n"):
        return first
    return f"{first}\n\n{second}" if first else second


def _with_siblings(target: Any, siblings: dict[str, Any]) -> Any:
    """The target of a `$ref` with the keywords beside the `$ref`, as one schema: a description beside it
    (a field's) comes first, the target's (a model's docstring) after it."""
    merged = _merge(target, {k: v for k, v in siblings.items() if k != "description"})
    mine = siblings.get("description")
    if not (isinstance(mine, str) and mine and isinstance(merged, dict)):
        return merged
    theirs = merged.get("description")
    return {**merged, "description": _join_descriptions(mine, theirs if isinstance(theirs, str) else "")}


def _close(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`b` with the properties `a` forbids (`additionalProperties: false` in `a`) made `false`."""
    if (
        a.get("additionalProperties") is not False
        or "patternProperties" in a
        or not isinstance(b.get("properties"), dict)
    ):
        return b
    allowed = _dict(a.get("properties"))
    extra = {name: False for name in b["properties"] if name not in allowed}
    return {**b, "properties": {**b["properties"], **extra}} if extra else b


def _tag_name(schema: dict[str, Any]) -> str | None:
    """The property that tells the branches of a discriminated union apart (OpenAPI's `discriminator`)."""
    discriminator = schema.get("discriminator")
    name = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
    return name if isinstance(name, str) and ("oneOf" in schema or "anyOf" in schema) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _fixed_values(schema: Any, resolver: RefResolver) -> frozenset[Any] | None:
    """The values a property schema allows when it lists them (`const`, `enum` of strings or numbers)."""
    for _ in range(8):
        if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
            break
        try:
            schema = resolver.resolve(schema["$ref"])[1]
        except UnresolvableRef:
            return None
    if not isinstance(schema, dict):
        return None
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        return None
    return frozenset(values)


def _union_tags(schema: dict[str, Any], resolver: RefResolver) -> set[str]:
    """The properties that tell the object branches of a union apart: OpenAPI's `discriminator`, and
    those whose values each object branch lists (`const`, `enum`) with no value in two branches and a
    default in each (a pydantic `Literal` tag with its default, whatever picks the branch: a callable
    discriminator, the smart union). Such a tag is required in the compiled schema: a null ("use the
    default") would leave the branch to guess, and the model loses nothing writing the value."""
    tags: set[str] = set()
    named = _tag_name(schema)
    if named is not None:
        tags.add(named)
    branches: list[dict[str, Any]] = []
    for branch in [*_list(schema.get("anyOf")), *_list(schema.get("oneOf"))]:
        target = branch
        if isinstance(branch, dict) and isinstance(branch.get("$ref"), str):
            try:
                target = resolver.resolve(branch["$ref"])[1]
            except UnresolvableRef:
                continue
        if not isinstance(target, dict):
            continue
        props: dict[str, Any] = {}
        for part in [target, *(p for p in _list(target.get("allOf")) if isinstance(p, dict))]:
            props.update(_dict(part.get("properties")))
        if props:
            branches.append(props)
    if len(branches) < 2:
        return tags
    for name in set.intersection(*(set(props) for props in branches)):
        if not all(isinstance(props[name], dict) and "default" in props[name] for props in branches):
            continue  # without a default a value is there, or absent as the source allows it
        fixed = [v for v in (_fixed_values(props[name], resolver) for props in branches) if v is not None]
        if len(fixed) == len(branches) and sum(len(v) for v in fixed) == len(frozenset().union(*fixed)):
            tags.add(name)  # every branch lists its values, and no value is in two branches
    return tags


def _require_tag(schema: Any, tag: str) -> Any:
    """Branch `schema` of a discriminated union with its tag property required, when it has one: the
    tag picks the branch (pydantic refuses a branch without it, "Unable to extract tag"), so it is
    never left out or null, even when it has a default."""
    if not isinstance(schema, dict):
        return schema
    parts = [schema, *(b for b in schema.get("allOf", ()) if isinstance(b, dict))]
    if not any(tag in _dict(part.get("properties")) for part in parts):
        return schema
    required = schema.get("required")
    if isinstance(required, list) and tag in required:
        return schema
    return {**schema, "required": [*(required if isinstance(required, list) else []), tag]}


def _tagged_refs(root: Any, resolver: RefResolver) -> dict[str, frozenset[str]]:
    """Canonical `$ref` -> the tag properties of the discriminated unions that definition is a branch of."""
    found: dict[str, set[str]] = {}
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > 200:
            continue
        if isinstance(node, list):
            stack.extend((sub, depth + 1) for sub in node)
            continue
        if not isinstance(node, dict):
            continue
        tags = _union_tags(node, resolver)
        if tags:
            mapping = _dict(_dict(node.get("discriminator")).get("mapping"))
            branches = [*_list(node.get("oneOf")), *_list(node.get("anyOf")), *({"$ref": r} for r in mapping.values())]
            for branch in branches:
                ref = branch.get("$ref") if isinstance(branch, dict) else None
                if not isinstance(ref, str):
                    continue
                try:
                    canon, _ = resolver.resolve(ref)
                except UnresolvableRef:
                    continue
                found.setdefault(canon, set()).update(tags)
        stack.extend((sub, depth + 1) for key, sub in node.items() if key not in ("enum", "const", "default"))
    return {canon: frozenset(tags) for canon, tags in found.items()}


class _Walker:
    """One compilation: walks the source schema and collects the compiled `$defs`."""

    def __init__(self, root: Any, dialect: Dialect) -> None:
        self.dialect = dialect
        self.resolver = RefResolver(root)
        #: definitions that are branches of discriminated unions -> their tag properties (required)
        self._tags = _tagged_refs(root, self.resolver)
        self.defs: dict[str, dict[str, Any]] = {}
        self.codecs: dict[str, Codec] = {}
        self.reasons: list[str] = []
        self.notes: list[str] = []
        #: the compiled scalar nodes marked strict in the source (`STRICT_MARK`), by id
        self.strict: dict[int, dict[str, Any]] = {}
        self._names: dict[str, str] = {}
        self._stack: list[str] = []
        self._never_defs: set[str] = set()

    def is_never(self, node: dict[str, Any]) -> bool:
        """Whether compiled `node` stands for a schema that no value satisfies."""
        if node is _NEVER:
            return True
        ref = node.get("$ref")
        return isinstance(ref, str) and len(node) == 1 and ref.rsplit("/", 1)[-1] in self._never_defs

    # --- dispatch -----------------------------------------------------------------------

    def node(self, schema: Any, path: str, *, inline: bool = False) -> tuple[dict[str, Any], Codec]:
        """The compiled node and codec for source `schema` found at `path`."""
        if schema is True or (isinstance(schema, dict) and not _substantive(schema)):
            return self._untyped(schema if isinstance(schema, dict) else {}, [])
        if schema is False:
            return _NEVER, IDENTITY
        if not isinstance(schema, dict):
            self.reasons.append(f"{path}: {type(schema).__name__} is not a JSON Schema")
            return self._untyped({}, [])
        schema = _normalize(schema)
        if "$ref" in schema:
            return self._ref(schema, path, inline=inline)
        if "allOf" in schema:
            return self.node(self._merge_all(schema, path), path)
        if "anyOf" in schema or "oneOf" in schema:
            return self._union(schema, path)
        types = self._types(schema)
        if not types:
            if schema.get("type") == "__never__" or "enum" in schema or "const" in schema:
                return _NEVER, IDENTITY  # contradictory type and enum: no value is valid
            return self._untyped(schema, self._leftovers(schema, None, {}))
        if len(types) > 1:
            branches = [self._typed(schema, t, path) for t in types]
            return self._anyof(branches, schema)
        return self._typed(schema, types[0], path)

    # --- references and combinators -------------------------------------------------------

    def _resolve(self, ref: str) -> tuple[str, Any]:
        """The canonical name and target of `ref`, the tags of the unions it is a branch of required."""
        canon, target = self.resolver.resolve(ref)
        for tag in sorted(self._tags.get(canon, ())):
            target = _require_tag(target, tag)
        return canon, target

    def _ref(self, schema: dict[str, Any], path: str, *, inline: bool) -> tuple[dict[str, Any], Codec]:
        ref = schema["$ref"]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        try:
            if not isinstance(ref, str):
                raise UnresolvableRef(f"$ref {ref!r} is not a string")
            canon, target = self._resolve(ref)
        except UnresolvableRef as exc:
            self.notes.append(f"{path}: {exc}; accepted as any value there")
            if _substantive(siblings):
                return self.node(siblings, path)
            return self._untyped(siblings, [f"see {ref}"])
        if canon in self._stack:  # a recursive reference: the definition is (being) compiled
            if not self.dialect.supports_refs:
                self.reasons.append(f"{path}: recursive schema ({ref}) needs $ref, which the dialect lacks")
                return self._untyped({}, [])
            return self._reference(canon, target, path)
        if inline or siblings or not self.dialect.supports_refs:
            self._stack.append(canon)
            try:
                return self.node(_with_siblings(target, siblings) if siblings else target, path)
            finally:
                self._stack.pop()
        return self._reference(canon, target, path)

    def _reference(self, canon: str, target: Any, path: str) -> tuple[dict[str, Any], Codec]:
        name = self._names.get(canon)
        if name is None:
            base = _DEF_NAME.sub("_", canon.rsplit("/", 1)[-1].lstrip("#")) or "root"
            name, n = base, 1
            while name in self.defs or name in self._names.values():
                n += 1
                name = f"{base}_{n}"
            self._names[canon] = name
            self._stack.append(canon)
            try:
                compiled, codec = self.node(target, f"#/$defs/{name}")
            finally:
                self._stack.pop()
            self.defs[name] = compiled
            self.codecs[name] = codec
            if compiled is _NEVER:
                self._never_defs.add(name)
        return {"$ref": f"#/$defs/{name}"}, RefCodec(name, self.codecs)

    def _deref(self, schema: Any, path: str) -> Any:
        """`schema` with a top-level `$ref` replaced by its target (siblings merged), for merging."""
        for _ in range(32):
            if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
                return schema
            try:
                canon, target = self._resolve(schema["$ref"])
            except UnresolvableRef as exc:
                self.notes.append(f"{path}: {exc}; accepted as any value there")
                return {k: v for k, v in schema.items() if k != "$ref"}
            if canon in self._stack:
                return schema
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _with_siblings(target, siblings) if siblings else target
        self.reasons.append(f"{path}: $ref chain too long or circular")
        return True

    def _merge_all(self, schema: dict[str, Any], path: str) -> Any:
        branches = schema["allOf"] if isinstance(schema["allOf"], list) else []
        merged: Any = {k: v for k, v in schema.items() if k != "allOf"}
        for branch in branches:
            branch = self._deref(_normalize(branch) if isinstance(branch, dict) else branch, path)
            if isinstance(branch, dict) and "allOf" in branch:
                branch = self._merge_all(branch, path)
            merged = _merge(merged, branch)
        if isinstance(merged, dict) and "allOf" in merged:
            # what `_merge` could not combine stays a conjunction: described, validated afterwards
            rest = merged.pop("allOf")
            merged["x-unmerged"] = rest
        return merged

    def _union(self, schema: dict[str, Any], path: str) -> tuple[dict[str, Any], Codec]:
        lists = [schema[k] for k in ("anyOf", "oneOf") if isinstance(schema.get(k), list)]
        base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "discriminator")}
        if _substantive(base) and all(_constraint_only(alt) for branches in lists for alt in branches):
            # branches like {"not": ...} or {"minProperties": ...}: the shape is the base's, the rule
            # is described and enforced by validation (branches with `required` are distributed)
            rules = {k: schema[k] for k in ("anyOf", "oneOf") if k in schema}
            return self.node({**base, "x-unmerged": [rules]}, path)
        alternatives: list[Any]
        if len(lists) == 1:
            alternatives = list(lists[0])
            for tag in sorted(_union_tags(schema, self.resolver)):
                # branches given inline (those behind a `$ref` are tagged by `_resolve`)
                alternatives = [_require_tag(alt, tag) for alt in alternatives]
        else:  # both anyOf and oneOf: every pair of branches must hold
            alternatives = [{"allOf": list(combo)} for combo in islice(product(*lists), _MAX_ALTERNATIVES)]
        if _substantive(base):
            alternatives = [_merge(base, self._deref(alt, path)) for alt in alternatives]
        branches = [b for b in (self.node(alt, path) for alt in alternatives) if not self.is_never(b[0])]
        if not branches:
            return _NEVER, IDENTITY
        return self._anyof(branches, base if not _substantive(base) else {})

    def _anyof(
        self, branches: list[tuple[dict[str, Any], Codec]], source: dict[str, Any]
    ) -> tuple[dict[str, Any], Codec]:
        flat: list[tuple[dict[str, Any], Codec]] = []
        seen: set[str] = set()
        for out, codec in branches:
            parts = [(out, codec)]
            if "anyOf" in out and set(out) <= {"anyOf", "description", "title"}:  # a nested union: lift it
                if codec is IDENTITY:
                    parts = [(o, IDENTITY) for o in out["anyOf"]]
                elif isinstance(codec, UnionCodec) and len(codec.branches) == len(out["anyOf"]):
                    parts = list(codec.branches)
            for o, c in parts:
                key = json.dumps(o, sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    flat.append((o, c))
        if len(flat) == 1:
            out, codec = flat[0]
            return self._carry(out, _add_description(dict(out), source, [])), codec
        node = _add_description({"anyOf": [o for o, _ in flat]}, source, [])
        node["anyOf"] = [self._carry(o, _without_repeats(o, node)) for o in node["anyOf"]]
        if all(c is IDENTITY for _, c in flat):
            return node, IDENTITY
        return node, UnionCodec(flat, self.defs)

    # --- types ----------------------------------------------------------------------------

    def _types(self, schema: dict[str, Any]) -> list[str]:
        declared = schema.get("type")
        if isinstance(declared, str):
            types = [declared]
        elif isinstance(declared, list):
            types = [t for t in dict.fromkeys(declared) if isinstance(t, str)]
        else:
            types = []
            values = schema["enum"] if isinstance(schema.get("enum"), list) else None
            if "const" in schema:
                values = [schema["const"]]
            if values is not None:
                types = list(dict.fromkeys(json_type_of(v) for v in values))
            elif any(k in schema for k in _OBJECT_HINTS):
                types = ["object"]
            elif any(k in schema for k in _ARRAY_HINTS):
                types = ["array"]
            elif any(k in schema for k in _STRING_HINTS):
                types = ["string"]
            elif any(k in schema for k in _NUMBER_HINTS):
                types = ["number"]
        types = [t for t in types if t in _JSON_TYPES]
        if "integer" in types and "number" in types:
            types.remove("integer")
        values = [schema["const"]] if "const" in schema else schema.get("enum")
        if isinstance(values, list):
            types = [t for t in types if any(json_type_ok(v, t) for v in values)]
        return types

    def _typed(self, schema: dict[str, Any], json_type: str, path: str) -> tuple[dict[str, Any], Codec]:
        if json_type == "object":
            return self._object(schema, path)
        if json_type == "array":
            return self._array(schema, path)
        values = [schema["const"]] if "const" in schema else schema.get("enum")
        if isinstance(values, list):
            values = [v for v in values if json_type_ok(v, json_type)]
            if json_type == "integer":
                values = [int(v) for v in values]
            if len(values) == 1 and "const" in schema:
                node = self.dialect.const(values[0], json_type)
            else:
                node = {"type": json_type, "enum": values}
            return self._strictly(schema, self._finish(node, schema, json_type)), IDENTITY
        node = {"type": json_type}
        for key in _TYPE_KEYWORDS.get(json_type, ()):
            if key in schema:
                value = schema[key]
                if key == "format" and value not in self.dialect.formats:
                    continue
                if key == "pattern" and isinstance(value, str) and self.dialect.regex_problems(value):
                    continue  # an engine without lookarounds, backreferences...: described, checked afterwards
                node[key] = value
        return self._strictly(schema, self._finish(node, schema, json_type)), IDENTITY

    def _strictly(self, source: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        """`node`, noted as strict when its `source` is marked so (`STRICT_MARK`)."""
        if source.get(STRICT_MARK) is True:
            self.strict[id(node)] = node
        return node

    def _carry(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """`new`, a copy of compiled `old`, noted as strict when `old` is."""
        if id(old) in self.strict:
            self.strict[id(new)] = new
        return new

    def _finish(self, node: dict[str, Any], schema: dict[str, Any], json_type: str) -> dict[str, Any]:
        """`node` with the keywords the dialect lacks moved into its description."""
        kept = {k: v for k, v in node.items() if k in self.dialect.keywords}
        return _add_description(kept, schema, self._leftovers(schema, json_type, kept))

    def _leftovers(self, schema: dict[str, Any], json_type: str | None, kept: dict[str, Any]) -> list[str]:
        keywords = [*(_TYPE_KEYWORDS.get(json_type, ()) if json_type else ()), *_ANY_TYPE_KEYWORDS]
        notes = [_describe_keyword(k, schema[k]) for k in keywords if k in schema and k not in kept]
        for rule in schema.get("x-unmerged", ()):
            notes.extend(_describe_keyword(k, v) for k, v in rule.items())
        return notes

    def _untyped(
        self, schema: dict[str, Any], notes: list[str], *, objects: bool = False
    ) -> tuple[dict[str, Any], Codec]:
        node = _add_description({"type": "string"}, {"title": schema.get("title")}, [])
        original = schema.get("description")
        text = UNTYPED_OBJECT_NOTE if objects else UNTYPED_NOTE
        text += f" {original}" if isinstance(original, str) and original else ""
        if notes:
            text += f" ({'; '.join(notes)})"
        node["description"] = text
        return node, JsonStringCodec()

    # --- objects and arrays ----------------------------------------------------------------

    def _object(self, schema: dict[str, Any], path: str) -> tuple[dict[str, Any], Codec]:
        props = _dict(schema.get("properties"))
        required = (
            [r for r in schema.get("required", ()) if isinstance(r, str)]
            if isinstance(schema.get("required"), list)
            else []
        )
        extra = schema.get("additionalProperties", True)
        patterns = _dict(schema.get("patternProperties"))
        if not props and not required:
            values = [*patterns.values(), *([extra] if isinstance(extra, dict) else [])]
            if extra is False and not patterns:
                return self._finish(self.dialect.object_node({}), schema, "object"), IDENTITY
            if any(_substantive(v) for v in values):
                return self._map(schema, values, extra, patterns, path)
            return self._untyped(schema, self._leftovers(schema, "object", {}), objects=True)
        out_props: dict[str, Any] = {}
        codecs: dict[str, Codec] = {}
        omit: set[str] = set()
        names = list(dict.fromkeys([*props, *required]))
        for name in names:
            compiled, codec = self.node(props.get(name, True), join_path(path, name))
            if self.is_never(compiled):  # no value is valid: the property can only be absent
                if name in required:
                    return _NEVER, IDENTITY  # ... but it is required: no object is valid
                compiled, codec = {"type": "null", "description": "(always null: no value is valid here)"}, IDENTITY
                omit.add(name)
            elif name not in required and not self._accepts_null(compiled):
                compiled = self.dialect.nullable(compiled)
                omit.add(name)
            out_props[name] = compiled
            codecs[name] = codec
        node = self.dialect.object_node(out_props)
        result: Codec = ObjectCodec(codecs, frozenset(omit))
        if not omit and all(c is IDENTITY for c in codecs.values()):
            result = IDENTITY
        return self._finish(node, schema, "object"), result

    def _map(
        self, schema: dict[str, Any], values: list[Any], extra: Any, patterns: dict[str, Any], path: str
    ) -> tuple[dict[str, Any], Codec]:
        key: dict[str, Any] = {"type": "string"}
        names = schema.get("propertyNames")
        if isinstance(names, dict) and isinstance(names.get("pattern"), str):
            key["pattern"] = names["pattern"]
        elif len(patterns) == 1 and extra is False:
            key["pattern"] = next(iter(patterns))
        if "pattern" in key and self.dialect.regex_problems(key["pattern"]):
            key = {"type": "string", "description": f"(must match the regular expression {key['pattern']})"}
        value, codec = self.node(values[0] if len(values) == 1 else {"anyOf": values}, f"{path}[*]")
        if self.is_never(value):  # no extra key can have a valid value: an empty object
            return self._finish(self.dialect.object_node({}), schema, "object"), IDENTITY
        entry = self.dialect.object_node({"key": key, "value": value})
        node: dict[str, Any] = {"type": "array", "items": entry}
        if "minProperties" in schema:
            node["minItems"] = schema["minProperties"]
        if "maxProperties" in schema:
            node["maxItems"] = schema["maxProperties"]
        kept = {k: v for k, v in node.items() if k in self.dialect.keywords}
        notes = ["a map, written as a list of key/value pairs; keys are unique"]
        notes += [n for n in self._leftovers(schema, "object", {}) if not n.startswith(("at least", "at most"))]
        return _add_description(kept, schema, notes), MapCodec(codec)

    def _array(self, schema: dict[str, Any], path: str) -> tuple[dict[str, Any], Codec]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", True)
        if isinstance(prefix, list) and prefix:
            return self._tuple(schema, prefix, items, path)
        compiled, codec = self.node(items, f"{path}[*]")
        if self.is_never(compiled):  # no item is valid: only the empty array
            empty = {"type": "array", "items": {"type": "string"}, "maxItems": 0}
            return self._finish(empty, schema, "array"), IDENTITY
        node: dict[str, Any] = {"type": "array", "items": compiled}
        for key in ("minItems", "maxItems"):
            if key in schema:
                node[key] = schema[key]
        return self._finish(node, schema, "array"), (IDENTITY if codec is IDENTITY else ArrayCodec(codec))

    def _tuple(self, schema: dict[str, Any], prefix: list[Any], items: Any, path: str) -> tuple[dict[str, Any], Codec]:
        minimum = schema.get("minItems", 0)
        minimum = minimum if isinstance(minimum, int) else 0
        maximum = schema.get("maxItems")
        names = [f"item_{i}" for i in range(len(prefix))]
        props: dict[str, Any] = {}
        codecs: list[Codec] = []
        absent: set[int] = set()
        for index, (name, sub) in enumerate(zip(names, prefix, strict=True)):
            compiled, codec = self.node(sub, f"{path}[{index}]")
            if self.is_never(compiled):
                self.reasons.append(f"{path}[{index}]: no value satisfies this tuple position")
            if index >= minimum and not self._accepts_null(compiled):
                compiled = self.dialect.nullable(compiled)
                absent.add(index)
            props[name] = compiled
            codecs.append(codec)
        rest: Codec | None = None
        if _substantive(items) and items is not False and not (isinstance(maximum, int) and maximum <= len(prefix)):
            compiled, rest = self.node(items, f"{path}[*]")
            props["rest"] = {"type": "array", "items": compiled}
        node = self.dialect.object_node(props)
        notes = ["a tuple, written as an object with one property per position"]
        notes += [n for n in self._leftovers(schema, "array", {}) if not n.startswith(("at least", "at most"))]
        kept = {k: v for k, v in node.items() if k in self.dialect.keywords}
        return _add_description(kept, schema, notes), TupleCodec(
            names, codecs, min(minimum, len(prefix)), rest, frozenset(absent)
        )

    def _accepts_null(self, node: dict[str, Any], depth: int = 0) -> bool:
        if depth > 16:
            return False
        if node.get("type") == "null" or (isinstance(node.get("type"), list) and "null" in node["type"]):
            return True
        if "enum" in node and None in node["enum"]:
            return True
        if "const" in node and node["const"] is None:
            return True
        if "anyOf" in node:
            return any(self._accepts_null(b, depth + 1) for b in node["anyOf"])
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self.defs.get(ref.rsplit("/", 1)[-1])
            return target is not None and self._accepts_null(target, depth + 1)
        return False


@dataclass
class _Measure:
    depth: int = 0
    properties: int = 0
    enum_values: int = 0
    chars: int = 0
    large_enums: list[int] = field(default_factory=list)


def _measure(schema: dict[str, Any]) -> _Measure:
    """Sizes the provider limits are about: object nesting, properties, enum values, name/value characters."""
    m = _Measure()
    defs = schema.get("$defs", {})
    m.chars += sum(len(name) for name in defs)
    depth_of: dict[str, int] = {}

    def walk(node: Any, depth: int, visiting: frozenset[str]) -> int:
        """The deepest object nesting below `node`, which `depth` objects enclose."""
        if not isinstance(node, dict):
            return depth
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in visiting or name not in defs:
                return depth
            if name not in depth_of:
                depth_of[name] = walk(defs[name], 0, visiting | {name})
            return depth + depth_of[name]
        deepest = depth
        if isinstance(node.get("properties"), dict):
            deepest = depth + 1
            for sub in node["properties"].values():
                deepest = max(deepest, walk(sub, depth + 1, visiting))
        if "items" in node:
            deepest = max(deepest, walk(node["items"], depth, visiting))
        for sub in node.get("anyOf", ()):
            deepest = max(deepest, walk(sub, depth, visiting))
        return deepest

    def count(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                m.properties += len(props)
                m.chars += sum(len(k) for k in props)
            values = node.get("enum")
            if isinstance(values, list):
                m.enum_values += len(values)
                size = sum(len(str(v)) for v in values)
                m.chars += size
                if len(values) > 250:
                    m.large_enums.append(size)
            if "const" in node:
                m.chars += len(str(node["const"]))
            for key, sub in node.items():
                if key not in ("enum", "const"):
                    count(sub)
        elif isinstance(node, list):
            for sub in node:
                count(sub)

    count(schema)
    m.depth = walk(schema, 0, frozenset())
    for name, sub in defs.items():
        m.depth = max(m.depth, walk(sub, 0, frozenset({name})))
    return m


def _check_limits(schema: dict[str, Any], dialect: Dialect) -> list[str]:
    m = _measure(schema)
    reasons = []
    if m.depth > dialect.max_depth:
        reasons.append(f"nesting depth {m.depth} exceeds {dialect.max_depth}")
    if m.properties > dialect.max_properties:
        reasons.append(f"{m.properties} properties in all exceed {dialect.max_properties}")
    if m.enum_values > dialect.max_enum_values:
        reasons.append(f"{m.enum_values} enum values in all exceed {dialect.max_enum_values}")
    if m.chars > dialect.max_string_chars:
        reasons.append(f"{m.chars} characters of names and values exceed {dialect.max_string_chars}")
    for size in m.large_enums:
        if size > dialect.max_large_enum_chars:
            reasons.append(
                f"an enum of more than {dialect.large_enum_values} values holds {size} characters "
                f"(limit {dialect.max_large_enum_chars})"
            )
            break
    return reasons


def compile_json_schema(source: Any, dialect: Dialect) -> CompiledParts:
    """Compile the JSON Schema `source` (a dict or a boolean) for `dialect`."""
    walker = _Walker(source, dialect)
    root = copy.deepcopy(source) if isinstance(source, dict) else source
    node, codec = walker.node(root, "$", inline=True)
    if walker.is_never(node):
        walker.reasons.append("$: no value satisfies this schema")
    wrapped = not (node.get("type") == "object" and "properties" in node)
    key = "value"
    if wrapped:
        key = _wrapper_key(node, walker.defs)
        value = {k: v for k, v in node.items() if k != "title"}
        node = dialect.object_node({key: value})
        codec = WrapCodec(codec, key)
    if walker.defs:
        node["$defs"] = walker.defs
    reasons = [*walker.reasons, *_check_limits(node, dialect)]
    identity = is_identity(codec, walker.codecs)
    except_nulls = is_identity(codec, walker.codecs, except_nulls=True)
    return CompiledParts(
        node,
        codec,
        walker.codecs,
        wrapped,
        identity,
        except_nulls,
        reasons,
        walker.notes,
        wrapper_key=key,
        strict_nodes=tuple(walker.strict.values()),
    )


#: the keys a non-object root is wrapped in, in order of preference: the first that no object the root
#: may be has as a property (so that a wrapper is never mistaken for a member, nor a member for it)
_WRAPPER_KEYS = ("value", "result", "answer", "output")


def _wrapper_key(node: dict[str, Any], defs: dict[str, dict[str, Any]]) -> str:
    """The key to wrap compiled root `node` in: one that none of the objects it may be has."""
    taken: set[str] = set()
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        ref = current.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen and name in defs:
                seen.add(name)
                stack.append(defs[name])
            continue
        taken.update(_dict(current.get("properties")))
        stack.extend(b for b in current.get("anyOf", ()) if isinstance(b, dict))
    candidates = (*_WRAPPER_KEYS, *(f"value_{n}" for n in range(2, len(taken) + 3)))
    return next(k for k in candidates if k not in taken)
