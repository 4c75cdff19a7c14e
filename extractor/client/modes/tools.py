"""`tools` mode: one function tool whose parameters are the compiled schema, and a forced call.

The call is forced with `tool_choice: "required"`: with a single tool it forces the same call as naming
it, and servers that take no object there (llama.cpp's `llama-server`) accept it. An answer without the
call says so (`ModeAnswer.missing`): it is that attempt's problem, never taken for a cut-off or invalid
answer (in `auto`, the next mode is tried)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from ...schema import CompiledSchema
from .base import Message, Mode, ModeAnswer, assistant_echo, content_text


class ToolsMode(Mode):
    name: ClassVar[str] = "tools"
    needs: ClassVar[str | None] = "tools"
    rank: ClassVar[int] = 1
    stream_field: ClassVar[str] = "arguments"

    def request(self, schema: CompiledSchema[Any], messages: list[Message]) -> tuple[dict[str, Any], list[Message]]:
        function = {
            "name": schema.name,
            "description": "Record the information extracted from the input.",
            "parameters": schema.json_schema,
            "strict": schema.strict,
        }
        body = {"tools": [{"type": "function", "function": function}], "tool_choice": "required"}
        return body, messages

    def read(self, message: Mapping[str, Any]) -> ModeAnswer:
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            return ModeAnswer(None, refusal)
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            function = calls[0].get("function", {}) if isinstance(calls[0], Mapping) else {}
            arguments = function.get("arguments") if isinstance(function, Mapping) else None
            if isinstance(arguments, str):
                return ModeAnswer(arguments)
            if isinstance(arguments, dict):  # some servers send the object itself
                return ModeAnswer(json.dumps(arguments))
        # no call: the text, if any (it may hold a valid answer all the same), and that the call is missing
        return ModeAnswer(content_text(message.get("content")), missing="no call of the tool came back")

    def missing_feedback(self, schema: CompiledSchema[Any]) -> str:
        return (
            f"Your previous answer did not call the function `{schema.name}`. Call it, with the values found in "
            "the input as its arguments, and do not answer in text."
        )

    def reask(self, message: Mapping[str, Any], feedback: str) -> list[Message]:
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls and isinstance(calls[0], Mapping) and calls[0].get("id"):
            return [assistant_echo(message), {"role": "tool", "tool_call_id": calls[0]["id"], "content": feedback}]
        return super().reask(message, feedback)

    def example(self, schema: CompiledSchema[Any], answer: str, index: int) -> list[Message]:
        call_id = f"example_{index + 1}"
        call = {"id": call_id, "type": "function", "function": {"name": schema.name, "arguments": answer}}
        return [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "Recorded."},
        ]
