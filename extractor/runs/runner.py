"""Running an extraction over many sources: bounded, paced, within budget, streaming results out.

Sources are read lazily (a generator over millions of files works: memory stays flat); at most
`concurrency` extractions are in flight, fewer while the endpoint answers 429; results come out
as they finish (or in input order, with a bounded window, when `ordered`). Files are read into
documents in a process pool, off the event loop. One bad input becomes one failed result.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..client.cache import ResponseCache
from ..client.run_context import RunContext, use_run
from ..documents.plan import RequestEstimate
from ..errors import (
    BudgetExceededError,
    ConfigurationError,
    ExtractorError,
    RunStoppedError,
)
from ..observe.events import InputFinished, call_hooks, new_call_id, reset_input, set_input
from ..results import ExtractResult, Usage
from ..schema import compile_schema
from ..sources import DEFAULT_MAX_FILE_BYTES, Document, estimate_tokens
from .budget import Budget, Prices, input_cost
from .faults import StopRule, fault_kind, stop_message
from .limits import AdaptiveLimit, TokenBucket
from .loader import DEFAULT_LOAD_TIMEOUT, DocumentLoader

if TYPE_CHECKING:
    from ..client.extractor import Extractor, FirstAnswer

__all__ = ["BatchItem", "BatchResult", "BatchRunner"]

log = logging.getLogger("extractor")

T = TypeVar("T")


@dataclass
class BatchItem:
    """One input of a batch: a stable `id`, what to extract from, and how to name it in output.

    `source` is a text, a file path (read in the pool, with `password` and `pages`), a `Document`, an
    `Image`, a list of these, or a message list. `error`, when set, says the input is already known to
    fail (a file that cannot be listed, a JSONL line that is not JSON): it comes back failed with that
    error, and nothing is sent for it.
    """

    id: str
    source: Any
    label: str | None = None
    password: str | None = None
    pages: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: ExtractorError | None = None

    @property
    def name(self) -> str:
        return self.label or self.id


@dataclass
class BatchResult(Generic[T]):
    """The outcome for one input: `value` (None on failure) or `error` (None on success).

    `skipped` means the input was never sent: *stopped* (the run stopped before it: `error` is a
    `RunStoppedError`, see `stopped`) or *not started* (its cost would exceed the budget:
    `BudgetExceededError`). Either way it is not a failure of the input and is run again next time.
    """

    id: str
    source: str
    value: T | None
    error: ExtractorError | None = None
    result: ExtractResult[T] | None = None
    skipped: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the input has its record."""
        return self.error is None and not self.skipped

    @property
    def stopped(self) -> bool:
        """Skipped because the run stopped before the input was sent (a run-level fault, Ctrl-C)."""
        return self.skipped and isinstance(self.error, RunStoppedError)

    @property
    def usage(self) -> Usage:
        """What this input cost, failed attempts included."""
        if self.result is not None:
            return self.result.usage
        usage = getattr(self.error, "usage", None)
        return usage if isinstance(usage, Usage) else Usage()


def _as_item(raw: Any, index: int) -> BatchItem:
    if isinstance(raw, BatchItem):
        return raw
    if isinstance(raw, os.PathLike):
        return BatchItem(id=os.fspath(raw), source=raw)
    if isinstance(raw, Document):
        return BatchItem(id=raw.name, source=raw)
    if isinstance(raw, Mapping) and "text" in raw:
        ident = raw.get("id")
        return BatchItem(id=str(ident) if ident is not None else str(index), source=str(raw["text"]))
    name = getattr(raw, "name", None)
    return BatchItem(id=name if isinstance(name, str) and name else str(index), source=raw)


def as_items(sources: Iterable[Any]) -> list[BatchItem]:
    """`sources` (texts, paths, documents, `{"id", "text"}` dicts, `BatchItem`s) as items with their ids."""
    return [_as_item(raw, index) for index, raw in enumerate(sources)]


class _Hooks(RunContext):
    """The run's view of its requests: pacing before, rate-limit signals and token counts after."""

    def __init__(
        self,
        limit: AdaptiveLimit,
        requests: TokenBucket | None,
        tokens: TokenBucket | None,
        cache: ResponseCache | None,
    ) -> None:
        self.limit = limit
        self.requests = requests
        self.tokens = tokens
        self.cache = cache
        self.rate_limited = 0
        self._estimates: list[float] = []

    async def before_request(self, body: Mapping[str, Any]) -> None:
        if self.requests is not None:
            await self.requests.take()
        if self.tokens is not None:
            estimate = float(estimate_tokens(json.dumps(body.get("messages", []))[:400_000]))
            self._estimates.append(estimate)
            await self.tokens.take(estimate)

    def after_response(self, status: int | None, usage: Mapping[str, Any] | None) -> None:
        if status == 429:
            self.rate_limited += 1
            self.limit.rate_limited()
        if self.tokens is not None:
            estimate = self._estimates.pop(0) if self._estimates else 0.0
            if usage is not None:
                spent = float(usage.get("prompt_tokens") or 0) + float(usage.get("completion_tokens") or 0)
                self.tokens.adjust(spent - estimate)


_DONE = object()
#: the prompt tokens assumed for a source that is neither a text nor a document (images, a list, messages)
_OTHER_SOURCE_TOKENS = 4_000


class BatchRunner(Generic[T]):
    """Extract `schema` from many sources with one `Extractor` (see the module docstring)."""

    def __init__(
        self,
        extractor: Extractor,
        schema: Any,
        *,
        concurrency: int = 16,
        ordered: bool = False,
        window: int | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_cost: float | None = None,
        cache: ResponseCache | None = None,
        load_workers: int | None = None,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        max_file_size: int | None = DEFAULT_MAX_FILE_BYTES,
        options: Mapping[str, Any] | None = None,
        answers: Callable[[BatchItem], FirstAnswer | None] | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.extractor = extractor
        #: for each input, an answer obtained another way for its first request (a provider batch's)
        self.answers = answers
        self.schema = schema
        self.concurrency = concurrency
        self.ordered = ordered
        self.window = window or 4 * concurrency
        self.limit = AdaptiveLimit(concurrency)
        self.hooks = _Hooks(
            self.limit,
            TokenBucket(requests_per_minute) if requests_per_minute else None,
            TokenBucket(tokens_per_minute, burst=tokens_per_minute / 6) if tokens_per_minute else None,
            cache,
        )
        #: the ledger every start is reserved in: `budget` when given (shared with other work), else `max_cost`'s
        self.budget = budget if budget is not None else Budget(max_cost) if max_cost is not None else None
        self.load_workers = (os.cpu_count() or 1) if load_workers is None else load_workers
        self.load_timeout = load_timeout
        self.max_file_size = max_file_size
        self.options = dict(options or {})
        self._loader: DocumentLoader | None = None
        self._prices: Prices | None = None
        #: the prompt tokens of a request besides the source (schema, instructions), for the budget
        self._overhead = 0
        #: the longest answer seen so far, in tokens (None before any)
        self._longest_answer: int | None = None
        #: the most attempts one input may make: the first, each re-ask, one retry after a length cut
        retries = self.options.get("max_retries", extractor.max_retries)
        self._attempts = 2 + int(retries)
        #: the call id of each input's extraction (by sequence number), while hooks listen
        self._call_ids: dict[int, str] = {}

    # --- one input -------------------------------------------------------------------------

    def _documents(self) -> DocumentLoader:
        if self._loader is None:
            self._loader = DocumentLoader(self.load_workers, timeout=self.load_timeout, max_bytes=self.max_file_size)
        return self._loader

    async def load(self, item: BatchItem) -> Any:
        """The source of `item`, a file read into a `Document` (PDFs parsed in worker processes)."""
        source = item.source
        if isinstance(source, os.PathLike):
            source = await self._documents().load(os.fspath(source), password=item.password, pages=item.pages)
        return source

    async def aclose(self) -> None:
        """Stop the document workers (a run does it by itself when it ends)."""
        if self._loader is not None:
            await self._loader.aclose()
            self._loader = None

    async def _one(self, item: BatchItem, seq: int, state: _State) -> BatchResult[T]:
        token = None
        if self.extractor._observers(self.options.get("hooks")):  # its events carry the input's id
            call_id = self._call_ids[seq] = new_call_id()
            token = set_input(call_id, item.id)
        try:
            source = await self.load(item)  # overlapping network waits
            if self.budget is not None:  # reserved once read: a long document's every part is counted
                refused = await self._reserve(seq, item, source, state)
                if refused is not None:
                    return refused
            answered = self.answers(item) if self.answers is not None else None
            result = await self.extractor.aextract_result(self.schema, source, answered=answered, **self.options)
        except ExtractorError as exc:
            return BatchResult(item.id, item.name, None, error=exc, meta=item.meta)
        finally:
            if token is not None:
                reset_input(token)
        return BatchResult(item.id, item.name, result.value, result=result, meta=item.meta)

    async def _finished(self, seq: int, result: BatchResult[T]) -> None:
        """Tell the hooks of the outcome of an input (`InputFinished`), as it is handed out."""
        hooks = self.extractor._observers(self.options.get("hooks"))
        call_id = self._call_ids.pop(seq, None)
        if hooks:
            event = InputFinished(call_id=call_id or new_call_id(), input_id=result.id, result=result)
            await call_hooks(hooks, event, self.extractor.hook_timeout)

    async def _requests(self, source: Any) -> list[RequestEstimate]:
        """The requests `source` is planned to send (one per part of a long document, each split of a long
        list), with their prompts and predicted answers."""
        plan = await self.extractor.aplan(self.schema, source, **self.options)
        if plan is not None:
            return plan.requests()
        tokens = estimate_tokens(source) if isinstance(source, str) else _OTHER_SOURCE_TOKENS
        return [RequestEstimate(tokens + self._overhead, None)]

    async def _reserve(self, seq: int, item: BatchItem, source: Any, state: _State) -> BatchResult[T] | None:
        """Reserve what `item` may cost (`batch.budget`: every request of its plan, every attempt each may
        need, the longest answer seen so far); while others are in flight, wait for them to settle (their
        reservations are cautious) before deciding that the budget is reached. None when reserved, else the
        input's result: not started."""
        budget, prices = self.budget, self._prices
        if budget is None or prices is None:
            return None
        requests = await self._requests(source)

        def cost(least: bool = False) -> float:
            longest = self._longest_answer
            return input_cost(requests, prices, attempts=self._attempts, longest_answer=longest, least=least)

        while not budget.reserve(seq, cost()):
            if state.stop is not None:
                return self._stopped(item, state.stop)
            if state.over_budget:
                return self._over_budget(item)
            if not budget.in_flight:  # alone, an input may start if its every request fits once, shortly answered
                if budget.reserve(seq, cost(least=True)):
                    return None
                state.over_budget = True
                log.warning(
                    "budget of $%.4f reached (spent $%.4f, ~$%.4f in flight): starting nothing more",
                    budget.max_cost, budget.spent, budget.in_flight,
                )  # fmt: skip
                return self._over_budget(item)
            state.settled.clear()
            await state.settled.wait()
        return None

    def _settled(self, key: int, result: BatchResult[T]) -> None:
        usage = result.usage
        if self.budget is not None:
            reserved = self.budget.reserved(key)
            cost = usage.cost if usage.cost_known else max(usage.cost, reserved)
            self.budget.settle(key, cost, usage.list_cost if usage.cost_known else 0.0)
        attempts = (
            result.result.attempts if result.result is not None else (getattr(result.error, "attempts", None) or [])
        )
        for attempt in attempts:
            if attempt.usage.completion_tokens:
                seen = self._longest_answer or 0
                self._longest_answer = max(seen, attempt.usage.completion_tokens)

    # --- the run ---------------------------------------------------------------------------

    async def _price_the_budget(self) -> None:
        """The prices a budget is kept with: those of the model the calls use, known before any request."""
        model = self.options.get("model") or self.extractor.model
        info = await self.extractor.model_info(model)
        if info.prompt_price is None or info.completion_price is None:
            raise ConfigurationError(
                f"max_cost cannot be kept: the prices of {model} are not known (the endpoint's model list does "
                "not give them); run without max_cost, or on an endpoint that lists prices"
            )
        self._prices = Prices(info.prompt_price, info.completion_price)
        schema = compile_schema(self.schema)
        instructions = self.options.get("instructions") or ""
        self._overhead = estimate_tokens(json.dumps(schema.json_schema) + str(instructions)) + 100

    @property
    def in_flight(self) -> int:
        """Inputs being extracted right now."""
        return self.limit.in_flight

    async def run(self, sources: Iterable[Any] | AsyncIterable[Any]) -> AsyncGenerator[BatchResult[T], None]:
        """The results, as they finish (or in input order when `ordered`).

        A fault that no input can get past (`run_fault`) stops the run: inputs in flight come back
        not started, no more are read, and `RunStoppedError` is raised after the last result.
        """
        if self.budget is not None:
            await self._price_the_budget()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(2 * self.concurrency, 8))
        state = _State()
        context = contextvars.copy_context()
        context.run(_set_hooks, self.hooks)
        producer = context.run(asyncio.create_task, self._produce(sources, queue, state))
        waiting: dict[int, BatchResult[T]] = {}
        try:
            while True:
                entry = await queue.get()
                if entry is _DONE:
                    break
                seq, result = entry
                if not self.ordered:
                    await self._finished(seq, result)
                    yield result
                    continue
                waiting[seq] = result
                while state.emitted in waiting:
                    at = state.emitted
                    out = waiting.pop(at)
                    state.emitted += 1
                    state.moved.set()
                    await self._finished(at, out)
                    yield out
            failure = producer.exception() if producer.done() and not producer.cancelled() else None
            if failure is not None:
                raise failure
            if state.stop is not None:
                raise state.stop
        finally:
            producer.cancel()
            for task in list(state.tasks):
                task.cancel()
            await asyncio.gather(producer, *state.tasks, return_exceptions=True)
            await self.aclose()

    async def _produce(
        self, sources: Iterable[Any] | AsyncIterable[Any], queue: asyncio.Queue[Any], state: _State
    ) -> None:
        seq = 0
        try:
            async for raw in _iterate(sources):
                if state.stop is not None:
                    break
                item = _as_item(raw, seq)
                if self.ordered:
                    while seq >= state.emitted + self.window:
                        state.moved.clear()
                        await state.moved.wait()
                if item.error is not None:  # known to fail: nothing to send
                    await queue.put((seq, BatchResult(item.id, item.name, None, error=item.error, meta=item.meta)))
                    seq += 1
                    continue
                if state.over_budget:
                    await queue.put((seq, self._over_budget(item)))
                    seq += 1
                    continue
                await self.limit.acquire()
                if state.stop is not None:
                    self.limit.release(succeeded=False)
                    break
                task = asyncio.create_task(self._finish(seq, item, queue, state))
                state.tasks.add(task)
                task.add_done_callback(state.tasks.discard)
                seq += 1
            while state.tasks:
                await asyncio.gather(*list(state.tasks), return_exceptions=True)
            for held_seq, held in state.held:  # faults never followed by a stop: the inputs' own failures
                await queue.put((held_seq, held))
            state.held.clear()
        except asyncio.CancelledError:
            state.cancelled = True  # the consumer went away: nobody waits for the end mark
            raise
        finally:
            if not state.cancelled:
                await queue.put(_DONE)

    async def _finish(self, seq: int, item: BatchItem, queue: asyncio.Queue[Any], state: _State) -> None:
        result: BatchResult[T] | None = None
        task = asyncio.current_task()
        try:
            if task is not None:
                state.working.add(task)
            try:
                result = await self._one(item, seq, state)
            except asyncio.CancelledError as exc:
                if state.stop is None or exc.args != (_STOP,):
                    raise
                result = self._stopped(item, state.stop)
            except Exception as exc:  # a bug must not stop the batch: it fails this one input
                log.exception("%s: unexpected error", item.name)
                error = ExtractorError(f"unexpected {type(exc).__name__}: {exc}")
                result = BatchResult(item.id, item.name, None, error=error, meta=item.meta)
            finally:
                if task is not None:
                    state.working.discard(task)
            self._settled(seq, result)
            state.settled.set()
            fault = result.error
            kind = fault_kind(fault) if fault is not None and not result.skipped else None
            if fault is not None and kind is not None:
                if state.faults.fault(kind) and state.stop is None:
                    await self._stop(state, fault, queue)
                if state.stop is not None:
                    result = self._stopped(item, state.stop)
                else:
                    state.held.append((seq, result))  # an input's failure, or the start of a run-level fault
                    return
            elif result.ok:
                state.faults.success()
                held, state.held = state.held, []
                for held_seq, failed in held:
                    await queue.put((held_seq, failed))
            await queue.put((seq, result))  # the place is held until the result is handed on: backpressure
        finally:
            self.limit.release(succeeded=result is not None and result.ok)

    async def _stop(self, state: _State, error: ExtractorError, queue: asyncio.Queue[Any]) -> None:
        """Stop the run on a run-level fault: no new input starts, those in flight are called off."""
        state.stop = RunStoppedError(stop_message(error, self.extractor.base_url), cause=error)
        state.settled.set()
        log.info("stopping: %s", state.stop)
        current = asyncio.current_task()
        for task in list(state.working):
            if task is not current:
                task.cancel(_STOP)
        held, state.held = state.held, []
        for held_seq, failed in held:
            await queue.put((held_seq, self._stopped(_item_of(failed), state.stop)))

    def _stopped(self, item: BatchItem, stop: RunStoppedError) -> BatchResult[T]:
        """`item` skipped because the run stopped before it (ARCHITECTURE.md, "Words")."""
        return BatchResult(item.id, item.name, None, error=stop, skipped=True, meta=item.meta)

    def _over_budget(self, item: BatchItem) -> BatchResult[T]:
        """`item` skipped, not started: the budget would be exceeded (left for the next run)."""
        spent, limit = (self.budget.spent, self.budget.max_cost) if self.budget else (0.0, 0.0)
        error = BudgetExceededError(f"not started: max_cost ${limit:g} would be exceeded (spent ${spent:.4f})")
        return BatchResult(item.id, item.name, None, error=error, skipped=True, meta=item.meta)


_STOP = "extractor: the run stopped"


def _item_of(result: BatchResult[Any]) -> BatchItem:
    return BatchItem(id=result.id, source=result.source, label=result.source, meta=result.meta)


@dataclass
class _State:
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    working: set[asyncio.Task[Any]] = field(default_factory=set)
    emitted: int = 0
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    over_budget: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    faults: StopRule = field(default_factory=StopRule)
    held: list[tuple[int, BatchResult[Any]]] = field(default_factory=list)
    stop: RunStoppedError | None = None


def _set_hooks(hooks: RunContext) -> None:
    use_run(hooks)


async def _iterate(sources: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    """Items of a sync or async iterable, lazily."""
    if isinstance(sources, AsyncIterable):
        async for item in sources:
            yield item
    else:
        for item in sources:
            yield item
