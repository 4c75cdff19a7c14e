"""Lenient reading of one JSON value out of a model's answer, with a record of every repair made.

Valid JSON is read by the standard library's C decoder and comes back as `json.loads` returns it,
with no repair, but for its numbers: each keeps the text it was written as (`JsonNumber`), for a
schema that wants that text as a string (`plain` drops it). Anything else goes through a lenient
parser that accepts the usual slips of language models (trailing commas, comments, single or curly
quotes, unquoted keys and strings, Python and JavaScript literals, wrapper calls, cut-off text) and
records each repair with the JSON path where it applied.

What JSON does not allow, and `json.loads` takes, is no valid JSON here: NaN, Infinity and numbers
too large for a float (`1e999`) are read as null with a lossy repair (NON_FINITE); a key given twice
is read once with a repair when both values are the same (DUPLICATE_KEY), else with a lossy one
(CONFLICTING_KEY: which one was meant is a guess). Reading stops at the first level of nesting deeper
than `limits.MAX_DEPTH` (`OutputInvalidError`), in time and memory linear in the text.

Where the text can be read two ways, it is not guessed at: a number with separators in a list
(`[-2,000.00]`: one number or two items?) or an ambiguous one in an object (`"a": 1,234`) is
refused; text glued to a closing quote (`"somet"string"`) is read as one more item only as a lossy
repair (SPLIT_VALUE), since the quote may belong inside the string (`read` reads it there when
that is the one reading that fits the schema, see `quotes`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from json import decoder as _json_decoder
from typing import Any, Final

from .._jsonpath import join_path
from .limits import MAX_DEPTH, too_deep
from .numbers import ambiguity_message, read_number
from .repairs import Repair, RepairKind

__all__ = [
    "BARE_QUOTED",
    "JsonInteger",
    "JsonNumber",
    "LenientParseError",
    "Parsed",
    "decode_strict",
    "loads_strict",
    "parse_lenient",
    "plain",
]


@dataclass
class Parsed:
    """One JSON value read from a text: the value, its span, the repairs made, whether the text ended inside it."""

    value: Any
    start: int
    end: int
    repairs: list[Repair]
    complete: bool


class LenientParseError(ValueError):
    """No JSON value can be read at `pos`, even leniently."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at position {pos}")
        self.msg = message
        self.pos = pos


class _NotStrict(ValueError):
    """Valid-looking JSON the strict decoder leaves to the lenient parser: NaN, Infinity, a number too
    large for a float, an object that gives a key twice. The lenient parser reads and records them."""


class JsonNumber(float):
    """A number read from an answer, with the text it was written as (`1.50`, `1e3`, `-0`): where the
    schema wants a string, that text is the string. `plain` turns it back into a float."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str, value: float | None = None) -> JsonNumber:
        number = super().__new__(cls, float(text) if value is None else value)
        number.text = text
        return number


class JsonInteger(int):
    """An integer written in a way its value does not show (`-0`, `+1`), with that text; see `JsonNumber`."""

    text: str


def _reject_constant(name: str) -> Any:
    raise _NotStrict(f"{name} is no JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # "1e999": too large for a float
        raise _NotStrict(f"{text} is too large for a JSON number")
    return number


_new_float: Final = float.__new__


def _float(text: str) -> float:
    number = _new_float(JsonNumber, text)
    if not math.isfinite(number):  # "1e999": too large for a float
        raise _NotStrict(f"{text} is too large for a JSON number")
    number.text = text
    return number


def _int(text: str) -> int:
    if text != "-0":
        return int(text)
    number = JsonInteger(0)
    number.text = text
    return number


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or _add(seen, k))
        raise _NotStrict(f"the key {twice!r} is given twice in one object")
    return found


def _add(seen: set[str], key: str) -> bool:
    seen.add(key)
    return False


#: strict JSON for the reader: numbers keep their text, what JSON does not allow is left to the lenient parser
_DECODER: Final = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_pairs
)
#: strict JSON as plain Python values, for readers that take valid answers only
_PLAIN_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite, object_pairs_hook=_pairs)
# the C string scanner behind json.loads (not in the type stubs)
_scanstring: Final[Callable[[str, int, bool], tuple[str, int]]] = _json_decoder.scanstring  # type: ignore[attr-defined]


def decode_strict(text: str, pos: int = 0) -> tuple[Any, int]:
    """The valid JSON value starting exactly at `pos` and the index just after it. NaN, Infinity, numbers
    too large for a float and objects giving a key twice are refused (ValueError), and so is one nested
    too deep for the C decoder (RecursionError). Numbers keep their text (`JsonNumber`)."""
    value, end = _DECODER.raw_decode(text, pos)
    return value, end


def loads_strict(text: str) -> Any:
    """The JSON value `text` holds, as `json.loads` reads it but refusing (ValueError, saying why) what
    JSON does not allow and `json.loads` takes: NaN, Infinity, numbers too large for a float, a key given
    twice in one object. RecursionError when it is nested too deep for the C decoder."""
    return _PLAIN_DECODER.decode(text)


def plain(value: Any) -> Any:
    """`value` with every `JsonNumber` and `JsonInteger` in it turned back into a float or int (in place
    for the lists and objects in it), so that nothing of the reader's own leaves it."""
    if type(value) is JsonNumber:
        return float(value)
    if type(value) is JsonInteger:
        return int(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            items: Any = node.items()
        elif type(node) is list:
            items = enumerate(node)
        else:
            continue
        for key, item in list(items):
            kind = type(item)
            if kind is JsonNumber:
                node[key] = float(item)
            elif kind is JsonInteger:
                node[key] = int(item)
            elif kind is dict or kind is list:
                stack.append(item)
    return value


# --- tokens ---------------------------------------------------------------------------------------

_WS: Final = re.compile(r"[ \t\n\r]*")
_SPACES: Final = re.compile(r"[ \t]*")
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_PARTIAL_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d*)?(?:[eE][+-]?\d*)?")
_LEADING_ZERO: Final = re.compile(r"[+-]?0\d")
# a number with commas in it ("-2,000.00", "1,5", "1.234,56"): grouped digits, or several numbers in a list
_GROUPED: Final = re.compile(r"[+-]?\d[\d.]*(?:,\d[\d.]*)+")
_TRIPLE: Final = ('"""', "'''")
_COMMA_DIGITS: Final = frozenset(f",{d}" for d in "0123456789")
_ODD_NUMBER: Final = re.compile(r"^\+|(?:^|[+-])\.|\.(?!\d)")
_WORD: Final = re.compile(r"[+-]?[A-Za-z_$][\w$]*")
_CALL: Final = re.compile(r"([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\(")
_KEY: Final = re.compile(r"[\w$@][\w$@.\-]*")
_ELLIPSIS: Final = re.compile(r"\.{3,}|\u2026")
_UNQUOTED: Final = re.compile(r"[^,\]}\n\r]*")
_INLINE_COMMENT: Final = re.compile(r"\s(?://|/\*)")
_HEX4: Final = re.compile(r"[0-9a-fA-F]{4}")
# how strict JSON can start; other starts (single quotes, bare words) skip the C decoder
_STRICT_START: Final = re.compile(r'\{\s*["}]|\[\s*(?:[\]\[{"\d-]|true|false|null)|["\d-]|true|false|null')


def _run_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a run of `pattern` (which may match empty) starting at `pos` ends."""
    found = pattern.match(text, pos)
    return pos if found is None else found.end()


# opening quote -> closing quote
_CLOSERS: Final = {'"': '"', "'": "'", "\u201c": "\u201d", "\u201d": "\u201d", "\u2018": "\u2019", "\u2019": "\u2019"}
# closers that also serve as apostrophes: they close only where a value or key can end
_APOSTROPHES: Final = frozenset("'\u2019")
_CHUNKS: Final = {q: re.compile(f"[^{re.escape(q)}\\\\\\x00-\\x1f]*") for q in set(_CLOSERS.values())}
_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

_NON_FINITE_NOTE: Final = "{} is no JSON number: write a number, or null"
_LITERALS: Final[dict[str, tuple[Any, RepairKind | None, str]]] = {
    "true": (True, None, ""),
    "false": (False, None, ""),
    "null": (None, None, ""),
    "True": (True, RepairKind.PYTHON_LITERAL, "True read as true"),
    "False": (False, RepairKind.PYTHON_LITERAL, "False read as false"),
    "None": (None, RepairKind.PYTHON_LITERAL, "None read as null"),
    "undefined": (None, RepairKind.JS_LITERAL, "undefined read as null"),
    "NaN": (None, RepairKind.NON_FINITE, _NON_FINITE_NOTE.format("NaN")),
    "Infinity": (None, RepairKind.NON_FINITE, _NON_FINITE_NOTE.format("Infinity")),
    "+Infinity": (None, RepairKind.NON_FINITE, _NON_FINITE_NOTE.format("+Infinity")),
    "-Infinity": (None, RepairKind.NON_FINITE, _NON_FINITE_NOTE.format("-Infinity")),
}

_NOT_A_VALUE: Final = frozenset(",:]})")
_DELIMITERS: Final = frozenset(" \t\r\n,]})")

# --- parser state ---------------------------------------------------------------------------------

_OBJ: Final = 0
_ARR: Final = 1
_CALL_FRAME: Final = 2

_FIRST: Final = 0  # just opened
_AFTER_COMMA: Final = 1
_AFTER_VALUE: Final = 2
_VALUE: Final = 3  # object: key read, value expected


class _Dropped:
    """Marks an item that was not delivered (elided, incomplete)."""


_DROPPED: Final = _Dropped()
_NO_LIMIT: Final = 1 << 62


class _Frame:
    """An open object, array or wrapper call."""

    __slots__ = ("has_value", "key", "kind", "name", "part", "path", "state", "value")

    def __init__(self, kind: int, part: str | int | None, value: Any, name: str = "") -> None:
        self.kind = kind
        self.part = part  # key or index in the parent; None at the root and inside a wrapper call
        self.value = value
        self.state = _FIRST
        self.key: str | None = None
        self.has_value = False
        self.name = name
        self.path: str | None = None  # its JSON path, once asked for


_StringNotes = list[tuple[RepairKind, str]]


class _Parser:
    """Reads one value from a position, iteratively (deep nesting cannot exhaust the stack)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._n = len(text)
        self._pos = 0
        self._stack: list[_Frame] = []
        self._repairs: list[Repair] = []
        self._result: Any = None
        self._done = False
        self._truncated = False
        self._cut_path: str | None = None
        self._fast_off = _NO_LIMIT  # no C-decoder attempts deeper than this (a too-deep subtree)
        self._fast_budget = 4 * self._n + 65536  # characters failed C-decoder attempts may cost
        self._start = 0
        self._string_end = -1  # where the last quoted string value ended (just after its closing quote)

    # -- driver

    def parse(self, pos: int) -> Parsed:
        self._pos = pos
        self._skip(value_pos=True)
        if self._pos >= self._n:
            raise LenientParseError("no JSON value", pos)
        self._start = self._pos
        self._begin_value(None)
        while not self._done:
            self._step()
        return Parsed(self._result, self._start, self._pos, self._repairs, not self._truncated)

    def _step(self) -> None:
        frame = self._stack[-1]
        self._skip(value_pos=frame.state == _VALUE if frame.kind == _OBJ else frame.state != _AFTER_VALUE)
        if self._pos >= self._n:
            self._finish_at_end()
            return
        if frame.kind == _ARR:
            self._step_array(frame)
        elif frame.kind == _OBJ:
            self._step_object(frame)
        else:
            self._step_call(frame)

    def _punctuation(self, frame: _Frame, closer: str, expected: str) -> bool:
        """Consume `closer` or a comma at the current position, if one is there."""
        pos = self._pos
        c = self._text[pos]
        if c == closer:
            if frame.state == _AFTER_COMMA:
                self._record(RepairKind.TRAILING_COMMA, self._path(), f"comma before {closer}")
            self._close(frame, pos + 1)
            return True
        if c == ",":
            if frame.state != _AFTER_VALUE:
                raise LenientParseError(f"expected {expected}, found ','", pos)
            frame.state = _AFTER_COMMA
            self._pos = pos + 1
            return True
        return False

    def _step_array(self, frame: _Frame) -> None:
        if self._punctuation(frame, "]", "a value"):
            return
        pos = self._pos
        c = self._text[pos]
        index = len(frame.value)
        if self._ellipsis():
            self._record(RepairKind.ELLIPSIS, self._path(index), "elided items dropped")
            frame.state = _AFTER_VALUE
            return
        if c in _NOT_A_VALUE:
            raise LenientParseError(f"expected a value or ']', found {c!r}", pos)
        if frame.state != _AFTER_VALUE:
            frame.state = _AFTER_VALUE
            self._begin_value(index)
            return
        # a missing comma: lossless between two values that each end where they say, but text glued to a
        # closing quote, or bare text, may be the rest of the string before it (an unescaped quote)
        path = self._path(index)
        glued = pos == self._string_end
        mark = len(self._repairs)
        self._record(RepairKind.MISSING_COMMA, path, "comma inserted")
        self._begin_value(index)
        if glued or any(r.kind is RepairKind.UNQUOTED_STRING and r.path == path for r in self._repairs[mark + 1 :]):
            self._repairs[mark] = Repair(RepairKind.SPLIT_VALUE, path, _SPLIT_NOTE)

    def _step_object(self, frame: _Frame) -> None:
        text, pos = self._text, self._pos
        c = text[pos]
        if frame.state == _VALUE:
            if self._ellipsis():
                self._record(RepairKind.ELLIPSIS, self._path(frame.key), "elided value dropped with its key")
                frame.key = None
                frame.state = _AFTER_VALUE
                return
            if c in _NOT_A_VALUE:
                raise LenientParseError(f"expected a value, found {c!r}", pos)
            frame.state = _AFTER_VALUE
            self._begin_value(frame.key)
            return
        if self._punctuation(frame, "}", "a key"):
            return
        if self._ellipsis():
            self._record(RepairKind.ELLIPSIS, self._path(), "elided members dropped")
            frame.state = _AFTER_VALUE
            return
        missing_comma = frame.state == _AFTER_VALUE
        glued = pos == self._string_end
        key, notes, closed = self._read_key()
        if missing_comma or notes:
            path = self._path(key)
            if missing_comma and glued:
                self._record(RepairKind.SPLIT_VALUE, path, _SPLIT_NOTE)
            elif missing_comma:
                self._record(RepairKind.MISSING_COMMA, path, "comma inserted")
            for kind, detail in notes:
                self._record(kind, path, f"{detail} (key)" if detail else "key")
        frame.key = key
        frame.state = _VALUE
        if not closed:
            return  # the text ended inside the key: the next step closes everything
        self._skip(value_pos=False)
        if self._pos >= self._n:
            return
        if text[self._pos] != ":":
            raise LenientParseError(f"expected ':' after key {key!r}", self._pos)
        self._pos += 1

    def _step_call(self, frame: _Frame) -> None:
        pos = self._pos
        c = self._text[pos]
        if frame.state == _FIRST:
            if c in _NOT_A_VALUE:
                raise LenientParseError(f"expected a value inside {frame.name}(), found {c!r}", pos)
            frame.state = _AFTER_VALUE
            self._begin_value(None)
            return
        if c != ")":
            raise LenientParseError(f"expected ')' closing {frame.name}(", pos)
        self._close(frame, pos + 1)
        if self._done:  # a top-level call: JSONP ends with ';'
            end = _run_end(_SPACES, self._text, self._pos)
            if end < self._n and self._text[end] == ";":
                self._pos = end + 1

    def _close(self, frame: _Frame, end: int) -> None:
        self._pos = end
        self._stack.pop()
        if len(self._stack) <= self._fast_off:
            self._fast_off = _NO_LIMIT
        self._deliver(frame.value if frame.kind != _CALL_FRAME or frame.has_value else _DROPPED)

    def _open(self, frame: _Frame, pos: int) -> None:
        """Open the object, array or call at `pos`; one more level than `MAX_DEPTH` stops the reading."""
        if len(self._stack) >= MAX_DEPTH:
            raise too_deep(at=pos)
        self._stack.append(frame)
        self._pos = pos + 1

    def _deliver(self, value: Any) -> None:
        stack = self._stack
        if not stack:
            if value is _DROPPED:
                raise LenientParseError("no complete JSON value", self._start)
            self._result = value
            self._done = True
            return
        frame = stack[-1]
        if frame.kind == _ARR:
            if value is not _DROPPED:
                frame.value.append(value)
        elif frame.kind == _OBJ:
            if value is not _DROPPED:
                key, held = str(frame.key), frame.value
                if key in held:
                    self._twice(held, key, value)
                else:
                    held[key] = value
            frame.key = None
        elif value is not _DROPPED:
            frame.value = value
            frame.has_value = True

    def _twice(self, held: dict[str, Any], key: str, value: Any) -> None:
        """A key the object already holds: one repair when the values are the same, else a conflict (lossy:
        which one the model meant is a guess; the last is kept, as JSON readers do)."""
        path = self._path(key)
        if _same(held[key], value):
            self._record(RepairKind.DUPLICATE_KEY, path, "given twice with the same value")
            return
        first, last = _shown(held[key]), _shown(value)
        self._record(RepairKind.CONFLICTING_KEY, path, f"given twice, as {first} and as {last}")
        held[key] = value

    def _finish_at_end(self) -> None:
        """The text ended inside the value: drop what is incomplete, close what is open."""
        closed: list[str] = []
        if self._cut_path is not None:
            cut_path = self._cut_path
            closed.append("string")
        else:
            cut_path = self._path()
        stack = self._stack
        while stack:
            frame = stack[-1]
            if frame.kind == _OBJ:
                if frame.key is not None:
                    self._record(RepairKind.INCOMPLETE_ITEM, self._path(frame.key), "key without a value")
                    frame.key = None
                closed.append("object")
            elif frame.kind == _ARR:
                closed.append("array")
            else:
                closed.append(f"{frame.name}()")
                if not frame.has_value:
                    self._record(RepairKind.INCOMPLETE_ITEM, self._path(), f"{frame.name}() without a value")
            self._close(frame, self._n)
        self._record(RepairKind.TRUNCATED, cut_path, "text ended; closed " + ", ".join(closed))
        self._truncated = True

    # -- values

    def _begin_value(self, part: str | int | None) -> None:
        """Read the value at the current position: deliver a scalar or open a container."""
        text, pos = self._text, self._pos
        c = text[pos]
        if c == "{" or c == "[":
            if (
                self._stack
                and len(self._stack) <= self._fast_off
                and self._fast_budget > 0
                and _STRICT_START.match(text, pos)
            ):
                try:
                    value, end = _DECODER.raw_decode(text, pos)
                except RecursionError:
                    self._fast_off = len(self._stack)
                except json.JSONDecodeError as exc:
                    # building the error scans the text up to it: bound the total spent on failures
                    self._fast_budget -= exc.pos
                except ValueError:
                    pass
                else:
                    self._pos = end
                    self._deliver(value)
                    return
            self._open(_Frame(_OBJ, part, {}) if c == "{" else _Frame(_ARR, part, []), pos)
            return
        if c in _CLOSERS:
            if text.startswith(_TRIPLE, pos):
                string, notes, closed = self._read_triple()
            else:
                string, notes, closed = self._read_string()
            path = self._path(part)
            for kind, detail in notes:
                self._record(kind, path, detail)
            if closed:
                self._string_end = self._pos
            else:
                if self._stack:
                    self._cut_path = path
                else:
                    self._record(RepairKind.TRUNCATED, path, "text ended; closed string")
                    self._truncated = True
            self._deliver(string)
            return
        self._begin_bare(part)

    def _begin_bare(self, part: str | int | None) -> None:
        """A value that does not start with a quote or bracket: number, literal, wrapper call, bare text."""
        text, pos, n = self._text, self._pos, self._n
        c = text[pos]
        if c in _NOT_A_VALUE:
            raise LenientParseError(f"expected a value, found {c!r}", pos)
        top = not self._stack
        number = _NUMBER.match(text, pos)
        if number is not None:
            token, end = number.group(), number.end()
            if end >= n and token[-1] == ".":
                self._incomplete(part, f"partial number {token!r}")
                return
            if text[end : end + 2] in _COMMA_DIGITS and not top and self._grouped(part):
                return
            if (end >= n or self._delimits(end)) and not _LEADING_ZERO.match(token):
                self._number(token, part)
                self._pos = end
                return
        if _PARTIAL_NUMBER.fullmatch(text, pos):
            self._incomplete(part, f"partial number {text[pos:]!r}")
            return
        word = _WORD.match(text, pos)
        if word is not None:
            name, end = word.group(), word.end()
            literal = _LITERALS.get(name)
            if literal is not None and self._delimits(end):
                value, kind, detail = literal
                if kind is not None:
                    self._record(kind, self._path(part), detail)
                self._pos = end
                self._deliver(value)
                return
            if end >= n and any(lit.startswith(name) for lit in _LITERALS):
                self._incomplete(part, f"partial literal {name!r}")
                return
        call = _CALL.match(text, pos)
        if call is not None:
            name = call.group(1)
            self._record(RepairKind.WRAPPER_CALL, self._path(part), f"{name}(...) unwrapped")
            self._open(_Frame(_CALL_FRAME, part, None, name), pos)
            self._pos = call.end()
            return
        if top or self._stack[-1].kind == _CALL_FRAME:
            raise LenientParseError("no JSON value", pos)
        raw = text[pos : _run_end(_UNQUOTED, text, pos)]
        comment = _INLINE_COMMENT.search(raw)
        if comment is not None:
            raw = raw[: comment.start()]
        value = raw.strip()
        if not value:  # only unusual spaces: no value at all
            raise LenientParseError("expected a value", pos)
        note = BARE_QUOTED if '"' in value else "bare text read as a string"
        self._record(RepairKind.UNQUOTED_STRING, self._path(part), note)
        self._pos = pos + len(raw)
        self._deliver(value)

    def _grouped(self, part: str | int | None) -> bool:
        """A number with commas at the current position ("-2,000.00"), where JSON reads none: read in an
        object when it spells one number only, refused when it is ambiguous; True when it was read.

        In an object a comma followed by digits cannot start the next member, so the commas belong to
        the number, read by the rule for numbers written as strings (`numbers.read_number`: "1,234" is
        1234 or 1.234, refused). In a list they may separate items: read as JSON reads them ("1,234" is
        two items) unless an item would not be a number ("2,000": "000"), then refused.
        """
        text, pos = self._text, self._pos
        run = _GROUPED.match(text, pos)
        if run is None or not self._delimits(run.end()):
            return False
        after = _run_end(_SPACES, text, run.end())
        frame = self._stack[-1]
        if frame.kind == _CALL_FRAME or (after < self._n and text[after] == ":"):
            return False
        raw = run.group()
        if frame.kind == _ARR:
            if not any(_LEADING_ZERO.match(piece) for piece in raw.split(",")[1:]):
                return False
            raise LenientParseError(
                f"{raw} in a list is one number with separators or several items: write numbers without "
                "separators, items with a space after each comma",
                pos,
            )
        reading = read_number(raw)
        if reading.ambiguous:
            raise LenientParseError(ambiguity_message(raw, reading), pos)
        if reading.number is None:
            raise LenientParseError(f"{raw} is not a number: write it as a JSON number", pos)
        self._record(RepairKind.NUMBER_FORMAT, self._path(part), f"{raw} read as {reading.text}")
        self._pos = run.end()
        self._deliver(reading.number)
        return True

    def _number(self, token: str, part: str | int | None) -> None:
        if _ODD_NUMBER.search(token):
            self._record(RepairKind.NUMBER_FORMAT, self._path(part), f"{token} read as a number")
        value: int | float
        try:
            if "." in token or "e" in token or "E" in token:
                value = JsonNumber(token, float(token.lstrip("+")))
            else:
                value = int(token)
        except ValueError as exc:  # more digits than Python converts
            raise LenientParseError(str(exc), self._pos) from None
        if not math.isfinite(value):
            self._record(RepairKind.NON_FINITE, self._path(part), _NON_FINITE_NOTE.format(token))
            self._deliver(None)
            return
        if type(value) is int and str(value) != token:  # "-0", "+1"
            value = JsonInteger(value)
            value.text = token
        self._deliver(value)

    def _incomplete(self, part: str | int | None, detail: str) -> None:
        """The text ends inside a value that cannot stand as it is: drop it."""
        if not self._stack:
            raise LenientParseError(f"no complete JSON value ({detail})", self._pos)
        self._record(RepairKind.INCOMPLETE_ITEM, self._path(part), detail)
        self._pos = self._n
        self._deliver(_DROPPED)

    def _ellipsis(self) -> bool:
        """Skip `...` or `…` standing for elided items; True if there was one."""
        found = _ELLIPSIS.match(self._text, self._pos)
        if found is None or not self._delimits(found.end()):
            return False
        self._pos = found.end()
        return True

    def _delimits(self, i: int) -> bool:
        """True when a number or literal ending before `i` is complete there."""
        text = self._text
        if i >= self._n or text[i] in _DELIMITERS:
            return True
        return text[i] == "/" and text[i + 1 : i + 2] in ("/", "*")

    # -- strings and keys

    def _read_key(self) -> tuple[str, _StringNotes, bool]:
        text, pos = self._text, self._pos
        if text[pos] in _CLOSERS:
            key, notes, closed = self._read_string()
            return key, notes, closed
        bare = _KEY.match(text, pos)
        if bare is None:
            raise LenientParseError(f"expected a key, found {text[pos]!r}", pos)
        self._pos = bare.end()
        return bare.group(), [(RepairKind.UNQUOTED_KEY, "")], True

    def _read_string(self) -> tuple[str, _StringNotes, bool]:
        """The string opening at the current position, the repairs it needed, whether it was closed."""
        text, n = self._text, self._n
        opener = text[self._pos]
        if opener == '"':
            try:
                string, end = _scanstring(text, self._pos + 1, True)
            except ValueError:
                pass
            else:
                self._pos = end
                return string, [], True
        closer = _CLOSERS[opener]
        chunk = _CHUNKS[closer]
        notes: _StringNotes = []
        if opener == "'":
            notes.append((RepairKind.SINGLE_QUOTES, ""))
        elif opener != '"':
            notes.append((RepairKind.CURLY_QUOTES, f"{opener}...{closer}"))
        parts: list[str] = []
        controls = 0
        escapes: list[str] = []
        pos = self._pos + 1
        closed = False
        while True:
            run_end = _run_end(chunk, text, pos)
            parts.append(text[pos:run_end])
            pos = run_end
            if pos >= n:
                break
            c = text[pos]
            if c == closer:
                if closer in _APOSTROPHES and not self._quote_closes(pos + 1):
                    parts.append(c)
                    pos += 1
                    continue
                pos += 1
                closed = True
                break
            if c != "\\":
                parts.append(c)  # a raw control character, kept as it is
                controls += 1
                pos += 1
                continue
            if pos + 1 >= n:
                pos = n  # the text ended on the backslash
                break
            e = text[pos + 1]
            if e in _ESCAPES:
                parts.append(_ESCAPES[e])
                pos += 2
            elif e == "u":
                hex4 = _HEX4.match(text, pos + 2)
                if hex4 is None:
                    if pos + 6 > n and all(h in "0123456789abcdefABCDEF" for h in text[pos + 2 :]):
                        pos = n  # the text ended inside the escape
                        break
                    parts.append("\\u")
                    escapes.append("\\u")
                    pos += 2
                    continue
                code = int(hex4.group(), 16)
                pos += 6
                if 0xD800 <= code <= 0xDBFF and text.startswith("\\u", pos):
                    low = _HEX4.match(text, pos + 2)
                    if low is not None and 0xDC00 <= int(low.group(), 16) <= 0xDFFF:
                        code = 0x10000 + (((code - 0xD800) << 10) | (int(low.group(), 16) - 0xDC00))
                        pos += 6
                parts.append(chr(code))
            elif e == closer or e in "'\"":
                if e != closer and opener == '"':
                    escapes.append(f"\\{e} read as {e}")
                parts.append(e)
                pos += 2
            else:
                parts.append("\\" + e)
                escapes.append("\\" + e)
                pos += 2
        self._pos = pos
        if controls:
            notes.append((RepairKind.CONTROL_CHARACTER, f"{controls} raw control character(s) kept"))
        if escapes:
            notes.append((RepairKind.INVALID_ESCAPE, "kept literally: " + ", ".join(escapes)))
        return "".join(parts), notes, closed

    def _read_triple(self) -> tuple[str, _StringNotes, bool]:
        """A Python triple-quoted string (\"\"\"abc\"\"\" or '''abc'''), read as written when that is
        lossless: no backslash (its escapes are Python's, not JSON's) and no quote right after the closing
        ones (where the string ends would be a guess); else refused."""
        text, pos = self._text, self._pos
        quotes = text[pos : pos + 3]
        close = text.find(quotes, pos + 3)
        content = text[pos + 3 : close if close >= 0 else self._n]
        if "\\" in content:
            raise LenientParseError(f"a {quotes}...{quotes} string with a backslash: write it as a JSON string", pos)
        if close < 0:
            self._pos = self._n
            return content, [(RepairKind.TRIPLE_QUOTES, "")], False
        end = close + 3
        if text.startswith(quotes[0], end):
            raise LenientParseError(f"a {quotes}...{quotes} string followed by another quote: where does it end?", pos)
        self._pos = end
        return content, [(RepairKind.TRIPLE_QUOTES, f"{quotes}...{quotes} read as a string")], True

    def _quote_closes(self, i: int) -> bool:
        """True when a quote that doubles as an apostrophe, just before `i`, ends the string."""
        text = self._text
        i = _run_end(_SPACES, text, i)
        if i >= self._n:
            return True
        c = text[i]
        if c in ",:]})\n\r#":
            return True
        return c == "/" and text[i + 1 : i + 2] in ("/", "*")

    # -- whitespace, comments, paths

    def _skip(self, value_pos: bool) -> None:
        """Skip whitespace and comments; a `#` directly followed by text at a value position is a value."""
        text, n = self._text, self._n
        pos = self._pos
        while True:
            pos = _run_end(_WS, text, pos)
            if pos >= n:
                break
            c = text[pos]
            nxt = text[pos + 1 : pos + 2]
            if (c == "/" and nxt == "/") or (c == "#" and (not value_pos or nxt in ("", " ", "\t", "\r", "\n", "#"))):
                end = text.find("\n", pos)
                pos = n if end < 0 else end
                self._record(RepairKind.COMMENT, self._path(), f"{c}{nxt if c == '/' else ''} comment removed")
            elif c == "/" and nxt == "*":
                end = text.find("*/", pos + 2)
                pos = n if end < 0 else end + 2
                self._record(RepairKind.COMMENT, self._path(), "/* */ comment removed")
            else:
                break
        self._pos = pos

    def _path(self, part: str | int | None = None) -> str:
        """The JSON path of the innermost open value, extended by `part`."""
        stack = self._stack
        path = "$"
        if stack:
            top = stack[-1]
            if top.path is None:
                below = len(stack) - 1
                while below >= 0 and stack[below].path is None:
                    below -= 1
                pieces = ["$" if below < 0 else str(stack[below].path)]
                pieces.extend(join_path("", f.part) for f in stack[below + 1 :] if f.part is not None)
                top.path = "".join(pieces)
            path = top.path
        return path if part is None else path + join_path("", part)

    def _record(self, kind: RepairKind, path: str, detail: str) -> None:
        self._repairs.append(Repair(kind, path, detail))


def _same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same: numbers by value (`1` and `1.0`), never a boolean as a number."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _shown(value: Any) -> str:
    """A value as a short JSON text, for a repair's note."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


#: the note of a bare text holding a double quote: the quoting around it is broken (`output.quotes`)
BARE_QUOTED: Final = "bare text holding a quote read as a string"
_SPLIT_NOTE: Final = "text glued to a closing quote read as one more item; the quote may belong inside the string"


def parse_lenient(text: str, pos: int = 0, *, strict_first: bool = True) -> Parsed:
    """Read the JSON value at `pos` (after whitespace and comments), repairing what models get wrong.

    Valid JSON comes back as `json.loads` reads it (numbers as `JsonNumber`), with no repair. Otherwise
    every repair is listed with its JSON path; `complete` is False when the text ended inside the value,
    which is then closed as far as it went. Raises LenientParseError when no value can be read at `pos`,
    `OutputInvalidError` when it nests deeper than `limits.MAX_DEPTH`. `strict_first=False`: the caller
    knows the value at `pos` is not strict JSON (the C decoder is not tried on it as a whole).
    """
    start = _run_end(_WS, text, pos)
    if strict_first and _STRICT_START.match(text, start):
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            pass
        else:
            return Parsed(value, start, end, [], True)
    return _Parser(text).parse(pos)
