"""OpenTelemetry traces of extractions, following the GenAI semantic conventions, made by one hook.

    from .. import Extractor, instrument
    ex = Extractor(...)
    instrument(ex)                        # or instrument() for every extractor in the process

Each extraction is a span `extract {schema}` (a child of the span current when it is called), with
one child span `chat {model}` (kind CLIENT) per attempt: from its first request to the answer read,
transport retries as `extractor.retry` events on it, each re-ask as an `extractor.reask` event on the
extraction span. While it runs, the extraction span is the current span (HTTP client instrumentation
nests under it). Attributes: `gen_ai.operation.name` ("chat"), `gen_ai.provider.name` and
`gen_ai.system` (from the endpoint's host), `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.response.id`, `gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens` /
`gen_ai.usage.output_tokens`, `server.address` / `server.port`, the request's sampling parameters
(`gen_ai.request.max_tokens`, `gen_ai.request.temperature`, ...), and `extractor.cost_usd`,
`extractor.mode`, `extractor.attempt`, `extractor.repairs` (how many), `extractor.repair_kinds`,
`extractor.problem`, `extractor.chunk`; `error.type` (and the span status ERROR) on failure.

The API key is never recorded. Prompts and answers are recorded only with `capture_content=True` (or
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`), as `gen_ai.input.messages` /
`gen_ai.output.messages` (JSON), and the extracted value as `extractor.output`, all as the events give
them: redacted once, the same way, before any hook sees them (`extractor.observe.events`).

Needs only `opentelemetry-api` (`pip install 'extractor[otel]'`); an SDK and exporter are the
application's to configure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._version import __version__
from ..errors import ConfigurationError, OutputError
from ..output.repairs import Repair
from .events import (
    AttemptFinished,
    DocumentSplit,
    Event,
    ExtractionFailed,
    ExtractionFinished,
    ExtractionStarted,
    ModeFallback,
    Reasked,
    RequestSent,
    ResponseReceived,
    Retried,
    add_global_hook,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["CAPTURE_CONTENT_ENV", "OpenTelemetryHook", "instrument", "provider_name"]

#: the environment variable the GenAI instrumentations read to record prompts and answers
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

#: hosts (exact, or a suffix after a dot) and their `gen_ai.provider.name`
_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("openrouter.ai", "openrouter"),
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("amazonaws.com", "aws.bedrock"),
    ("models.inference.ai.azure.com", "azure.ai.inference"),
)
_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}


def provider_name(host: str) -> str:
    """`gen_ai.provider.name` for an endpoint's host (`openrouter.ai` -> "openrouter"); a host not known
    (a local server) is named by itself."""
    name = (urlsplit(f"//{host}").hostname or host).lower()
    for known, provider in _PROVIDERS:
        if name == known or name.endswith("." + known):
            return provider
    return name


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _repair_attributes(repairs: Sequence[Repair]) -> dict[str, Any]:
    return {
        "extractor.repairs": len(repairs),
        "extractor.repair_kinds": sorted({r.kind.value for r in repairs}),
    }


def _parts(content: Any) -> list[dict[str, Any]]:
    """A chat message's content as GenAI message parts."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append({"type": "text", "content": str(part.get("text", ""))})
            elif isinstance(part, Mapping):
                kind = str(part.get("type"))
                modality = "image" if "image" in kind else "file" if kind == "file" else kind
                parts.append({"type": "blob", "modality": modality})
    return parts


def _messages(messages: Any) -> list[dict[str, Any]]:
    """Chat-completions messages in the GenAI conventions' shape (`gen_ai.input.messages`)."""
    out: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            continue
        role = str(message.get("role"))
        parts = _parts(message.get("content"))
        for call in message.get("tool_calls") or []:
            if not isinstance(call, Mapping):
                continue
            function = call.get("function")
            function = function if isinstance(function, Mapping) else {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
        if role == "tool":
            response = message.get("content")
            parts = [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": response}]
        out.append({"role": role, "parts": parts})
    return out


@dataclass
class _Call:
    """The spans of one extraction in flight: its own, the open attempt's per chunk, and its context token."""

    span: Span
    token: Any
    host: str
    model: str
    chats: dict[int | None, Span] = field(default_factory=dict)


class OpenTelemetryHook:
    """A hook (`Extractor(hooks=[...])`, `add_hook`, `add_global_hook`) that makes OpenTelemetry spans of
    extractions (see the module docstring).

    `tracer_provider`: the provider to get the tracer from (default: the global one); `capture_content`:
    record prompts, answers and extracted values (default: `$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
    is "true"). Raises `ConfigurationError` when `opentelemetry-api` is not installed.
    """

    #: runs in the extraction's task (not a hook thread): it makes the extraction's span current there
    inline = True

    def __init__(self, *, tracer_provider: Any = None, capture_content: bool | None = None) -> None:
        try:
            from opentelemetry import context, trace
        except ImportError:  # pragma: no cover - exercised without the package
            raise ConfigurationError(
                "tracing needs the OpenTelemetry API: pip install 'extractor[otel]' (or opentelemetry-api)"
            ) from None
        self._trace = trace
        self._context = context
        self.tracer: Tracer = trace.get_tracer("extractor", __version__, tracer_provider=tracer_provider)
        if capture_content is None:
            capture_content = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"
        #: whether prompts and answers are recorded (the hooks' events then carry them)
        self.capture_content = capture_content
        self._calls: dict[str, _Call] = {}

    def __repr__(self) -> str:
        return f"OpenTelemetryHook(capture_content={self.capture_content})"

    def __call__(self, event: Event) -> None:
        if isinstance(event, ExtractionStarted):
            self._started(event)
            return
        call = self._calls.get(event.call_id)
        if call is None:
            return
        if isinstance(event, RequestSent):
            self._sent(call, event)
        elif isinstance(event, ResponseReceived):
            self._received(call, event)
        elif isinstance(event, Retried):
            self._retried(call, event)
        elif isinstance(event, AttemptFinished):
            self._attempt(call, event)
        elif isinstance(event, ModeFallback):
            self._fell_back(call, event)
        elif isinstance(event, Reasked):
            call.span.add_event(
                "extractor.reask",
                {
                    "extractor.attempt": event.attempt,
                    "extractor.reask.reason": event.reason,
                    "extractor.problem": event.problem,
                    "extractor.errors": [f"{e.path}: {e.message}" for e in event.errors[:20]],
                    **({"extractor.chunk": event.chunk} if event.chunk is not None else {}),
                },
                timestamp=_ns(event.at),
            )
        elif isinstance(event, DocumentSplit):
            call.span.set_attribute("extractor.chunks", len(event.chunks))
        elif isinstance(event, ExtractionFinished):
            self._finished(call, event)
        elif isinstance(event, ExtractionFailed):
            self._failed(call, event)

    # --- the extraction span ------------------------------------------------------------------

    def _started(self, event: ExtractionStarted) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.provider.name": provider_name(event.host),
            "gen_ai.system": provider_name(event.host),
            "gen_ai.request.model": event.model,
            "gen_ai.output.type": "json",
            "extractor.schema": event.schema,
            "extractor.mode": event.mode,
            "extractor.call_id": event.call_id,
            "extractor.stream": event.stream,
            **self._server(event.host),
        }
        if event.input_id is not None:
            attributes["extractor.input_id"] = event.input_id
        trace = self._trace
        span = self.tracer.start_span(
            f"extract {event.schema}", kind=trace.SpanKind.INTERNAL, attributes=attributes, start_time=_ns(event.at)
        )
        token = self._context.attach(trace.set_span_in_context(span))
        self._calls[event.call_id] = _Call(span, token, event.host, event.model)

    def _finished(self, call: _Call, event: ExtractionFinished) -> None:
        result = event.result
        usage = result.usage
        span = call.span
        self._close_chats(call, None, event.at)
        attributes: dict[str, Any] = {
            "gen_ai.response.model": result.model,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "extractor.cost_usd": usage.cost,
            "extractor.cost_known": usage.cost_known,
            "extractor.mode": result.mode,
            "extractor.client.attempts": len(result.attempts),
            "extractor.reasks": result.reasks,
            **_repair_attributes(result.repairs),
        }
        if result.generation_id:
            attributes["gen_ai.response.id"] = result.generation_id
        if result.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [result.finish_reason]
        if result.fallbacks:
            attributes["extractor.fallbacks"] = len(result.fallbacks)
        if self.capture_content and event.output is not None:
            attributes["extractor.output"] = event.output
        span.set_attributes(attributes)
        self._end(event.call_id, call, event.at)

    def _failed(self, call: _Call, event: ExtractionFailed) -> None:
        error = event.error
        kind = type(error).__qualname__
        description = self._describe(error)
        self._close_chats(call, error, event.at)
        span = call.span
        attempts = getattr(error, "attempts", None)
        usage = getattr(error, "usage", None)
        attributes: dict[str, Any] = {"error.type": kind}
        if isinstance(attempts, list):
            attributes["extractor.client.attempts"] = len(attempts)
        if usage is not None:
            attributes["extractor.cost_usd"] = float(usage.cost)
            attributes["gen_ai.usage.input_tokens"] = int(usage.prompt_tokens)
            attributes["gen_ai.usage.output_tokens"] = int(usage.completion_tokens)
        span.set_attributes(attributes)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description))
        self._end(event.call_id, call, event.at)

    def _describe(self, error: BaseException) -> str:
        """What a failure says on a span: an invalid answer's summary (its values only with content)."""
        if isinstance(error, OutputError) and not self.capture_content:
            return error.message
        return str(error) or type(error).__qualname__

    def _end(self, call_id: str, call: _Call, at: float) -> None:
        self._calls.pop(call_id, None)
        call.span.end(end_time=_ns(at))
        self._context.detach(call.token)  # OpenTelemetry logs (never raises) a token of another context

    # --- the attempt spans --------------------------------------------------------------------

    def _server(self, host: str) -> dict[str, Any]:
        parts = urlsplit(f"//{host}")
        out: dict[str, Any] = {"server.address": parts.hostname or host}
        if parts.port is not None:
            out["server.port"] = parts.port
        return out

    def _chat(self, call: _Call, chunk: int | None, model: str, at: float) -> Span:
        """The open attempt span of `chunk`, started at `at` when there is none."""
        span = call.chats.get(chunk)
        if span is None:
            provider = provider_name(call.host)
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "gen_ai.request.model": model,
                "gen_ai.output.type": "json",
                **self._server(call.host),
            }
            if chunk is not None:
                attributes["extractor.chunk"] = chunk
            span = self.tracer.start_span(
                f"chat {model}",
                context=self._trace.set_span_in_context(call.span),
                kind=self._trace.SpanKind.CLIENT,
                attributes=attributes,
                start_time=_ns(at),
            )
            call.chats[chunk] = span
        return span

    def _sent(self, call: _Call, event: RequestSent) -> None:
        span = self._chat(call, event.chunk, event.model, event.at)
        if event.retry:
            return
        attributes: dict[str, Any] = {
            "extractor.attempt": event.attempt,
            "extractor.mode": event.mode,
            "extractor.request.size": event.body_size,
            "extractor.stream": event.stream,
        }
        for name, key in _REQUEST_PARAMS.items():
            value = event.params.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[key] = value
        if self.capture_content and event.body is not None:
            attributes["gen_ai.input.messages"] = json.dumps(_messages(event.body.get("messages")), ensure_ascii=False)
        span.set_attributes(attributes)

    def _received(self, call: _Call, event: ResponseReceived) -> None:
        span = call.chats.get(event.chunk)
        if span is None:
            return
        attributes: dict[str, Any] = {}
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        if event.response_id:
            attributes["gen_ai.response.id"] = event.response_id
        if event.response_model:
            attributes["gen_ai.response.model"] = event.response_model
        if event.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [event.finish_reason]
        span.set_attributes(attributes)

    def _retried(self, call: _Call, event: Retried) -> None:
        span = call.chats.get(event.chunk)
        if span is None:
            return
        attributes: dict[str, Any] = {
            "extractor.retry": event.retry,
            "extractor.retry.wait_s": event.wait,
            "extractor.retry.reason": event.reason,
        }
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        span.add_event("extractor.retry", attributes, timestamp=_ns(event.at))

    def _attempt(self, call: _Call, event: AttemptFinished) -> None:
        span = call.chats.pop(event.chunk, None)
        if span is None:  # answered from the cache or by a provider batch: no request was made now
            span = self._chat(call, event.chunk, call.model, event.at - event.latency)
            call.chats.pop(event.chunk, None)
        usage = event.usage
        attributes: dict[str, Any] = {
            "extractor.attempt": event.attempt,
            "extractor.mode": event.mode,
            "extractor.cached": event.cached,
            "extractor.provided": event.provided,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "extractor.cost_usd": usage.cost,
            **_repair_attributes(event.repairs),
        }
        if event.problem is not None:
            attributes["extractor.problem"] = event.problem
        if event.response_id:
            attributes["gen_ai.response.id"] = event.response_id
        if event.response_model:
            attributes["gen_ai.response.model"] = event.response_model
        if event.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [event.finish_reason]
        if self.capture_content and event.answer is not None:
            output = [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": event.answer}],
                    "finish_reason": event.finish_reason or "stop",
                }
            ]
            attributes["gen_ai.output.messages"] = json.dumps(output, ensure_ascii=False)
        span.set_attributes(attributes)
        span.end(end_time=_ns(event.at))

    def _fell_back(self, call: _Call, event: ModeFallback) -> None:
        span = call.chats.pop(event.chunk, None)
        if span is None:
            return
        span.set_attributes({"error.type": "BadRequestError", "extractor.mode_rejected": event.rejected})
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"mode {event.rejected} rejected"))
        span.end(end_time=_ns(event.at))

    def _close_chats(self, call: _Call, error: BaseException | None, at: float) -> None:
        """End the attempt spans still open (their request failed): with the error, when there is one."""
        for span in call.chats.values():
            if error is not None:
                span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, self._describe(error)))
            span.end(end_time=_ns(at))
        call.chats.clear()


def instrument(
    target: Any = None, *, tracer_provider: Any = None, capture_content: bool | None = None
) -> OpenTelemetryHook:
    """OpenTelemetry traces (GenAI semantic conventions) for `target` (an `Extractor`), or for every
    extractor when None; returns the hook (`remove_hook` / `remove_global_hook` it to stop). Needs
    `opentelemetry-api` (`pip install 'extractor[otel]'`); see `extractor.observe.otel.OpenTelemetryHook`."""
    hook = OpenTelemetryHook(tracer_provider=tracer_provider, capture_content=capture_content)
    if target is None:
        add_global_hook(hook)
    else:
        target.add_hook(hook)
    return hook
