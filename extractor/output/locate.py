"""Finding the JSON answer in a model's raw output: reasoning blocks, code fences, prose around it.

`find_candidates` returns every JSON value that could be the answer, in text order, each with the
repairs that locating and parsing it needed; the schema-aware layer above picks among them. `locate`
also returns the bracketed values that cannot be read. Taking a value found inside one of them, or
beside one whose brackets balance (a JSON value, not prose such as "[0, 10)"), takes only part of the
answer: such a candidate carries a FRAGMENT repair (lossy), so that choosing it never drops the rest
silently.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Final

from .limits import check_depth
from .repairs import Repair, RepairKind
from .syntax import LenientParseError, Parsed, decode_strict, parse_lenient

__all__ = ["Candidate", "Located", "Unreadable", "find_candidates", "locate", "strip_reasoning"]


@dataclass
class Candidate:
    """A JSON value found in the answer text, its span in the original text and the repairs it needed."""

    value: Any
    start: int
    end: int
    repairs: list[Repair]
    complete: bool
    inside: bool = False  # it lies inside a value that cannot be read (a FRAGMENT of it)


@dataclass(frozen=True)
class Unreadable:
    """A bracketed value in the answer that cannot be read: its span in the original text, and why."""

    start: int
    end: int
    error: str
    at: int  # where reading it failed, in the original text
    balanced: bool  # its brackets balance: a JSON value (else it runs to where reading failed)

    def describe(self, text: str) -> str:
        """What is wrong and where, with the text around the place."""
        near = text[max(self.at - 30, self.start) : self.at + 30].replace("\n", " ")
        return f"{self.error} at character {self.at}: ...{near}..."


@dataclass
class Located:
    """The candidates found in an answer, in text order, and the bracketed values that cannot be read."""

    candidates: list[Candidate]
    unreadable: list[Unreadable]


_TAGS: Final = ("think", "thinking", "reasoning")
_OPEN_TAG: Final = re.compile(r"<(think|thinking|reasoning)(?:\s[^<>]*)?>", re.IGNORECASE)
_ANY_CLOSE_TAG: Final = re.compile(r"</(?:think|thinking|reasoning)\s*>", re.IGNORECASE)
_CLOSE_TAGS: Final = {tag: re.compile(rf"</{tag}\s*>", re.IGNORECASE) for tag in _TAGS}

_FENCE_OPEN: Final = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+.\-]*)", re.MULTILINE)
# a closing fence ends its line; a fence-like run inside a JSON string is followed by more text
_FENCE_CLOSE: Final = {
    "`": re.compile(r"`{3,}(?=[ \t]*(?:\r?\n|\Z))"),
    "~": re.compile(r"~{3,}(?=[ \t]*(?:\r?\n|\Z))"),
}
_VALUE_START: Final = re.compile(r"[{\[]")
_CALL_BEFORE: Final = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\(\s*\Z")
_NON_SPACE: Final = re.compile(r"\S")
# how an object opens: a key (quoted, or bare and followed by a colon), a close, a comment, an
# ellipsis, or the end of the text; braces in prose ({name}, \frac{a}{b}, code blocks) do not
_OBJECT_OPENING: Final = re.compile(
    r"\{\s*(?:[\"'}\u201c\u201d\u2018\u2019#.\u2026]|/[/*]|[\w$@][\w$@.\-]*\s*(?::|\Z)|\Z)"
)


class _OffsetMap:
    """Maps positions in the text left by `strip_reasoning` back to the original text."""

    def __init__(self, kept: list[tuple[int, int]]) -> None:
        self._starts: list[int] = []  # start of each kept piece in the stripped text
        self._origins: list[int] = []  # and in the original text
        at = 0
        for start, end in kept:
            if end > start:
                self._starts.append(at)
                self._origins.append(start)
                at += end - start

    def start(self, pos: int) -> int:
        """The original position of the character at `pos`."""
        if not self._starts:
            return pos
        i = max(bisect_right(self._starts, pos) - 1, 0)
        return self._origins[i] + pos - self._starts[i]

    def end(self, pos: int) -> int:
        """The original position just after the character before `pos`."""
        return self.start(pos - 1) + 1 if pos > 0 else self.start(0)


def _strip(text: str) -> tuple[str, list[Repair], bool, list[tuple[int, int]]]:
    """`strip_reasoning`, plus the (start, end) pieces of the original text that were kept."""
    if "<" not in text:
        return text, [], False, [(0, len(text))]
    repairs: list[Repair] = []
    kept: list[tuple[int, int]] = []
    unterminated = False
    pos = 0
    first_open = _OPEN_TAG.search(text)
    first_close = _ANY_CLOSE_TAG.search(text)
    if first_close is not None and (first_open is None or first_close.start() < first_open.start()):
        # the opening tag was in the prompt: everything up to the lone closing tag is reasoning
        repairs.append(Repair(RepairKind.REASONING_BLOCK, "$", f"text up to a lone {first_close.group()} removed"))
        pos = first_close.end()
    while True:
        opening = _OPEN_TAG.search(text, pos)
        if opening is None:
            kept.append((pos, len(text)))
            break
        kept.append((pos, opening.start()))
        tag = opening.group(1).lower()
        closing = _CLOSE_TAGS[tag].search(text, opening.end())
        if closing is None:
            unterminated = True
            repairs.append(Repair(RepairKind.REASONING_BLOCK, "$", f"unterminated <{tag}> block removed to the end"))
            break
        repairs.append(Repair(RepairKind.REASONING_BLOCK, "$", f"<{tag}> block removed"))
        pos = closing.end()
    if not repairs:
        return text, [], False, [(0, len(text))]
    return "".join(text[a:b] for a, b in kept), repairs, unterminated, kept


def strip_reasoning(text: str) -> tuple[str, list[Repair], bool]:
    """The text without its reasoning blocks (`<think>`, `<thinking>`, `<reasoning>`, any case).

    Also returns one REASONING_BLOCK repair per block removed, and True when a block opens but never
    closes (removed to the end of the text: the answer never came). A closing tag with no opening
    tag before it (the opening one was in the prompt) removes everything up to it.
    """
    remaining, repairs, unterminated, _kept = _strip(text)
    return remaining, repairs, unterminated


@dataclass
class _Fence:
    open_start: int
    content_start: int
    content_end: int
    close_end: int
    label: str
    closed: bool


def _fences(text: str) -> list[_Fence]:
    """The markdown code fences of the text, in order; an unclosed one runs to the end."""
    if "```" not in text and "~~~" not in text:
        return []
    fences: list[_Fence] = []
    pos = 0
    while True:
        opening = _FENCE_OPEN.search(text, pos)
        if opening is None:
            return fences
        marker, info = opening.group(1), opening.group(2)
        label = f"{marker[:3]}{info} fence"
        closing = _closing_fence(text, _FENCE_CLOSE[marker[0]], opening.end())
        if closing is None:
            fences.append(_Fence(opening.start(), opening.end(), len(text), len(text), label, False))
            return fences
        fences.append(_Fence(opening.start(), opening.end(), closing.start(), closing.end(), label, True))
        pos = closing.end()


_IN_STRING: Final = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)  # the rest of a string, to its closing quote


def _closing_fence(text: str, closer: re.Pattern[str], start: int) -> re.Match[str] | None:
    """The first fence closing at the end of a line after `start` that is not inside a double-quoted
    string (a value such as "```\nprint(1)\n```" with raw newlines holds lines that look like fences);
    when every one is inside a string (one that never closes: a cut answer), the first one."""
    first: re.Match[str] | None = None
    pos, inside = start, False
    for found in closer.finditer(text, start):
        if first is None:
            first = found
            before = text[start : found.start()]
            if "\\\\" not in before and (before.count('"') - before.count('\\"')) % 2 == 0:
                return found  # an even count of quotes before it, none doubtful: outside every string
        while pos < found.start():  # the quotes up to the fence: where are we?
            if inside:
                rest = _IN_STRING.match(text, pos, found.start())
                if rest is None:
                    break
                pos, inside = rest.end(), False
            else:
                quote = text.find('"', pos, found.start())
                if quote < 0:
                    break
                pos, inside = quote + 1, True
        pos = max(pos, found.start())
        if not inside:
            return found
    return first


def _bounds(text: str, lo: int, hi: int) -> tuple[int, int]:
    """The span of `text[lo:hi]` without its leading and trailing whitespace (empty: a == b)."""
    first = _NON_SPACE.search(text, lo, hi)
    if first is None:
        return hi, hi
    last = hi
    while text[last - 1].isspace():
        last -= 1
    return first.start(), last


def _parse_at(text: str, start: int, floor: int, *, strict: bool = True) -> Parsed | LenientParseError | None:
    """The value starting at bracket `start`, taking in a wrapper call `name(` just before it; the
    error when it cannot be read, None when the bracket does not open JSON (a brace in prose).
    `strict=False`: the value at `start` is known not to be strict JSON."""
    if text[start] == "{" and _OBJECT_OPENING.match(text, start) is None:
        return None
    call = _CALL_BEFORE.search(text, max(floor, start - 80), start)
    if call is not None:
        try:
            parsed = parse_lenient(text, call.start())
        except LenientParseError:
            pass
        else:
            if parsed.end > start:
                return parsed
    try:
        return parse_lenient(text, start, strict_first=strict)
    except LenientParseError as exc:
        return exc


_BRACKETS: Final = re.compile(r'[\[\]{}"]')
_STRING_REST: Final = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
_PAIRS: Final = {"]": "[", "}": "{"}


def _extent(text: str, start: int, hi: int, failed_at: int) -> tuple[int, bool]:
    """Where the bracketed value opening at `start` ends, and whether its brackets balance: after its
    matching bracket (brackets in double-quoted strings do not count), or, when its brackets do not
    balance before `hi`, where reading it failed (prose such as "[0, 10)" is no value around what
    follows it)."""
    stack: list[str] = []
    pos = start
    unbalanced = (max(failed_at, start + 1), False)
    while True:
        found = _BRACKETS.search(text, pos, hi)
        if found is None:
            return unbalanced
        c, pos = found.group(), found.end()
        if c == '"':
            rest = _STRING_REST.match(text, pos, hi)
            if rest is None:
                return unbalanced
            pos = rest.end()
        elif c in "[{":
            stack.append(c)
        elif not stack or stack.pop() != _PAIRS[c]:
            return unbalanced
        elif not stack:
            return pos, True


_Failure = tuple[int, int, bool, int, str]  # start, end, balanced, where reading failed, why


def _scan(text: str, lo: int, hi: int, budget: int, not_strict: int = -1) -> tuple[list[Parsed], list[_Failure]]:
    """The JSON values in `text[lo:hi]`, in order, at most `budget`, and the bracketed values that cannot
    be read (not those inside another); spans and places are in `text`. The value at `not_strict` (in
    `text`) is known not to be strict JSON."""
    sub = text if lo == 0 and hi == len(text) else text[lo:hi]
    first, last = _bounds(sub, 0, len(sub))
    if first >= last:
        return [], []
    found: list[Parsed] = []
    failed: list[_Failure] = []
    if sub[first] not in "{[":
        # a scalar, a JSON string or a wrapper call making up the whole region
        try:
            whole = parse_lenient(sub, first)
        except LenientParseError:
            pass
        else:
            if whole.end >= last:
                found.append(whole)
    pos = first if not found else last  # a whole-region value leaves nothing to scan
    while pos < last and len(found) < budget:
        match = _VALUE_START.search(sub, pos, last)
        if match is None:
            break
        at = match.start()
        parsed = _parse_at(sub, at, pos, strict=at + lo != not_strict)
        if isinstance(parsed, LenientParseError):
            if not failed or at >= failed[-1][1]:  # one inside a value already failed fails with it
                failed.append((at, *_extent(sub, at, last, parsed.pos), parsed.pos, parsed.msg))
            parsed = None
        if parsed is None:
            pos = at + 1
            continue
        found.append(parsed)
        pos = parsed.end
    if lo:
        for parsed in found:
            parsed.start += lo
            parsed.end += lo
        failed = [(start + lo, end + lo, balanced, at + lo, why) for start, end, balanced, at, why in failed]
    return found, failed


def _undouble(value: str) -> Parsed | None:
    """The object or array a string holds as JSON text, if it holds one and nothing else."""
    inner = value.strip()
    if not inner or inner[0] not in "{[":
        return None
    check_depth(inner)  # the text around it was checked; the JSON inside a string was not
    try:
        parsed = parse_lenient(inner)
    except LenientParseError:
        return None
    if parsed.end < len(inner) or not isinstance(parsed.value, (dict, list)):
        return None
    if any(r.kind is RepairKind.UNQUOTED_STRING for r in parsed.repairs):
        return None  # bracketed prose such as "[citation needed]", not encoded JSON
    return parsed


def _candidate(parsed: Parsed, start: int, end: int, located: list[Repair]) -> Candidate:
    """A candidate from a parse, decoding a string that holds JSON text."""
    if isinstance(parsed.value, str):
        inner = _undouble(parsed.value)
        if inner is not None:
            repairs = [*located, Repair(RepairKind.DOUBLE_ENCODED, "$", "JSON text inside a JSON string decoded")]
            repairs += parsed.repairs + inner.repairs
            return Candidate(inner.value, start, end, repairs, parsed.complete and inner.complete)
    return Candidate(parsed.value, start, end, [*located, *parsed.repairs], parsed.complete)


def _whole_valid(text: str) -> Candidate | int:
    """The candidate when the whole text, give or take surrounding whitespace, is valid JSON; else where
    its first value starts when that is not strict JSON (-1 when it is, or when there is none)."""
    first, last = _bounds(text, 0, len(text))
    if first >= last:
        return -1
    try:
        value, end = decode_strict(text, first)
    except (ValueError, RecursionError):
        return first
    if end != last:
        return -1
    return _candidate(Parsed(value, first, end, [], True), first, end, [])


def _has_prose(text: str, covered: list[tuple[int, int]]) -> bool:
    """True when `text` has non-space characters outside the `covered` spans."""
    pos = 0
    for start, end in sorted(covered):
        if start > pos and _NON_SPACE.search(text, pos, start) is not None:
            return True
        pos = max(pos, end)
    return _NON_SPACE.search(text, pos) is not None


def _fragment(start: int, end: int, unreadable: list[Unreadable], inside: Unreadable | None) -> list[Repair]:
    """A FRAGMENT repair when the candidate at `start:end` is only part of the answer: it lies `inside` a
    value that cannot be read, or beside one whose brackets balance (left out)."""
    around = inside
    if around is not None:
        note = f"the value at characters {around.start}-{around.end} cannot be read, only part of it taken"
    else:
        around = next((u for u in unreadable if u.balanced and (u.end <= start or end <= u.start)), None)
        if around is None:
            return []
        note = f"the value at characters {around.start}-{around.end} cannot be read and was left out"
    return [Repair(RepairKind.FRAGMENT, "$", f"{around.error} at character {around.at}: {note}")]


def find_candidates(text: str, *, limit: int = 16) -> list[Candidate]:
    """The JSON values in a model's answer that could be the answer, in text order, at most `limit`.

    Reasoning blocks are removed first; when the rest has code fences, the values inside them are
    taken, otherwise the values anywhere in it. Objects and arrays are looked for; a scalar (number,
    literal, quoted string) only when it is the whole answer. A string holding JSON text is decoded
    (DOUBLE_ENCODED). Each candidate carries the REASONING_BLOCK, FENCE and PROSE repairs of locating
    it, then those of parsing it, and a FRAGMENT repair when it is only part of the answer (see
    `locate`); spans refer to `text`.
    """
    return locate(text, limit=limit).candidates


def locate(text: str, *, limit: int = 16) -> Located:
    """`find_candidates`, and the bracketed values that cannot be read (where no candidate was found)."""
    if limit <= 0:
        return Located([], [])
    whole = _whole_valid(text)
    if isinstance(whole, Candidate):
        return Located([whole], [])
    remaining, reasoning, _unterminated, kept = _strip(text)
    offsets = _OffsetMap(kept)
    fences = _fences(remaining)
    found: list[tuple[Parsed, _Fence | None]] = []
    failed: list[_Failure] = []
    for fence in fences:
        if len(found) >= limit:
            break
        values, failures = _scan(remaining, fence.content_start, fence.content_end, limit - len(found))
        found += [(parsed, fence) for parsed in values]
        failed += failures
    if not found:  # where the whole text failed strict decoding, it is not tried again
        values, failures = _scan(remaining, 0, len(remaining), limit, whole if remaining is text else -1)
        found = [(parsed, None) for parsed in values]
        failed += failures
    unreadable = [
        Unreadable(offsets.start(start), offsets.end(end), why, offsets.start(at), balanced)
        for start, end, balanced, at, why in failed
    ]
    covered = [(parsed.start, parsed.end) for parsed, _fence in found]
    for fence in fences:
        covered += [(fence.open_start, fence.content_start), (fence.content_end, fence.close_end)]
    prose = _has_prose(remaining, covered)
    candidates: list[Candidate] = []
    for parsed, source in found:
        located = list(reasoning)
        if source is not None:
            detail = source.label if source.closed else f"{source.label}, never closed"
            located.append(Repair(RepairKind.FENCE, "$", detail))
        if prose:
            located.append(Repair(RepairKind.PROSE, "$", "text around the value removed"))
        start, end = offsets.start(parsed.start), offsets.end(parsed.end)
        if not unreadable:
            candidates.append(_candidate(parsed, start, end, located))
            continue
        inside = next((u for u in unreadable if u.start < start and end <= u.end), None)
        located += _fragment(start, end, unreadable, inside)
        candidate = _candidate(parsed, start, end, located)
        candidate.inside = inside is not None
        candidates.append(candidate)
    return Located(candidates, unreadable)
