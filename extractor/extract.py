"""`Extractor`: typed records from text over any OpenAI-compatible endpoint.

The attempt loop is async; the sync methods run it on a background loop (`_portal`). One
extraction: choose the mode, send, read the answer with the mode, parse it with the compiled
schema; re-ask with the errors when the answer is invalid (only the latest failure is kept in the
conversation), retry once with more room when the answer was cut off for length, refuse to
re-ask a refusal.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import httpx
from typing_extensions import TypedDict, Unpack

from ._portal import at_portal_exit, run_sync
from .errors import (
    BadRequestError,
    ConfigurationError,
    ErrorDetail,
    ExtractorError,
    OutputError,
    OutputInvalidError,
    OutputTruncatedError,
    RefusalError,
)
from .models_info import DEFAULT_MODEL, ModelCatalog, ModelInfo, default_cache_dir
from .modes import Message, Mode, choose_mode, get_mode, next_mode
from .results import Attempt, ExtractResult, Usage
from .schema import CompiledSchema, compile_schema
from .transport import ChatResponse, RetryPolicy, Secret, Transport, redact

__all__ = ["DEFAULT_INSTRUCTIONS", "OPENROUTER_BASE_URL", "CallOptions", "Extractor"]

log = logging.getLogger("extractor")

T = TypeVar("T")

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_INSTRUCTIONS = (
    "You extract structured data from the user's input. Use only what the input states; where it "
    "does not say, use null. Never invent values."
)
_SAMPLING = ("temperature", "top_p", "max_tokens", "stop", "seed", "frequency_penalty", "presence_penalty")
_ROUTING = ("reasoning", "provider", "plugins")
#: a 400 that names one of these is the endpoint rejecting the schema or the mode
_MODE_WORDS = ("response_format", "json_schema", "schema", "structured", "tool", "function", "not supported",
               "unsupported", "json mode", "json_object")  # fmt: skip

Source = str | Sequence[Mapping[str, Any]]


class CallOptions(TypedDict, total=False):
    """Options for one call; each overrides the `Extractor`'s default of the same name."""

    model: str
    mode: str
    max_retries: int
    instructions: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: str | list[str] | None
    seed: int | None
    frequency_penalty: float | None
    presence_penalty: float | None
    reasoning: dict[str, Any] | None
    provider: dict[str, Any] | None
    plugins: list[dict[str, Any]] | None
    extra_body: dict[str, Any] | None


@dataclass
class _Settings:
    model: str
    mode: str
    max_retries: int
    instructions: str | None
    params: dict[str, Any] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)

    def merged(self, options: Mapping[str, Any]) -> _Settings:
        unknown = set(options) - set(CallOptions.__annotations__)
        if unknown:
            raise ConfigurationError(f"unknown option(s): {', '.join(sorted(unknown))}")
        out = replace(self, params=dict(self.params), extra_body=dict(self.extra_body))
        for key, value in options.items():
            if key in ("model", "mode", "max_retries", "instructions"):
                setattr(out, key, value)
            elif key == "extra_body":
                out.extra_body.update(value or {})
            elif value is None:
                out.params.pop(key, None)
            else:
                out.params[key] = value
        return out


def _needs_key(base_url: str) -> bool:
    """Whether an endpoint is a remote service (a key is needed) rather than a local server."""
    host = urlsplit(base_url).hostname or ""
    if host in ("localhost", "") or host.endswith(".localhost"):
        return False
    try:
        address = ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_unspecified)


def _shorten(text: str | None, limit: int = 2000) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


def _feedback(error: OutputError, schema: CompiledSchema[Any]) -> str:
    """What a re-ask says: each problem with its path, what is wrong and the offending value, shortened."""
    where = " (in the answer's `value` field)" if schema.wrapped else ""
    lines = [f"- {e}" for e in error.errors[:20]] or [f"- {error.message}"]
    if len(error.errors) > 20:
        lines.append(f"- ... and {len(error.errors) - 20} more")
    head = (
        "Your previous answer was incomplete"
        if isinstance(error, OutputTruncatedError)
        else "Your previous answer does not match the requested schema"
    )
    return f"{head}{where}:\n" + "\n".join(lines) + "\nReply again with the complete, corrected JSON and nothing else."


class Extractor:
    """Extracts typed records from text with a model behind an OpenAI-compatible endpoint.

    `base_url`: argument, else `$EXTRACTOR_BASE_URL`, else OpenRouter. `api_key`: argument, else
    `$EXTRACTOR_API_KEY`, else `$OPENROUTER_API_KEY` (OpenRouter) or `$OPENAI_API_KEY` (others).
    Sampling, reasoning, routing and plugin options given here are defaults for every call;
    each call may override them.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_key: str | None = None,
        mode: str = "auto",
        max_retries: int = 2,
        *,
        instructions: str | None = DEFAULT_INSTRUCTIONS,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        reasoning: dict[str, Any] | None = None,
        provider: dict[str, Any] | None = None,
        plugins: list[dict[str, Any]] | None = None,
        extra_body: dict[str, Any] | None = None,
        app_url: str | None = None,
        app_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 256,
        cache_dir: str | Path | None = None,
        http_backend: str = "aiohttp",
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("EXTRACTOR_BASE_URL") or OPENROUTER_BASE_URL).rstrip("/")
        key = api_key or os.environ.get("EXTRACTOR_API_KEY")
        if not key:
            is_openrouter = urlsplit(self.base_url).hostname == "openrouter.ai"
            key = os.environ.get("OPENROUTER_API_KEY" if is_openrouter else "OPENAI_API_KEY")
        self._secret = Secret(key) if key else None
        if mode != "auto":
            get_mode(mode)  # an unknown mode is a configuration error now, not at the first call
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        params = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stop": stop,
            "seed": seed,
            "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty,
            "reasoning": reasoning,
            "provider": provider,
            "plugins": plugins,
        }
        self._settings = _Settings(
            model=model,
            mode=mode,
            max_retries=max_retries,
            instructions=instructions,
            params={k: v for k, v in params.items() if v is not None},
            extra_body=dict(extra_body or {}),
        )
        extra_headers = dict(headers or {})
        if app_url:
            extra_headers["HTTP-Referer"] = app_url
        if app_name:
            extra_headers["X-Title"] = app_name
        self._transport = Transport(
            self.base_url,
            key or None,
            headers=extra_headers,
            timeout=timeout,
            retry=retry,
            max_connections=max_connections,
            http_backend=http_backend,
            http_transport=http_transport,
        )
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._catalog = ModelCatalog(self._transport, cache_dir=cache)
        at_portal_exit(self._transport)

    @property
    def model(self) -> str:
        return self._settings.model

    def __repr__(self) -> str:
        return (
            f"Extractor(model={self._settings.model!r}, base_url={self.base_url!r}, mode={self._settings.mode!r}, "
            f"api_key={'set' if self._secret else 'not set'})"
        )

    # --- public API -----------------------------------------------------------------------

    @overload
    async def aextract(self, schema: type[T], source: Source, **options: Unpack[CallOptions]) -> T: ...
    @overload
    async def aextract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any: ...
    async def aextract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any:
        """The value extracted from `source`, validated against `schema`."""
        return (await self.aextract_result(schema, source, **options)).value

    @overload
    def extract(self, schema: type[T], source: Source, **options: Unpack[CallOptions]) -> T: ...
    @overload
    def extract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any: ...
    def extract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any:
        """Sync `aextract`."""
        return run_sync(self.aextract_result(schema, source, **options)).value

    @overload
    async def aextract_result(
        self, schema: type[T], source: Source, **options: Unpack[CallOptions]
    ) -> ExtractResult[T]: ...
    @overload
    async def aextract_result(
        self, schema: Any, source: Source, **options: Unpack[CallOptions]
    ) -> ExtractResult[Any]: ...
    async def aextract_result(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> ExtractResult[Any]:
        """The value with everything about how it was obtained: attempts, repairs, usage, cost."""
        compiled = compile_schema(schema)
        settings = self._settings.merged(options)
        return await self._run(compiled, self._messages(source, settings), settings)

    def extract_result(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> ExtractResult[Any]:
        """Sync `aextract_result`."""
        return run_sync(self.aextract_result(schema, source, **options))

    async def model_info(self, model: str | None = None) -> ModelInfo:
        """What the endpoint says about `model` (default: this extractor's): limits, prices, parameters."""
        return await self._catalog.info(model or self._settings.model)

    async def aclose(self) -> None:
        """Close this loop's connections."""
        await self._transport.aclose()

    def close(self) -> None:
        """Close the connections used by sync calls."""
        run_sync(self._transport.aclose())

    async def __aenter__(self) -> Extractor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the attempt loop -----------------------------------------------------------------

    def _messages(self, source: Source, settings: _Settings) -> list[Message]:
        messages: list[Message]
        if isinstance(source, str):
            messages = [{"role": "user", "content": source}]
        elif isinstance(source, Sequence) and all(isinstance(m, Mapping) for m in source):
            messages = [dict(copy.deepcopy(m)) for m in source if isinstance(m, Mapping)]
        else:
            raise ConfigurationError(f"cannot extract from a {type(source).__name__}; give text or a message list")
        if settings.instructions and not (messages and messages[0].get("role") in ("system", "developer")):
            messages.insert(0, {"role": "system", "content": settings.instructions})
        return messages

    def _check_key(self) -> None:
        if self._secret is None and _needs_key(self.base_url):
            raise ConfigurationError(
                f"no API key for {urlsplit(self.base_url).hostname}: pass api_key=, or set EXTRACTOR_API_KEY "
                "(or OPENROUTER_API_KEY for OpenRouter, OPENAI_API_KEY for other hosts)"
            )

    async def _mode(self, settings: _Settings) -> tuple[Mode, bool]:
        if settings.mode != "auto":
            return get_mode(settings.mode), False
        info = await self._catalog.info(settings.model)
        return choose_mode(info.supported_parameters), True

    def _body(
        self, settings: _Settings, mode: Mode, schema: CompiledSchema[Any], messages: list[Message]
    ) -> dict[str, Any]:
        part, sent = mode.request(schema, messages)
        body: dict[str, Any] = {"model": settings.model, "messages": sent, **part}
        body.update(settings.params)
        body.update(settings.extra_body)
        return body

    async def _run(
        self, schema: CompiledSchema[Any], messages: list[Message], settings: _Settings
    ) -> ExtractResult[Any]:
        self._check_key()
        started = time.perf_counter()
        mode, auto = await self._mode(settings)
        attempts: list[Attempt] = []
        fallbacks: list[str] = []
        usage = Usage()
        followup: list[Message] = []
        last_error: OutputError | None = None
        last_raw: str | None = None
        length_retried = False
        info: ModelInfo | None = None
        reasks = 0
        while True:
            body = self._body(settings, mode, schema, [*messages, *followup])
            try:
                response = await self._transport.chat(body)
            except BadRequestError as exc:
                if auto and not fallbacks and any(w in (exc.body or "").lower() for w in _MODE_WORDS):
                    fallback = next_mode(mode)
                    if fallback is not None:
                        note = f"{mode.name} -> {fallback.name}: {exc.body}"
                        log.warning("%s rejected mode %s (%s); falling back to %s", self._transport.host, mode.name,
                                    exc.body, fallback.name)  # fmt: skip
                        fallbacks.append(note)
                        mode = fallback
                        continue
                raise self._annotate(exc, attempts, usage) from None
            except ExtractorError as exc:
                raise self._annotate(exc, attempts, usage) from None
            if info is None and (_needs_prices(response) or _finish_reason(response) == "length"):
                info = await self._catalog.info(settings.model)
            attempt_usage = Usage.from_response(
                response.data.get("usage"),
                info.prompt_price if info else None,
                info.completion_price if info else None,
            )
            usage = usage + attempt_usage
            message = response.data["choices"][0]["message"]
            finish = _finish_reason(response)
            attempt = Attempt(
                number=len(attempts) + 1,
                mode=mode.name,
                usage=attempt_usage,
                latency=response.elapsed,
                finish_reason=finish,
                generation_id=response.data.get("id"),
            )
            attempts.append(attempt)
            answer = mode.read(message)
            if answer.refusal is not None:
                attempt.problem = "refused"
                raise self._annotate(RefusalError(answer.refusal, raw=answer.text), attempts, usage)
            if finish == "length":
                attempt.problem = "cut off at max_tokens"
                if length_retried:
                    error = OutputTruncatedError(
                        "the answer was cut off by the token limit twice; no record was made",
                        raw=_shorten(answer.text),
                    )
                    raise self._annotate(error, attempts, usage)
                length_retried = True
                settings = self._more_room(settings, info, answer.text)
                continue
            try:
                parsed = schema.parse_result(answer.text or "")
            except OutputError as exc:
                attempt.problem = exc.message
                last_error, last_raw = exc, answer.text
                if reasks >= settings.max_retries:
                    break
                reasks += 1
                log.info("answer %d invalid (%s); asking again", len(attempts), exc.message)
                followup = mode.reask(message, _feedback(exc, schema))  # only the latest failure is kept
                continue
            return ExtractResult(
                value=parsed.value,
                model=str(response.data.get("model") or settings.model),
                mode=mode.name,
                attempts=attempts,
                repairs=parsed.repairs,
                usage=usage,
                latency=time.perf_counter() - started,
                finish_reason=finish,
                generation_id=attempt.generation_id,
                fallbacks=fallbacks,
            )
        assert last_error is not None  # the loop only breaks after a failed parse
        final = OutputInvalidError(
            f"the answer was still invalid after {len(attempts)} attempts ({reasks} re-asks)",
            last_error.errors or [ErrorDetail("$", last_error.message)],
            raw=_shorten(last_raw),
            repairs=last_error.repairs,
        )
        raise self._annotate(final, attempts, usage)

    def _more_room(self, settings: _Settings, info: ModelInfo | None, text: str | None) -> _Settings:
        """Settings for one more try after a `length` cut: twice the tokens, within the model's limit."""
        current = settings.params.get("max_tokens")
        if not isinstance(current, int):
            current = max(1024, len(text or "") // 2)
        wanted = current * 2
        limit = info.max_completion_tokens if info and info.max_completion_tokens else None
        if limit is None and info and info.context_length:
            limit = info.context_length // 2
        if limit is not None:
            wanted = min(wanted, limit)
        log.info("answer cut off at max_tokens=%s; trying once with max_tokens=%d", current, wanted)
        return settings.merged({"max_tokens": wanted})

    def _annotate(self, exc: ExtractorError, attempts: list[Attempt], usage: Usage) -> ExtractorError:
        """`exc` carrying what the failed extraction cost, its message free of the API key."""
        exc.attempts = list(attempts)
        exc.usage = usage
        key = self._secret.get() if self._secret else None
        if key and key in str(exc):
            exc.args = tuple(redact(str(a), key) for a in exc.args)
        return exc


def _finish_reason(response: ChatResponse) -> str | None:
    reason = response.data["choices"][0].get("finish_reason")
    return reason if isinstance(reason, str) else None


def _needs_prices(response: ChatResponse) -> bool:
    usage = response.data.get("usage")
    return not (isinstance(usage, Mapping) and isinstance(usage.get("cost"), int | float))
