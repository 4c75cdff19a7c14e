"""The bodies the test server sends: completions, stream chunks and errors, in OpenRouter's shapes."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..schema.sample import sample_instance
from .models import ModelSpec
from .recorded import RecordedRequest, requested_schema, requested_tool
from .replies import Reply

__all__ = [
    "DEFAULT_STREAM_ERROR",
    "Answer",
    "build_answer",
    "completion_body",
    "content_chunk",
    "default_answer",
    "error_body",
    "error_chunk",
    "sse",
    "stream_chunks",
]

DEFAULT_STREAM_ERROR: dict[str, Any] = {"code": 502, "message": "Provider disconnected"}


@dataclass(frozen=True)
class Answer:
    """Everything one successful answer says, whichever way it is sent."""

    id: str
    model: str
    created: int
    content: str | None
    refusal: str | None
    reasoning: str | None
    reasoning_details: list[dict[str, Any]] | None
    tool_call_id: str | None
    tool_name: str | None
    tool_arguments: str | None
    finish_reason: str
    usage: dict[str, Any]
    error: dict[str, Any] | None


def default_answer(payload: Mapping[str, Any]) -> Reply:
    """An instance of the request's schema, in the request's mode (`{}` when it gives no schema)."""
    mode, schema = requested_schema(payload)
    instance = sample_instance(schema) if isinstance(schema, Mapping) else {}
    text = json.dumps(instance)
    return Reply(tool_arguments=text) if mode == "tools" else Reply(content=text)


def _tokens(text: str | None) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _usage(request: RecordedRequest, reply: Reply, spec: ModelSpec) -> dict[str, Any]:
    reasoning = _tokens(reply.reasoning)
    answer = (reply.content or "") + (reply.tool_arguments or "") + (reply.refusal or "")
    prompt = math.ceil(len(request.body) / 4)
    completion = _tokens(answer) + reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    cost = spec.cost(prompt, completion) if reply.include_cost else None
    if cost is not None:
        usage["cost"] = cost
    return usage


def build_answer(reply: Reply, request: RecordedRequest, spec: ModelSpec, generation_id: str, call_id: str) -> Answer:
    """The answer `reply` gives to `request`, the default answer filling in when it says none."""
    payload: Mapping[str, Any] = request.json if isinstance(request.json, Mapping) else {}
    if not reply.has_answer:
        default = default_answer(payload)
        reply = replace(reply, content=default.content, tool_arguments=default.tool_arguments)
    tool = requested_tool(payload) if reply.tool_arguments is not None else None
    tool_name = tool.get("name") if tool is not None else None
    calls = reply.tool_arguments is not None
    return Answer(
        id=reply.id or generation_id,
        model=reply.model or request.model or spec.id,
        created=int(time.time()),
        content=reply.content,
        refusal=reply.refusal,
        reasoning=reply.reasoning,
        reasoning_details=reply.reasoning_details,
        tool_call_id=call_id if calls else None,
        tool_name=(tool_name if isinstance(tool_name, str) else "tool") if calls else None,
        tool_arguments=reply.tool_arguments,
        finish_reason=reply.finish_reason or ("tool_calls" if calls else "stop"),
        usage=reply.usage if reply.usage is not None else _usage(request, reply, spec),
        error=reply.error,
    )


def _head(answer: Answer, kind: str) -> dict[str, Any]:
    return {"id": answer.id, "object": kind, "created": answer.created, "model": answer.model}


def completion_body(answer: Answer) -> dict[str, Any]:
    """The non-streaming `chat.completion` body; with `error` set, a 200 carrying the error."""
    if answer.error is not None:
        choice = {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "error"}
        return {**_head(answer, "chat.completion"), "error": answer.error, "choices": [choice]}
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": answer.refusal,
        "reasoning": answer.reasoning,
    }
    if answer.reasoning_details is not None:
        message["reasoning_details"] = answer.reasoning_details
    if answer.tool_arguments is not None:
        function = {"name": answer.tool_name, "arguments": answer.tool_arguments}
        message["tool_calls"] = [{"id": answer.tool_call_id, "type": "function", "function": function}]
    choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason, "logprobs": None}
    return {**_head(answer, "chat.completion"), "choices": [choice], "usage": answer.usage}


def _pieces(text: str | None, size: int) -> list[str]:
    if not text:
        return []
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_chunks(answer: Answer, chunk_size: int) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a stream, in order, before `[DONE]`.

    Reasoning deltas, then reasoning_details (one chunk), refusal, content, tool-call argument pieces
    (id, type and name on the first only); then an empty delta with the finish_reason; then the usage
    chunk with `choices: []`.
    """
    head = _head(answer, "chat.completion.chunk")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "reasoning": p}) for p in _pieces(answer.reasoning, chunk_size)]
    if answer.reasoning_details is not None:
        chunks.append(chunk({"role": "assistant", "reasoning_details": answer.reasoning_details}))
    chunks += [chunk({"role": "assistant", "refusal": p}) for p in _pieces(answer.refusal, chunk_size)]
    chunks += [chunk({"role": "assistant", "content": p}) for p in _pieces(answer.content, chunk_size)]
    if answer.tool_arguments is not None:
        for i, piece in enumerate(_pieces(answer.tool_arguments, chunk_size) or [""]):
            call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
            if i == 0:
                call = {"index": 0, "id": answer.tool_call_id, "type": "function"}
                call["function"] = {"name": answer.tool_name, "arguments": piece}
            chunks.append(chunk({"role": "assistant", "tool_calls": [call]}))
    chunks.append(chunk({}, answer.finish_reason))
    chunks.append({**head, "choices": [], "usage": answer.usage})
    return chunks


def content_chunk(answer: Answer, piece: str) -> dict[str, Any]:
    """A chunk carrying one content delta `piece` (an endless stream's `Reply.repeat`)."""
    choice = {"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}
    return {**_head(answer, "chat.completion.chunk"), "choices": [choice]}


def error_chunk(answer: Answer) -> dict[str, Any]:
    """The chunk that ends a stream with an error (OpenRouter's mid-stream error)."""
    error = answer.error if answer.error is not None else DEFAULT_STREAM_ERROR
    choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
    return {**_head(answer, "chat.completion.chunk"), "error": error, "choices": [choice]}


def error_body(status: int, error: dict[str, Any] | None, message: str) -> dict[str, Any]:
    """OpenRouter's error body: `{"error": error}`, or `{"error": {"code": status, "message": message}}`."""
    return {"error": error if error is not None else {"code": status, "message": message}}


def sse(data: Any) -> bytes:
    """One server-sent event `data: <json>` (or `data: [DONE]` for the string "[DONE]")."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
