"""What the test server received: one `RecordedRequest` per HTTP request, and the schema it asks for."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .signature import signature_schema

__all__ = ["Mode", "RecordedRequest", "fenced_schema", "requested_schema", "requested_tool"]

Mode = Literal["json_schema", "tools", "json", "prompt"]
"""The structured-output mode a request was sent in, as `RecordedRequest.mode` tells it."""

_FENCED_JSON = re.compile(r"```json[ \t]*\r?\n(.*?)```", re.DOTALL)
_FENCED_PLAIN = re.compile(r"```[ \t]*\r?\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: header names are lower-case; `json` is the parsed body, or None.

    A line of a batch is recorded as the chat-completions request it holds, with the batch's id and the
    line's `custom_id` (both None for an HTTP request). `received` is when the server read the request
    (`time.time()`, seconds; 0.0 for a batch line), for measuring request rates.
    """

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    json: Any = None
    batch_id: str | None = None
    custom_id: str | None = None
    received: float = field(default=0.0, compare=False)

    @property
    def mode(self) -> Mode:
        """The structured-output mode the request uses: `json_schema`, `tools`, `json` or `prompt`."""
        payload = self.json if isinstance(self.json, Mapping) else {}
        response_format = payload.get("response_format")
        kind = response_format.get("type") if isinstance(response_format, Mapping) else None
        if kind == "json_schema":
            return "json_schema"
        if payload.get("tools"):
            return "tools"
        if kind == "json_object":
            return "json"
        return "prompt"

    @property
    def stream(self) -> bool:
        """Whether the request asks for a server-sent-event stream."""
        return isinstance(self.json, Mapping) and self.json.get("stream") is True

    @property
    def model(self) -> str | None:
        """The model the request names, if any."""
        model = self.json.get("model") if isinstance(self.json, Mapping) else None
        return model if isinstance(model, str) else None


def requested_tool(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The function a tools-mode request wants called: the one `tool_choice` forces, else the first tool."""
    tools = [t.get("function") for t in payload.get("tools") or [] if isinstance(t, Mapping)]
    functions = [f for f in tools if isinstance(f, Mapping)]
    choice = payload.get("tool_choice")
    if isinstance(choice, Mapping):
        forced = choice.get("function")
        name = forced.get("name") if isinstance(forced, Mapping) else None
        for function in functions:
            if function.get("name") == name:
                return function
    return functions[0] if functions else None


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            part["text"]
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
    return []


def fenced_schema(messages: Any) -> dict[str, Any] | None:
    """The schema shown in the system or developer messages: the last fenced block holding a JSON object
    (```json) or a type signature (the `json` and `prompt` modes' compact form), or None."""
    found: dict[str, Any] | None = None
    if not isinstance(messages, list):
        return None
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "developer"):
            continue
        for text in _texts(message.get("content")):
            for block in _FENCED_JSON.findall(text):
                try:
                    value = json.loads(block)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    found = value
            for block in _FENCED_PLAIN.findall(text):
                signature = signature_schema(block)
                if signature is not None:
                    found = signature
    return found


def requested_schema(payload: Mapping[str, Any]) -> tuple[Mode, Any]:
    """The request's mode and the JSON Schema its answer must follow (None when it gives none)."""
    response_format = payload.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if isinstance(response_format, Mapping) and kind == "json_schema":
        spec = response_format.get("json_schema")
        return "json_schema", spec.get("schema") if isinstance(spec, Mapping) else None
    if payload.get("tools"):
        tool = requested_tool(payload)
        return "tools", tool.get("parameters") if tool is not None else None
    return ("json" if kind == "json_object" else "prompt"), fenced_schema(payload.get("messages"))
