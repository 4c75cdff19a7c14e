"""`json` mode: `response_format: json_object`, with the schema in the instructions."""

from __future__ import annotations

from typing import Any, ClassVar

from ...schema import CompiledSchema
from .base import Message, Mode, with_schema_instructions


class JsonObjectMode(Mode):
    name: ClassVar[str] = "json"
    needs: ClassVar[str | None] = "response_format"
    rank: ClassVar[int] = 2

    def request(self, schema: CompiledSchema[Any], messages: list[Message]) -> tuple[dict[str, Any], list[Message]]:
        return {"response_format": {"type": "json_object"}}, with_schema_instructions(schema, messages)
