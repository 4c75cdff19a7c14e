"""HTTP to an OpenAI-compatible endpoint: one client per event loop, polite retries, typed errors.

Transient failures (408, 409, 425, 429, 5xx, 524, 529, connection errors, timeouts, a 200 whose
body carries an error) are retried with exponential backoff and jitter, honouring `Retry-After`
and `X-RateLimit-Reset`. Other statuses raise at once. `timeout` bounds each attempt as a whole
(connecting, sending, and reading the whole answer or stream); an attempt that ran out of time once
connected is tried once more at most, as the endpoint may still be working on (and billing) it,
while failures to connect keep the retry policy. An answer larger than `max_response_bytes`
(decompressed) is not read past the limit. The API key is sent in the `Authorization` header only,
only to the endpoint it is meant for, and never appears in an error message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import errno
import json
import logging
import os
import socket
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pydantic_core
from httpx_aiohttp import HttpxAiohttpClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from .._secret import Secret, redact
from ..errors import (
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
    ResponseTooLargeError,
    ServerError,
    TransientResponseError,
    UnknownHostError,
)
from ..sources.tokens import estimate_tokens
from .run_context import RunContext, current_run
from .sse import StreamAssembler, parse_sse_line

if TYPE_CHECKING:
    from ..observe.events import RequestWatch

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ChatResponse",
    "RetryPolicy",
    "Secret",
    "Transport",
    "api_key_for",
    "provider_key_variable",
    "redact",
]

log = logging.getLogger("extractor")
R = TypeVar("R")

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 524, 529})
#: the largest answer read (decompressed), by default
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: The largest file `download` reads (a provider batch's output file: 50,000 answers fit well within it).
FILE_LIMIT = 2 * 1024 * 1024 * 1024
#: attempts of one call that may run out of time once connected (the endpoint may be working on each)
MAX_ANSWER_TIMEOUTS = 2
#: the provider variables, and the one host each key is sent to
_PROVIDER_KEYS = {"openrouter.ai": "OPENROUTER_API_KEY", "api.openai.com": "OPENAI_API_KEY"}
_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: ModerationError,
    404: NotFoundError,
    408: APITimeoutError,
    429: RateLimitError,
}


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
#: the share of `timeout` that waiting for a connection (pool, then connect) may take at most: a
#: connection-phase failure is then reported as one, before the attempt's deadline
_CONNECT_SHARE = 0.9


def provider_key_variable(base_url: str) -> str | None:
    """The provider's own variable whose key goes to `base_url`'s host (`OPENROUTER_API_KEY` for openrouter.ai,
    `OPENAI_API_KEY` for api.openai.com), or None for any other endpoint."""
    try:
        host = urlsplit(base_url).hostname
    except ValueError:  # not a URL: no provider's key goes there
        return None
    return _PROVIDER_KEYS.get(host or "")


def api_key_for(base_url: str, api_key: str | None = None) -> str | None:
    """The API key to send to `base_url`, or None: `api_key`, else `$EXTRACTOR_API_KEY` (either goes to
    whatever endpoint is configured), else a provider's own variable, only to that provider's host:
    `$OPENROUTER_API_KEY` to openrouter.ai, `$OPENAI_API_KEY` to api.openai.com. Any other endpoint
    (a local server, another provider) gets no key it was not given."""
    key = api_key or os.environ.get("EXTRACTOR_API_KEY")
    if not key:
        variable = provider_key_variable(base_url)
        key = os.environ.get(variable) if variable else None
    return key or None


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


def _unreachable(exc: BaseException, host: str) -> tuple[str, type[EndpointUnreachableError]] | None:
    """Why the connection could not even be opened (`connection refused`, `unknown host (...)`) and the error
    that says so (`UnknownHostError` when the name does not exist: not retried), or None.

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
                return f"unknown host ({host} does not resolve)", UnknownHostError
            # the resolver could not answer (no DNS server reached...): that may pass, as any connection failure
            return f"unknown host ({host} could not be resolved: {link.strerror or link})", EndpointUnreachableError
        if isinstance(link, OSError) and link.errno in _UNREACHABLE_ERRNOS:
            return _UNREACHABLE_ERRNOS[link.errno], EndpointUnreachableError
        inner = getattr(link, "os_error", None)  # aiohttp's ClientConnectorError keeps it there
        if isinstance(inner, OSError) and id(inner) not in seen:
            link = inner
            continue
        link = link.__cause__ or link.__context__
    return None


def _is_transient(exc: BaseException, answer_timeouts: int = 0) -> bool:
    """Whether `exc` is worth another try, for a call that has had `answer_timeouts` attempts run out
    of time once connected: not once that reaches `MAX_ANSWER_TIMEOUTS` (the endpoint may still be
    generating, and billing, each of them); never an answer too large (the same request brings it again), nor
    a host name that does not exist."""
    if answer_timeouts >= MAX_ANSWER_TIMEOUTS or isinstance(exc, ResponseTooLargeError | UnknownHostError):
        return False
    if isinstance(exc, APITimeoutError | APIConnectionError | TransientResponseError):
        return True
    return isinstance(exc, APIError) and exc.status in TRANSIENT_STATUSES


class _Call:
    """What the attempts of one call (a request and its retries) have met so far."""

    __slots__ = ("answer_timeouts",)

    def __init__(self) -> None:
        #: attempts that ran out of time once connected to the endpoint (it may be working on them)
        self.answer_timeouts = 0

    def retryable(self, exc: BaseException) -> bool:
        return _is_transient(exc, self.answer_timeouts)


class _Lines:
    """The lines of an event stream, from its bytes as they come: UTF-8, each line ended by CRLF, LF or
    CR (as the server-sent-events format says); a long line is joined once, when its end arrives."""

    __slots__ = ("_cr", "_decoder", "_pending")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending: list[str] = []
        self._cr = False  # the last piece ended with CR: a LF right after it ends no other line

    def feed(self, data: bytes) -> list[str]:
        """The lines that `data` completes."""
        text = self._decoder.decode(data)
        if self._cr and text:
            self._cr = False
            if text[0] == "\n":
                text = text[1:]
        if "\n" not in text and "\r" not in text:
            if text:
                self._pending.append(text)
            return []
        if "\r" in text:
            self._cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = "".join(self._pending)
            self._pending = []
        rest = lines.pop()
        if rest:
            self._pending.append(rest)
        return lines

    def flush(self) -> list[str]:
        """The last line, when the stream ends without ending it."""
        text = "".join(self._pending) + self._decoder.decode(b"", True)
        self._pending = []
        return [text] if text else []


class _Expired(Exception):
    """An attempt ran past its deadline (raised by `_Deadline` in place of the cancellation)."""


class _Deadline:
    """The time limit of one attempt, as a `with` block: past it, the task running the attempt is
    cancelled, and the failure leaves the block as `_Expired`. A cancellation from elsewhere
    goes on as it is (on Python 3.11+; 3.10 cannot tell one that comes at the same moment). One
    timer per event loop watches every deadline in flight (`_Watchdog`): a timer per request (as
    `asyncio.timeout` sets) cost some 5% of the CPU time of a quick request."""

    __slots__ = ("_cancelling", "_task", "_watchdog", "at", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False

    def __enter__(self) -> _Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - the HTTP clients need a task anyway
            raise RuntimeError("a request deadline needs a running task")
        self._task = weakref.ref(task)  # a task abandoned with its loop is not kept alive here
        self._cancelling = 0
        if sys.version_info >= (3, 11):
            self._cancelling = task.cancelling()
        self.at = loop.time() + self.seconds
        self._watchdog = _watchdog(loop)
        self._watchdog.add(self)
        return self

    def expire(self) -> None:
        """Called by the watchdog once the deadline has passed: cancel the attempt."""
        task = self._task()
        if task is not None:
            self.expired = True
            task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._watchdog.discard(self)
        task = self._task()
        if not self.expired or task is None:
            return
        if sys.version_info >= (3, 11) and task.uncancel() > self._cancelling:
            return  # cancelled from elsewhere as well: that cancellation goes on
        if exc_type is not None:  # the cancellation, or what the HTTP client made of it
            raise _Expired from None


class _Watchdog:
    """The deadlines in flight on one event loop, and the one timer that expires them: it is set for
    the earliest deadline when that comes before the timer, otherwise left alone (it then finds none
    due and is set for the next), and cancelled when no deadline is left (the timer holds the loop)."""

    __slots__ = ("_deadlines", "_timer")

    def __init__(self) -> None:
        self._deadlines: set[_Deadline] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, deadline: _Deadline) -> None:
        self._deadlines.add(deadline)
        timer = self._timer
        if timer is None or deadline.at < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = asyncio.get_running_loop().call_at(deadline.at, self._check)

    def discard(self, deadline: _Deadline) -> None:
        self._deadlines.discard(deadline)
        if not self._deadlines and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + 0.001  # a timer may fire a hair early
        for deadline in [d for d in self._deadlines if d.at <= now]:
            self._deadlines.discard(deadline)
            deadline.expire()
        if self._deadlines:
            self._timer = loop.call_at(min(d.at for d in self._deadlines), self._check)


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = weakref.WeakKeyDictionary()


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    """The watchdog of `loop` (it holds no reference to the loop: it goes with it)."""
    watchdog = _WATCHDOGS.get(loop)
    if watchdog is None:
        watchdog = _WATCHDOGS[loop] = _Watchdog()
    return watchdog


def _size(count: int) -> str:
    """A byte count as people write it: `64 MiB`, `512 KiB`, `1000 bytes`."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count} bytes"


class Transport:
    """POSTs chat completions and GETs the model list, with retries; one httpx client per event loop.

    `timeout` (seconds) bounds each attempt as a whole: connecting, sending, and reading the whole
    answer (or the whole stream); `max_response_bytes` the size of an answer, decompressed.
    """

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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = Secret(api_key) if api_key else None
        self._headers = {"User-Agent": "extractor/0.1", **(headers or {})}
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self.max_response_bytes = max_response_bytes
        self.http_backend = http_backend
        self._http_transport = http_transport
        self._urls: dict[str, httpx.URL] = {}
        #: whether streams ask for a usage chunk (`stream_options`); False once the endpoint refused them
        self._usage_in_streams = True
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

    @property
    def _pool_timeout(self) -> float:
        """Seconds an attempt may wait for a free connection (and, with aiohttp, open it)."""
        return self.timeout * _CONNECT_SHARE

    @property
    def _connect_timeout(self) -> float:
        """Seconds opening a connection may take."""
        return min(15.0, self.timeout * _CONNECT_SHARE)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
            timeout = httpx.Timeout(self.timeout, connect=self._connect_timeout, pool=self._pool_timeout)
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

    async def _retried(self, once: Callable[[_Call], Awaitable[R]], watch: RequestWatch | None = None) -> R:
        """`once(call)`, tried again after transient failures as the retry policy says; `call` keeps
        count of the attempts that ran out of time once connected, and stops the retries at the second.
        `watch` hears of each retry (`Retried`) before its wait."""
        call = _Call()
        try:
            return await once(call)  # the common case, without the retry machinery
        except APIError as first:
            if not call.retryable(first) or self.retry.attempts <= 1:
                raise
            failed: APIError | None = first
        options: dict[str, Any] = {"before_sleep": self._log_retry}
        if watch is not None:
            pending: list[BaseException | None] = []

            def before_sleep(state: RetryCallState) -> None:
                self._log_retry(state)
                pending.append(state.outcome.exception() if state.outcome else None)

            async def sleep(seconds: float) -> None:
                await watch.retrying(pending.pop() if pending else None, seconds)
                await asyncio.sleep(seconds)

            options = {"before_sleep": before_sleep, "sleep": sleep}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=retry_if_exception(call.retryable),
            reraise=True,
            **options,
        )
        async for attempt in retrying:
            with attempt:
                if failed is not None:  # hand the first failure to tenacity: it counts and waits
                    earlier, failed = failed, None
                    raise earlier
                return await once(call)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        body: Any | None,
        call: _Call,
        *,
        upload: tuple[Mapping[str, str], tuple[str, bytes, str]] | None = None,
        raw_answer: bool = False,
    ) -> tuple[Any, float]:
        """One exchange: `body` sent as JSON (bytes: as they are), or `upload` (form fields and one file) as
        multipart; the answer parsed as JSON, or its bytes as they are (`raw_answer`)."""
        client = self._client()
        if upload is not None:
            fields, file = upload
            request = client.build_request(method, self._url(path), data=dict(fields), files={"file": file})
        elif body is None:
            request = client.build_request(method, self._url(path))
        else:
            content = body if isinstance(body, bytes) else pydantic_core.to_json(body)
            request = client.build_request(method, self._url(path), content=content, headers=_JSON_HEADERS)
        started = time.perf_counter()
        try:
            with _Deadline(self.timeout):  # the whole exchange: connection, request, the whole answer
                response = await client.send(request, stream=True)
                try:
                    raw = await self._read(response, FILE_LIMIT if raw_answer else None)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise self._connection_error(exc, call) from None
        except _Expired:
            raise self._answer_timeout(call) from None
        elapsed = time.perf_counter() - started
        try:
            data = json.loads(raw) if raw and not (raw_answer and response.status_code < 400) else None
        except ValueError:
            data = None
        if response.status_code >= 400:
            raise self._status_error(response, data, raw)
        if raw_answer:
            return raw, elapsed
        if data is None:
            excerpt = redact(raw[:200].decode("utf-8", "replace"), self._key)
            raise TransientResponseError(
                f"{self.host} answered {response.status_code} with a body that is not JSON: {excerpt!r}"
            )
        return data, elapsed

    async def _read(self, response: httpx.Response, limit: int | None = None) -> bytes:
        """The body of `response`, decompressed; `ResponseTooLargeError` past `max_response_bytes`."""
        parts: list[bytes] = []
        size = 0
        async for part in response.aiter_bytes():
            size += len(part)
            if size > (limit or self.max_response_bytes):
                raise self._too_large(response, limit)
            parts.append(part)
        return b"".join(parts)

    def _too_large(self, response: httpx.Response, limit: int | None = None) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the answer from {self.host} is larger than {_size(limit or self.max_response_bytes)}: stopped reading",
            status=response.status_code,
        )

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(f"{self.base_url}/{path.lstrip('/')}")
        return url

    def _answer_timeout(self, call: _Call) -> APITimeoutError:
        """The error for an attempt that ran out of time once connected: the endpoint may be working on
        it (and billing it), so it counts towards the call's `MAX_ANSWER_TIMEOUTS`."""
        call.answer_timeouts += 1
        message = f"no complete answer from {self.host} within {self.timeout:g} s"
        if call.answer_timeouts >= MAX_ANSWER_TIMEOUTS and self.retry.attempts > call.answer_timeouts:
            message += (
                f" ({call.answer_timeouts} times: not tried again, as the endpoint may still be working on "
                "the requests it has)"
            )
        return APITimeoutError(message)

    def _connection_error(self, exc: httpx.HTTPError, call: _Call) -> APIError:
        """The library's error for an httpx failure with no HTTP answer (all are transient): the
        endpoint cannot be reached, gave no connection or no answer in time, or closed the connection.
        Only a timeout once connected counts as an answer timeout of `call`."""
        unreachable = _unreachable(exc, urlsplit(self.base_url).hostname or self.host)
        if unreachable is not None:
            reason, error = unreachable
            return error(f"cannot reach {redact(self.base_url, self._key)}: {reason}")
        if isinstance(exc, httpx.TimeoutException) and not _disconnected(exc):
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                limit = self._connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self._pool_timeout
                return APITimeoutError(f"no connection to {self.host} within {limit:g} s ({type(exc).__name__})")
            return self._answer_timeout(call)
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

    async def chat(self, body: Mapping[str, Any], watch: RequestWatch | None = None) -> ChatResponse:
        """POST /chat/completions; a 200 carrying an error (or no choices) counts as transient. `watch`
        hears of each request and its answer (`RequestSent`, `ResponseReceived`) and of each retry."""
        content = pydantic_core.to_json(dict(body))

        async def once(call: _Call) -> ChatResponse:
            run = current_run()
            if run is not None:
                await run.before_request(body)
            if watch is not None:
                await watch.sent(body, len(content))
            started = time.perf_counter()
            try:
                data, elapsed = await self._once("POST", "chat/completions", content, call)
            except APIError as exc:
                if run is not None:
                    run.after_response(exc.status, None)
                if watch is not None:
                    await watch.received(exc.status, time.perf_counter() - started, error=exc)
                raise
            if run is not None:
                usage = data.get("usage") if isinstance(data, Mapping) else None
                run.after_response(200, usage if isinstance(usage, Mapping) else None)
            try:
                _check_body(data, self.host, self._key)
            except TransientResponseError as exc:
                if watch is not None:
                    await watch.received(200, elapsed, data, exc)
                raise
            if watch is not None:
                await watch.received(200, elapsed, data)
            return ChatResponse(data, elapsed)

        return await self._retried(once, watch)

    async def stream_chat(
        self, body: Mapping[str, Any], on_piece: Callable[[str, str, int], None], watch: RequestWatch | None = None
    ) -> ChatResponse:
        """POST /chat/completions with `"stream": true`, reading the server-sent events.

        `on_piece(kind, text, attempt)` hears every text piece as it arrives (kind: content, refusal,
        reasoning or arguments). A stream that breaks off (a dropped connection, an error chunk, an
        end without the answer's end) is a transient failure, retried from the start: `attempt`
        then counts up. The whole stream must arrive within `timeout`. Returns the assembled
        completion, shaped like a non-streamed one. `watch` hears of each request, answer and retry.
        """
        tries = 0

        async def once(call: _Call) -> ChatResponse:
            nonlocal tries
            tries += 1
            attempt = tries
            run = current_run()
            if run is not None:
                await run.before_request(body)
            assembler = StreamAssembler(lambda kind, piece: on_piece(kind, piece, attempt))
            asked = self._usage_in_streams and "stream_options" not in body
            content = pydantic_core.to_json({**body, "stream": True, **(_STREAM_USAGE if asked else {})})
            if watch is not None:
                await watch.sent(body, len(content), stream=True)
            started = time.perf_counter()
            try:
                try:
                    with _Deadline(self.timeout):
                        await self._read_stream(content, assembler, run)
                except httpx.HTTPError as exc:
                    raise self._connection_error(exc, call) from None
                except _Expired:
                    raise self._answer_timeout(call) from None
                if not assembler.done and assembler.finish_reason is None:
                    raise APIConnectionError(f"the stream from {self.host} ended before the answer did")
            except BadRequestError as exc:
                if asked and "stream_options" in (exc.body or "").lower():  # the endpoint takes none: without them
                    log.info("%s refuses stream_options (%s): streams go without them", self.host, exc.body)
                    self._usage_in_streams = False
                    return await once(call)
                if watch is not None:
                    await watch.received(exc.status, time.perf_counter() - started, error=exc)
                raise
            except APIError as exc:
                if watch is not None:
                    await watch.received(exc.status, time.perf_counter() - started, error=exc)
                raise
            if assembler.usage is None:  # no usage chunk came: estimated, never free
                assembler.usage = _estimated_usage(content, assembler)
            if run is not None:
                run.after_response(200, assembler.usage)
            response = ChatResponse(assembler.response(), time.perf_counter() - started)
            if watch is not None:
                await watch.received(200, response.elapsed, response.data)
            return response

        return await self._retried(once, watch)

    async def _read_stream(self, content: bytes, assembler: StreamAssembler, run: RunContext | None) -> None:
        """One streamed request: its events into `assembler`, as far as `[DONE]` or the end of the body."""
        async with self._client().stream(
            "POST", self._url("chat/completions"), content=content, headers=_JSON_HEADERS
        ) as response:
            if response.status_code >= 400:
                raw = await self._read(response)
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                error = self._status_error(response, data, raw)
                if run is not None:
                    run.after_response(error.status, None)
                raise error
            lines = _Lines()
            size = 0
            async for part in response.aiter_bytes():
                size += len(part)
                if size > self.max_response_bytes:
                    raise self._too_large(response)
                for line in lines.feed(part):
                    if self._event(line, assembler):
                        return
            for line in lines.flush():
                if self._event(line, assembler):
                    return

    @staticmethod
    def _event(line: str, assembler: StreamAssembler) -> bool:
        """Add the event on `line` to `assembler`; whether it ended the stream (`[DONE]`)."""
        event = parse_sse_line(line)
        if event is None:
            return False
        if event[0] == "done":
            assembler.done = True
            return True
        assembler.add(event[1])
        return False

    async def models(self) -> list[dict[str, Any]]:
        """GET /models: the endpoint's model list (OpenRouter's shape; OpenAI's works too)."""
        data, _ = await self._retried(lambda call: self._once("GET", "models", None, call))
        items = data.get("data") if isinstance(data, Mapping) else data
        return [m for m in items if isinstance(m, dict)] if isinstance(items, list) else []

    async def api(self, method: str, path: str, body: Mapping[str, Any] | None = None, *, retry: bool = True) -> Any:
        """A JSON request to another endpoint of the API (`files`, `batches`, ...), retried like the others
        (`retry=False`: tried once, for a request that must not be repeated blindly, as creating a batch)."""
        if not retry:
            data, _ = await self._once(method, path, body, _Call())
            return data
        data, _ = await self._retried(lambda call: self._once(method, path, body, call))
        return data

    async def upload(self, path: str, fields: Mapping[str, str], filename: str, content: bytes) -> Any:
        """POST `content` as the multipart file `filename` with form `fields` (e.g. `files`, `purpose=batch`)."""
        file = (filename, content, "application/jsonl")
        data, _ = await self._retried(lambda call: self._once("POST", path, None, call, upload=(fields, file)))
        return data

    async def download(self, path: str) -> bytes:
        """The bytes GET `path` answers (a file's content), within `max_response_bytes`."""
        raw, _ = await self._retried(lambda call: self._once("GET", path, None, call, raw_answer=True))
        return bytes(raw)


#: what a stream asks for besides its answer: a last chunk with the usage (OpenAI and llama.cpp send none
#: without it; OpenRouter sends one anyway)
_STREAM_USAGE: dict[str, Any] = {"stream_options": {"include_usage": True}}


def _estimated_usage(request: bytes, assembler: StreamAssembler) -> dict[str, Any]:
    """The usage of a stream that gave none, estimated from the request and the answer (erring high), and
    marked `estimated`."""
    message = assembler.message()
    answer = "".join(
        [str(message.get(key) or "") for key in ("content", "refusal", "reasoning")]
        + [str(call["function"]["arguments"]) for call in message.get("tool_calls") or []]
    )
    prompt = estimate_tokens(request.decode("utf-8", "replace"))
    completion = estimate_tokens(answer)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "estimated": True,
    }


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
