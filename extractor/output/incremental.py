"""The items of a JSON list, found while its text is still arriving.

A small lexer over the stream (strings, escapes, nesting), fed piece by piece. It never counts braces
blindly: a `}` or `]` inside a string is text. The work is done by regular expressions rather than
per character in Python: an item that arrived whole (a record up to four levels deep, a string, a
scalar) is found in one match; one still arriving is matched again only when a piece brings what
could end it, and one that still does not match (deeper, or not JSON) is followed bracket by bracket
from where its text got to, never read twice.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["ItemScanner"]

# patterns "unrolled" (plain runs between special characters, never two ways to match one text), so
# that a text that does not match fails in linear time
_STRING: Final = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_PLAIN: Final = r'[^"{}\[\]]*'


def _inside(inner: str) -> str:
    """The text inside brackets: plain runs, strings, and bracketed values holding `inner`."""
    return rf"{_PLAIN}(?:(?:{_STRING}|\{{{inner}\}}|\[{inner}\]){_PLAIN})*"


_DEEPEST: Final = rf"{_PLAIN}(?:{_STRING}{_PLAIN})*"
_FOUR_LEVELS: Final = _inside(_inside(_inside(_DEEPEST)))
#: a whole bracketed item, up to four levels deep
_BRACKETED: Final = re.compile(rf"\{{{_FOUR_LEVELS}\}}|\[{_FOUR_LEVELS}\]", re.DOTALL)
#: a whole string or scalar item, up to the comma or bracket after it (text glued to a string is its)
_SCALAR: Final = re.compile(rf'[^,\]}}"{{\[]*(?:{_STRING}[^,\]}}"{{\[]*)*(?=[,\]}}])', re.DOTALL)
#: separators, then a whole item: bracketed (group 1) or a string or scalar (group 2)
_WHOLE: Final = re.compile(rf"[ \t\r\n,]*(?:({_BRACKETED.pattern})|(?=[^ \t\r\n,\]}}])({_SCALAR.pattern}))", re.DOTALL)
_REST_OF_STRING: Final = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_OR_QUOTE: Final = re.compile(r'[\[\]{}"]')
_BRACKET_QUOTE_OR_COMMA: Final = re.compile(r'[\[\]{}",]')
_SEPARATORS: Final = re.compile(r"[ \t\r\n,]*")

_BEFORE = 0  # the items array has not opened yet
_BETWEEN = 1  # at the items array's level, between items
_WAITING = 2  # inside an item that did not arrive whole: matched again when a piece may end it
_FOLLOWING = 3  # inside an item that does not match: followed bracket by bracket
_DONE = 4


class ItemScanner:
    """Yields the text of each complete item of the answer's list: the first array found at the top
    level, or directly inside the top-level object (`{"value": [...]}`, `{"items": [...]}`)."""

    def __init__(self) -> None:
        self._text = ""  # what arrived and is not yet behind the scanner
        self._pos = 0  # where scanning goes on in `_text`
        self._start = 0  # inside an item: where it began in `_text`
        self._phase = _BEFORE
        self._stack: list[str] = []  # before the items: the open containers, "{" or "["
        self._depth = 0  # following an item: how deep
        self._in_string = False  # the scanner stopped inside a string (before the items, or following one)
        self._bracketed = False  # waiting: the item is an object or array (else a comma may end it too)

    @property
    def finished(self) -> bool:
        """Whether the items array has closed."""
        return self._phase == _DONE

    def feed(self, piece: str) -> list[str]:
        """The texts of the items that `piece` completes, in order."""
        phase = self._phase
        if phase == _WAITING and "}" not in piece and "]" not in piece and (self._bracketed or "," not in piece):
            self._text += piece  # nothing in it can end the item: matched again when something can
            return []
        if phase == _DONE:
            return []
        keep = self._start if phase in (_WAITING, _FOLLOWING) else self._pos  # what is behind goes
        self._text = self._text[keep:] + piece if keep else self._text + piece
        self._pos -= keep
        self._start -= keep
        if phase == _BEFORE:
            self._before()
        done: list[str] = []
        while self._phase in (_BETWEEN, _WAITING, _FOLLOWING):
            if self._phase == _BETWEEN:
                self._run(done)
            item = self._following() if self._phase == _FOLLOWING else self._next()
            if item is None:
                break
            if item:
                done.append(item)
        return done

    # --- before the items -----------------------------------------------------------------

    def _event(self, pos: int, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The next bracket or quote (or comma, by `pattern`) from `pos`, past the rest of the string the
        scanner is in; None when the text ends first (where scanning goes on is then kept)."""
        if self._in_string:
            rest = _REST_OF_STRING.match(self._text, pos)
            if rest is None:
                self._pos = pos
                return None
            pos, self._in_string = rest.end(), False
        found = pattern.search(self._text, pos)
        if found is None:
            self._pos = len(self._text)
        return found

    def _before(self) -> None:
        pos = self._pos
        while True:
            found = self._event(pos, _BRACKET_OR_QUOTE)
            if found is None:
                return
            char, pos = found.group(), found.end()
            if char == '"':
                self._in_string = True
            elif char in "{[":
                if char == "[" and (not self._stack or self._stack == ["{"]):
                    self._phase, self._pos = _BETWEEN, pos
                    return
                self._stack.append(char)
            elif self._stack:
                self._stack.pop()

    # --- the items ------------------------------------------------------------------------

    def _run(self, done: list[str]) -> None:
        """The items that arrived whole one after the other, into `done` (one match each)."""
        text, pos = self._text, self._pos
        match = _WHOLE.match
        while (found := match(text, pos)) is not None and found.end() > pos:
            done.append(found.group(1) or found.group(2).strip())
            pos = found.end()
        self._pos = pos

    def _next(self) -> str | None:
        """The next item when it arrived whole; "" for an empty one; None when it is still arriving
        (then the scanner waits inside it) or the items array closed."""
        text = self._text
        if self._phase == _BETWEEN:
            pos = _SEPARATORS.match(text, self._pos).end()  # type: ignore[union-attr]  # matches empty
            self._pos = self._start = pos
            if pos >= len(text):
                return None
            if text[pos] in "]}":  # the items array closes (a stray brace closes it too)
                self._phase = _DONE
                return None
        start = self._start
        first = text[start]
        whole = (_BRACKETED if first in "{[" else _SCALAR).match(text, start)
        if whole is not None:
            self._phase, self._pos = _BETWEEN, whole.end()
            return whole.group().strip()
        if self._phase == _BETWEEN and not _may_end(text[start:], first):
            self._phase, self._bracketed = _WAITING, first in "{["
            return None
        # what could end it came, and it still does not match: follow it from its start
        self._phase, self._pos, self._depth, self._in_string = _FOLLOWING, start, 0, False
        return self._following()

    def _following(self) -> str | None:
        """Follow the item that began at `_start` from where the scanner got to; its text once it ends:
        at a bracket closing back to the items' level, or at a comma or bracket there."""
        text, pos = self._text, self._pos
        while True:
            found = self._event(pos, _BRACKET_OR_QUOTE if self._depth else _BRACKET_QUOTE_OR_COMMA)
            if found is None:
                return None
            char, pos = found.group(), found.end()
            if char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif self._depth > 1:
                self._depth -= 1
            elif self._depth:  # back at the items' level: the item ends with this bracket
                self._phase, self._pos = _BETWEEN, pos
                return text[self._start : pos]
            else:  # a comma or closer after a string or scalar: the item ends before it
                self._phase, self._pos = _BETWEEN, found.start()
                return text[self._start : found.start()].strip()


def _may_end(piece: str, first: str) -> bool:
    """Whether `piece` may end an item that began with `first`: a closer, or for a string or scalar a comma."""
    return "}" in piece or "]" in piece or (first not in "{[" and "," in piece)
