"""Provider dialects: which part of JSON Schema a provider's strict structured output accepts.

The compiler (`extractor.schema.compile`) walks a schema once and asks its dialect what to keep.
A new dialect is a small subclass here that changes a few class attributes or hooks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._regex import BACKTRACKING_FEATURES, regex_features

__all__ = ["DIALECTS", "Dialect", "GeminiDialect", "OpenAIStrictDialect", "get_dialect"]


class Dialect:
    """The strict subset of OpenAI-compatible `response_format: json_schema` (OpenAI, OpenRouter, Mistral, vLLM)."""

    name: ClassVar[str] = "openai"
    #: keywords that may appear in a compiled node; anything else goes into the node's description
    keywords: ClassVar[frozenset[str]] = frozenset(
        {
            "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
            "$ref", "$defs", "description", "title", "pattern", "format", "multipleOf", "minimum",
            "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
        }
    )  # fmt: skip
    #: string formats the provider enforces; other formats are described
    formats: ClassVar[frozenset[str]] = frozenset(
        {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
    )
    #: regular-expression features the provider's engine lacks (see `_regex`): a `pattern` that uses
    #: one is described, not sent (OpenAI answers 400 "regex lookaround is not supported")
    regex_unsupported: ClassVar[frozenset[str]] = BACKTRACKING_FEATURES
    supports_refs: ClassVar[bool] = True
    #: whether every object must say `additionalProperties: false`
    closed_objects: ClassVar[bool] = True
    max_depth: ClassVar[int] = 10
    max_properties: ClassVar[int] = 5000
    max_enum_values: ClassVar[int] = 1000
    max_string_chars: ClassVar[int] = 120_000
    #: an enum with more values than this may hold at most `max_large_enum_chars` characters
    large_enum_values: ClassVar[int] = 250
    max_large_enum_chars: ClassVar[int] = 15_000

    def nullable(self, node: dict[str, Any]) -> dict[str, Any]:
        """`node` that also accepts null."""
        if "anyOf" in node and len(node) == 1:
            return {"anyOf": [*node["anyOf"], {"type": "null"}]}
        return {"anyOf": [node, {"type": "null"}]}

    def const(self, value: Any, json_type: str) -> dict[str, Any]:
        """A node that accepts exactly `value` (of JSON type `json_type`)."""
        return {"type": json_type, "const": value}

    def regex_problems(self, pattern: str) -> list[str]:
        """The features `pattern` uses that the provider's regex engine lacks (empty when it can run it)."""
        return sorted(regex_features(pattern) & self.regex_unsupported)

    def violations(self, schema: dict[str, Any]) -> list[str]:
        """Where `schema` leaves this dialect's strict subset (empty when it fits): a check, not a fix."""
        found: list[str] = []
        defs = schema.get("$defs", {})
        if schema.get("type") != "object" or "anyOf" in schema:
            found.append("$: the root is not an object")

        def visit(node: Any, path: str) -> None:
            if not isinstance(node, dict):
                found.append(f"{path}: not a schema object")
                return
            for key in node:
                if key not in self.keywords and not (key == "$defs" and path == "$"):
                    found.append(f"{path}: keyword {key!r} is outside the subset")
            if "format" in node and node["format"] not in self.formats:
                found.append(f"{path}: format {node['format']!r} is outside the subset")
            pattern = node.get("pattern")
            if isinstance(pattern, str) and self.regex_problems(pattern):
                found.append(f"{path}: pattern {pattern!r} uses {', '.join(self.regex_problems(pattern))}")
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.removeprefix("#/$defs/") not in defs:
                found.append(f"{path}: $ref {ref!r} points to no definition")
            props = node.get("properties")
            if node.get("type") == "object":
                if not isinstance(props, dict):
                    found.append(f"{path}: object without properties")
                    props = {}
                if sorted(node.get("required", [])) != sorted(props):
                    found.append(f"{path}: required does not list every property")
                if self.closed_objects and node.get("additionalProperties") is not False:
                    found.append(f"{path}: additionalProperties is not false")
            for name, sub in (props or {}).items():
                visit(sub, f"{path}.{name}")
            if "items" in node:
                visit(node["items"], f"{path}[*]")
            elif node.get("type") == "array":
                found.append(f"{path}: array without items")
            for index, sub in enumerate(node.get("anyOf", [])):
                visit(sub, f"{path}.anyOf[{index}]")

        visit(schema, "$")
        for name, sub in defs.items():
            visit(sub, f"#/$defs/{name}")
        return found

    def object_node(self, properties: dict[str, Any]) -> dict[str, Any]:
        """An object node with these (compiled) properties, all required."""
        node: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties)}
        if self.closed_objects:
            node["additionalProperties"] = False
        return node


class OpenAIStrictDialect(Dialect):
    """Alias of the default dialect, named for clarity."""


class GeminiDialect(Dialect):
    """Gemini's `response_schema` subset: no `$ref`, no `const`, no `additionalProperties`, ordered properties."""

    name: ClassVar[str] = "gemini"
    keywords: ClassVar[frozenset[str]] = frozenset(
        {
            "type", "properties", "required", "items", "enum", "anyOf", "description", "title",
            "pattern", "format", "minimum", "maximum", "minItems", "maxItems", "minLength",
            "maxLength", "propertyOrdering",
        }
    )  # fmt: skip
    formats: ClassVar[frozenset[str]] = frozenset({"date-time", "date", "time"})
    supports_refs: ClassVar[bool] = False
    closed_objects: ClassVar[bool] = False

    def const(self, value: Any, json_type: str) -> dict[str, Any]:
        return {"type": json_type, "enum": [value]}

    def object_node(self, properties: dict[str, Any]) -> dict[str, Any]:
        return {**super().object_node(properties), "propertyOrdering": list(properties)}


DIALECTS: dict[str, type[Dialect]] = {"openai": Dialect, "gemini": GeminiDialect}


def get_dialect(dialect: str | Dialect | None) -> Dialect:
    """The dialect named `dialect` (default: OpenAI's strict subset)."""
    if dialect is None:
        return Dialect()
    if isinstance(dialect, Dialect):
        return dialect
    try:
        return DIALECTS[dialect]()
    except KeyError:
        from ..errors import ConfigurationError

        raise ConfigurationError(f"unknown schema dialect {dialect!r}; known: {', '.join(DIALECTS)}") from None
