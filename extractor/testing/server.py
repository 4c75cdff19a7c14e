"""`TestServer`: an OpenAI-compatible (OpenRouter-shaped) HTTP server on loopback, for offline tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from .answers import (
    Answer,
    build_answer,
    completion_body,
    content_chunk,
    error_body,
    error_chunk,
    sse,
    stream_chunks,
)
from .batches import BatchEdit, BatchError, BatchScript, BatchStore
from .models import DEFAULT_MODEL, ModelSpec, model_object
from .multipart import parse_form
from .recorded import RecordedRequest
from .replies import Reply, status_phrase

__all__ = ["Handler", "TestServer"]

Handler = Callable[[RecordedRequest], "Reply | None"]
"""A `TestServer.handler`: given each chat-completions request, the reply to it, or None for the queue's next (or
the default answer)."""

logger = logging.getLogger("extractor.testing")

_JSON = "application/json"
_SHUTDOWN_TIMEOUT = 0.25  # seconds in-flight requests get when the server stops
_AUTH_ERROR = {"code": 401, "message": "No auth credentials found"}
_FILES = re.compile(r"/files(?:/(?P<id>[^/]+)(?P<content>/content)?)?$")
_BATCHES = re.compile(r"/batches(?:/(?P<id>[^/]+)(?P<cancel>/cancel)?)?$")


class TestServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, run on its own thread.

    Answers `POST .../chat/completions` with scripted replies (`handler`, then `queue`) or, by default,
    a schema-valid instance of the request's schema in the request's mode; lists `models` on
    `GET .../models`; records every request (unless `record` is False, for long benchmark runs).
    Usable from sync and async tests alike, as a (sync or async) context manager or with `start()` / `stop()`.

    `api_key`: required as `Authorization: Bearer <key>` on chat completions, files and batches (401
    otherwise); `latency`: seconds added before every chat-completions answer; `port`: 0 picks a free one.

    OpenAI's Files and Batches APIs for chat completions (`POST .../files`, `GET .../files/{id}[/content]`,
    `DELETE .../files/{id}`, `POST .../batches`, `GET .../batches[/{id}]`, `POST .../batches/{id}/cancel`):
    a batch is "validating" when created and advances at each `GET .../batches/{id}`; when it finishes,
    each line is answered as chat completions answer its body (handler, queue, default answer; never
    streamed, no latency) and recorded in `batch_lines`, not in `requests`. Scripting, read at each request:

    - `batches`: False answers 404 on every Files and Batches route (a provider without a batch API);
    - `batch_polls`: looks answered "in_progress" before the batch finishes (0: it finishes at the first);
    - `expire_batches`: True, the batch expires with no line answered; an int k, the first k lines are
      answered and the rest expire;
    - `fail_batches`: the batch fails validation at its first look ("failed", `errors`, no files);
    - `answered_before_cancel`: how many lines a batch answers when it is cancelled, before it stops;
    - `max_batch_lines` / `max_file_bytes`: the provider's limits; a file or batch over them is a 400;
    - `lose_batch_creates`: answers to `POST .../batches` lost after the batch was created (a 500, then a
      dropped connection, in turn): an int n, the next n creates; a float p, each create with probability p
      (drawn from a generator seeded with `fault_seed`);
    - `edit_batch_files`: given a finished batch's output and error lines (dicts), returns the lines its
      files hold instead (dicts, or strings written as they are): duplicates, malformed lines, odd errors;
    - `upload_faults`: how the next uploads (`POST .../files`) fail, one each: an HTTP status (the file is
      not stored), or None for a connection dropped after the file was stored.

    `stream_usage`: when a stream ends with its usage chunk: "always" (OpenRouter), "asked" (only with
    `stream_options: {"include_usage": true}`, as OpenAI and llama.cpp), "never", or "refused" (a 400 for
    any `stream_options`, as some older servers, and no usage chunk).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        models: list[ModelSpec] | None = None,
        api_key: str | None = None,
        latency: float = 0.0,
        port: int = 0,
        host: str = "127.0.0.1",
        record: bool = True,
    ) -> None:
        self.models: list[ModelSpec] = list(models) if models is not None else [ModelSpec(DEFAULT_MODEL)]
        self.api_key = api_key
        self.latency = latency
        self.host = host
        self.record = record
        self.handler: Handler | None = None
        self.batches = True
        self.batch_polls = 1
        self.expire_batches: bool | int = False
        self.fail_batches = False
        self.answered_before_cancel = 0
        self.max_batch_lines: int | None = None
        self.max_file_bytes: int | None = None
        self.lose_batch_creates: int | float = 0
        self.edit_batch_files: BatchEdit | None = None
        self.upload_faults: list[int | None] = []
        self.stream_usage: Literal["always", "asked", "never", "refused"] = "always"
        self.fault_seed = 0
        self._faults = random.Random(self.fault_seed)
        self._lost = 0
        self._store = BatchStore()
        self._port = port
        self._bound_port: int | None = None
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._generations = itertools.count(1)
        self._calls = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.BaseRunner | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._bound_port is not None

    @property
    def port(self) -> int:
        """The port the server listens on (raises RuntimeError before `start`)."""
        if self._bound_port is None:
            raise RuntimeError("the test server is not running: call start() first")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. `http://127.0.0.1:PORT/v1` (raises RuntimeError before `start`)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> None:
        """Start serving in a background daemon thread; returns once the port is bound. No-op when running."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run_loop, args=(loop,), name="extractor-test-server", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._bound_port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=30)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop serving and join the thread; in-flight requests are cut off shortly. No-op when stopped."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        try:
            if runner is not None:
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            self._loop = self._thread = self._runner = None
            self._bound_port = None

    def __enter__(self) -> TestServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> TestServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _serve(self) -> int:
        server = web.Server(self._dispatch, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        return int(runner.addresses[0][1])

    # --- scripting and recording ------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Script the next chat-completions answers, first in first out, one consumed per request."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies are not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The `POST .../chat/completions` requests received so far, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/chat/completions")]

    @property
    def batch_lines(self) -> list[RecordedRequest]:
        """The chat-completions requests of batch lines answered so far, in order (a copy)."""
        return self._store.lines

    def reset(self) -> None:
        """Forget the queued replies, the handler, the recorded requests and batch lines, files and batches."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
        self._store.clear()
        self.handler = None
        self._faults = random.Random(self.fault_seed)

    def _next_reply(self, request: RecordedRequest) -> Reply:
        handler = self.handler
        if handler is not None:
            reply = handler(request)
            if reply is not None:
                return reply
        with self._lock:
            return self._queue.popleft() if self._queue else Reply()

    def _spec(self, model: str | None) -> ModelSpec:
        for spec in self.models:
            if spec.id == model:
                return spec
        return self.models[0] if self.models else ModelSpec(model or DEFAULT_MODEL)

    # --- HTTP -----------------------------------------------------------------------------------

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            body = await request.content.read()
        except ConnectionError:  # the client went away mid-request: nothing to answer, nothing to log
            return _drop(request)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {name.lower(): value for name, value in request.headers.items()}
        recorded = RecordedRequest(request.method, request.path, headers, body, parsed, received=time.time())
        if self.record:
            with self._lock:
                self._requests.append(recorded)
        path = request.path.rstrip("/")
        if path.endswith("/chat/completions"):
            if request.method != "POST":
                return _json_error(405, "Method Not Allowed")
            return await self._chat(request, recorded)
        if path.endswith("/models"):
            if request.method != "GET":
                return _json_error(405, "Method Not Allowed")
            return _json_response(200, {"data": [model_object(spec) for spec in self.models]})
        route = _FILES.search(path) or _BATCHES.search(path)
        if route is None or not self.batches:
            return _json_error(404, "Not Found")
        if self.api_key is not None and recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return _json_response(401, {"error": dict(_AUTH_ERROR)})
        try:
            if route.re is _FILES:
                return self._files(request, recorded, route)
            return self._batches(request, recorded, route)
        except BatchError as exc:
            return _json_response(exc.status, exc.body())

    def _script(self) -> BatchScript:
        return BatchScript(
            polls=self.batch_polls,
            expire=self.expire_batches,
            fail=self.fail_batches,
            answered_before_cancel=self.answered_before_cancel,
            max_lines=self.max_batch_lines,
            max_bytes=self.max_file_bytes,
            record=self.record,
            edit=self.edit_batch_files,
        )

    def _files(self, request: web.BaseRequest, recorded: RecordedRequest, route: re.Match[str]) -> web.StreamResponse:
        file_id, content = route.group("id"), route.group("content")
        if file_id is None:
            _allow(request, "POST")
            fields = parse_form(recorded.headers.get("content-type", ""), recorded.body)
            if fields is None:
                raise BatchError(400, "The request must be multipart/form-data.")
            purpose = next((f.data.decode("utf-8", "replace") for f in fields if f.name == "purpose"), None)
            upload = next((f for f in fields if f.name == "file"), None)
            if purpose is None:
                raise BatchError(400, "The purpose field is required.", param="purpose")
            if upload is None:
                raise BatchError(400, "The file field is required.", param="file")
            filename = upload.filename or "upload.jsonl"
            fault = self.upload_faults.pop(0) if self.upload_faults else 0
            if fault:
                raise BatchError(fault, "the test server refused this upload (upload_faults)")
            stored = self._store.upload(filename, purpose, upload.data, self._script())
            if fault is None:
                return _drop(request)
            return _json_response(200, stored)
        if content is not None:
            _allow(request, "GET")
            data = self._store.file(file_id).data
            return web.Response(body=data, status=200, headers={"Content-Type": "application/octet-stream"})
        if request.method == "DELETE":
            return _json_response(200, self._store.delete(file_id))
        _allow(request, "GET")
        return _json_response(200, self._store.file(file_id).object())

    def _batches(self, request: web.BaseRequest, recorded: RecordedRequest, route: re.Match[str]) -> web.StreamResponse:
        batch_id, cancel = route.group("id"), route.group("cancel")
        if batch_id is None:
            if request.method == "GET":
                query = request.query
                return _json_response(200, self._store.page(query.get("limit"), query.get("after")))
            _allow(request, "POST")
            created = self._store.create(recorded.json, self._script())
            if self._lose_create():
                self._lost += 1
                if self._lost % 2:
                    return _json_error(500, "the test server lost this answer (lose_batch_creates)")
                return _drop(request)
            return _json_response(200, created)
        if cancel is not None:
            _allow(request, "POST")
            return _json_response(200, self._store.cancel(batch_id, self._script(), self._line_answer))
        _allow(request, "GET")
        return _json_response(200, self._store.look(batch_id, self._script(), self._line_answer))

    def _lose_create(self) -> bool:
        lose = self.lose_batch_creates
        if isinstance(lose, bool) or not lose:
            return False
        if isinstance(lose, int):
            self.lose_batch_creates = lose - 1
            return True
        return self._faults.random() < lose

    def _line_answer(self, recorded: RecordedRequest) -> tuple[int, Any]:
        """What chat completions answer a batch line's request: the status and JSON body, never streamed."""
        try:
            reply = self._next_reply(recorded)
        except Exception as exc:
            logger.exception("the test server's handler raised")
            return 500, error_body(500, None, f"the test server's handler raised {type(exc).__name__}: {exc}")
        if reply.drop:
            return 500, error_body(500, None, "the test server dropped the request (Reply.drop)")
        if reply.body is not None:
            try:
                return reply.status, json.loads(reply.body)
            except ValueError:
                return 500, error_body(500, None, "the test server's scripted body is not JSON (Reply.body)")
        if reply.status >= 400:
            return reply.status, error_body(reply.status, reply.error, status_phrase(reply.status))
        answer = self._answer(reply, recorded)
        return reply.status, completion_body(answer)

    def _answer(self, reply: Reply, recorded: RecordedRequest) -> Answer:
        generation = f"gen-{next(self._generations)}"
        return build_answer(reply, recorded, self._spec(recorded.model), generation, f"call_{next(self._calls)}")

    async def _chat(self, request: web.BaseRequest, recorded: RecordedRequest) -> web.StreamResponse:
        if self.api_key is not None and recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return _json_response(401, {"error": dict(_AUTH_ERROR)})
        try:
            reply = self._next_reply(recorded)
        except Exception as exc:
            logger.exception("the test server's handler raised")
            return _json_error(500, f"the test server's handler raised {type(exc).__name__}: {exc}")
        wait = self.latency + reply.delay
        if wait > 0:
            await asyncio.sleep(wait)
        if reply.drop:
            return _drop(request)
        if reply.body is not None:
            raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
            return web.Response(body=raw, status=reply.status, headers={"Content-Type": _JSON, **reply.headers})
        if reply.status >= 400:
            body = error_body(reply.status, reply.error, status_phrase(reply.status))
            return _json_response(reply.status, body, reply.headers)
        if not isinstance(recorded.json, dict):
            return _json_error(400, "the request body is not a JSON object")
        options = recorded.json.get("stream_options")
        if recorded.stream and options is not None and self.stream_usage == "refused":
            return _json_error(400, "Unrecognized request argument supplied: stream_options")
        answer = self._answer(reply, recorded)
        if recorded.stream:
            asked = isinstance(options, dict) and options.get("include_usage") is True
            usage = self.stream_usage == "always" or (self.stream_usage in ("asked", "refused") and asked)
            return await _stream(request, reply, answer, usage=usage)
        return _json_response(reply.status, completion_body(answer), reply.headers)


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": _JSON, **(headers or {})}
    )


def _json_error(status: int, message: str) -> web.Response:
    return _json_response(status, error_body(status, None, message))


def _allow(request: web.BaseRequest, method: str) -> None:
    if request.method != method:
        raise BatchError(405, f"Method {request.method} is not allowed here.")


def _drop(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection at once; aiohttp then gives up writing the (empty) response silently."""
    request.protocol.force_close()
    return web.Response()


async def _stream(request: web.BaseRequest, reply: Reply, answer: Answer, *, usage: bool = True) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **reply.headers}
    )
    chunks = stream_chunks(answer, reply.chunk_size)
    if not usage:  # the last chunk is the usage one (`choices: []`)
        chunks = [c for c in chunks if not ("usage" in c and not c.get("choices"))]
    error_after = 0 if answer.error is not None and reply.error_after is None else reply.error_after
    cut_after = reply.cut_after
    buffered = reply.chunk_delay == 0
    pending: list[bytes] = []

    async def send(data: bytes, flush: bool = False) -> None:
        pending.append(data)
        if flush or not buffered:
            await response.write(b"".join(pending))
            pending.clear()

    try:
        await response.prepare(request)
        await send(b": OPENROUTER PROCESSING\n\n")
        if reply.repeat is not None:
            await _endless(send, chunks[:-2], sse(content_chunk(answer, reply.repeat)), reply.chunk_delay)
        for index in range(len(chunks) + 1):
            if cut_after is not None and min(cut_after, len(chunks)) == index:
                await send(b"", flush=True)
                request.protocol.force_close()  # flushes what was written, then closes: no [DONE]
                return response
            if error_after is not None and min(error_after, len(chunks)) == index:
                await send(sse(error_chunk(answer)), flush=True)
                return response
            if index == len(chunks):
                break
            if index and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await send(sse(chunks[index]))
        await send(sse("[DONE]"), flush=True)
    except ConnectionError:  # the client went away; aiohttp closes the connection
        pass
    return response


async def _endless(send: Callable[[bytes, bool], Awaitable[None]], head: list[Any], piece: bytes, delay: float) -> None:
    """An endless stream (`Reply.repeat`): the answer's chunks without its end, then `piece` for ever (until
    the client goes away: the write then raises `ConnectionError`)."""
    for chunk in head:
        await send(sse(chunk), True)
    while True:
        await asyncio.sleep(delay)  # also when 0: the server's other requests go on
        await send(piece, True)
