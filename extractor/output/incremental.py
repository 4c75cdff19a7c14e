"""The items of a JSON list, found while its text is still arriving.

A small lexer over the stream (strings, escapes, nesting), fed piece by piece: each character is
looked at once. It never counts braces blindly: a `}` or `]` inside a string is text.
"""

from __future__ import annotations

__all__ = ["ItemScanner"]

_SPACE = frozenset(" \t\r\n")


class ItemScanner:
    """Yields the text of each complete item of the answer's list: the first array found at the top
    level, or directly inside the top-level object (`{"value": [...]}`, `{"items": [...]}`)."""

    def __init__(self) -> None:
        self._stack: list[str] = []  # open containers: "{" or "["
        self._in_string = False
        self._escaped = False
        self._items_depth: int | None = None  # the depth inside the items array, once it opened
        self._item: list[str] | None = None  # the characters of the item being read
        self._finished = False

    @property
    def finished(self) -> bool:
        """Whether the items array has closed."""
        return self._finished

    def feed(self, piece: str) -> list[str]:
        """The texts of the items that `piece` completes, in order."""
        done: list[str] = []
        for char in piece:
            if self._finished:
                break
            item = self._item
            if self._in_string:
                if item is not None:
                    item.append(char)
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                continue
            depth = len(self._stack)
            at_items = self._items_depth is not None and depth == self._items_depth
            if at_items and item is None and char not in _SPACE and char not in ",]":
                item = self._item = []
            if char == '"':
                self._in_string = True
                if item is not None:
                    item.append(char)
                continue
            if char in "{[":
                if self._items_depth is None and char == "[" and (depth == 0 or self._stack == ["{"]):
                    self._stack.append(char)
                    self._items_depth = depth + 1
                    continue
                self._stack.append(char)
                if item is not None:
                    item.append(char)
                continue
            if char in "}]":
                if self._stack:
                    self._stack.pop()
                if self._items_depth is not None and len(self._stack) < self._items_depth:
                    if item is not None and "".join(item).strip():  # a scalar item closed by "]"
                        done.append("".join(item).strip())
                    self._item = None
                    self._finished = True
                    continue
                if item is not None:
                    item.append(char)
                    if self._items_depth is not None and len(self._stack) == self._items_depth:
                        done.append("".join(item))
                        self._item = None
                continue
            if char == "," and at_items:
                if item is not None and "".join(item).strip():  # a scalar item closed by ","
                    done.append("".join(item).strip())
                self._item = None
                continue
            if item is not None:
                item.append(char)
        return done
