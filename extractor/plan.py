"""How a document is sent: whole, or in parts that each fit one request. One planner, used by the real
run and by `extractor run --dry-run`, so that the dry run's parts are the real ones.

A document is split when it is longer than `max_chars`, when its estimated tokens (text, plus
`IMAGE_TOKENS` per page image) exceed `max_tokens_per_request`, or when it does not fit the model's
context beside the schema, the instructions and the answer:

    room = context length - answer reserve - (estimated tokens of schema + instructions) - OVERHEAD_TOKENS

where the answer reserve is the call's `max_tokens`, else the model's completion limit capped at
`ANSWER_RESERVE` tokens. Each part is sent after a preamble saying which part it is, that what it
does not state is null, and (for parts after the first) the document's title block and the header
of a table it continues (`sources.carried`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .errors import ConfigurationError
from .models_info import ModelInfo
from .schema.compiled import CompiledSchema
from .sources.carried import carried_context, table_headers
from .sources.chunking import Chunk, chunk_document, estimate_document_tokens, estimate_tokens
from .sources.document import Document

__all__ = [
    "ANSWER_RESERVE",
    "CHECK_CONTEXT_ABOVE",
    "OVERHEAD_TOKENS",
    "Part",
    "answer_reserve",
    "needs_context",
    "plan_document",
]

#: Tokens kept free in each request beside the document, schema and instructions: the messages'
#: framing, a part's preamble and the context carried into it (at most 600 characters).
OVERHEAD_TOKENS: Final = 1_000
#: A document estimated at more tokens than this is checked against the model's context length.
CHECK_CONTEXT_ABOVE: Final = 8_000
#: At most this many tokens are kept for the answer when the call sets no `max_tokens`.
ANSWER_RESERVE: Final = 16_384
_MIN_ROOM: Final = 1_000


@dataclass(frozen=True)
class Part:
    """One request's share of a document: the `chunk` (text and page images) and the `preamble` sent
    before it (which part it is, what to do with what it lacks, the context carried into it)."""

    chunk: Chunk
    preamble: str

    def to_parts(self) -> list[dict[str, Any]]:
        """OpenAI chat content parts: the preamble, then the chunk's text and images."""
        return [{"type": "text", "text": self.preamble}, *self.chunk.to_parts()]


def answer_reserve(info: ModelInfo, max_tokens: Any = None) -> int:
    """The tokens kept for the answer: `max_tokens` when set, else the model's completion limit, at most
    `ANSWER_RESERVE`."""
    if max_tokens:
        return int(max_tokens)
    return min(info.max_completion_tokens or ANSWER_RESERVE, ANSWER_RESERVE)


def needs_context(document: Document, *, max_chars: int | None = None, max_tokens: int | None = None) -> bool:
    """Whether planning `document` needs the model's context length (looked up from the endpoint)."""
    if not (max_chars or max_tokens or document.images) and 2 * len(document.text) <= CHECK_CONTEXT_ABOVE:
        return False  # a short text: its estimate (at most two tokens a character) cannot reach the check
    return estimate_document_tokens(document) > CHECK_CONTEXT_ABOVE


def _preamble(document: Document, chunk: Chunk, count: int, carried: str) -> str:
    pages = ""
    if chunk.pages:
        first, last = chunk.pages[0], chunk.pages[-1]
        pages = f", page {first}" if first == last else f", pages {first}-{last}"
    lines = [
        f"[This is part {chunk.index + 1} of {count} of {document.name}{pages}. Extract only what this part "
        "states: give null for every field it does not state and an empty list where it lists no items; "
        "never guess a value that belongs to another part.]"
    ]
    if carried:
        lines += [
            "[Repeated from earlier in the document, to read this part by (its values belong to the part "
            "that states them):",
            carried,
            "]",
        ]
    return "\n".join(lines)


def plan_document(
    document: Document,
    schema: CompiledSchema[Any],
    *,
    instructions: str | None = None,
    max_chars: int | None = None,
    max_tokens: int | None = None,
    info: ModelInfo | None = None,
    answer_tokens: Any = None,
    carry: bool = True,
) -> list[Part]:
    """The parts `document` is sent in, asked with `schema` (a part schema); empty when it fits one
    request whole. `info`: the model's limits (needed when `needs_context`); `answer_tokens`: the
    call's `max_tokens`; `carry`: carry the title block and table headers into later parts."""
    if info is not None and info.context_length and estimate_document_tokens(document) > CHECK_CONTEXT_ABOVE:
        answer = answer_reserve(info, answer_tokens)
        overhead = estimate_tokens(json.dumps(schema.json_schema) + (instructions or "")) + OVERHEAD_TOKENS
        room = info.context_length - answer - overhead
        if room < _MIN_ROOM:
            raise ConfigurationError(
                f"{info.id}'s context ({info.context_length} tokens) leaves no room for a document beside the "
                f"schema, instructions and a {answer}-token answer"
            )
        max_tokens = min(max_tokens, room) if max_tokens else room
    estimate = estimate_document_tokens(document)
    if not ((max_chars and len(document.text) > max_chars) or (max_tokens and estimate > max_tokens)):
        return []
    chunks = chunk_document(document, max_chars=max_chars, max_tokens=max_tokens)
    if len(chunks) < 2:
        return []
    headers = table_headers(document.text) if carry else []
    return [
        Part(chunk, _preamble(document, chunk, len(chunks), carried_context(document.text, chunk.start, headers)))
        if carry
        else Part(chunk, _preamble(document, chunk, len(chunks), ""))
        for chunk in chunks
    ]
