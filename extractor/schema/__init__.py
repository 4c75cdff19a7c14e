"""Schemas: a pydantic type or JSON Schema compiled into a provider's strict subset, and back."""

from .compiled import CompiledSchema, compile_schema
from .dialects import Dialect, GeminiDialect, OpenAIStrictDialect

__all__ = ["CompiledSchema", "Dialect", "GeminiDialect", "OpenAIStrictDialect", "compile_schema"]
