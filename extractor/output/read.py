"""Reading a model's answer: find the JSON value, repair it where that is lossless, align it to the schema.

Lossy repairs (a cut-off value closed, elided items dropped, a fragment of a value that cannot be
read taken, text glued to a quote split off, NaN read as null, one of two values of a key kept) are
refused unless the caller allows partial answers; then they are applied and reported. An answer
whose strings hold unescaped quotes is read with them inside the strings when that is the one
reading that fits the schema (`quotes`), with an UNESCAPED_QUOTE repair per string. `read_partial`
reads an answer still being written the same way, leaving out what may still go on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._shape import fits
from ..errors import ErrorDetail, OutputError, OutputInvalidError, OutputTruncatedError
from .align import AlignHints, align
from .limits import check_depth, check_value_depth, shorten_value
from .locate import Candidate, Located, locate, strip_reasoning
from .quotes import escape_quotes, readings
from .repairs import UNREADABLE_KINDS, Repair, RepairKind
from .syntax import BARE_QUOTED, plain

__all__ = ["Reading", "read_answer", "read_partial", "settled"]


@dataclass
class Reading:
    """The answer's JSON value in the compiled shape, the repairs it took, and whether it was complete.

    `found` is the value as found (syntax repaired, not yet aligned to the schema) and
    `found_repairs` the repairs that took; `value` and `repairs` include the schema alignment.
    """

    value: Any
    repairs: list[Repair]
    complete: bool
    found: Any
    found_repairs: list[Repair]


def _matched(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int = 0) -> int:
    """How many of the value's keys (at any depth) are properties the schema knows: a measure of fit."""
    if depth > 8:
        return 0
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = defs.get(ref.rsplit("/", 1)[-1], {})
    if "anyOf" in schema:
        return max((_matched(value, b, defs, depth + 1) for b in schema["anyOf"]), default=0)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return sum(1 + _matched(v, props[k], defs, depth + 1) for k, v in value.items() if k in props)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return sum(_matched(v, schema["items"], defs, depth + 1) for v in value[:50])
    return 0


def _combined(candidates: list[Candidate]) -> Candidate | None:
    """Several complete values in a row (NDJSON, one object per line) as one list candidate."""
    whole = [c for c in candidates if c.complete and isinstance(c.value, dict)]
    if len(whole) < 2 or len(whole) != len(candidates):
        return None
    repairs = [r for c in whole for r in c.repairs if r.kind is not RepairKind.PROSE]
    inside = any(c.inside for c in whole)
    return Candidate([c.value for c in whole], whole[0].start, whole[-1].end, repairs, True, inside)


def read_answer(
    text: str, schema: Mapping[str, Any], hints: AlignHints | None = None, *, allow_partial: bool = False
) -> Reading:
    """The answer in `text`, aligned to compiled `schema`.

    Raises `OutputTruncatedError` for an answer that is cut off or incomplete (unless
    `allow_partial`), `OutputInvalidError` when there is no JSON value in it at all, when what it
    holds cannot be read as one value (unless `allow_partial`: a fragment of it is then taken) or
    when it nests deeper than `limits.MAX_DEPTH` levels.
    """
    check_depth(text, raw=text)
    located = locate(text)
    try:
        reading = _read(text, located, schema, hints, allow_partial)
    except OutputError:
        if not _split(located):
            raise
        requoted = _requoted(text, located, schema, hints)
        if requoted is None:
            raise
        return requoted
    if _split(located) and any(r.kind in UNREADABLE_KINDS for r in reading.found_repairs):
        return _requoted(text, located, schema, hints) or reading  # a lossless reading before a lossy one
    return reading


def _split(located: Located) -> bool:
    """Whether the answer holds a value that cannot be read, or one split at a quote: a string with
    unescaped quotes, maybe (`quotes`)."""
    return bool(located.unreadable) or any(
        r.kind is RepairKind.SPLIT_VALUE for c in located.candidates for r in c.repairs
    )


def _requoted(text: str, located: Located, schema: Mapping[str, Any], hints: AlignHints | None) -> Reading | None:
    """The one reading of `text` with some of its double quotes inside strings (`quotes.readings`) that
    fits `schema` losslessly, with an UNESCAPED_QUOTE repair per string; None when there is none, when
    two fit, or when the answer split at the quote (SPLIT_VALUE, lossy) fits as well."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    starts = {u.start for u in located.unreadable}
    starts |= {c.start for c in located.candidates if any(r.kind is RepairKind.SPLIT_VALUE for r in c.repairs)}
    fitting: dict[str, Reading] = {}
    for start in sorted(s for s in starts if text[s] in "{[")[:3]:
        ways = readings(text, start)
        if ways is None:
            return None  # too many ways to read it: none is the only one
        for way in ways:
            if not way.quotes:
                continue
            try:
                found = _read(escape_quotes(text, way.quotes), None, schema, hints, False)
            except OutputError:
                continue
            if fits(found.value, schema, defs):
                quoted = [
                    Repair(RepairKind.UNESCAPED_QUOTE, path, "quotes inside the string kept") for path in way.paths
                ]
                found_repairs = [*found.found_repairs, *quoted]
                aligned = found.repairs[len(found.found_repairs) :]
                fitting[json.dumps(found.value, sort_keys=True)] = Reading(
                    found.value, [*found_repairs, *aligned], True, found.found, found_repairs
                )
    if len(fitting) != 1:
        return None
    try:
        split = _read(text, located, schema, hints, True)
    except OutputError:
        split = None
    if split is not None and split.complete and fits(split.value, schema, defs) and _clean_split(split):
        return None  # two readings fit: the quote ends the string, or it is inside it
    return next(iter(fitting.values()))


def _clean_split(reading: Reading) -> bool:
    """Whether a reading split at a quote is a reading at all: it needed nothing lossy but the split,
    and no bare text in it holds a quote (a sign of broken quoting, not of two values)."""
    lossy = {r.kind for r in reading.repairs if r.lossy}
    bare = [r for r in reading.repairs if r.kind is RepairKind.UNQUOTED_STRING and r.detail == BARE_QUOTED]
    return lossy == {RepairKind.SPLIT_VALUE} and not bare


def _read(
    text: str, located: Located | None, schema: Mapping[str, Any], hints: AlignHints | None, allow_partial: bool
) -> Reading:
    """`read_answer` with the answer located (`located`; None: locate it), without the quote readings."""
    if located is None:
        located = locate(text)
    candidates = located.candidates
    if not candidates:
        _, _, unterminated = strip_reasoning(text)
        if unterminated:
            raise OutputTruncatedError("the answer ended inside a reasoning block, before any JSON value", raw=text)
        if located.unreadable:
            details = [ErrorDetail("$", u.describe(text), kind="syntax") for u in located.unreadable[:5]]
            raise OutputInvalidError("the answer's JSON cannot be read", details, raw=text)
        detail = ErrorDetail("$", "no JSON value found in the answer", shorten_value(text), bool(text), kind="no_json")
        raise OutputInvalidError("the answer holds no JSON value", [detail], raw=text)
    for candidate in candidates:
        check_value_depth(candidate.value, text)
    defs: Mapping[str, Any] = schema.get("$defs", {})
    combined = _combined(candidates)
    options = [*candidates, combined] if combined is not None else candidates
    best: tuple[tuple[bool, bool, bool, int, int, int], Candidate, Any, list[Repair]] | None = None
    for candidate in options:
        aligned, repairs = align(candidate.value, schema, hints)
        if len(options) == 1:
            best = ((True, True, True, 0, 0, 0), candidate, aligned, repairs)
            break
        whole = candidate.complete and not any(r.lossy for r in candidate.repairs)
        score = (
            whole,
            not candidate.inside,  # a value whole in itself before a fragment of one that cannot be read
            fits(aligned, schema, defs),
            _matched(aligned, schema, defs),
            candidate.end - candidate.start,
            candidate.start,
        )
        if best is None or score > best[0]:
            best = (score, candidate, aligned, repairs)
    assert best is not None  # options is never empty here
    _, chosen, value, aligned_repairs = best
    found_repairs = list(chosen.repairs)
    if len(candidates) > 1:
        note = f"{len(candidates)} JSON values in the answer" + ("; all taken as a list" if chosen is combined else "")
        found_repairs.append(Repair(RepairKind.CHOSEN_CANDIDATE, "$", note))
    repairs = [*found_repairs, *aligned_repairs]
    lossy = [r for r in repairs if r.lossy]
    if (lossy or not chosen.complete) and not allow_partial:
        truncated = not chosen.complete or any(r.kind is RepairKind.TRUNCATED for r in lossy)
        details = [ErrorDetail(r.path, str(r), kind=r.kind.value) for r in dict.fromkeys(lossy)]
        unreadable = next((r.kind for r in lossy if r.kind in UNREADABLE_KINDS), None)
        if not truncated and unreadable is not None:
            raise OutputInvalidError(_UNREADABLE[unreadable], details, raw=text, repairs=repairs)
        message = "the answer was cut off" if truncated else "the answer is incomplete"
        raise OutputTruncatedError(message, details, raw=text, repairs=repairs)
    return Reading(plain(value), repairs, chosen.complete, plain(chosen.value), found_repairs)


#: what an answer that cannot be read as written is told, by the first such repair it needed
_UNREADABLE: Final = {
    RepairKind.FRAGMENT: "the answer's JSON cannot be read as one value",
    RepairKind.SPLIT_VALUE: "the answer's JSON cannot be read as one value",
    RepairKind.NON_FINITE: "the answer holds a number JSON cannot carry",
    RepairKind.CONFLICTING_KEY: "the answer gives a key twice, with two values",
}


_TOKEN_MARKS: Final = frozenset("_.+-$")


def _unfinished(text: str) -> int:
    """Where the number, literal or word the text ends in starts (`len(text)` when it ends in none)."""
    i = len(text)
    while i and (text[i - 1].isalnum() or text[i - 1] in _TOKEN_MARKS):
        i -= 1
    return i


def settled(text: str) -> str:
    """An answer still being written without what it ends in that may still go on: a number ("12" may
    become "1234"; also at the top level), a literal, or the last word of a cut string (so that "12"
    in a string being written is not read as a number)."""
    return text[: _unfinished(text)]


def read_partial(text: str, schema: Mapping[str, Any], hints: AlignHints | None = None) -> Reading:
    """The value so far in an answer still being written, read like `read_answer(allow_partial=True)`
    from its `settled` text (what may still go on is left out until a delimiter follows it). Raises
    like `read_answer`.
    """
    return read_answer(settled(text), schema, hints, allow_partial=True)
