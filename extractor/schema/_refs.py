"""Local `$ref` resolution inside one JSON Schema document (any draft)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

__all__ = ["RefResolver", "UnresolvableRef"]


class UnresolvableRef(LookupError):
    """A `$ref` that points outside the document or to nothing in it."""


def _ids(node: Any) -> list[str]:
    out = []
    for key in ("$id", "id"):
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str):
            out.append(value)
    return out


class RefResolver:
    """Finds the target of a local `$ref`: JSON pointers, `$anchor`s, draft-4..7 `#name` ids, embedded `$id`s."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.base = ""
        for value in _ids(root):
            self.base = urldefrag(value)[0]
            break
        self._anchors: dict[str, Any] = {}
        self._resources: dict[str, Any] = {}
        self._index(root, self.base, 0)

    def _index(self, node: Any, base: str, depth: int) -> None:
        if depth > 200:
            return
        if isinstance(node, dict):
            for value in _ids(node):
                url, fragment = urldefrag(urljoin(base, value))
                if url and not fragment:
                    self._resources.setdefault(url, node)
                    base = url
                elif fragment:
                    self._anchors.setdefault(fragment, node)
            anchor = node.get("$anchor")
            if isinstance(anchor, str):
                self._anchors.setdefault(anchor, node)
            for key, child in node.items():
                if key in ("enum", "const", "examples", "default"):
                    continue
                self._index(child, base, depth + 1)
        elif isinstance(node, list):
            for child in node:
                self._index(child, base, depth + 1)

    def resolve(self, ref: str) -> tuple[str, Any]:
        """The canonical name (`url#pointer`) and the schema `ref` points to; UnresolvableRef if it cannot."""
        url, fragment = urldefrag(urljoin(self.base, ref) if self.base else ref)
        if not url or url == self.base:
            doc = self.root
        elif url in self._resources:
            doc = self._resources[url]
        else:
            raise UnresolvableRef(f"$ref {ref!r} points outside this schema (only local refs are resolved)")
        if fragment.startswith("/") or not fragment:
            return f"{url}#{fragment}", self._pointer(doc, fragment, ref)
        if fragment in self._anchors:
            return f"{url}#{fragment}", self._anchors[fragment]
        raise UnresolvableRef(f"$ref {ref!r}: no anchor {fragment!r} in this schema")

    @staticmethod
    def _pointer(doc: Any, pointer: str, ref: str) -> Any:
        node = doc
        for raw in pointer.split("/")[1:]:
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise UnresolvableRef(f"$ref {ref!r}: nothing at {pointer!r}")
        return node
