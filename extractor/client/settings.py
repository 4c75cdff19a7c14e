"""The options of an extraction, in one place: what a call may pass, what a batch adds, and the
settings an extraction runs with (the `Extractor`'s defaults merged with the call's options)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from typing_extensions import TypedDict

from ..errors import ConfigurationError
from ..observe.events import Hook
from ..schema import CompiledSchema
from .prompting import Example, fill_instructions, prepare_examples

if TYPE_CHECKING:
    from .cache import ResponseCache

__all__ = ["BATCH_OPTIONS", "CallOptions", "ManyOptions", "Settings"]

#: the options that shape the extraction itself rather than the request body
_LOCAL_OPTIONS = ("model", "mode", "max_retries", "instructions", "evidence", "max_chars", "max_tokens_per_request",
                  "merge", "on_conflict", "carry_context", "pdf_engine", "context", "examples", "hooks")  # fmt: skip
_ON_CONFLICT = ("first", "fail")


class CallOptions(TypedDict, total=False):
    """Options for one call; each overrides the `Extractor`'s default of the same name."""

    model: str
    mode: str
    max_retries: int
    instructions: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: str | list[str] | None
    seed: int | None
    frequency_penalty: float | None
    presence_penalty: float | None
    reasoning: dict[str, Any] | None
    provider: dict[str, Any] | None
    plugins: list[dict[str, Any]] | None
    extra_body: dict[str, Any] | None
    evidence: bool
    max_chars: int | None
    max_tokens_per_request: int | None
    merge: Callable[[list[Any]], Any] | None
    on_conflict: Literal["first", "fail"]
    carry_context: bool
    pdf_engine: str | None
    context: Mapping[str, Any] | None
    examples: Sequence[tuple[Any, Any]] | None
    #: hooks told of this call's events, after the extractor's own (`extractor.observe.events`)
    hooks: Sequence[Hook] | None


class ManyOptions(CallOptions, total=False):
    """Options of `extract_many`: how the batch runs, and every option of a single call."""

    concurrency: int
    ordered: bool
    window: int | None
    requests_per_minute: float | None
    tokens_per_minute: float | None
    max_cost: float | None
    cache: bool | str | Path | ResponseCache | None
    load_workers: int | None
    load_timeout: float
    max_file_size: int | None


BATCH_OPTIONS = frozenset(ManyOptions.__annotations__) - frozenset(CallOptions.__annotations__)


@dataclass
class Settings:
    """What one extraction is made with: the `Extractor`'s defaults merged with a call's options."""

    model: str
    mode: str
    max_retries: int
    instructions: str | None
    params: dict[str, Any] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)
    evidence: bool = False
    max_chars: int | None = None
    max_tokens_per_request: int | None = None
    merge: Callable[[list[Any]], Any] | None = None
    #: parts of a long document that disagree on a value: keep the first part's ("first") or fail ("fail")
    on_conflict: str = "first"
    #: carry a long document's title block and table headers into its later parts
    carry_context: bool = True
    pdf_engine: str | None = None
    #: given to pydantic validators (`info.context`) and filling the instructions' `{placeholders}`
    context: Mapping[str, Any] | None = None
    #: few-shot `(input, output)` pairs, as given
    examples: Sequence[tuple[Any, Any]] | None = None
    #: the examples checked against the call's schema and encoded (`extractor.client.prompting`)
    shots: tuple[Example, ...] = ()
    #: the call's own hooks (`extractor.observe.events`), besides the extractor's
    hooks: Sequence[Hook] | None = None

    def merged(self, options: Mapping[str, Any]) -> Settings:
        unknown = set(options) - set(CallOptions.__annotations__)
        if unknown:
            raise ConfigurationError(f"unknown option(s): {', '.join(sorted(unknown))}")
        if options.get("on_conflict", "first") not in _ON_CONFLICT:
            raise ConfigurationError(f"on_conflict={options['on_conflict']!r}: give 'first' or 'fail'")
        out = replace(self, params=dict(self.params), extra_body=dict(self.extra_body))
        for key, value in options.items():
            if key in _LOCAL_OPTIONS:
                setattr(out, key, value)
            elif key == "extra_body":
                out.extra_body.update(value or {})
            elif value is None:
                out.params.pop(key, None)
            else:
                out.params[key] = value
        return out

    def prepared(self, schema: CompiledSchema[Any]) -> Settings:
        """These settings for a call on `schema`: instructions filled from `context`, examples checked and
        encoded; raises `ConfigurationError` for a placeholder `context` lacks or an example that does not fit."""
        return replace(
            self,
            instructions=fill_instructions(self.instructions, self.context),
            shots=prepare_examples(schema, self.examples, self.context),
        )
