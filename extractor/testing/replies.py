"""`Reply`: what the test server answers to one chat-completions request, or how it fails."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = ["Reply", "status_phrase"]


@dataclass(frozen=True)
class Reply:
    """A scripted answer or fault for one chat-completions request.

    A reply without `content`, `tool_arguments`, `refusal` or `error` carries the server's default
    answer for the request (a schema-valid instance in the request's mode) with its other fields
    (delay, reasoning, usage, stream faults, ...) applied.

    - `content`: the assistant text; `tool_arguments`: the arguments of one tool call, named after the
      request's tool; `refusal`: `message.refusal` with null content;
    - `reasoning` / `reasoning_details`: `message.reasoning` / `message.reasoning_details`, returned as given;
    - `finish_reason`: default "stop", or "tool_calls" when the answer is a tool call;
    - `usage`: returned as given; default computed from the sizes of the request and answer (4 characters
      a token), with `cost` in USD from the model's prices unless `include_cost` is False;
    - `status` / `headers` / `error`: an HTTP error status with `{"error": error}` (a default error object
      when `error` is None); `error` with status 200 makes a 200 carrying `error` and finish_reason "error"
      (streamed: the error chunk, after `error_after` chunks or at once);
    - `body`: the raw response body instead of any JSON (e.g. malformed); `drop`: close the connection
      without a response; `delay`: seconds before anything is sent (added to the server's latency);
    - `id` / `model`: the generation id and model name in the answer;
    - streams: `chunk_size` characters a delta; `chunk_delay` seconds between chunks; `cut_after` n chunks,
      drop the connection without `[DONE]`; `error_after` n chunks, send an error chunk and end the stream
      (a count beyond the stream's chunks faults just before `[DONE]`); `repeat`: an endless stream, after
      the content's chunks the text `repeat` as one content delta after another (`chunk_delay` apart),
      never finishing, until the client goes away (streamed requests only).
    """

    content: str | None = None
    tool_arguments: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    include_cost: bool = True
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    body: str | bytes | None = None
    delay: float = 0.0
    drop: bool = False
    id: str | None = None
    model: str | None = None
    chunk_size: int = 16
    chunk_delay: float = 0.0
    cut_after: int | None = None
    error_after: int | None = None
    repeat: str | None = None

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError("delay and chunk_delay must not be negative")
        if self.repeat is not None and not self.repeat:
            raise ValueError("repeat must be a non-empty text")
        for name in ("cut_after", "error_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    @property
    def has_answer(self) -> bool:
        """Whether the reply says what the model answers (else the server's default answer is used)."""
        return self.content is not None or self.tool_arguments is not None or self.refusal is not None

    @classmethod
    def json(cls, obj: Any, **fields: Any) -> Reply:
        """The assistant text `json.dumps(obj)`."""
        return cls(content=json.dumps(obj), **fields)

    @classmethod
    def tool(cls, obj: Any, **fields: Any) -> Reply:
        """A call of the request's tool with arguments `json.dumps(obj)`."""
        return cls(tool_arguments=json.dumps(obj), **fields)

    @classmethod
    def refuse(cls, text: str = "I can't help with that.", **fields: Any) -> Reply:
        """A refusal: `message.refusal` is `text`, content is null."""
        return cls(refusal=text, **fields)

    @classmethod
    def truncated(cls, text: str, **fields: Any) -> Reply:
        """The assistant text `text` cut off by the token limit (finish_reason "length")."""
        return cls(content=text, finish_reason="length", **fields)

    @classmethod
    def status_error(
        cls, status: int, message: str | None = None, *, retry_after: float | None = None, **fields: Any
    ) -> Reply:
        """An HTTP error `status` with OpenRouter's error body; `retry_after` sets the Retry-After header."""
        headers = dict(fields.pop("headers", {}))
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        error = {"code": status, "message": message or status_phrase(status)}
        return cls(status=status, error=error, headers=headers, **fields)

    @classmethod
    def provider_error(cls, message: str = "Provider returned error", code: int = 502, **fields: Any) -> Reply:
        """A 200 response whose body carries `error` and a choice with finish_reason "error"."""
        return cls(error={"code": code, "message": message}, **fields)

    @classmethod
    def dropped(cls, **fields: Any) -> Reply:
        """The connection closed without any response."""
        return cls(drop=True, **fields)

    @classmethod
    def malformed(cls, body: str | bytes = "{not json", status: int = 200, **fields: Any) -> Reply:
        """A response whose body is `body`, as is (JSON content type)."""
        return cls(body=body, status=status, **fields)


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("Too Many Requests"), or `HTTP <status>` for an unknown one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
