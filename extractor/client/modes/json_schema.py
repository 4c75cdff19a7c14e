"""`json_schema` mode: `response_format` with the compiled schema, enforced by the provider."""

from __future__ import annotations

from typing import Any, ClassVar

from ...schema import CompiledSchema
from .base import Message, Mode


class JsonSchemaMode(Mode):
    name: ClassVar[str] = "json_schema"
    needs: ClassVar[str | None] = "structured_outputs"
    rank: ClassVar[int] = 0

    def request(self, schema: CompiledSchema[Any], messages: list[Message]) -> tuple[dict[str, Any], list[Message]]:
        format_ = {"name": schema.name, "strict": schema.strict, "schema": schema.json_schema}
        return {"response_format": {"type": "json_schema", "json_schema": format_}}, messages
