"""`prompt` mode: the schema in the instructions only, for endpoints with no structured output."""

from __future__ import annotations

from typing import Any, ClassVar

from ...schema import CompiledSchema
from .base import Message, Mode, with_schema_instructions


class PromptMode(Mode):
    name: ClassVar[str] = "prompt"
    needs: ClassVar[str | None] = None
    rank: ClassVar[int] = 3

    def request(self, schema: CompiledSchema[Any], messages: list[Message]) -> tuple[dict[str, Any], list[Message]]:
        return {}, with_schema_instructions(schema, messages)
