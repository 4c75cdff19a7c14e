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
    """Options for one call (`extract`, `extract_result`, `stream`, `stream_items`, `aplan`, ...).

    Each key but the three below is the `Extractor` option of the same name, documented there, and
    overrides the extractor's default for this call (`None` removes a sampling default). Only a call takes:

    Attributes:
        merge: How the parts of a long document that each state a scalar become one value: a function of
            the list of the non-null values, in document order (default: the first).
        context: Given to your pydantic validators (`info.context`) and filling the `{placeholders}` of
            the instructions; a placeholder it does not fill is a `ConfigurationError` before any request.
        examples: Few-shot `(input, output)` pairs: each output (a model instance or plain data) is
            validated against the schema up front, encoded in the compiled shape and sent before the source.
    """

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
    hooks: Sequence[Hook] | None


class ManyOptions(CallOptions, total=False):
    """Options of `extract_many` / `aextract_many` (and `submit_batch`): every option of a single call
    (`CallOptions`, applied to each extraction) and how the batch runs:

    Attributes:
        concurrency: Extractions in flight at most (default 16); a 429 halves the limit and successes
            raise it again (AIMD).
        ordered: Results in input order, within a window of `window` results (default: as they finish).
        window: How many results `ordered` may hold back (default 4 x `concurrency`).
        requests_per_minute: Pace every request to this rate.
        tokens_per_minute: Pace every request to this many prompt and answer tokens a minute.
        max_cost: The budget in USD: no input starts once what was spent and what the inputs in flight
            may still cost would pass it; those come back `skipped`, to be run next time. A model without
            known prices makes it a `ConfigurationError` up front.
        cache: The response cache for this batch, as the `Extractor`'s `cache` (default: the extractor's).
        load_workers: Processes that read PDFs (default: one per core; 0 reads in a thread).
        load_timeout: Seconds one file may take to read (default 120); a file past it, or whose worker
            dies, fails alone.
        max_file_size: Files over this many bytes fail unread (default 200 MB; None: no limit).
    """

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
