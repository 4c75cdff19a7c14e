"""Streaming: partial values while an answer streams (`stream`), and the records of a list as each one
is complete and valid (`stream_items`), both ending in exactly what `extract` would return.

The facade (`Extractor.astream`, `Extractor.astream_items`) hands its one extraction (`Extract`) to
the functions here; what they read, they read from the text the transport hears arrive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import OutputError, StreamDivergedError
from ..output.incremental import ItemScanner
from ..results import ExtractResult
from ..schema import CompiledSchema, compile_schema
from .attempts import shorten
from .settings import Settings

__all__ = ["Listener", "Partial", "stream_records", "stream_values"]

#: hears the answer's text piece by piece while it streams; the key changes when a new stream starts
Listener = Callable[[str, tuple[int, int]], None]

#: seconds between two partial values of a streamed answer
_PARTIAL_INTERVAL = 0.05


class Extract(Protocol):
    """One extraction, `listen` hearing the answer's text as it arrives (`Extractor._extract`)."""

    def __call__(
        self,
        compiled: CompiledSchema[Any],
        source: Any,
        settings: Settings,
        listen: Listener | None = None,
        *,
        keep: Callable[[], str | None] | None = None,
    ) -> Coroutine[Any, Any, ExtractResult[Any]]: ...


@dataclass(frozen=True)
class Partial:
    """A value still being written (from `stream`): plain JSON in the schema's shape, every field
    optional, not validated."""

    data: Any


async def stream_values(
    extract: Extract, compiled: CompiledSchema[Any], source: Any, settings: Settings, with_result: bool = False
) -> AsyncIterator[Any]:
    """`Partial` values while the answer streams, then the final value (`Extractor.astream`)."""
    previous: Any = None
    last = float("-inf")
    async for event in _texts(extract, compiled, source, settings):
        if isinstance(event, ExtractResult):
            yield event if with_result else event.value
            return
        now = time.monotonic()
        if now - last < _PARTIAL_INTERVAL:
            continue  # at most one partial value per interval: reading the text so far is not free
        last = now
        value = compiled.parse_partial(event)
        if value is not None and value != previous:
            previous = value
            yield Partial(value)


async def stream_records(
    extract: Extract, item_schema: Any, source: Any, settings: Settings, with_result: bool = False
) -> AsyncIterator[Any]:
    """The records of a list, each as soon as it is complete and valid, then the rest of the validated
    list (`Extractor.astream_items`: what is yielded is always a prefix of the final list)."""
    list_schema: Any = (
        {"type": "array", "items": item_schema} if isinstance(item_schema, dict | bool) else list[item_schema]
    )
    compiled = compile_schema(list_schema)
    item = compile_schema(item_schema)
    yielded: list[Any] = []
    shown: list[Any] = []  # the yielded records as JSON, to compare answers by

    def keep() -> str | None:
        if not shown:
            return None
        records = shorten(json.dumps(shown, ensure_ascii=False), 20_000)
        return (
            f"The first {len(shown)} records of the list were already accepted and used: keep them exactly as "
            f"they are, in the same order, at the start of your corrected list: {records}"
        )

    out: asyncio.Queue[Any] = asyncio.Queue()
    reader = _ItemReader(item.with_context(settings.context), compiled.with_context(settings.context), shown, out)
    task = asyncio.create_task(extract(compiled, source, settings, reader.feed, keep=keep))
    task.add_done_callback(lambda _: out.put_nowait(_END))
    try:
        while (value := await out.get()) is not _END and not _failed(task):
            yielded.append(value)
            yield value
        result = await task  # a failure (the deadline, the size limit) now, not after the records read before it
    finally:
        if not task.done():
            task.cancel()
    final = [item.dump(v) for v in result.value]
    if final[: len(shown)] != shown:
        at = next((i for i, (a, b) in enumerate(zip(shown, final, strict=False)) if a != b), len(final))
        now = f"has {shorten(json.dumps(final[at]), 200)}" if at < len(final) else f"has {len(final)} records"
        raise StreamDivergedError(
            f"the answer changed after {len(shown)} records were yielded: record {at + 1} was "
            f"{shorten(json.dumps(shown[at]), 200)}, the final list {now}",
            yielded=yielded,
            final=list(result.value),
        )
    for value in result.value[len(yielded) :]:  # what the stream did not show complete and valid
        yield value
    if with_result:
        yield result


async def _texts(
    extract: Extract, compiled: CompiledSchema[Any], source: Any, settings: Settings
) -> AsyncIterator[Any]:
    """The answer's text while it streams — the text so far — then the `ExtractResult`. Texts so far
    are given only when caught up, so that slow readers do not make the work quadratic."""
    queue: asyncio.Queue[tuple[str, tuple[int, int]] | None] = asyncio.Queue()
    task = asyncio.create_task(extract(compiled, source, settings, lambda p, k: queue.put_nowait((p, k))))
    task.add_done_callback(lambda _: queue.put_nowait(None))
    buffer: list[str] = []
    current: tuple[int, int] | None = None
    try:
        while (entry := await queue.get()) is not None and not _failed(task):
            piece, key = entry
            if key != current:
                current, buffer = key, []
            buffer.append(piece)
            if queue.empty():
                yield "".join(buffer)
        yield await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


_END = object()


def _failed(task: asyncio.Task[Any]) -> bool:
    """Whether `task` has ended with an error (what it read before is then not handed out)."""
    return task.done() and not task.cancelled() and task.exception() is not None


class _ItemReader:
    """Reads the records of a streamed list as its pieces arrive (in the extraction's task, so that a
    re-ask knows every record accepted so far): each record that is complete, valid and new is accepted
    (`shown`) and handed to `out`. A stream that starts over is read from its start, its records
    checked against those accepted; from the first that differs (or is invalid) nothing more is
    accepted from that stream.

    Records are taken only from where `parse` takes the list: before a stream's first record is
    accepted, the answer so far is read the way `parse` reads answers (`whole`, the list's schema),
    and must hold that record first. An answer `parse` would refuse (`{"tasks": [...]}` for a list)
    yields nothing before the final check."""

    def __init__(
        self, item: CompiledSchema[Any], whole: CompiledSchema[Any], shown: list[Any], out: asyncio.Queue[Any]
    ) -> None:
        self.item = item
        self.whole = whole
        self.shown = shown
        self.out = out
        self.scanner = ItemScanner()
        self.seen = 0
        self.blocked = False
        self.key: tuple[int, int] | None = None
        self.text: list[str] | None = []  # the stream's text, until its first record was found in place

    def feed(self, piece: str, key: tuple[int, int]) -> None:
        if key != self.key:  # a new stream
            self.key, self.scanner, self.seen, self.blocked, self.text = key, ItemScanner(), 0, False, []
        if self.text is not None and not self.blocked:
            self.text.append(piece)
        for text in self.scanner.feed(piece):
            self.seen += 1
            if self.blocked:
                continue
            try:
                value = self.item.parse(text)
            except OutputError:
                self.blocked = True  # an invalid record: nothing after it before the final check
                continue
            if self.text is not None:
                in_place = self._in_place(value, "".join(self.text))
                self.text = None
                if not in_place:
                    self.blocked = True  # not where parse reads the list: the final check decides
                    continue
            if self.seen <= len(self.shown):
                if self.item.dump(value) != self.shown[self.seen - 1]:
                    self.blocked = True  # this answer differs from what was accepted: the final check decides
                continue
            self.shown.append(self.item.dump(value))
            self.out.put_nowait(value)

    def _in_place(self, value: Any, so_far: str) -> bool:
        """Whether the answer so far, read the way `parse` reads answers, is a list starting with `value`."""
        records = self.whole.parse_partial(so_far)
        if not isinstance(records, list) or not records:
            return False
        try:
            first = self.item.parse(json.dumps(records[0]))
        except (OutputError, TypeError, ValueError):
            return False
        return bool(self.item.dump(first) == self.item.dump(value))
