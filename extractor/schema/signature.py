"""A compiled schema as a compact type signature, for the modes that describe the schema in words (`json`,
`prompt`): field names, types, enums and descriptions, without the JSON Schema document around them,
which small models tend to copy back instead of answering.

    {
      "number": string,  // The invoice number as printed
      "total": number | null,
      "currency": "EUR" | "USD" | null,
      "lines": [
        {
          "sku": string,
          "qty": integer
        }
      ]
    }
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["type_signature"]

_REF_PREFIX: Final = "#/$defs/"
_MAX_NOTE: Final = 200
_BOUNDS: Final = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


class _Writer:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.open: list[str] = []  # definitions being written (a recursive one is named, not repeated)

    def type(self, node: Any, indent: int) -> str:
        if not isinstance(node, dict):
            return "any"
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref[len(_REF_PREFIX) :]
            if name in self.open or name not in self.defs:
                return f"{name} (as above)"
            self.open.append(name)
            try:
                return self.type(self.defs[name], indent)
            finally:
                self.open.pop()
        if "const" in node:
            return json.dumps(node["const"], ensure_ascii=False)
        if isinstance(node.get("enum"), list):
            return " | ".join(json.dumps(v, ensure_ascii=False) for v in node["enum"])
        if isinstance(node.get("anyOf"), list):
            return " | ".join(dict.fromkeys(self.type(branch, indent) for branch in node["anyOf"]))
        kind = node.get("type")
        if isinstance(kind, list):
            return " | ".join(self.type({**node, "type": k}, indent) for k in kind)
        if kind == "object" and isinstance(node.get("properties"), dict):
            return self.object(node["properties"], indent)
        if kind == "array":
            item = self.type(node.get("items", {}), indent + 1)
            return f"[\n{'  ' * (indent + 1)}{item}\n{'  ' * indent}]" if "\n" in item else f"{item}[]"
        text = kind if isinstance(kind, str) else "any"
        rules = [node["format"]] if isinstance(node.get("format"), str) else []
        if isinstance(node.get("pattern"), str):
            rules.append(f"matching {node['pattern']}")
        rules += [f"{sign} {node[key]}" for key, sign in _BOUNDS.items() if isinstance(node.get(key), int | float)]
        return f"{text} ({'; '.join(rules)})" if rules else text

    def object(self, properties: dict[str, Any], indent: int) -> str:
        pad = "  " * (indent + 1)
        lines = []
        names = list(properties)
        for i, name in enumerate(names):
            node = properties[name]
            comma = "," if i < len(names) - 1 else ""
            line = f"{pad}{json.dumps(name, ensure_ascii=False)}: {self.type(node, indent + 1)}{comma}"
            note = _note(node)
            lines.append(f"{line}  // {note}" if note else line)
        return "{\n" + "\n".join(lines) + "\n" + "  " * indent + "}"


def _note(node: Any) -> str:
    """A field's description (on the field, or on its only non-null branch), on one line."""
    if not isinstance(node, dict):
        return ""
    text = node.get("description")
    if not isinstance(text, str):
        branches = [b for b in node.get("anyOf", ()) if isinstance(b, dict) and b.get("type") != "null"]
        text = branches[0].get("description") if len(branches) == 1 else None
    if not isinstance(text, str):
        return ""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_NOTE else text[: _MAX_NOTE - 3] + "..."


def type_signature(json_schema: dict[str, Any]) -> str:
    """The shape of the values `json_schema` (a compiled, object-rooted schema) describes, as a type signature."""
    return _Writer(json_schema.get("$defs", {})).type(json_schema, 0)
