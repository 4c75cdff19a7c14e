"""Limits on what an answer may do to the reader: how deep it nests, how much of it an error repeats.

**Depth.** An answer nested deeper than `MAX_DEPTH` (128) levels of arrays and objects is refused with
`OutputInvalidError` before anything parses it. Compiled schemas nest at most 10 levels in the
provider dialects (5 in some), so a real answer only goes deeper inside free-form (`Any`) values;
nothing extracted from a document nests a hundred levels. The readers further on have limits of their
own: pydantic's JSON reader stops at 200 levels, and `jsonschema` validating a recursive schema runs
out of Python's default stack between 200 and 256 levels. 128 leaves room under both, so that a deep
answer gets one clear error instead of a `RecursionError` or a message about recursion limits.
The text is counted before it is read (`check_depth`); the lenient reader stops at the first level
too deep while it reads (the count of the text sees double-quoted strings only, the lenient reader
also single and curly quotes, so a stray quote can hide brackets from the one and not the other);
and what the C decoder read in one go is counted after (`check_value_depth`). Each stops at the first
level too deep: time and memory stay linear in the text, whatever it holds.

**Size.** Error details repeat values from the answer; values longer than `VALUE_LIMIT` characters
are shown shortened, with their length, and so are long paths and messages: the text of an error
(and so of a re-ask) stays a few kilobytes whatever the size of the answer.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..errors import ErrorDetail, OutputError, OutputInvalidError

__all__ = [
    "MAX_DEPTH",
    "VALUE_LIMIT",
    "Shortened",
    "cap_error",
    "check_depth",
    "check_value_depth",
    "nesting_depth",
    "shorten_text",
    "shorten_value",
    "too_deep",
]

#: levels of nested arrays and objects an answer may have
MAX_DEPTH: Final = 128
#: characters of a value, path or message repeated in full by an error; longer ones are shortened
VALUE_LIMIT: Final = 200
_MESSAGE_LIMIT: Final = 240
_HEAD: Final = 48  # characters of a shortened value kept (ErrorDetail shows 80 at most)

# a double-quoted string, or the rest of the text after a quote that never closes: always matches at
# a quote, so that the scan stays linear whatever the quotes and backslashes
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_NO_STOP: Final = 1 << 62


def nesting_depth(text: str, limit: int | None = None) -> int:
    """How deep the brackets of `text` nest outside double-quoted strings (a stray closer counts as none);
    with `limit`, the count stops at the first level deeper than it (and returns that level)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    stop = _NO_STOP if limit is None else limit
    depth = deepest = 0
    for c in brackets:
        if c == "[" or c == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if depth > stop:
                    break
        elif depth:
            depth -= 1
    return deepest


def too_deep(depth: int | None = None, raw: str | None = None, *, at: int | None = None) -> OutputInvalidError:
    """The error for an answer nested deeper than `MAX_DEPTH` (`depth` levels, when known; `at`: the
    character where reading stopped, one level too deep)."""
    levels = f"{depth} levels" if depth is not None else f"more than {MAX_DEPTH} levels"
    where = f" (reading stopped at character {at})" if at is not None else ""
    message = f"{levels} of nested arrays and objects{where}; at most {MAX_DEPTH} are read"
    detail = ErrorDetail("$", message, kind="depth")
    return OutputInvalidError(f"the answer is nested deeper than {MAX_DEPTH} levels", [detail], raw=raw)


def check_depth(text: str, raw: str | None = None) -> None:
    """Raise `OutputInvalidError` when `text` nests deeper than `MAX_DEPTH`; `raw` goes into the error.

    Costs two counts of the text when it has at most `MAX_DEPTH` opening brackets (the usual case),
    one linear scan otherwise, which stops at the first level too deep.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    if nesting_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise too_deep(raw=raw)


def check_value_depth(value: Any, text: str) -> None:
    """Raise `OutputInvalidError` when `value`, read from `text`, nests deeper than `MAX_DEPTH`.

    Free when `text` has at most `MAX_DEPTH` opening brackets (the usual case); else one walk of the
    value's arrays and objects, without recursion, which stops at the first level too deep.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise too_deep(raw=text)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


class Shortened(str):
    """A value too long to repeat, as its beginning and its length; its `repr` is the text itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def shorten_text(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """`text` itself when it is at most `limit` characters, else its beginning and its length."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text):,} characters)"


def shorten_value(value: Any) -> Any:
    """`value` itself when its repr is short, else a `Shortened` showing its beginning and its length."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = repr(value)
    if len(text) <= VALUE_LIMIT:
        return value
    size = len(value) if isinstance(value, str) else len(text)
    unit = "characters" if isinstance(value, str) else "characters as text"
    return Shortened(f"{text[:_HEAD]}... ({size:,} {unit})")


def _cap_detail(detail: ErrorDetail) -> ErrorDetail:
    value = shorten_value(detail.value) if detail.has_value else detail.value
    path = shorten_text(detail.path, VALUE_LIMIT)
    message = shorten_text(detail.message)
    if value is detail.value and path is detail.path and message is detail.message:
        return detail
    return ErrorDetail(path, message, value, detail.has_value, detail.loc, detail.kind)


def cap_error(error: OutputError, raw: str | None = None) -> OutputError:
    """`error` with its details shortened (long values, paths and messages) and `raw` set if it had none.

    Returns `error` itself when there is nothing to change; otherwise a new error of the same class.
    """
    details = [_cap_detail(d) for d in error.errors]
    changed = any(a is not b for a, b in zip(details, error.errors, strict=True))
    if not changed and (raw is None or error.raw is not None):
        return error
    capped = type(error)(error.message, details, raw=error.raw if error.raw is not None else raw, repairs=error.repairs)
    capped.usage, capped.attempts = error.usage, error.attempts
    return capped
