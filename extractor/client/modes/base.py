"""The mode interface: how a request asks for structured output, and how the answer is read back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from ...schema import CompiledSchema
from ...schema.signature import type_signature

__all__ = ["Message", "Mode", "ModeAnswer", "assistant_echo", "content_text", "with_schema_instructions"]

Message = dict[str, Any]

_REGISTRY: dict[str, type[Mode]] = {}
_ORDERED: dict[str, type[Mode]] = {}  # the registry in order of preference, rebuilt when a mode registers


@dataclass(frozen=True)
class ModeAnswer:
    """What a mode read from the assistant's message: the JSON text, or the model's refusal; `missing` says
    what the answer lacks that the mode asked for (a forced tool call that did not come), None when
    nothing."""

    text: str | None
    refusal: str | None = None
    missing: str | None = None


class Mode(ABC):
    """One way of asking for structured output. Subclasses register themselves by `name`."""

    name: ClassVar[str]
    #: the `supported_parameters` entry a model must list for `auto` to choose this mode (None: any model)
    needs: ClassVar[str | None]
    #: preference for `auto` and the order of falling back (lower first)
    rank: ClassVar[int]
    #: which streamed text carries the answer: message "content", or tool-call "arguments"
    stream_field: ClassVar[str] = "content"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    @abstractmethod
    def request(self, schema: CompiledSchema[Any], messages: list[Message]) -> tuple[dict[str, Any], list[Message]]:
        """The body fields this mode sets, and the messages to send (a new list when it adds to them)."""

    def read(self, message: Mapping[str, Any]) -> ModeAnswer:
        """The answer text (or refusal) in the assistant's message."""
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            return ModeAnswer(None, refusal)
        return ModeAnswer(content_text(message.get("content")))

    def reask(self, message: Mapping[str, Any], feedback: str) -> list[Message]:
        """The messages that follow a failed answer: the answer as it came, then what was wrong."""
        return [assistant_echo(message), {"role": "user", "content": feedback}]

    def missing_feedback(self, schema: CompiledSchema[Any]) -> str:
        """What a re-ask says to an answer that lacks what the mode asked for (`ModeAnswer.missing`)."""
        return "Answer in the form asked for."

    def example(self, schema: CompiledSchema[Any], answer: str, index: int) -> list[Message]:
        """The assistant's side of few-shot example `index`: `answer` (JSON in the compiled shape) given
        the way this mode's answers come."""
        return [{"role": "assistant", "content": answer}]

    def __repr__(self) -> str:
        return f"<mode {self.name}>"


def registered_modes() -> Mapping[str, type[Mode]]:
    """Every mode by name, in order of preference (a read-only view)."""
    if len(_ORDERED) != len(_REGISTRY):
        _ORDERED.clear()
        _ORDERED.update(sorted(_REGISTRY.items(), key=lambda item: item[1].rank))
    return MappingProxyType(_ORDERED)


def content_text(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") in ("text", "output_text")]
        texts = [p for p in parts if isinstance(p, str)]
        return "".join(texts) if texts else None
    return None


def assistant_echo(message: Mapping[str, Any]) -> Message:
    """The assistant's message as it must go back in a follow-up: content, tool calls and
    `reasoning_details` exactly as received."""
    echo: Message = {"role": "assistant", "content": message.get("content")}
    for key in ("tool_calls", "reasoning_details"):
        if message.get(key):
            echo[key] = message[key]
    return echo


def with_schema_instructions(schema: CompiledSchema[Any], messages: list[Message]) -> list[Message]:
    """A copy of `messages` whose system message asks for JSON of `schema`'s shape, shown as a compact type
    signature (`schema.signature`), not as a JSON Schema document (which small models copy back)."""
    text = (
        "Reply with one JSON object holding the values found in the input, in exactly this shape (the "
        "shape of the answer, not something to copy: put the values in), and nothing else: no prose, no "
        "code fence around it.\n```\n" + type_signature(schema.json_schema) + "\n```"
    )
    if messages and messages[0].get("role") in ("system", "developer") and isinstance(messages[0].get("content"), str):
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]
