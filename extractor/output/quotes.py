"""The readings of an answer whose strings hold unescaped double quotes.

`{"question": "What are the words of "Gemini Dream"?", "score": 5}` is not JSON; read with the two
inner quotes as part of the string, it is. A quote can close a string only where a key or value can
end: a key's before `:`, a value's before `,` `}` or `]` (after optional whitespace). Every other
quote in a string is part of it. A quote that could close the string, and where the text goes on
with something other than the next member or item (`"He said "hi", then left"`), is followed both
ways; a way is kept when the whole value reads as JSON with it. `readings` returns each way as the
positions of the quotes to escape; the reader keeps the one that fits the schema, and refuses the
answer when two fit (or when there are too many ways to try them all).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from .._jsonpath import join_path
from .limits import MAX_DEPTH

__all__ = ["QuoteReading", "escape_quotes", "readings"]

_WS: Final = re.compile(r"[ \t\r\n]*")
_QUOTE: Final = re.compile(r'(?<!\\)(?:\\\\)*"')  # an unescaped double quote (at the match's end)
# after a string's end: the next member or item, or the end of every value (brackets to the end of the text)
_GOES_ON: Final = re.compile(r'(?:[}\]][ \t\r\n]*)*(?:,[ \t\r\n]*["{\[]|\Z)')
_SCALAR: Final = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")
_STEPS: Final = 20_000  # choices tried for one answer, at most
_CLOSERS_PER_STRING: Final = 8  # later quotes tried as a string's end, at most

Found = Iterator[tuple[int, tuple[int, ...], tuple[str, ...]]]  # end, quotes escaped, paths of the strings


@dataclass(frozen=True)
class QuoteReading:
    """One way to read the value at `start`: the quotes escaped (`quotes`), the paths of the strings
    that hold them (`paths`), and where the value ends."""

    quotes: tuple[int, ...]
    paths: tuple[str, ...]
    end: int


class _Exhausted(Exception):
    """More ways than are tried: none of them can be said to be the only one."""


class _Search:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.quotes = [m.end() - 1 for m in _QUOTE.finditer(text)]
        self.steps = _STEPS

    def _skip(self, pos: int) -> int:
        found = _WS.match(self.text, pos)
        return pos if found is None else found.end()

    def _tick(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise _Exhausted

    def value(self, pos: int, ends: str, depth: int, path: str) -> Found:
        """Each way the value at `pos` reads, followed (after whitespace) by one of `ends` or the text's end."""
        self._tick()
        pos = self._skip(pos)
        if pos >= self.n or depth > MAX_DEPTH:
            return
        c = self.text[pos]
        if c == '"':
            yield from self.string(pos, ends, path)
        elif c == "{":
            yield from self.members(self._skip(pos + 1), depth + 1, path, first=True)
        elif c == "[":
            yield from self.items(self._skip(pos + 1), depth + 1, path, 0)
        else:
            scalar = _SCALAR.match(self.text, pos)
            if scalar is not None:
                yield scalar.end(), (), ()

    def string(self, pos: int, ends: str, path: str) -> Found:
        """Each way the string opening at `pos` can end: at a quote followed by one of `ends`. A key ends
        at its first quote; a value for certain at one followed by the next key or item (closing
        brackets, a comma, then a quote or bracket) or by closing brackets to the end of the text. A
        value never holds a quote followed by `:` (that is a key's end), nor starts with three quotes
        (a Python string: the lenient parser's to read)."""
        text, quotes = self.text, self.quotes
        first = bisect_right(quotes, pos)
        if ends == ":":
            if first < len(quotes):
                yield quotes[first] + 1, (), ()
            return
        if text.startswith('"""', pos):
            return
        tried = 0
        for index in range(first, len(quotes)):
            close = quotes[index]
            after = self._skip(close + 1)
            at = text[after] if after < self.n else ""
            if at == ":":
                return  # a key's end: the string cannot run past it
            if at and at not in ends:
                continue
            tried += 1
            inner = tuple(quotes[first:index])
            yield close + 1, inner, (path,) if inner else ()
            if not at or tried >= _CLOSERS_PER_STRING or _GOES_ON.match(text, after):
                return

    def members(self, pos: int, depth: int, path: str, *, first: bool = False) -> Found:
        """Each way the members from `pos` to the closing brace read (a trailing comma allowed)."""
        text = self.text
        if pos < self.n and text[pos] == "}" and first:
            yield pos + 1, (), ()
            return
        if pos >= self.n or text[pos] != '"':
            return
        for key_end, key_quotes, key_paths in self.string(pos, ":", path):
            colon = self._skip(key_end)
            if colon >= self.n or text[colon] != ":":
                continue
            key = text[pos + 1 : key_end - 1]
            for end, quotes, paths in self.value(colon + 1, ",}", depth, join_path(path, key)):
                after = self._skip(end)
                if after >= self.n:
                    continue
                done = (*key_quotes, *quotes), (*key_paths, *paths)
                if text[after] == "}":
                    yield after + 1, *done
                elif text[after] == ",":
                    nxt = self._skip(after + 1)
                    if nxt < self.n and text[nxt] == "}":
                        yield nxt + 1, *done
                        continue
                    for rest_end, rest_quotes, rest_paths in self.members(nxt, depth, path):
                        yield rest_end, (*done[0], *rest_quotes), (*done[1], *rest_paths)

    def items(self, pos: int, depth: int, path: str, index: int) -> Found:
        """Each way the items from `pos` to the closing bracket read (a trailing comma allowed)."""
        text = self.text
        if pos < self.n and text[pos] == "]":
            yield pos + 1, (), ()
            return
        for end, quotes, paths in self.value(pos, ",]", depth, f"{path}[{index}]"):
            after = self._skip(end)
            if after >= self.n:
                continue
            if text[after] == "]":
                yield after + 1, quotes, paths
            elif text[after] == ",":
                for rest_end, rest_quotes, rest_paths in self.items(self._skip(after + 1), depth, path, index + 1):
                    yield rest_end, (*quotes, *rest_quotes), (*paths, *rest_paths)


def readings(text: str, start: int, limit: int = 8) -> list[QuoteReading] | None:
    """The ways the object or array opening at `start` reads as JSON with some of its double quotes
    inside strings, at most `limit`; None when there are more, or too many to try them all."""
    search = _Search(text)
    found: list[QuoteReading] = []
    try:
        for end, quotes, paths in search.value(start, "", 0, "$"):
            found.append(QuoteReading(quotes, tuple(dict.fromkeys(paths)), end))
            if len(found) > limit:
                return None
    except (_Exhausted, RecursionError):
        return None
    return found


def escape_quotes(text: str, quotes: tuple[int, ...]) -> str:
    """`text` with a backslash before each quote at the positions `quotes` (sorted)."""
    pieces: list[str] = []
    last = 0
    for at in quotes:
        pieces.append(text[last:at])
        pieces.append("\\")
        last = at
    pieces.append(text[last:])
    return "".join(pieces)
