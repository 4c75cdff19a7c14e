"""What a call adds to the conversation besides the source: instructions filled from `context`, and
few-shot examples checked against the schema and sent as earlier turns.

- Instructions may hold `{name}` (or `{name.key}`) placeholders, filled from the call's `context`
  mapping; `{{` and `}}` stand for literal braces. A placeholder that `context` does not fill is a
  `ConfigurationError` before any request.
- `examples=[(input, output), ...]`: each output, in the user's shape (a model instance or plain
  data), is validated against the schema up front (a wrong example is a `ConfigurationError`, never
  a silent prompt), encoded into the compiled shape, and sent before the source as a user turn (the
  input) and the mode's answer turn (message content, or a tool call in `tools` mode).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ConfigurationError, OutputError
from ..schema import CompiledSchema
from .modes import Message, Mode

__all__ = ["Example", "fill_instructions", "prepare_examples", "with_examples"]

_PLACEHOLDER: Final = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    value: Any = context
    for key in name.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise KeyError(name)
        value = value[key]
    return value


def fill_instructions(text: str | None, context: Mapping[str, Any] | None) -> str | None:
    """`text` with its `{placeholders}` filled from `context` (see the module's docstring)."""
    if text is None or ("{" not in text and "}" not in text):
        return text
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        try:
            return str(_lookup(context or {}, match.group(1)))
        except KeyError:
            missing.append(match.group(1))
            return token

    filled = _PLACEHOLDER.sub(fill, text)
    if missing:
        given = ", ".join(sorted(context)) if context else "no context"
        raise ConfigurationError(
            f"the instructions name {', '.join('{' + m + '}' for m in dict.fromkeys(missing))}, which context= does "
            f"not give (it gives: {given}); write {{{{ and }}}} for literal braces"
        )
    return filled


@dataclass(frozen=True)
class Example:
    """One few-shot example: the `input` as message content, and the `answer` as JSON in the compiled shape."""

    input: str | list[dict[str, Any]]
    answer: str


def _content(value: Any, index: int) -> str | list[dict[str, Any]]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, Mapping) and "type" in p for p in value):
        return [dict(p) for p in value]
    raise ConfigurationError(f"example {index + 1}: its input must be a text or a list of content parts")


def prepare_examples(
    schema: CompiledSchema[Any], examples: Sequence[Any] | None, context: Mapping[str, Any] | None = None
) -> tuple[Example, ...]:
    """`examples` (`(input, output)` pairs) checked against `schema` and encoded; a wrong one is refused.
    They are validated with the call's `context`, as its answer will be (validators may read it)."""
    schema = schema.with_context(context)
    prepared: list[Example] = []
    for index, pair in enumerate(examples or ()):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ConfigurationError(f"example {index + 1}: give an (input, output) pair")
        source, output = pair
        try:
            value = schema.check(schema.dump(output))
        except OutputError as exc:
            raise ConfigurationError(f"example {index + 1}: its output does not fit the schema: {exc}") from None
        answer = json.dumps(schema.encode(schema.dump(value)), ensure_ascii=False)
        prepared.append(Example(_content(source, index), answer))
    return tuple(prepared)


def with_examples(
    messages: list[Message], examples: Sequence[Example], mode: Mode, schema: CompiledSchema[Any]
) -> list[Message]:
    """`messages` with the examples' turns after the system message (if any), before the conversation."""
    if not examples:
        return messages
    turns: list[Message] = []
    for index, example in enumerate(examples):
        turns += [{"role": "user", "content": example.input}, *mode.example(schema, example.answer, index)]
    head = 1 if messages and messages[0].get("role") in ("system", "developer") else 0
    return [*messages[:head], *turns, *messages[head:]]
