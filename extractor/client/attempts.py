"""The attempt loop of one extraction, over a `send()` callable.

Send the request, read the answer with the mode, parse it with the compiled schema. An invalid answer
is re-asked with its errors (only the latest failure stays in the conversation); an answer cut off at
`max_tokens` is tried once more with twice the room; a refusal, or an answer that holds the API key,
is never re-asked. An answer enters the response cache only once it validated, so a failure is never
replayed. Every error raised carries what the extraction cost (`usage`, `attempts`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._secret import redact
from ..documents.plan import holds_lists, record_answer_tokens
from ..errors import (
    BadRequestError,
    ErrorDetail,
    ExtractorError,
    OutputError,
    OutputInvalidError,
    OutputTruncatedError,
    RefusalError,
)
from ..observe.events import ModeFallback, Watch
from ..output.echo import echoes_schema
from ..results import Attempt, ExtractResult, Usage
from ..schema import CompiledSchema
from ..schema.signature import type_signature
from .catalog import ModelCatalog, ModelInfo
from .modes import Message, Mode, next_mode
from .settings import Settings
from .transport import ChatResponse

__all__ = ["RAW_LIMIT", "AttemptLoop", "Sent", "annotate", "answer_ceiling", "shorten"]

log = logging.getLogger("extractor")

#: at most this many characters of an answer are echoed in a re-ask or kept in an error (`raw`)
RAW_LIMIT = 2_000
#: a 400 that names one of these is the endpoint rejecting the schema or the mode
_MODE_WORDS = ("response_format", "json_schema", "schema", "structured", "tool", "function", "not supported",
               "unsupported", "json mode", "json_object", "grammar")  # fmt: skip


def shorten(text: str | None, limit: int = RAW_LIMIT) -> str | None:
    """`text` cut to `limit` characters, saying how many more there were."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


@dataclass
class Sent:
    """An answer to one request: the response, whether it came from the cache, and how to keep it there
    once it has validated (`keep`, None when there is no cache or it came from it)."""

    response: ChatResponse
    cached: bool = False
    keep: Callable[[], Awaitable[None]] | None = None
    #: what the answer cost against its list price (a provider batch's answer: `BATCH_DISCOUNT`)
    price_factor: float = 1.0
    #: the answer was obtained another way (a provider batch's), not by a request of this extraction
    provided: bool = False


#: sends one request body for the given mode and attempt number
Send = Callable[[dict[str, Any], Mode, int], Awaitable[Sent]]


def _feedback(error: OutputError, schema: CompiledSchema[Any], keep: str | None) -> str:
    """What a re-ask says: each problem with its path, what is wrong and the offending value, shortened."""
    where = f" (in the answer's `{schema.wrapper_key}` field)" if schema.wrapper_key else ""
    lines = [f"- {shorten(str(e), 500)}" for e in error.errors[:20]] or [f"- {shorten(error.message, 500)}"]
    if len(error.errors) > 20:
        lines.append(f"- ... and {len(error.errors) - 20} more")
    head = (
        "Your previous answer was incomplete"
        if isinstance(error, OutputTruncatedError)
        else "Your previous answer does not match the requested schema"
    )
    tail = "\nReply again with the complete, corrected JSON and nothing else."
    return f"{head}{where}:\n" + "\n".join(lines) + (f"\n{keep}" if keep else "") + tail


#: the problem of an attempt whose answer was the schema itself (`output.echo`)
SCHEMA_ECHO = "the answer echoes the schema instead of giving values"


def _schema_echo(text: str | None) -> OutputInvalidError:
    detail = ErrorDetail("$", "the answer is a JSON Schema (type and properties), not the values found in the input")
    return OutputInvalidError(SCHEMA_ECHO, [detail], raw=shorten(text))


def _echo_feedback(schema: CompiledSchema[Any]) -> str:
    """What a re-ask says to an answer that was the schema: that it was, and the shape wanted."""
    return (
        'Your previous answer repeated the schema (its "type" and "properties") instead of giving data. '
        "Do not describe the fields: fill them in with the values found in the input (null where the input "
        "does not say), as one JSON object of this shape, and nothing else:\n" + type_signature(schema.json_schema)
    )


def answer_ceiling(schema: CompiledSchema[Any], info: ModelInfo | None, messages: list[Message]) -> int:
    """The `max_tokens` sent when the caller sets none, so that no answer runs to the model's maximum by
    accident: a record of fixed shape gets about as many tokens as its schema has (1,024 to 4,096); one
    with lists about twice the text it is read from plus 1,024 (at least 4,096); never more than the
    model's completion limit (or half its context). A cut-off answer is retried once with twice this."""
    if holds_lists(schema):
        text = sum(len(str(part)) for m in messages for part in _texts(m.get("content")))
        wanted = max(4_096, 2 * math.ceil(text / 4) + 1_024)
    else:
        wanted = record_answer_tokens(schema)
    limit = info.max_completion_tokens if info is not None and info.max_completion_tokens else None
    if limit is None and info is not None and info.context_length:
        limit = info.context_length // 2
    return min(wanted, limit) if limit else wanted


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return []


def holds_secret(text: str, secret: str) -> bool:
    """Whether `text` holds `secret`, or a run of 16 of its characters (the whole of a shorter one)."""
    size = min(len(secret), 16)
    return any(secret[i : i + size] in text for i in range(len(secret) - size + 1))


def _finish_reason(response: ChatResponse) -> str | None:
    reason = response.data["choices"][0].get("finish_reason")
    return reason if isinstance(reason, str) else None


def _count_items(value: Any) -> int:
    """The items of every list in `value`, nested ones included."""
    if isinstance(value, list):
        return len(value) + sum(_count_items(v) for v in value if isinstance(v, (list, dict)))
    if isinstance(value, dict):
        return sum(_count_items(v) for v in value.values() if isinstance(v, (list, dict)))
    return 0


class AttemptLoop:
    """Attempts at one extraction until an answer validates or the re-asks run out.

    `body(settings, mode, schema, messages)` builds a request; `send` sends it; `keep()` (streaming items) may
    say which records were already accepted, for a re-ask to keep them; `watch` tells the hooks of each
    attempt, re-ask and mode fallback (`extractor.observe.events`).
    """

    def __init__(
        self,
        *,
        schema: CompiledSchema[Any],
        messages: list[Message],
        settings: Settings,
        mode: Mode,
        auto: bool,
        send: Send,
        body: Callable[[Settings, Mode, CompiledSchema[Any], list[Message]], dict[str, Any]],
        catalog: ModelCatalog,
        secret: str | None,
        host: str,
        keep: Callable[[], str | None] | None = None,
        watch: Watch | None = None,
        answer_room: int | None = None,
        answer_floor: int | None = None,
    ) -> None:
        self.schema = schema
        self.messages = messages
        self.settings = settings
        self.mode = mode
        self.auto = auto
        self.send = send
        self.body = body
        self.catalog = catalog
        self.secret = secret
        self.host = host
        self.keep = keep
        self.watch = watch
        #: the most tokens any answer may have (a retry after a cut included); None: the model's limit
        self.answer_room = answer_room
        #: the least `max_tokens` sent when the call sets none (a long list's predicted answer)
        self.answer_floor = answer_floor
        self.attempts: list[Attempt] = []
        self.fallbacks: list[str] = []
        self.usage = Usage()
        self._info: ModelInfo | None = None

    async def run(self) -> ExtractResult[Any]:
        started = time.perf_counter()
        settings, mode = self.settings, self.mode
        if settings.params.get("max_tokens") is None:
            self._info = await self.catalog.info(settings.model)
            wanted = answer_ceiling(self.schema, self._info, self.messages)
            if self.answer_floor is not None:
                wanted = max(wanted, self.answer_floor)
            if self.answer_room is not None:
                wanted = min(wanted, self.answer_room)
            settings = settings.merged({"max_tokens": wanted})
        followup: list[Message] = []
        last_error: OutputError | None = None
        last_raw: str | None = None
        length_retried = False
        reasks = 0
        while True:
            try:
                body = self.body(settings, mode, self.schema, [*self.messages, *followup])
                sent = await self.send(body, mode, len(self.attempts) + 1)
            except BadRequestError as exc:
                fallback = self._fallback(mode, exc)
                if fallback is not None:
                    if self.watch is not None:
                        await self._fell_back(mode.name, fallback.name, exc.body or str(exc))
                    mode = fallback
                    continue
                raise self.annotate(exc) from None
            except ExtractorError as exc:
                raise self.annotate(exc) from None
            response = sent.response
            finish = _finish_reason(response)
            if self._info is None:  # the prices: the cost when the answer does not say it, and its list cost
                self._info = await self.catalog.info(settings.model)
            info = self._info
            attempt_usage = (
                Usage()  # an answer from the cache cost nothing this time
                if sent.cached
                else Usage.from_response(
                    response.data.get("usage"),
                    info.prompt_price if info else None,
                    info.completion_price if info else None,
                )
            )
            if sent.price_factor != 1.0:
                attempt_usage.cost *= sent.price_factor
                attempt_usage.list_cost *= sent.price_factor
            self.usage = self.usage + attempt_usage
            message = response.data["choices"][0]["message"]
            attempt = Attempt(
                number=len(self.attempts) + 1,
                mode=mode.name,
                usage=attempt_usage,
                latency=response.elapsed,
                finish_reason=finish,
                generation_id=response.data.get("id"),
                cached=sent.cached,
            )
            self.attempts.append(attempt)
            answer = mode.read(message)
            if self.secret and holds_secret(answer.text or answer.refusal or "", self.secret):
                attempt.problem = "held the API key"
                if self.watch is not None:
                    await self._finished(attempt, sent, None)
                leaked = OutputInvalidError("the answer holds the API key: refused, and not sent back in a re-ask")
                raise self.annotate(leaked)
            if answer.refusal is not None:
                attempt.problem = "refused"
                if self.watch is not None:
                    await self._finished(attempt, sent, answer.refusal)
                raise self.annotate(RefusalError(answer.refusal, raw=shorten(answer.text)))
            if answer.missing is not None and (finish == "length" or not self._readable(answer.text)):
                # the endpoint did not do what the mode asks (it ignored a forced tool call): said as such
                attempt.problem = answer.missing
                if self.watch is not None:
                    await self._finished(attempt, sent, answer.text)
                reason = f"{answer.missing} (finish_reason {finish})"
                fallback = self._switch(mode, reason)
                if fallback is not None:
                    if self.watch is not None:
                        await self._fell_back(mode.name, fallback.name, reason)
                    mode, followup = fallback, []
                    continue
                if reasks >= settings.max_retries:
                    error = OutputInvalidError(
                        f"{answer.missing} in {len(self.attempts)} attempts in {mode.name} mode: the endpoint may not "
                        "force tool calls (another mode, or auto, avoids them)",
                        raw=shorten(answer.text),
                    )
                    raise self.annotate(error)
                reasks += 1
                if self.watch is not None:
                    await self.watch.reasked(attempt.number, "invalid", attempt.problem, None)
                followup = mode.reask(message, mode.missing_feedback(self.schema))
                continue
            if finish == "length":
                attempt.problem = "cut off at max_tokens"
                if self.watch is not None:
                    await self._finished(attempt, sent, answer.text)
                current = settings.params.get("max_tokens")
                room = self._room(info)
                cut = self._cut(current, room, attempt_usage.completion_tokens, answer.text, again=length_retried)
                if cut is not None:
                    raise self.annotate(cut)
                length_retried = True
                settings = self._more_room(settings, room, answer.text)
                if self.watch is not None:
                    await self.watch.reasked(attempt.number, "cut_off", attempt.problem, None)
                continue
            try:
                parsed = self.schema.parse_result(answer.text or "")
            except OutputError as exc:
                echo = echoes_schema(answer.text, self.schema.json_schema)
                problem: OutputError = _schema_echo(answer.text) if echo else exc
                attempt.problem = shorten(problem.message, 300)
                last_error, last_raw = problem, answer.text
                if self.watch is not None:
                    await self._finished(attempt, sent, answer.text, problem.repairs)
                if reasks >= settings.max_retries:
                    break
                reasks += 1
                if self.watch is not None:
                    await self.watch.reasked(attempt.number, "invalid", attempt.problem or "", problem)
                log.info("answer %d invalid (%s); asking again", len(self.attempts), attempt.problem)
                keep = self.keep() if self.keep is not None else None
                echoed = {**message, "content": shorten(message.get("content"))} if message.get("content") else message
                feedback = _echo_feedback(self.schema) if echo else _feedback(exc, self.schema, keep)
                followup = mode.reask(echoed, feedback)  # only the latest failure is kept
                continue
            if self.watch is not None:
                await self._finished(attempt, sent, answer.text, parsed.repairs)
            if sent.keep is not None:
                await sent.keep()  # only an answer that validated is cached
            return ExtractResult(
                value=parsed.value,
                model=str(response.data.get("model") or settings.model),
                mode=mode.name,
                attempts=self.attempts,
                repairs=parsed.repairs,
                usage=self.usage,
                latency=time.perf_counter() - started,
                finish_reason=finish,
                generation_id=attempt.generation_id,
                fallbacks=self.fallbacks,
            )
        if last_error is None:  # pragma: no cover - the loop only breaks after a failed parse
            raise ExtractorError("internal error: the attempt loop ended without an answer")
        final = OutputInvalidError(
            f"the answer was still invalid after {len(self.attempts)} attempts ({reasks} re-asks)",
            last_error.errors or [ErrorDetail("$", last_error.message)],
            raw=shorten(last_raw),
            repairs=last_error.repairs,
        )
        raise self.annotate(final)

    async def _finished(self, attempt: Attempt, sent: Sent, answer: str | None, repairs: Any = ()) -> None:
        """Tell the hooks that `attempt` has been read (its problem set, if any)."""
        if self.watch is None:
            return
        await self.watch.attempt_finished(
            attempt=attempt.number,
            mode=attempt.mode,
            problem=attempt.problem,
            repairs=repairs,
            cached=sent.cached,
            provided=sent.provided,
            usage=attempt.usage,
            response=sent.response,
            finish_reason=attempt.finish_reason,
            answer=answer,
        )

    async def _fell_back(self, rejected: str, mode: str, reason: str) -> None:
        """Tell the hooks that the endpoint failed mode `rejected` (`reason`): the attempt is made again in `mode`."""
        watch = self.watch
        if watch is None:
            return
        event = ModeFallback(
            call_id=watch.call_id,
            input_id=watch.input_id,
            attempt=len(self.attempts) + 1,
            chunk=watch.chunk,
            rejected=rejected,
            mode=mode,
            reason=reason,
        )
        await watch.emit(event)

    def _fallback(self, mode: Mode, exc: BadRequestError) -> Mode | None:
        """The next mode after a 400 that rejects this one (auto mode only, once)."""
        if not any(w in (exc.body or "").lower() for w in _MODE_WORDS):
            return None
        return self._switch(mode, exc.body or "")

    def _switch(self, mode: Mode, reason: str) -> Mode | None:
        """The next mode after the endpoint failed `mode` for `reason` (auto mode only, once), remembered."""
        if not self.auto or self.fallbacks:
            return None
        fallback = next_mode(mode)
        if fallback is None:
            return None
        self.fallbacks.append(f"{mode.name} -> {fallback.name}: {reason}")
        log.warning("%s failed mode %s (%s); falling back to %s", self.host, mode.name, reason, fallback.name)
        self.catalog.remember_fallback(self.settings.model, mode.name, fallback.name, reason)
        return fallback

    def _readable(self, text: str | None) -> bool:
        """Whether `text` (an answer given another way than the mode asked) validates all the same."""
        if not text:
            return False
        try:
            self.schema.parse_result(text)
        except OutputError:
            return False
        return True

    def _room(self, info: ModelInfo | None) -> int | None:
        """The most tokens an answer may have: the planned answer room, within the model's completion limit
        (else half its context); None when nothing says."""
        limit = info.max_completion_tokens if info and info.max_completion_tokens else None
        if limit is None and info and info.context_length:
            limit = info.context_length // 2
        rooms = [r for r in (self.answer_room, limit) if r]
        return min(rooms) if rooms else None

    def _cut(
        self, current: Any, room: int | None, tokens: int, text: str | None, *, again: bool
    ) -> OutputTruncatedError | None:
        """The error for an answer cut off at `current` max_tokens (`tokens` long), unless trying once more
        with more room can help: not when it was already tried (`again`), nor when `current` is the most an
        answer may have (`room`), nor when the endpoint stopped the answer short of `current` (its own
        limit is lower)."""
        sent = current if isinstance(current, int) else None
        at_limit = sent is not None and room is not None and sent >= room
        if not (at_limit or again):
            return None
        if at_limit:
            message = (
                f"the answer was cut off at the token limit ({sent} tokens, the most one answer may have here); "
                "no record was made"
            )
        else:
            message = "the answer was cut off by the token limit twice; no record was made"
        return OutputTruncatedError(
            message,
            raw=shorten(text),
            limit=sent,
            at_limit=at_limit,
            answer_tokens=tokens or sent,
            items=self._items(text),
        )

    def _items(self, text: str | None) -> int | None:
        """How many whole list items the cut-off answer `text` holds (None when the schema has no lists)."""
        if not text or not holds_lists(self.schema):
            return None
        try:
            value = self.schema.parse_partial(text)
        except (ExtractorError, ValueError, TypeError, RecursionError):
            return None
        return max(_count_items(value) - 1, 0)  # the last one may be cut

    def _more_room(self, settings: Settings, room: int | None, text: str | None) -> Settings:
        """Settings for one more try after a `length` cut: twice the tokens, within `room`."""
        current = settings.params.get("max_tokens")
        if not isinstance(current, int):
            current = max(1024, len(text or "") // 2)
        wanted = current * 2
        if room is not None:
            wanted = min(wanted, room)
        log.info("answer cut off at max_tokens=%s; trying once with max_tokens=%d", current, wanted)
        return settings.merged({"max_tokens": wanted})

    def annotate(self, exc: ExtractorError) -> ExtractorError:
        """`exc` carrying what this loop's attempts cost (`annotate`)."""
        return annotate(exc, self.attempts, self.usage, self.secret)


def annotate(exc: ExtractorError, attempts: list[Attempt], usage: Usage, secret: str | None) -> ExtractorError:
    """`exc` carrying what the failed extraction cost (its attempts and usage), its message and the raw
    answer it quotes free of the API key (`redact`). Every error an extraction raises passes here."""
    exc.attempts = list(attempts)
    exc.usage = usage
    if secret:
        exc.args = tuple(redact(a, secret) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, OutputError) and exc.raw is not None:
            exc.raw = redact(exc.raw, secret)
    return exc
