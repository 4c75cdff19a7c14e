"""HTTP to an OpenAI-compatible endpoint: one client per event loop, polite retries, typed errors.

Transient failures (408, 409, 425, 429, 5xx, 524, 529, connection errors, timeouts, a 200 whose
body carries an error) are retried with exponential backoff and jitter, honouring `Retry-After`
and `X-RateLimit-Reset`. Other statuses raise at once. The API key is sent in the
`Authorization` header only and never appears in an error message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import logging
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pydantic_core
from httpx_aiohttp import HttpxAiohttpClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EndpointUnreachableError,
    ModerationError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ServerError,
    TransientResponseError,
)
from .hooks import current_hooks
from .sse import StreamAssembler, parse_sse_line

__all__ = ["ChatResponse", "RetryPolicy", "Secret", "Transport", "redact"]

log = logging.getLogger("extractor")
R = TypeVar("R")

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 524, 529})
_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: ModerationError,
    404: NotFoundError,
    408: APITimeoutError,
    429: RateLimitError,
}


class Secret:
    """A value (the API key) that shows as `***` in every repr, str and `vars()` dump."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not pickled")


class _BearerAuth(httpx.Auth):
    """Adds `Authorization: Bearer <key>` to each request, keeping the key out of client headers."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._key.get()}"
        yield request


class _NoCookies(httpx.Cookies):
    """An always-empty cookie jar: an API client keeps no cookies (and skips their per-response cost)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _WithoutCookies:
    """A client mixin: no cookie jar."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: Any) -> None:
        return None


class _Client(_WithoutCookies, httpx.AsyncClient):
    """httpx's own client and transport (or a transport given by the caller), without cookies."""


class _AiohttpClient(_WithoutCookies, HttpxAiohttpClient):
    """httpx's API over an aiohttp transport (proxies from the environment honoured), without cookies."""


_NO_COOKIES = _NoCookies()
_JSON_HEADERS = {"Content-Type": "application/json"}


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` (and of its long fragments) replaced by `***`."""
    if not secret or len(secret) < 4:
        return text
    out = text.replace(secret, "***")
    if len(secret) >= 16:  # a key cut in two by a provider's message still leaks half of it
        for size in (len(secret) // 2, 12):
            for start in range(0, len(secret) - size + 1, max(1, size // 2)):
                out = out.replace(secret[start : start + size], "***")
    return out


@dataclass
class RetryPolicy:
    """How transient failures are retried: `attempts` tries in all, exponential backoff with jitter
    between `base_delay` and `max_delay`, a server's `Retry-After` honoured up to `max_retry_after`."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0


@dataclass
class ChatResponse:
    """A chat completion as received: the JSON body and the time it took."""

    data: dict[str, Any]
    elapsed: float


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or a date) or `X-RateLimit-Reset` (epoch s or ms)."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            number = float(reset)
        except ValueError:
            return None
        if number > 1e12:  # epoch milliseconds (OpenRouter)
            return max(0.0, number / 1000 - time.time())
        if number > 1e9:  # epoch seconds
            return max(0.0, number - time.time())
        return max(0.0, number)
    return None


def _error_message(body: Any) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            metadata = error.get("metadata")
            raw = metadata.get("raw") if isinstance(metadata, Mapping) else None
            text = str(message) if message else json.dumps(error)[:300]
            return f"{text} ({str(raw)[:300]})" if raw else text
        if isinstance(error, str):
            return error
    return ""


def _disconnected(exc: httpx.TimeoutException) -> bool:
    """Whether a "timeout" is really a dropped connection (the aiohttp transport reports both alike)."""
    cause = exc.__cause__
    return (
        cause is not None
        and type(cause).__module__.startswith("aiohttp")
        and not isinstance(cause, asyncio.TimeoutError | TimeoutError)
    )


_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
}
#: getaddrinfo's "this name does not exist" (other codes, like a DNS server that did not answer, say so)
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _unreachable(exc: BaseException, host: str) -> str | None:
    """Why the connection could not even be opened (`connection refused`, `unknown host (...)`), or None.

    Both HTTP backends hide the reason in the exception chain: the aiohttp transport reports every
    connection failure as an `httpx.ConnectTimeout`, httpx's own as a `ConnectError`; the socket
    error (`ConnectionRefusedError`, `socket.gaierror`) sits below, as the cause or (httpcore raises
    `from None`) the suppressed context.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, socket.gaierror):
            if link.errno in _NO_SUCH_NAME:
                return f"unknown host ({host} does not resolve)"
            return f"unknown host ({host} could not be resolved: {link.strerror or link})"
        if isinstance(link, OSError) and link.errno in _UNREACHABLE_ERRNOS:
            return _UNREACHABLE_ERRNOS[link.errno]
        inner = getattr(link, "os_error", None)  # aiohttp's ClientConnectorError keeps it there
        if isinstance(inner, OSError) and id(inner) not in seen:
            link = inner
            continue
        link = link.__cause__ or link.__context__
    return None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, APITimeoutError | APIConnectionError | TransientResponseError):
        return True
    return isinstance(exc, APIError) and exc.status in TRANSIENT_STATUSES


class Transport:
    """POSTs chat completions and GETs the model list, with retries; one httpx client per event loop."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 256,
        http_backend: str = "aiohttp",
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = Secret(api_key) if api_key else None
        self._headers = {"User-Agent": "extractor/0.1", **(headers or {})}
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self.http_backend = http_backend
        self._http_transport = http_transport
        self._urls: dict[str, httpx.URL] = {}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        weakref.finalize(self, _close_orphaned, self._clients)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, key={'set' if self._secret else 'none'})"

    @property
    def _key(self) -> str | None:
        return self._secret.get() if self._secret else None

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0))
            auth = _BearerAuth(self._secret) if self._secret else None
            factory = _AiohttpClient if self.http_backend == "aiohttp" and self._http_transport is None else _Client
            client = factory(
                headers=self._headers, auth=auth, timeout=timeout, limits=limits, transport=self._http_transport
            )
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # --- requests -------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, APIError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.max_retry_after)
        backoff = wait_random_exponential(multiplier=self.retry.base_delay, max=self.retry.max_delay)
        return float(backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("transient failure (%s); retry %d in %.1f s", exc, state.attempt_number, wait)

    async def _retried(self, once: Callable[[], Awaitable[R]]) -> R:
        """`once()`, tried again after transient failures as the retry policy says."""
        try:
            return await once()  # the common case, without the retry machinery
        except APIError as first:
            if not _is_transient(first) or self.retry.attempts <= 1:
                raise
            failed: APIError | None = first
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if failed is not None:  # hand the first failure to tenacity: it counts and waits
                    earlier, failed = failed, None
                    raise earlier
                return await once()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _once(self, method: str, path: str, body: Any | None) -> tuple[Any, float]:
        url = self._url(path)
        content = pydantic_core.to_json(body) if body is not None else None
        headers = _JSON_HEADERS if body is not None else None
        started = time.perf_counter()
        try:
            response = await self._client().request(method, url, content=content, headers=headers)
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        elapsed = time.perf_counter() - started
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if response.status_code >= 400:
            raise self._status_error(response, data, raw)
        if data is None:
            excerpt = redact(raw[:200].decode("utf-8", "replace"), self._key)
            raise TransientResponseError(
                f"{self.host} answered {response.status_code} with a body that is not JSON: {excerpt!r}"
            )
        return data, elapsed

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(f"{self.base_url}/{path.lstrip('/')}")
        return url

    def _connection_error(self, exc: httpx.HTTPError) -> APIError:
        """The library's error for an httpx failure with no HTTP answer (all are transient): the
        endpoint cannot be reached, did not answer in time, or closed the connection."""
        reason = _unreachable(exc, urlsplit(self.base_url).hostname or self.host)
        if reason is not None:
            return EndpointUnreachableError(f"cannot reach {redact(self.base_url, self._key)}: {reason}")
        if isinstance(exc, httpx.TimeoutException) and not _disconnected(exc):
            return APITimeoutError(f"no answer from {self.host} within {self.timeout:g} s ({type(exc).__name__})")
        if isinstance(exc, httpx.TimeoutException):
            return APIConnectionError(f"{self.host} closed the connection without an answer")
        detail = redact(str(exc) or type(exc).__name__, self._key)
        return APIConnectionError(f"connection to {self.host} failed: {detail}")

    def _status_error(self, response: httpx.Response, data: Any, raw: bytes) -> APIError:
        status = response.status_code
        message = _error_message(data) or raw[:300].decode("utf-8", "replace").strip() or response.reason_phrase
        message = redact(message, self._key)
        cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIError)
        return cls(
            f"{status} from {self.host}: {message}",
            status=status,
            body=message,
            retry_after=_retry_after(response.headers),
        )

    async def chat(self, body: Mapping[str, Any]) -> ChatResponse:
        """POST /chat/completions; a 200 carrying an error (or no choices) counts as transient."""

        async def once() -> ChatResponse:
            hooks = current_hooks()
            if hooks is not None:
                await hooks.before_request(body)
            try:
                data, elapsed = await self._once("POST", "chat/completions", dict(body))
            except APIError as exc:
                if hooks is not None:
                    hooks.after_response(exc.status, None)
                raise
            if hooks is not None:
                usage = data.get("usage") if isinstance(data, Mapping) else None
                hooks.after_response(200, usage if isinstance(usage, Mapping) else None)
            _check_body(data, self.host, self._key)
            return ChatResponse(data, elapsed)

        return await self._retried(once)

    async def stream_chat(self, body: Mapping[str, Any], on_piece: Callable[[str, str, int], None]) -> ChatResponse:
        """POST /chat/completions with `"stream": true`, reading the server-sent events.

        `on_piece(kind, text, attempt)` hears every text piece as it arrives (kind: content, refusal,
        reasoning or arguments). A stream that breaks off (a dropped connection, an error chunk, an
        end without the answer's end) is a transient failure, retried from the start: `attempt`
        then counts up. Returns the assembled completion, shaped like a non-streamed one.
        """
        tries = 0

        async def once() -> ChatResponse:
            nonlocal tries
            tries += 1
            attempt = tries
            hooks = current_hooks()
            if hooks is not None:
                await hooks.before_request(body)
            assembler = StreamAssembler(lambda kind, piece: on_piece(kind, piece, attempt))
            payload = pydantic_core.to_json({**body, "stream": True})
            started = time.perf_counter()
            try:
                async with self._client().stream(
                    "POST", self._url("chat/completions"), content=payload, headers=_JSON_HEADERS
                ) as response:
                    if response.status_code >= 400:
                        raw = await response.aread()
                        try:
                            data = json.loads(raw) if raw else None
                        except ValueError:
                            data = None
                        error = self._status_error(response, data, raw)
                        if hooks is not None:
                            hooks.after_response(error.status, None)
                        raise error
                    async for line in response.aiter_lines():
                        event = parse_sse_line(line)
                        if event is None:
                            continue
                        if event[0] == "done":
                            assembler.done = True
                            break
                        assembler.add(event[1])
            except httpx.HTTPError as exc:
                raise self._connection_error(exc) from None
            if not assembler.done and assembler.finish_reason is None:
                raise APIConnectionError(f"the stream from {self.host} ended before the answer did")
            if hooks is not None:
                hooks.after_response(200, assembler.usage)
            return ChatResponse(assembler.response(), time.perf_counter() - started)

        return await self._retried(once)

    async def models(self) -> list[dict[str, Any]]:
        """GET /models: the endpoint's model list (OpenRouter's shape; OpenAI's works too)."""
        data, _ = await self._retried(lambda: self._once("GET", "models", None))
        items = data.get("data") if isinstance(data, Mapping) else data
        return [m for m in items if isinstance(m, dict)] if isinstance(items, list) else []


def _close_orphaned(clients: Mapping[asyncio.AbstractEventLoop, httpx.AsyncClient]) -> None:
    """Close the pools of a transport nobody holds any more, on loops that still run."""
    for loop, client in list(clients.items()):
        if loop.is_running() and not client.is_closed:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)


def _check_body(data: Any, host: str, key: str | None) -> None:
    """Raise `TransientResponseError` for a 200 that is not a usable completion."""
    if not isinstance(data, Mapping):
        raise TransientResponseError(f"{host} answered with JSON that is not a chat completion")
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else None
    if data.get("error") or (first is not None and first.get("finish_reason") == "error"):
        message = redact(_error_message(data) or "finish_reason: error", key)
        raise TransientResponseError(f"{host} answered 200 with an error: {message}")
    if first is None or not isinstance(first.get("message"), Mapping):
        raise TransientResponseError(f"{host} answered 200 without a choice to read")
