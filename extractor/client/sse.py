"""Streamed chat completions: server-sent events read into the message a non-streamed answer would have."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import TransientResponseError

__all__ = ["StreamAssembler", "parse_sse_line"]

_DONE = "[DONE]"


def parse_sse_line(line: str) -> tuple[str, Any] | None:
    """One line of an event stream: ("done", None), ("event", chunk) or None (comments, blanks, other fields)."""
    if not line or line.startswith(":"):
        return None  # a keep-alive comment such as ": OPENROUTER PROCESSING"
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == _DONE:
        return ("done", None)
    try:
        return ("event", json.loads(payload))
    except ValueError:
        raise TransientResponseError(f"the stream carried a line that is not JSON: {payload[:120]!r}") from None


class StreamAssembler:
    """Adds up the chunks of a streamed completion: content, refusal, tool-call arguments, reasoning and
    its details, finish reason, usage (from the final `choices: []` chunk), id and model."""

    def __init__(self, listener: Callable[[str, str], None] | None = None) -> None:
        #: told of every text piece as it arrives: ("content" | "refusal" | "reasoning" | "arguments", piece)
        self.listener = listener
        self.id: str | None = None
        self.model: str | None = None
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_details: list[Any] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: Mapping[str, Any] | None = None
        self.done = False

    def add(self, chunk: Any) -> None:
        """One `data:` chunk; a chunk carrying an error (or `finish_reason: "error"`) raises
        `TransientResponseError`, so that the attempt starts over."""
        if not isinstance(chunk, Mapping):
            raise TransientResponseError("the stream carried a chunk that is not a JSON object")
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        error = chunk.get("error")
        choices = chunk.get("choices") or []
        if error or any(isinstance(c, Mapping) and c.get("finish_reason") == "error" for c in choices):
            message = error.get("message") if isinstance(error, Mapping) else error
            raise TransientResponseError(f"the stream broke off with an error: {message or 'finish_reason: error'}")
        if isinstance(chunk.get("usage"), Mapping):
            self.usage = chunk["usage"]
        for choice in choices:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, Mapping):
                self._delta(delta)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])

    def _delta(self, delta: Mapping[str, Any]) -> None:
        for key, parts in (("content", self.content), ("refusal", self.refusal), ("reasoning", self.reasoning)):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                parts.append(piece)
                if self.listener is not None:
                    self.listener(key, piece)
        details = delta.get("reasoning_details")
        if isinstance(details, list):
            self.reasoning_details.extend(details)
        for call in delta.get("tool_calls") or []:
            if not isinstance(call, Mapping):
                continue
            slot = self.tool_calls.setdefault(
                int(call.get("index", 0)), {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            )
            slot["id"] = slot["id"] or call.get("id")
            function = call.get("function") or {}
            if isinstance(function, Mapping):
                slot["function"]["name"] = slot["function"]["name"] or function.get("name")
                arguments = function.get("arguments")
                if isinstance(arguments, str) and arguments:
                    slot["function"]["arguments"] += arguments
                    if self.listener is not None and slot is self.tool_calls.get(min(self.tool_calls)):
                        self.listener("arguments", arguments)

    def message(self) -> dict[str, Any]:
        """The assistant message so far, shaped like a non-streamed one."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) if self.content else None}
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.reasoning:
            message["reasoning"] = "".join(self.reasoning)
        if self.reasoning_details:
            message["reasoning_details"] = list(self.reasoning_details)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message

    def response(self) -> dict[str, Any]:
        """The whole completion, shaped like a non-streamed response body."""
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": self.message(), "finish_reason": self.finish_reason}],
        }
        if self.usage is not None:
            body["usage"] = dict(self.usage)
        return body
