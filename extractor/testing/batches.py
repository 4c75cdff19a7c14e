"""The test server's Files and Batches store: OpenAI's batch API for chat completions, answered offline.

A batch advances one step each time it is looked at (`GET .../batches/{id}`), as the server's scripting
says (`BatchScript`); its lines are answered by the server's chat-completions logic when it finishes.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .recorded import RecordedRequest

__all__ = [
    "BATCH_ENDPOINT",
    "BatchEdit",
    "BatchError",
    "BatchScript",
    "BatchStore",
    "InputLine",
    "LineAnswer",
    "StoredFile",
]

BATCH_ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
WINDOW_SECONDS = 24 * 60 * 60
DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."
FAILED_MESSAGE = "The batch failed validation (the test server's fail_batches)."

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})

LineAnswer = Callable[[RecordedRequest], tuple[int, Any]]
"""What chat completions answer one line's request: the HTTP status and the JSON body."""

BatchEdit = Callable[[list[dict[str, Any]], list[dict[str, Any]]], tuple[list[Any], list[Any]]]
"""Given a finished batch's output and error lines, the lines its two files hold instead (dicts, or strings
written as they are)."""


class BatchError(Exception):
    """A Files or Batches request refused: the HTTP status and an OpenAI-style error."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """`{"error": {"message", "type", "param", "code"}}`."""
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class BatchScript:
    """How files and batches behave: the server's scripting attributes, read at each request.

    `polls`: looks answered "in_progress" before the batch finishes; `expire`: True, every line expires,
    or an int k, the first k lines are answered and the rest expire; `fail`: the batch fails validation;
    `answered_before_cancel`: how many lines a cancelled batch answered first; `max_lines` / `max_bytes`:
    the provider's limits on a file or batch; `record`: whether lines are recorded; `edit`: rewrites a
    finished batch's output and error lines before its files are written.
    """

    polls: int = 1
    expire: bool | int = False
    fail: bool = False
    answered_before_cancel: int = 0
    max_lines: int | None = None
    max_bytes: int | None = None
    record: bool = True
    edit: BatchEdit | None = None


@dataclass(frozen=True)
class InputLine:
    """One request of a batch input file."""

    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredFile:
    """An uploaded (purpose "batch") or produced (purpose "batch_output") file."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    lines: tuple[InputLine, ...] = ()

    def object(self) -> dict[str, Any]:
        """OpenAI's file object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


_TIMES = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass
class _Batch:
    id: str
    input_file_id: str
    lines: tuple[InputLine, ...]
    metadata: dict[str, str] | None
    created_at: int
    status: str = "validating"
    looks: int = 0
    times: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(_TIMES))
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # line index -> output or error line
    errors: dict[str, Any] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    def object(self) -> dict[str, Any]:
        statuses = [line["response"]["status_code"] for line in self.results.values() if line["response"]]
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": BATCH_ENDPOINT,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": COMPLETION_WINDOW,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times["in_progress_at"],
            "expires_at": self.created_at + WINDOW_SECONDS,
            **{name: self.times[name] for name in _TIMES[1:]},
            "request_counts": {
                "total": len(self.lines),
                "completed": sum(1 for status in statuses if status < 400),
                "failed": sum(1 for status in statuses if status >= 400),
            },
            "metadata": self.metadata,
        }


def _now() -> int:
    return int(time.time())


def _line_error(number: int, message: str) -> BatchError:
    return BatchError(400, f"Line {number} of the batch input file: {message}", param="file", code="invalid_file")


def _parse_line(number: int, raw: bytes) -> InputLine:
    try:
        item = json.loads(raw)
    except ValueError:
        raise _line_error(number, "not valid JSON.") from None
    if not isinstance(item, dict):
        raise _line_error(number, "not a JSON object.")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _line_error(number, "custom_id must be a non-empty string.")
    if item.get("method") != "POST":
        raise _line_error(number, f"method must be 'POST', got {item.get('method')!r}.")
    if item.get("url") != BATCH_ENDPOINT:
        raise _line_error(number, f"url must be {BATCH_ENDPOINT!r}, got {item.get('url')!r}.")
    body = item.get("body")
    if not isinstance(body, dict):
        raise _line_error(number, "body must be a JSON object.")
    return InputLine(custom_id, body)


def parse_input(data: bytes) -> tuple[InputLine, ...]:
    """The requests of a batch input file (JSONL), or BatchError naming the first invalid line."""
    lines: list[InputLine] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        line = _parse_line(number, raw)
        if line.custom_id in seen:
            raise _line_error(
                number, f"custom_id {line.custom_id!r} is not unique (also on line {seen[line.custom_id]})."
            )
        seen[line.custom_id] = number
        lines.append(line)
    if not lines:
        raise BatchError(400, "The batch input file holds no requests.", param="file", code="invalid_file")
    return tuple(lines)


def _check_lines(count: int, script: BatchScript) -> None:
    if script.max_lines is not None and count > script.max_lines:
        raise BatchError(
            400,
            f"The batch has {count} requests, over the limit of {script.max_lines} requests (max_batch_lines).",
            param="file",
            code="too_many_requests_in_batch",
        )


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BatchError(400, "metadata must be an object with string values.", param="metadata")
    if len(value) > MAX_METADATA_KEYS:
        raise BatchError(400, f"metadata holds at most {MAX_METADATA_KEYS} keys.", param="metadata")
    for key, text in value.items():
        if len(key) > MAX_METADATA_KEY or len(text) > MAX_METADATA_VALUE:
            raise BatchError(
                400,
                f"metadata keys hold at most {MAX_METADATA_KEY} characters and values {MAX_METADATA_VALUE}.",
                param="metadata",
            )
    return dict(value)


def _jsonl(lines: list[Any]) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


class BatchStore:
    """Files and batches, by id; safe to read and clear from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, _Batch] = {}
        self._lines: list[RecordedRequest] = []
        self._file_ids = itertools.count(1)
        self._batch_ids = itertools.count(1)
        self._result_ids = itertools.count(1)
        self._request_ids = itertools.count(1)

    # --- files ----------------------------------------------------------------------------------

    def upload(self, filename: str, purpose: str, data: bytes, script: BatchScript) -> dict[str, Any]:
        """Store a batch input file; BatchError when its purpose, size or lines are refused."""
        if purpose != "batch":
            raise BatchError(400, f"purpose must be 'batch', got {purpose!r}.", param="purpose")
        if script.max_bytes is not None and len(data) > script.max_bytes:
            raise BatchError(
                400,
                f"The file is {len(data)} bytes, over the limit of {script.max_bytes} bytes (max_file_bytes).",
                param="file",
                code="file_too_large",
            )
        lines = parse_input(data)
        _check_lines(len(lines), script)
        return self._add(filename, "batch", data, lines).object()

    def _add(
        self, filename: str, purpose: str, data: bytes, lines: tuple[InputLine, ...] = (), created_at: int | None = None
    ) -> StoredFile:
        with self._lock:
            created = _now() if created_at is None else created_at
            stored = StoredFile(f"file-{next(self._file_ids)}", filename, purpose, data, created, lines)
            self._files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        """The file `file_id`; BatchError 404 when unknown."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise BatchError(404, f"No such File object: {file_id}", param="id")
        return stored

    def delete(self, file_id: str) -> dict[str, Any]:
        """Forget the file `file_id` (batches made from it keep their lines); BatchError 404 when unknown."""
        with self._lock:
            removed = self._files.pop(file_id, None)
        if removed is None:
            raise BatchError(404, f"No such File object: {file_id}", param="id")
        return {"id": file_id, "object": "file", "deleted": True}

    # --- batches --------------------------------------------------------------------------------

    def create(self, payload: Any, script: BatchScript) -> dict[str, Any]:
        """A new batch ("validating") over an uploaded input file; BatchError when the request is refused."""
        if not isinstance(payload, dict):
            raise BatchError(400, "The request body must be a JSON object.")
        input_file_id = payload.get("input_file_id")
        if not isinstance(input_file_id, str):
            raise BatchError(400, "input_file_id must be a string.", param="input_file_id")
        endpoint = payload.get("endpoint")
        if endpoint != BATCH_ENDPOINT:
            raise BatchError(400, f"endpoint must be {BATCH_ENDPOINT!r}, got {endpoint!r}.", param="endpoint")
        window = payload.get("completion_window")
        if window != COMPLETION_WINDOW:
            message = f"completion_window must be {COMPLETION_WINDOW!r}, got {window!r}."
            raise BatchError(400, message, param="completion_window")
        metadata = _metadata(payload.get("metadata"))
        stored = self.file(input_file_id)
        if stored.purpose != "batch":
            message = f"File {input_file_id} has purpose {stored.purpose!r}, not 'batch'."
            raise BatchError(400, message, param="input_file_id")
        _check_lines(len(stored.lines), script)
        with self._lock:
            batch = _Batch(f"batch_{next(self._batch_ids)}", input_file_id, stored.lines, metadata, _now())
            self._batches[batch.id] = batch
            return batch.object()

    def _batch(self, batch_id: str) -> _Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise BatchError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return batch

    def look(self, batch_id: str, script: BatchScript, answer: LineAnswer) -> dict[str, Any]:
        """The batch `batch_id` after one more look: its status advanced as `script` says."""
        batch = self._batch(batch_id)
        now = _now()
        if batch.status == "cancelling":
            self._finish(batch, "cancelled", "cancelled_at", now)
        elif batch.status not in FINAL:
            batch.looks += 1
            if script.fail:
                error = {"code": "invalid_request", "message": FAILED_MESSAGE, "param": None, "line": None}
                with self._lock:
                    batch.errors = {"object": "list", "data": [error]}
                    batch.status, batch.times["failed_at"] = "failed", now
            elif batch.looks <= script.polls:
                with self._lock:
                    batch.status = "in_progress"
                    batch.times["in_progress_at"] = batch.times["in_progress_at"] or now
            else:
                expire = script.expire
                answered = len(batch.lines) if expire is False else 0 if expire is True else max(0, expire)
                with self._lock:
                    batch.times["in_progress_at"] = batch.times["in_progress_at"] or now
                    batch.times["finalizing_at"] = now
                self._answer(batch, answered, script, answer)
                if expire is False:
                    self._finish(batch, "completed", "completed_at", now, script.edit)
                else:
                    self._finish(batch, "expired", "expired_at", now, script.edit)
        with self._lock:
            return batch.object()

    def cancel(self, batch_id: str, script: BatchScript, answer: LineAnswer) -> dict[str, Any]:
        """Start cancelling the batch: "cancelling" now, "cancelled" at the next look; BatchError when finished."""
        batch = self._batch(batch_id)
        if batch.status in FINAL:
            raise BatchError(400, f"Cannot cancel a batch with status '{batch.status}'.", param="batch_id")
        if batch.status != "cancelling":
            with self._lock:
                batch.status, batch.times["cancelling_at"] = "cancelling", _now()
            self._answer(batch, script.answered_before_cancel, script, answer)
        with self._lock:
            return batch.object()

    def page(self, limit: str | None, after: str | None) -> dict[str, Any]:
        """Batches newest first, `limit` of them (default 20) after the batch `after`."""
        try:
            size = DEFAULT_PAGE if limit is None else int(limit)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE:
            raise BatchError(400, f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}.", param="limit")
        with self._lock:
            batches = list(reversed(self._batches.values()))
            if after is not None:
                ids = [batch.id for batch in batches]
                if after not in ids:
                    raise BatchError(400, f"No batch found with id '{after}'.", param="after")
                batches = batches[ids.index(after) + 1 :]
            data = [batch.object() for batch in batches[:size]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(batches) > size,
        }

    def _answer(self, batch: _Batch, count: int, script: BatchScript, answer: LineAnswer) -> None:
        """Answer the first `count` lines not answered yet, in order, each as chat completions would."""
        for index, line in enumerate(batch.lines[:count]):
            if index in batch.results:
                continue
            raw = json.dumps(line.body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {"content-type": "application/json"}
            request = RecordedRequest("POST", BATCH_ENDPOINT, headers, raw, line.body, batch.id, line.custom_id)
            if script.record:
                with self._lock:
                    self._lines.append(request)
            status, body = answer(request)
            with self._lock:
                response = {"status_code": status, "request_id": f"req_{next(self._request_ids)}", "body": body}
                batch.results[index] = self._result(line, response, None)

    def _result(self, line: InputLine, response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": f"batch_req_{next(self._result_ids)}",
            "custom_id": line.custom_id,
            "response": response,
            "error": error,
        }

    def _finish(self, batch: _Batch, status: str, stamp: str, now: int, edit: BatchEdit | None = None) -> None:
        """Write the output and error files: unanswered lines are expired or cancelled."""
        cancelled = status == "cancelled"
        unanswered = {"code": "batch_cancelled" if cancelled else "batch_expired"}
        unanswered["message"] = CANCELLED_MESSAGE if cancelled else EXPIRED_MESSAGE
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self._lock:
            for index, line in enumerate(batch.lines):
                result = batch.results.get(index)
                if result is None:
                    errors.append(self._result(line, None, dict(unanswered)))
                elif result["response"]["status_code"] < 400:
                    output.append(result)
                else:
                    errors.append(result)
        if edit is not None:
            output, errors = edit(output, errors)
        output_file = self._output(f"{batch.id}_output.jsonl", output, now)
        error_file = self._output(f"{batch.id}_error.jsonl", errors, now)
        with self._lock:
            batch.output_file_id, batch.error_file_id = output_file, error_file
            batch.status, batch.times[stamp] = status, now

    def _output(self, filename: str, lines: list[Any], now: int) -> str | None:
        """The id of a new "batch_output" file holding `lines`; None (no file) when there are none."""
        return self._add(filename, "batch_output", _jsonl(lines), created_at=now).id if lines else None

    # --- recorded lines -------------------------------------------------------------------------

    @property
    def lines(self) -> list[RecordedRequest]:
        """The batch lines answered so far, in the order they were answered (a copy)."""
        with self._lock:
            return list(self._lines)

    def clear(self) -> None:
        """Forget every file, batch and recorded line (ids keep counting up)."""
        with self._lock:
            self._files.clear()
            self._batches.clear()
            self._lines.clear()
