"""Hooks: what happens during an extraction, as typed events, for your own tools.

A hook is any callable taking one `Event`; it may be sync or async (then it is awaited, in line: keep
it quick, or hand the event to a queue). Hooks run in the extraction's task (for sync calls, on the
extractor's background thread). Register hooks on an `Extractor` (`hooks=[...]`, `add_hook`), for one
call (`hooks=[...]` as a call option, also for `extract_many`), or for every extractor in the process
(`add_global_hook`). A hook that raises never breaks the extraction: the error is logged (logger
"extractor", warning, once per hook and error type) and the others still run.

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
`AttemptFinished.answer` and the values in `Reasked.errors` are filled, the API key redacted.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import ErrorDetail, OutputError
from .output.repairs import Repair
from .results import ExtractResult, Usage

if TYPE_CHECKING:
    from .batch.runner import BatchResult
    from .otel import OpenTelemetryHook
    from .transport import ChatResponse

__all__ = [
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
    "instrument",
    "remove_global_hook",
]

log = logging.getLogger("extractor")

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
    """The extraction succeeded: the `ExtractResult` the caller gets."""

    result: ExtractResult[Any]


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


#: a hook: called with each event; may return an awaitable (an async hook), which is awaited
Hook = Callable[[Event], Awaitable[None] | None]


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


def instrument(
    target: Any = None, *, tracer_provider: Any = None, capture_content: bool | None = None
) -> OpenTelemetryHook:
    """OpenTelemetry traces (GenAI semantic conventions) for `target` (an `Extractor`), or for every
    extractor when None; returns the hook (`remove_hook` / `remove_global_hook` it to stop). Needs
    `opentelemetry-api` (`pip install 'extractor[otel]'`); see `extractor.otel.OpenTelemetryHook`."""
    from .otel import OpenTelemetryHook

    hook = OpenTelemetryHook(tracer_provider=tracer_provider, capture_content=capture_content)
    if target is None:
        add_global_hook(hook)
    else:
        target.add_hook(hook)
    return hook


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


#: hook failures already logged: (hook, error type); hooks that cannot be weakly referenced by id
_reported: weakref.WeakKeyDictionary[Any, set[type[BaseException]]] = weakref.WeakKeyDictionary()
_reported_ids: set[tuple[int, type[BaseException]]] = set()


def _report(hook: Hook, exc: Exception, event: Event) -> None:
    """Log a failing hook once per hook and error type."""
    kind = type(exc)
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
        "hook %s failed on %s (%s: %s); the extraction goes on (logged once per hook and error type)",
        name, type(event).__name__, kind.__name__, exc, exc_info=exc,
    )  # fmt: skip


async def call_hooks(hooks: Iterable[Hook], event: Event) -> None:
    """Each hook with `event`, in order, awaiting async ones; a hook's error is logged, never raised."""
    for hook in hooks:
        try:
            outcome = hook(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            _report(hook, exc, event)


def wants_content(hooks: Iterable[Hook]) -> bool:
    return any(getattr(h, "capture_content", False) is True for h in hooks)


def _redacted(value: Any, secret: str | None) -> Any:
    """`value` (JSON-like) with the API key redacted from every string."""
    from .transport import redact

    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, Mapping):
        return {k: _redacted(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secret) for v in value]
    return value


class Watch:
    """One extraction's view for its hooks: who it is, where it is (`chunk`), and how to emit."""

    __slots__ = ("call_id", "chunk", "content", "hooks", "input_id", "secret")

    def __init__(
        self,
        hooks: tuple[Hook, ...],
        call_id: str,
        input_id: str | None,
        secret: str | None,
        chunk: int | None = None,
    ) -> None:
        self.hooks = hooks
        self.call_id = call_id
        self.input_id = input_id
        self.secret = secret
        self.chunk = chunk
        #: whether a hook asked for prompts and answers
        self.content = wants_content(hooks)

    def at_chunk(self, index: int) -> Watch:
        return Watch(self.hooks, self.call_id, self.input_id, self.secret, chunk=index)

    async def emit(self, event: Event) -> None:
        await call_hooks(self.hooks, event)

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
                problem=problem,
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
            errors = tuple(
                d if self.content else ErrorDetail(d.path, d.message, loc=d.loc, kind=d.kind) for d in details
            )
        await self.emit(
            Reasked(
                call_id=self.call_id,
                input_id=self.input_id,
                attempt=attempt,
                chunk=self.chunk,
                reason=reason,
                problem=problem,
                errors=errors,
            )
        )


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
