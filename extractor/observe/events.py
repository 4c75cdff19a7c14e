"""Hooks: what happens during an extraction, as typed events, for your own tools.

A hook is any callable taking one `Event`; it may be sync or async. Register hooks on an `Extractor`
(`hooks=[...]`, `add_hook`), for one call (`hooks=[...]` as a call option, also for `extract_many`), or
for every extractor in the process (`add_global_hook`). The hooks of an event are called one after
the other, and the extraction goes on once they have returned, or once each has had its time.

Hooks may fail, block or be slow; none of that costs an input or hangs a run:

- each call of a hook has `hook_timeout` seconds (`Extractor(hook_timeout=...)`, default
  `DEFAULT_HOOK_TIMEOUT`, 5 s); past it the extraction goes on without waiting (an async hook is
  cancelled; a sync one finishes in its thread, its outcome ignored);
- whatever a hook raises — an `Exception`, `asyncio.CancelledError`, `KeyboardInterrupt`, `SystemExit` —
  is the hook's failure, not the extraction's; it is logged (logger "extractor", warning, once per hook
  and kind of failure) and the other hooks still run;
- sync hooks run in a pool of daemon threads (`HOOK_THREADS`, made when needed), never on the event
  loop, so that a slow one does not hold up the other extractions; they see the extraction's context
  variables (a copy). Async hooks run on the event loop, each call in a task of its own.

A sync hook with a true `inline` attribute runs in the extraction's task instead, on the event loop,
without a time limit: for quick hooks that must change the extraction's context (the OpenTelemetry
hook makes the extraction's span current).

The events of one extraction, in order (`call_id` ties them together; in a batch `input_id` is the
input's id, and `InputFinished` closes each input, also one that failed before its extraction or was
skipped):

    ExtractionStarted
      [DocumentSplit]                   a long document sent in chunks (then `chunk` is set below)
      per attempt:
        RequestSent, ResponseReceived   each HTTP request and its answer (or failure)
        [Retried, RequestSent, ...]     a transient failure tried again after `wait` seconds
        [ModeFallback]                  the endpoint rejected the mode: the same attempt in another
        AttemptFinished                 an answer was had and read: its problem, repairs, usage
        [Reasked]                       the answer was invalid (or cut off): the next attempt follows
    ExtractionFinished | ExtractionFailed

An attempt answered from the response cache (`cached`) or by a provider batch (`provided`) has no
`RequestSent` / `ResponseReceived`.

Events carry sizes and shapes, never the API key, and none of the prompt or answer unless a
registered hook asks for it with a true `capture_content` attribute; then `RequestSent.body`,
`AttemptFinished.answer`, `ExtractionFinished.output` and the values in `Reasked.errors` are filled.
Whatever an event holds of the conversation (those, and the problems and error messages, which may
quote values) has been through one redaction (`Watch.redacted`: every run of 8 characters of the key).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pydantic_core

from .._secret import redact
from ..errors import ErrorDetail, OutputError
from ..output.repairs import Repair
from ..results import ExtractResult, Usage

if TYPE_CHECKING:
    from ..client.transport import ChatResponse
    from ..runs.runner import BatchResult

__all__ = [
    "DEFAULT_HOOK_TIMEOUT",
    "HOOK_THREADS",
    "AttemptFinished",
    "DocumentSplit",
    "Event",
    "ExtractionFailed",
    "ExtractionFinished",
    "ExtractionStarted",
    "Hook",
    "InputFinished",
    "ModeFallback",
    "Reasked",
    "RequestSent",
    "ResponseReceived",
    "Retried",
    "add_global_hook",
    "global_hooks",
    "remove_global_hook",
]

log = logging.getLogger("extractor")

#: the seconds one call of a hook may take by default (`Extractor(hook_timeout=...)`)
DEFAULT_HOOK_TIMEOUT = 5.0
#: the most threads sync hooks run in. At most one hook call per extraction is in flight, so this bounds
#: how many slow sync hooks run at once; 32 (as `concurrent.futures` allows for I/O-bound work) lets a
#: run of up to 32 extractions at once never wait for a thread, and bounds the threads that hooks which
#: never return can hold (each holds one for good). CPU-bound hooks would gain nothing from more (the GIL).
HOOK_THREADS = 32

#: the parameters of a request given in `RequestSent.params` (never content)
_PARAMS = ("max_tokens", "temperature", "top_p", "seed", "frequency_penalty", "presence_penalty")


# --- the events ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event says: which extraction (`call_id`, the same for all its events), which input of
    a batch (`input_id`, None outside `extract_many` and provider batches) and when (`at`, epoch seconds)."""

    call_id: str
    input_id: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class ExtractionStarted(Event):
    """An extraction begins: the schema's name, the model, the mode asked for ("auto" or a mode's name),
    the endpoint's host, and whether its answers stream."""

    schema: str
    model: str
    mode: str
    host: str
    stream: bool = False


@dataclass(frozen=True, kw_only=True)
class DocumentSplit(Event):
    """A document too long for one request is sent in `chunks` (character spans `(start, end)` of its
    text, in order); the events of each chunk's requests carry its index as `chunk`."""

    document: str
    characters: int
    chunks: tuple[tuple[int, int], ...]


@dataclass(frozen=True, kw_only=True)
class RequestSent(Event):
    """A chat-completions request goes out: attempt `attempt` (1 first, counted per chunk), `retry` 0
    the first time and 1, 2, ... when a transient failure is tried again. `body_size` in bytes of JSON,
    `messages` how many; `params` the sampling parameters sent (max_tokens, temperature, ...); `body`
    the request itself (the API key redacted) only when a hook captures content."""

    attempt: int
    chunk: int | None = None
    retry: int = 0
    model: str
    mode: str
    stream: bool = False
    body_size: int
    messages: int
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ResponseReceived(Event):
    """The answer to the last `RequestSent`: its HTTP `status` (None: the connection failed or timed out
    with no answer), seconds it took (`latency`, a stream's whole length), and for a 200 what the endpoint
    said: `usage` (tokens; the cost only when the endpoint gives it), `finish_reason`, `response_id`,
    `response_model`. `error`: why it failed (an error status, a 200 carrying an error), else None."""

    attempt: int
    chunk: int | None = None
    retry: int = 0
    status: int | None
    latency: float
    usage: Usage | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Retried(Event):
    """A transient failure (`reason`, with its HTTP `status` when there was one) is tried again in `wait`
    seconds: `retry` is the number the next `RequestSent` will carry."""

    attempt: int
    chunk: int | None = None
    retry: int
    reason: str
    status: int | None = None
    wait: float


@dataclass(frozen=True, kw_only=True)
class ModeFallback(Event):
    """The endpoint rejected the mode (`rejected`, with its `reason`): attempt `attempt` is made again in
    `mode` (auto mode only, once per extraction)."""

    attempt: int
    chunk: int | None = None
    rejected: str
    mode: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AttemptFinished(Event):
    """An answer was had and read: `problem` why it gave no value (None for the one that did; "cut off at
    max_tokens", "refused", or what was invalid), the `repairs` made to read it, what it cost (`usage`, with
    the cost from the model's prices), whether it came from the response cache (`cached`) or a provider
    batch (`provided`); `answer` its text (the API key redacted) only when a hook captures content."""

    attempt: int
    chunk: int | None = None
    mode: str
    problem: str | None = None
    repairs: tuple[Repair, ...] = ()
    cached: bool = False
    provided: bool = False
    usage: Usage
    latency: float
    finish_reason: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    answer: str | None = None


@dataclass(frozen=True, kw_only=True)
class Reasked(Event):
    """Attempt `attempt`'s answer is asked again: `reason` "invalid" (it did not validate: `errors`, each
    with its path; the offending values only when a hook captures content) or "cut_off" (it ran out of
    tokens: tried once more with `max_tokens` twice as large)."""

    attempt: int
    chunk: int | None = None
    reason: Literal["invalid", "cut_off"]
    problem: str
    errors: tuple[ErrorDetail, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExtractionFinished(Event):
    """The extraction succeeded: the `ExtractResult` the caller gets; `output` the extracted value as JSON
    (the API key redacted) only when a hook captures content."""

    result: ExtractResult[Any]
    output: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExtractionFailed(Event):
    """The extraction failed with `error` (the exception the caller gets: an `ExtractorError` carrying
    `attempts` and `usage`, or `CancelledError` when it was called off)."""

    error: BaseException


@dataclass(frozen=True, kw_only=True)
class InputFinished(Event):
    """One input of a batch (`extract_many`, a provider batch's results) has its outcome: `result`, the
    `BatchResult` handed out (ok, failed or skipped). `call_id` is its extraction's (a new one when none
    started: a file that could not be read, an input skipped for the budget)."""

    result: BatchResult[Any]


Hook = Callable[[Event], Awaitable[None] | None]
"""A hook: called with each event; may return an awaitable (an async hook), which is awaited."""


# --- registration ----------------------------------------------------------------------------

_GLOBAL: tuple[Hook, ...] = ()


def add_global_hook(hook: Hook) -> None:
    """Call `hook` with the events of every extractor in this process (after each extractor's own hooks)."""
    global _GLOBAL
    _GLOBAL = (*_GLOBAL, hook)


def remove_global_hook(hook: Hook) -> None:
    """Stop calling `hook` for every extractor (nothing happens when it was not added)."""
    global _GLOBAL
    _GLOBAL = tuple(h for h in _GLOBAL if h is not hook)


def global_hooks() -> tuple[Hook, ...]:
    """The hooks called for every extractor."""
    return _GLOBAL


# --- emitting (internal) -----------------------------------------------------------------------

#: the identity a batch gives the extraction of one input: (call_id, input_id); read once by that extraction
_INPUT: ContextVar[tuple[str, str] | None] = ContextVar("extractor_input", default=None)


def new_call_id() -> str:
    """A new extraction's id: 16 random hex digits."""
    return os.urandom(8).hex()


def set_input(call_id: str, input_id: str) -> Any:
    """Give the next extraction in this task its batch identity; returns a token for `reset_input`."""
    return _INPUT.set((call_id, input_id))


def reset_input(token: Any) -> None:
    _INPUT.reset(token)


def take_input() -> tuple[str, str] | None:
    """The batch identity set for this task's extraction, if any (then cleared for this task)."""
    identity = _INPUT.get()
    if identity is not None:
        _INPUT.set(None)
    return identity


#: hook failures already logged: (hook, kind of failure); hooks that cannot be weakly referenced by id
_reported: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_reported_ids: set[tuple[int, str]] = set()


def _report(hook: Hook, event: Event, kind: str, what: str, detail: str, exc: BaseException | None = None) -> None:
    """Log that `hook` failed on `event` (`what` happened, and its `detail`), once per hook and `kind`."""
    try:
        seen = _reported.setdefault(hook, set())
    except TypeError:  # not weakly referenceable, or not hashable
        if (id(hook), kind) in _reported_ids:
            return
        _reported_ids.add((id(hook), kind))
    else:
        if kind in seen:
            return
        seen.add(kind)
    name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
    log.warning(
        "hook %s %s on %s (%s); the extraction goes on (logged once per hook and error type)",
        name, what, type(event).__name__, detail, exc_info=exc,
    )  # fmt: skip


def _failed(hook: Hook, event: Event, exc: BaseException) -> None:
    _report(hook, event, type(exc).__qualname__, "failed", f"{type(exc).__name__}: {exc}", exc)


class _Raised:
    """What a sync hook raised in its thread, handed back as a value (never re-raised)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _run_sync(hook: Hook, event: Event, context: contextvars.Context) -> Any:
    """`hook(event)` in `context`; what it raises, whatever it is, comes back as `_Raised`."""
    try:
        return context.run(hook, event)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the hook's failure, not this thread's
        return _Raised(exc)


async def _guarded(awaitable: Awaitable[Any]) -> BaseException | None:
    """Await an async hook's awaitable; what it raises, whatever it is, is returned."""
    try:
        await awaitable
    except BaseException as exc:  # its CancelledError too (also the one its timeout causes)
        return exc
    return None


class _Overdue:
    """The calls of each hook (by its id) that ran past their time and have not ended yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}

    def add(self, hook: Hook) -> None:
        with self._lock:
            self._counts[id(hook)] = self._counts.get(id(hook), 0) + 1

    def remove(self, hook: Hook) -> None:
        with self._lock:
            left = self._counts.pop(id(hook), 1) - 1
            if left:
                self._counts[id(hook)] = left

    def __contains__(self, hook: Hook) -> bool:
        return id(hook) in self._counts


_OVERDUE = _Overdue()


class _Job:
    """A sync hook call for a thread: `state` "queued", "running", "late" (running past its time),
    "done", or "dropped" (its time ran out before a thread took it: it is not run)."""

    __slots__ = ("hook", "run", "state")

    def __init__(self, hook: Hook, run: Callable[[], None]) -> None:
        self.hook = hook
        self.run = run
        self.state = "queued"


class _HookThreads:
    """Daemon threads for sync hooks: a call takes a thread waiting for work, else starts one, up to
    `size` (then it waits for one to be free). Daemon threads, so that a hook that never returns does
    not keep the process from exiting (a `ThreadPoolExecutor` joins its threads at exit)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for a job that no call has taken yet

    def submit(self, hook: Hook, run: Callable[[], None]) -> _Job:
        """Run `run` (a call of `hook` that raises nothing) in a hook thread, unless it expires first."""
        job = _Job(hook, run)
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread is this job's
            elif self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name=f"extractor-hook-{self._threads}", daemon=True).start()
        self._jobs.put(job)
        return job

    def expire(self, job: _Job) -> None:
        """`job`'s time ran out: it is not run if it has not started, else its hook is overdue until it ends."""
        with self._lock:
            if job.state == "queued":
                job.state = "dropped"
            elif job.state == "running":
                job.state = "late"
                _OVERDUE.add(job.hook)

    def _work(self) -> None:
        while True:  # started for a job: it takes one before it counts as idle
            job = self._jobs.get()
            with self._lock:
                run = job.state != "dropped"
                if run:
                    job.state = "running"
            if run:
                job.run()
            with self._lock:
                if job.state == "late":
                    _OVERDUE.remove(job.hook)
                job.state = "done" if run else job.state
                self._idle += 1


_THREADS = _HookThreads(HOOK_THREADS)
#: async hook calls that ran out of time (or whose extraction was cancelled), until they have ended
_late: set[asyncio.Task[Any]] = set()


def _in_thread(hook: Hook, event: Event, loop: asyncio.AbstractEventLoop) -> tuple[_Job, asyncio.Future[Any]]:
    """`hook(event)` submitted to a hook thread, in a copy of this context; the future gets its outcome."""
    outcome: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def run() -> None:
        result = _run_sync(hook, event, context)
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile: nobody waits for it
            loop.call_soon_threadsafe(_settle, outcome, result)

    return _THREADS.submit(hook, run), outcome


def _settle(outcome: asyncio.Future[Any], result: Any) -> None:
    if not outcome.done():
        outcome.set_result(result)


def _async(hook: Hook) -> bool:
    """Whether calling `hook` only makes a coroutine (an `async def` function or `__call__`)."""
    call = type(hook).__call__ if not inspect.isroutine(hook) else None
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call)


async def _call(hook: Hook, event: Event, timeout: float) -> None:
    """One hook with one event, within `timeout` seconds; nothing it does is raised here (only the
    cancellation of the calling task goes on). A hook with a call still running past its time is
    not called again until that call has ended."""
    if hook in _OVERDUE:
        _report(hook, event, "overdue", "skipped", "a call of it that took too long has not returned yet")
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if _async(hook) or getattr(hook, "inline", False) is True:
        try:
            outcome = hook(event)
        except BaseException as exc:  # raised by the hook itself: no await of ours was running
            _failed(hook, event, exc)
            return
    else:
        job, waiting = _in_thread(hook, event, loop)
        try:
            await asyncio.wait([waiting], timeout=timeout)
        finally:
            if not waiting.done():  # its time ran out, or this extraction is being cancelled
                _THREADS.expire(job)
        if not waiting.done():
            _late_hook(hook, event, timeout)
            return
        outcome = waiting.result()
        if isinstance(outcome, _Raised):
            _failed(hook, event, outcome.error)
            return
    if inspect.isawaitable(outcome):
        await _await_hook(hook, event, outcome, timeout, deadline - loop.time())


async def _await_hook(hook: Hook, event: Event, awaitable: Awaitable[Any], timeout: float, left: float) -> None:
    """What an async hook returned, awaited in a task of its own for at most `left` seconds."""
    task: asyncio.Task[BaseException | None] = asyncio.ensure_future(_guarded(awaitable))
    try:
        await asyncio.wait([task], timeout=max(0.0, left))
    finally:
        if not task.done():  # its time ran out, or this extraction is being cancelled
            task.cancel()
            _late.add(task)
            task.add_done_callback(_late.discard)
    if not task.done():  # cancelled, it has not ended yet: overdue until it does
        _OVERDUE.add(hook)
        task.add_done_callback(lambda _: _OVERDUE.remove(hook))
        _late_hook(hook, event, timeout)
    elif not task.cancelled() and (error := task.result()) is not None:
        _failed(hook, event, error)


def _late_hook(hook: Hook, event: Event, timeout: float) -> None:
    _report(hook, event, "timeout", "took too long", f"more than hook_timeout, {timeout:g} s: not waited for")


async def call_hooks(hooks: Iterable[Hook], event: Event, timeout: float = DEFAULT_HOOK_TIMEOUT) -> None:
    """Each hook with `event`, in order, each within `timeout` seconds; whatever a hook does is logged,
    never raised (see the module's docstring)."""
    for hook in hooks:
        await _call(hook, event, timeout)


def wants_content(hooks: Iterable[Hook]) -> bool:
    return any(getattr(h, "capture_content", False) is True for h in hooks)


def _redacted(value: Any, secret: str | None) -> Any:
    """`value` (JSON-like) with the API key redacted from every string."""
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, Mapping):
        return {k: _redacted(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secret) for v in value]
    return value


class Watch:
    """One extraction's view for its hooks: who it is, where it is (`chunk`), and how to emit."""

    __slots__ = ("call_id", "chunk", "content", "hooks", "input_id", "secret", "timeout")

    def __init__(
        self,
        hooks: tuple[Hook, ...],
        call_id: str,
        input_id: str | None,
        secret: str | None,
        chunk: int | None = None,
        *,
        timeout: float = DEFAULT_HOOK_TIMEOUT,
    ) -> None:
        self.hooks = hooks
        self.call_id = call_id
        self.input_id = input_id
        self.secret = secret
        self.chunk = chunk
        #: seconds each hook has for each event
        self.timeout = timeout
        #: whether a hook asked for prompts and answers
        self.content = wants_content(hooks)

    def at_chunk(self, index: int) -> Watch:
        return Watch(self.hooks, self.call_id, self.input_id, self.secret, chunk=index, timeout=self.timeout)

    async def emit(self, event: Event) -> None:
        await call_hooks(self.hooks, event, self.timeout)

    def redacted(self, value: Any) -> Any:
        return _redacted(value, self.secret)

    def request(self, attempt: int, mode: str) -> RequestWatch:
        return RequestWatch(self, attempt, mode)

    async def attempt_finished(
        self,
        *,
        attempt: int,
        mode: str,
        problem: str | None,
        repairs: Iterable[Repair],
        cached: bool,
        provided: bool,
        usage: Usage,
        response: ChatResponse,
        finish_reason: str | None,
        answer: str | None,
    ) -> None:
        data = response.data
        model = data.get("model")
        await self.emit(
            AttemptFinished(
                call_id=self.call_id,
                input_id=self.input_id,
                attempt=attempt,
                chunk=self.chunk,
                mode=mode,
                problem=self.redacted(problem) if problem is not None else None,
                repairs=tuple(repairs),
                cached=cached,
                provided=provided,
                usage=usage,
                latency=response.elapsed,
                finish_reason=finish_reason,
                response_id=_str(data.get("id")),
                response_model=model if isinstance(model, str) else None,
                answer=self.redacted(answer) if self.content and answer is not None else None,
            )
        )

    async def reasked(self, attempt: int, reason: Literal["invalid", "cut_off"], problem: str, error: Any) -> None:
        errors: tuple[ErrorDetail, ...] = ()
        if isinstance(error, OutputError):
            details = error.errors or [ErrorDetail("$", error.message)]
            errors = tuple(self._detail(d) for d in details)
        await self.emit(
            Reasked(
                call_id=self.call_id,
                input_id=self.input_id,
                attempt=attempt,
                chunk=self.chunk,
                reason=reason,
                problem=self.redacted(problem),
                errors=errors,
            )
        )

    def _detail(self, detail: ErrorDetail) -> ErrorDetail:
        """`detail` as a hook gets it: redacted, and without the offending value unless content is captured."""
        message = self.redacted(detail.message)
        if not self.content:
            return ErrorDetail(detail.path, message, loc=detail.loc, kind=detail.kind)
        value = self.redacted(detail.value)
        return ErrorDetail(detail.path, message, value, detail.has_value, loc=detail.loc, kind=detail.kind)

    async def finished(self, result: ExtractResult[Any]) -> None:
        """Tell the hooks the extraction succeeded (with its value as JSON when content is captured)."""
        output = None
        if self.content:
            output = self.redacted(pydantic_core.to_json(result.value, fallback=str).decode())
        await self.emit(ExtractionFinished(call_id=self.call_id, input_id=self.input_id, result=result, output=output))


class RequestWatch:
    """What the transport tells the hooks about the requests of one attempt (the first and its retries)."""

    __slots__ = ("attempt", "mode", "tries", "watch")

    def __init__(self, watch: Watch, attempt: int, mode: str) -> None:
        self.watch = watch
        self.attempt = attempt
        self.mode = mode
        self.tries = 0

    async def sent(self, body: Mapping[str, Any], size: int, *, stream: bool = False) -> None:
        watch = self.watch
        self.tries += 1
        messages = body.get("messages")
        await watch.emit(
            RequestSent(
                call_id=watch.call_id,
                input_id=watch.input_id,
                attempt=self.attempt,
                chunk=watch.chunk,
                retry=self.tries - 1,
                model=str(body.get("model")),
                mode=self.mode,
                stream=stream,
                body_size=size,
                messages=len(messages) if isinstance(messages, list) else 0,
                params={k: body[k] for k in _PARAMS if body.get(k) is not None},
                body=watch.redacted(body) if watch.content else None,
            )
        )

    async def received(
        self, status: int | None, latency: float, data: Any = None, error: BaseException | None = None
    ) -> None:
        watch = self.watch
        usage = finish = response_id = model = None
        if isinstance(data, Mapping):
            raw = data.get("usage")
            usage = Usage.from_response(raw, None, None) if isinstance(raw, Mapping) else None
            choices = data.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
                finish = _str(choices[0].get("finish_reason"))
            response_id, model = _str(data.get("id")), _str(data.get("model"))
        await watch.emit(
            ResponseReceived(
                call_id=watch.call_id,
                input_id=watch.input_id,
                attempt=self.attempt,
                chunk=watch.chunk,
                retry=self.tries - 1,
                status=status,
                latency=latency,
                usage=usage,
                finish_reason=finish,
                response_id=response_id,
                response_model=model,
                error=None if error is None else str(error),
            )
        )

    async def retrying(self, error: BaseException | None, wait: float) -> None:
        watch = self.watch
        await watch.emit(
            Retried(
                call_id=watch.call_id,
                input_id=watch.input_id,
                attempt=self.attempt,
                chunk=watch.chunk,
                retry=self.tries,
                reason=str(error) if error is not None else "",
                status=getattr(error, "status", None),
                wait=wait,
            )
        )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
