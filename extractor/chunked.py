"""A long document extracted part by part, the parts' values merged into one record.

Each part is asked with the part schema (every field may be null), so that a part never has to
invent what it does not state. The values are merged (`sources.merge`: objects key by key, lists
joined without repeats, scalars from the first part stating them, disagreements kept as
conflicts), then validated against the user's full schema. A required field that no part stated is
an `OutputInvalidError` naming the field and the parts asked, not a re-ask: each part has already
said, under a schema that let it say null, that it does not hold the value; asking again would
invite the invention this design avoids. With `on_conflict="fail"`, disagreeing parts are a
`ConflictError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from .errors import ConflictError, ErrorDetail, ExtractorError, OutputError, OutputInvalidError
from .plan import Part
from .results import Attempt, ChunkInfo, ExtractResult, Usage
from .schema.part import PartSchema
from .settings import Settings
from .sources.document import Document
from .sources.merge import merge_results

__all__ = ["PART_CONCURRENCY", "extract_parts"]

#: Parts of one document asked at the same time.
PART_CONCURRENCY: Final = 4

Run = Callable[[Part], Awaitable[ExtractResult[Any]]]
Annotate = Callable[[ExtractorError, list[Attempt], Usage], ExtractorError]


def _missing(value: Any, error: ErrorDetail) -> bool:
    """Whether `error` is about a field the merged `value` does not hold (absent or null)."""
    holder = value
    for part in error.loc:
        held = (isinstance(holder, dict) and isinstance(part, str) and part in holder) or (
            isinstance(holder, list) and isinstance(part, int) and part < len(holder)
        )
        if not held:
            return True
        holder = holder[part]
    return holder is None


def _unstated(error: OutputError, value: Any, count: int) -> OutputInvalidError:
    """The merged record's validation errors, those about fields no part stated said so."""
    details = [
        ErrorDetail(e.path, f"stated in none of the {count} chunks: {e.message}", loc=e.loc, kind="unstated")
        if _missing(value, e)
        else e
        for e in error.errors
    ]
    return OutputInvalidError(f"the merged record of {count} chunks does not validate", details)


async def extract_parts(
    run: Run, schema: PartSchema[Any], document: Document, parts: list[Part], settings: Settings, annotate: Annotate
) -> ExtractResult[Any]:
    """Each of `parts` extracted by `run` (a part schema call), the values merged and validated against the
    user's schema. A part that fails fails the document (a record from some parts would be incomplete)."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(PART_CONCURRENCY)

    async def one(part: Part) -> ExtractResult[Any]:
        async with gate:
            return await run(part)

    outcomes = await asyncio.gather(*(one(p) for p in parts), return_exceptions=True)
    done = [o for o in outcomes if isinstance(o, ExtractResult)]
    attempts = [a for r in done for a in r.attempts]
    usage = sum((r.usage for r in done), Usage())
    for outcome in outcomes:
        if isinstance(outcome, ExtractorError):
            attempts += outcome.attempts or []
            usage = usage + (outcome.usage or Usage())
    for number, attempt in enumerate(attempts, 1):
        attempt.number = number
    count = len(parts)
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, ExtractorError):
            outcome.args = (f"chunk {index + 1} of {count} of {document.name}: {outcome}",)
            raise annotate(outcome, attempts, usage)
        if isinstance(outcome, BaseException):
            raise outcome
    values, notes = zip(*(schema.user_value(r.value) for r in done), strict=True)
    merged = merge_results(list(values), merge=settings.merge)
    if merged.conflicts and settings.on_conflict == "fail":
        paths = ", ".join(merged.conflicts)
        error = ConflictError(f"the {count} chunks of {document.name} disagree on {paths}", merged.conflicts)
        raise annotate(error, attempts, usage)
    try:
        value = schema.full.check(merged.value)
    except OutputError as exc:
        raise annotate(_unstated(exc, merged.value, count), attempts, usage) from None
    return ExtractResult(
        value=value,
        model=done[0].model,
        mode=done[-1].mode,
        attempts=attempts,
        repairs=[r for result in done for r in result.repairs],
        usage=usage,
        latency=time.perf_counter() - started,
        finish_reason=done[-1].finish_reason,
        generation_id=done[-1].generation_id,
        fallbacks=sorted({f for r in done for f in r.fallbacks}),
        chunks=[
            ChunkInfo(p.chunk.index, p.chunk.start, p.chunk.end, p.chunk.pages, note=note)
            for p, note in zip(parts, notes, strict=True)
        ],
        provenance=merged.provenance,
        conflicts=merged.conflicts,
    )
