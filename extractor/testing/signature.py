"""Reading back the type signature the `json` and `prompt` modes show the model (`extractor.schema.signature`),
as a JSON Schema, so that the test server can answer such requests with a valid instance."""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = ["signature_schema"]

_TOKEN: Final = re.compile(
    r'\s*(?://[^\n]*|(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[{}\[\]:,|])'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<format>\((?:[^()\n]|\([^()\n]*\))*\))"
    r"|(?P<word>[A-Za-z_$][\w$.-]*))"
)
_BOUNDS: Final = {">=": "minimum", ">": "exclusiveMinimum", "<=": "maximum", "<": "exclusiveMaximum"}
_TYPES: Final = {"string", "number", "integer", "boolean", "null", "object", "array"}


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind is not None:
                self.tokens.append((kind, match.group(kind)))
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.at += 1
        return token

    def union(self) -> dict[str, Any]:
        branches = [self.one()]
        while self.peek() == ("punct", "|"):
            self.take()
            branches.append(self.one())
        literals = [b["const"] for b in branches if "const" in b]
        if len(literals) == len(branches) > 1:
            return {"enum": literals}
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    def one(self) -> dict[str, Any]:
        kind, value = self.take()
        node: dict[str, Any]
        if (kind, value) == ("punct", "{"):
            node = self.object()
        elif (kind, value) == ("punct", "["):
            node = {"type": "array", "items": self.union()}
            self.take()  # ]
        elif kind in ("string", "number"):
            node = {"const": json.loads(value)}
        elif kind == "word" and value in ("true", "false"):
            node = {"const": value == "true"}
        elif kind == "word" and value in _TYPES:
            node = {"type": value}
            if self.peek()[0] == "format":
                for rule in self.take()[1][1:-1].split("; "):
                    sign, _, bound = rule.partition(" ")
                    if rule.startswith("matching "):
                        node["pattern"] = rule.removeprefix("matching ")
                    elif sign in _BOUNDS:
                        node[_BOUNDS[sign]] = json.loads(bound)
                    else:
                        node["format"] = rule
        elif kind == "word":  # "Name (as above)": a recursive definition, any value of it
            if self.peek()[0] == "format":
                self.take()
            node = {}
        else:
            node = {}
        while self.peek() == ("punct", "[") and self.tokens[self.at + 1 : self.at + 2] == [("punct", "]")]:
            self.at += 2
            node = {"type": "array", "items": node}
        return node

    def object(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        while self.peek()[0] == "string":
            name = json.loads(self.take()[1])
            self.take()  # :
            properties[name] = self.union()
            if self.peek() == ("punct", ","):
                self.take()
        self.take()  # }
        return {"type": "object", "properties": properties, "required": list(properties)}


def signature_schema(text: str) -> dict[str, Any] | None:
    """The JSON Schema of the values a type signature describes, or None when `text` is not one."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        node = _Reader(text).one()
    except (IndexError, ValueError):
        return None
    return node if node.get("type") == "object" and node.get("properties") else None
