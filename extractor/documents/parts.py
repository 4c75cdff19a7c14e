"""A long document extracted part by part, the parts' values merged into one record.

Each part is asked with the part schema (every field may be null), so that a part never has to
invent what it does not state. The values are merged (`sources.merge`: objects key by key, lists
joined in document order, scalars from the first part stating them, disagreements kept as
conflicts), then validated against the user's full schema. A required field that no part stated is
an `OutputInvalidError` naming the field and the parts asked, not a re-ask: each part has already
said, under a schema that let it say null, that it does not hold the value; asking again would
invite the invention this design avoids. With `on_conflict="fail"`, disagreeing parts are a
`ConflictError`.

Answers that cannot fit are split, never failed (`plan`): a document sent whole whose answer is cut
off at the token limit is split; for a schema with lists the first part is sent alone and the rest
planned again by what its answer showed; a part whose answer is cut off is split again, until every
answer fits. Only a piece that cannot be split (one row, one page image, a record of fixed shape)
ends as `OutputTruncatedError`, naming it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeGuard

from ..errors import ConflictError, ErrorDetail, ExtractorError, OutputError, OutputInvalidError, OutputTruncatedError
from ..results import Attempt, ChunkInfo, ExtractResult, Usage
from .chunking import Chunk
from .merge import merge_results
from .plan import Part, Plan

__all__ = ["PART_CONCURRENCY", "extract_planned"]

#: Parts of one document asked at the same time.
PART_CONCURRENCY: Final = 4

#: one part of a document extracted with the part schema (the chunk it holds given beside it)
Run = Callable[[Part], Awaitable[ExtractResult[Any]]]
#: the document extracted whole, with the user's schema
Whole = Callable[[], Awaitable[ExtractResult[Any]]]
Annotate = Callable[[ExtractorError, list[Attempt], Usage], ExtractorError]
#: told the document's pieces (in document order) each time the plan changes
Split = Callable[[list[Chunk]], Awaitable[None]]
#: how the list values of the parts combine (`CallOptions.merge`): the parts' values in, one value out
Merge = Callable[[list[Any]], Any]


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


def _cut_by_limit(error: BaseException) -> TypeGuard[OutputTruncatedError]:
    """Whether `error` is an answer cut off by the token limit (rather than one that ended early)."""
    return isinstance(error, OutputTruncatedError) and (error.limit is not None or error.at_limit)


class _Abandoned(Exception):
    """A piece not started because another piece of its document failed."""


class _Parts:
    """The pieces of one document: run (`PART_CONCURRENCY` at a time), split again when their answers are
    cut off, and what every attempt cost."""

    def __init__(self, run: Run, plan: Plan, split: Split | None) -> None:
        self.run = run
        self.plan = plan
        self.split = split
        self.order: list[Chunk] = list(plan.chunks)  # the current pieces, in document order
        self.gate = asyncio.Semaphore(PART_CONCURRENCY)
        self.attempts: list[Attempt] = []  # of every answer received: pieces done, answers cut off
        self.usage = Usage()
        self.failed = False

    def spend(self, attempts: list[Attempt] | None, usage: Usage | None) -> None:
        self.attempts += attempts or []
        self.usage = self.usage + (usage or Usage())

    async def replan(self, old: list[Chunk], new: list[Chunk]) -> None:
        """`old` (consecutive pieces) are now `new`; the hooks are told of the new plan."""
        at = self.order.index(old[0])
        self.order[at : at + len(old)] = new
        self.plan.chunks = list(self.order)
        if self.split is not None:
            await self.split(list(self.order))

    async def piece(self, chunk: Chunk) -> list[tuple[Chunk, ExtractResult[Any]]]:
        """`chunk`'s value, or its pieces' values when its answer did not fit one answer."""
        async with self.gate:
            if self.failed:  # another piece failed the document: nothing more is spent on it
                raise _Abandoned
            number, count = self.order.index(chunk) + 1, len(self.order)
            try:
                result = await self.run(self.plan.part(chunk, number, count))
            except ExtractorError as exc:
                if not (_cut_by_limit(exc) and self.plan.lists):
                    self.failed = True
                    exc.args = (f"chunk {number} of {count} of {self.plan.document.name}: {exc}",)
                    raise
                cut = exc
            else:
                self.spend(result.attempts, result.usage)
                self.plan.learn(chunk, result.attempts[-1].usage.completion_tokens if result.attempts else 0)
                return [(chunk, result)]
        self.spend(cut.attempts, cut.usage)
        try:
            pieces = self.plan.split(chunk, cut)
        except OutputTruncatedError:
            self.failed = True
            raise
        await self.replan([chunk], pieces)
        return await self.many(pieces)

    async def many(self, chunks: list[Chunk]) -> list[tuple[Chunk, ExtractResult[Any]]]:
        """The values of `chunks`, asked at the same time (within `PART_CONCURRENCY`), in document order."""
        outcomes = await asyncio.gather(*(self.piece(c) for c in chunks), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            self.failed = True
            raise next((f for f in failures if not isinstance(f, _Abandoned)), failures[0])
        return [pair for outcome in outcomes if not isinstance(outcome, BaseException) for pair in outcome]


async def extract_planned(
    whole: Whole,
    run: Run,
    plan: Plan,
    annotate: Annotate,
    *,
    merge: Merge | None = None,
    on_conflict: str = "first",
    probe: bool = True,
    split: Split | None = None,
) -> ExtractResult[Any]:
    """The document of `plan`, extracted: `whole` when the plan sends it whole (split when its answer is cut
    off by the token limit and the schema has lists), else each part by `run`, the values merged and
    validated against the user's schema. With `probe`, the first part of a list document is asked alone
    and the rest planned again by what its answer showed. A part that fails fails the document (a record
    from some parts would be incomplete); `split` hears each new plan. `merge` and `on_conflict` are the
    call's (`CallOptions`): how list values combine, and whether parts that disagree fail the document."""
    started = time.perf_counter()
    document = plan.document
    parts: _Parts | None = None
    if plan.whole:
        try:
            return await whole()
        except ExtractorError as exc:
            if not _cut_by_limit(exc):
                raise
            if not plan.lists:
                exc.args = (f"{document.name}: the record does not fit one answer and has no list to split: {exc}",)
                raise
            parts = _Parts(run, plan, split)
            parts.spend(exc.attempts, exc.usage)
            try:
                pieces = plan.split(plan.chunks[0], exc)
            except OutputTruncatedError as final:
                raise annotate(final, parts.attempts, parts.usage) from None
            await parts.replan(parts.order, pieces)
    else:
        parts = _Parts(run, plan, split)
        if split is not None:
            await split(list(plan.chunks))
    try:
        if probe and plan.lists and len(parts.order) > 1:
            first = parts.order[0]
            done = await parts.many([first])
            old_rest = parts.order[len(done) :]
            await parts.replan(old_rest, plan.rest(first.end))
            done += await parts.many(parts.order[len(done) :])
        else:
            done = await parts.many(list(parts.order))
    except ExtractorError as exc:
        parts.spend(exc.attempts, exc.usage)
        raise annotate(exc, parts.attempts, parts.usage) from None
    return _merged(done, plan, annotate, started, parts, merge=merge, on_conflict=on_conflict)


def _merged(
    done: list[tuple[Chunk, ExtractResult[Any]]],
    plan: Plan,
    annotate: Annotate,
    started: float,
    parts: _Parts,
    *,
    merge: Merge | None,
    on_conflict: str,
) -> ExtractResult[Any]:
    """The pieces' values merged in document order, validated against the user's schema."""
    document = plan.document
    done = sorted(done, key=lambda pair: pair[0].start)
    results = [result for _, result in done]
    attempts, usage = parts.attempts, parts.usage
    for number, attempt in enumerate(attempts, 1):
        attempt.number = number
    schema = plan.part_schema()
    count = len(done)
    values, notes = zip(*(schema.user_value(r.value) for r in results), strict=True)
    merged = merge_results(list(values), merge=merge)
    if merged.conflicts and on_conflict == "fail":
        paths = ", ".join(merged.conflicts)
        error = ConflictError(f"the {count} chunks of {document.name} disagree on {paths}", merged.conflicts)
        raise annotate(error, attempts, usage)
    try:
        value = schema.full.check(merged.value)
    except OutputError as exc:
        raise annotate(_unstated(exc, merged.value, count), attempts, usage) from None
    return ExtractResult(
        value=value,
        model=results[0].model,
        mode=results[-1].mode,
        attempts=attempts,
        repairs=[r for result in results for r in result.repairs],
        usage=usage,
        latency=time.perf_counter() - started,
        finish_reason=results[-1].finish_reason,
        generation_id=results[-1].generation_id,
        fallbacks=sorted({f for r in results for f in r.fallbacks}),
        chunks=[
            ChunkInfo(i, chunk.start, chunk.end, chunk.pages, note=note)
            for i, ((chunk, _), note) in enumerate(zip(done, notes, strict=True))
        ],
        provenance=merged.provenance,
        conflicts=merged.conflicts,
    )
