"""Reading a model's answer: find the JSON value, repair it where that is lossless, align it to the schema.

Lossy repairs (a cut-off value closed, elided items dropped) are refused unless the caller allows
partial answers; then they are applied and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._shape import fits
from ..errors import ErrorDetail, OutputInvalidError, OutputTruncatedError
from .align import AlignHints, align
from .limits import check_depth, shorten_value
from .locate import Candidate, find_candidates, strip_reasoning
from .repairs import Repair, RepairKind

__all__ = ["Reading", "read_answer"]


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
    return Candidate([c.value for c in whole], whole[0].start, whole[-1].end, repairs, True)


def read_answer(
    text: str, schema: Mapping[str, Any], hints: AlignHints | None = None, *, allow_partial: bool = False
) -> Reading:
    """The answer in `text`, aligned to compiled `schema`.

    Raises `OutputTruncatedError` for an answer that is cut off or incomplete (unless
    `allow_partial`), `OutputInvalidError` when there is no JSON value in it at all or when it nests
    deeper than `limits.MAX_DEPTH` levels.
    """
    check_depth(text, raw=text)
    candidates = find_candidates(text)
    if not candidates:
        _, _, unterminated = strip_reasoning(text)
        if unterminated:
            raise OutputTruncatedError("the answer ended inside a reasoning block, before any JSON value", raw=text)
        detail = ErrorDetail("$", "no JSON value found in the answer", shorten_value(text), bool(text), kind="no_json")
        raise OutputInvalidError("the answer holds no JSON value", [detail], raw=text)
    defs: Mapping[str, Any] = schema.get("$defs", {})
    combined = _combined(candidates)
    options = [*candidates, combined] if combined is not None else candidates
    best: tuple[tuple[bool, bool, int, int, int], Candidate, Any, list[Repair]] | None = None
    for candidate in options:
        aligned, repairs = align(candidate.value, schema, hints)
        if len(options) == 1:
            best = ((True, True, 0, 0, 0), candidate, aligned, repairs)
            break
        whole = candidate.complete and not any(r.lossy for r in candidate.repairs)
        score = (
            whole,
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
        message = "the answer was cut off" if truncated else "the answer is incomplete"
        details = [ErrorDetail(r.path, str(r), kind=r.kind.value) for r in lossy]
        raise OutputTruncatedError(message, details, raw=text, repairs=repairs)
    return Reading(value, repairs, chosen.complete, chosen.value, found_repairs)
