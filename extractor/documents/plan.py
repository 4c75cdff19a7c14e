"""How a document is sent: whole, or in parts that each fit one request and one answer. One planner,
used by the real run, by budgets and by `extractor run --dry-run`, so that the parts they count are
the parts a run sends.

Every request must fit the model. When the model's context length is known (whatever the document's
size), a part's prompt gets

    room = context length - answer room - (estimated tokens of schema + instructions) - OVERHEAD_TOKENS

where the answer room is what the part's answer may use (its `max_tokens`): the call's `max_tokens`,
else the model's completion limit (`ANSWER_RESERVE` when neither says), for a record of fixed shape
at most about its schema's size, for a schema with lists at most half of what the context leaves.

When the schema holds lists, the answer grows with the document (a statement's 3,000 rows are some
45,000 answer tokens) and must fit too: parts are planned so that each one's *predicted* answer stays
within `ANSWER_FILL` of the answer room. The prediction (`AnswerModel`) weighs each line of the text:
a line that ends in a number or an amount (a row: `sources.carried.is_row`) as `ROW_WEIGHT` answer
tokens per token of it, any other line as `TEXT_WEIGHT`, a page image as `IMAGE_ANSWER_TOKENS`, plus
`FIXED_ANSWER_TOKENS` a part. The weights err high, and each answer teaches the model: the first
part of a split list document is sent alone, and the rest is planned again with the density its
answer showed (`AnswerModel.learn`); a part whose answer is still cut off is split again
(`Plan.split`), until every answer fits. Parts of list documents never overlap and are cut between
pages, else at line ends: every row is in exactly one part, so the merge keeps equal rows as the
different rows they are.

A document is also split when it is longer than `max_chars`, or its estimated tokens (text, plus
`IMAGE_TOKENS` per page image) exceed `max_tokens_per_request`. Each part is sent after a preamble
saying which part it is, that what it does not state is null, and (for parts after the first) the
document's title block and the header of a table it continues (`sources.carried`).
"""

from __future__ import annotations

import json
import math
import weakref
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigurationError, OutputTruncatedError
from ..schema.compiled import CompiledSchema
from ..sources.document import Document
from ..sources.tokens import IMAGE_TOKENS, estimate_tokens
from .carried import carried_context, is_row, table_headers
from .chunking import AnswerLimit, Chunk, chunk_document
from .part_schema import PartSchema, part_schema

if TYPE_CHECKING:
    from ..client.catalog import ModelInfo

__all__ = [
    "ANSWER_FILL",
    "ANSWER_RESERVE",
    "FIXED_ANSWER_TOKENS",
    "IMAGE_ANSWER_TOKENS",
    "MIN_CUT_ITEMS",
    "OVERHEAD_TOKENS",
    "ROW_WEIGHT",
    "RUNAWAY_FACTOR",
    "TEXT_WEIGHT",
    "AnswerModel",
    "Limits",
    "Part",
    "Plan",
    "RequestEstimate",
    "holds_lists",
    "plan_document",
    "record_answer_tokens",
    "split_preamble",
]

#: Tokens kept free in each request beside the document, schema and instructions: the messages'
#: framing, a part's preamble and the context carried into it (at most 600 characters).
OVERHEAD_TOKENS: Final = 1_000
#: The completion limit assumed when neither the call (`max_tokens`) nor the model's entry says one.
ANSWER_RESERVE: Final = 16_384
#: A part's predicted answer is planned to fill at most this share of its answer room.
ANSWER_FILL: Final = 0.9
#: Predicted answer tokens per estimated token of a line that is a row (ends in a number or amount).
ROW_WEIGHT: Final = 2.0
#: Predicted answer tokens per estimated token of any other line.
TEXT_WEIGHT: Final = 0.25
#: Predicted answer tokens for one page image (a scanned page of rows), for a schema with lists.
IMAGE_ANSWER_TOKENS: Final = 1_500
#: Predicted answer tokens of each part beside its rows: the record's other fields, the JSON around.
FIXED_ANSWER_TOKENS: Final = 200
#: A cut-off answer is split only when it held at least this many whole list items (else the model ran on).
MIN_CUT_ITEMS: Final = 2
#: ... and only when it is no more than this many times what the piece's lines would make by the prior
#: (which errs high): a longer answer is a model repeating itself, not a long list.
RUNAWAY_FACTOR: Final = 2
_MIN_ROOM: Final = 1_000
#: the learned density never moves further than this factor from the prior, either way
_SCALE_RANGE: Final = (0.02, 50.0)


def record_answer_tokens(schema: CompiledSchema[Any]) -> int:
    """The tokens a record of fixed shape is given to answer in: about its schema's size, 1,024 to 4,096."""
    return _facts(schema).record_tokens


def holds_lists(schema: CompiledSchema[Any]) -> bool:
    """Whether `schema` has lists anywhere: its answers grow with the text they are read from."""
    return _facts(schema).lists


@dataclass(frozen=True)
class _Facts:
    tokens: int  # estimated tokens of the compiled schema
    lists: bool
    record_tokens: int


_FACTS: weakref.WeakKeyDictionary[CompiledSchema[Any], _Facts] = weakref.WeakKeyDictionary()


def _facts(schema: CompiledSchema[Any]) -> _Facts:
    """What the planner needs of a compiled schema, worked out once per schema."""
    found = _FACTS.get(schema)
    if found is None:
        shape = json.dumps(schema.json_schema)
        record = min(4_096, max(1_024, math.ceil(len(shape) / 4)))
        found = _FACTS[schema] = _Facts(estimate_tokens(shape), '"array"' in shape, record)
    return found


@dataclass(frozen=True)
class Limits:
    """What each request of a call may hold, for its model: `context` (None: not known); `answer`, the
    most tokens one answer may have (the model's completion limit, else `ANSWER_RESERVE`); `wanted`, the
    call's own `max_tokens` (None: not set); the prompt's `overhead` beside the document (schema,
    instructions, framing); whether the schema has `lists`; `record`, a fixed-shape record's answer;
    and the call's own `max_chars` / `max_tokens_per_request`."""

    context: int | None
    answer: int
    overhead: int
    lists: bool
    record: int = 4_096
    wanted: int | None = None
    max_chars: int | None = None
    max_tokens_per_request: int | None = None

    @cached_property
    def answer_room(self) -> int:
        """The most tokens any answer of the call may have (a retry after a cut included): the answer limit,
        within half of what the context leaves beside the schema and instructions."""
        room = self.answer
        if self.context is not None:
            room = min(room, max(1, (self.context - self.overhead) // 2))
        return room

    @cached_property
    def reserve(self) -> int:
        """The tokens kept free for the answer beside each prompt: the answer room for a schema with lists,
        twice a record's first answer (one retry after a cut) for a record of fixed shape."""
        return self.answer_room if self.lists else min(self.answer_room, 2 * (self.wanted or self.record))

    @cached_property
    def prompt_room(self) -> int | None:
        """The most estimated tokens of document one request may hold (None: no limit)."""
        rooms = [r for r in (self.max_tokens_per_request,) if r]
        if self.context is not None:
            rooms.append(self.context - self.reserve - self.overhead)
        return min(rooms) if rooms else None

    @cached_property
    def answer_target(self) -> float:
        """The most answer tokens a part is planned to need: `ANSWER_FILL` of the answer room (of the call's
        `max_tokens`, when it sets a smaller one)."""
        return ANSWER_FILL * min(self.wanted or self.answer_room, self.answer_room)

    def with_overhead(self, tokens: int) -> Limits:
        """These limits for a schema and instructions of `tokens` estimated tokens (the part schema's)."""
        return replace(self, overhead=tokens + OVERHEAD_TOKENS)


def limits_for(
    schema: CompiledSchema[Any],
    info: ModelInfo | None,
    *,
    instructions: str | None = None,
    max_tokens: Any = None,
    max_chars: int | None = None,
    max_tokens_per_request: int | None = None,
) -> Limits:
    """The `Limits` of a call on `schema` with the model `info` describes (None: nothing known); `max_tokens`
    is the call's own answer limit."""
    facts = _facts(schema)
    answer = (info.max_completion_tokens if info is not None else None) or ANSWER_RESERVE
    overhead = facts.tokens + estimate_tokens(instructions or "") + OVERHEAD_TOKENS
    context = info.context_length if info is not None else None
    wanted = int(max_tokens) if max_tokens else None
    return Limits(
        context, answer, overhead, facts.lists, facts.record_tokens, wanted, max_chars, max_tokens_per_request
    )


class AnswerModel:
    """Predicts how many answer tokens a stretch of a document's text asks for, for a schema with lists
    (see the module's docstring for the weights), and learns the document's real density from answers."""

    def __init__(self, document: Document) -> None:
        text = document.text
        starts = [0]
        weights: list[float] = []
        rows: list[int] = []
        at = 0
        for line in text.splitlines(keepends=True):
            row = is_row(line.strip())
            weights.append((ROW_WEIGHT if row else TEXT_WEIGHT) * estimate_tokens(line))
            rows.append(1 if row else 0)
            at += len(line)
            starts.append(at)
        self._starts = starts[:-1] if len(starts) > 1 else [0]
        self._weight = [0.0, *accumulate(weights)]
        self._rows = [0, *accumulate(rows)]
        self._images = sorted((page.char_offset, len(page.images)) for page in document.pages if page.images)
        self._image_at = [offset for offset, _ in self._images]
        self._image_count = [0, *accumulate(count for _, count in self._images)]
        self._end = len(text)
        self.scale = 1.0
        self.learned = False

    def _lines(self, start: int, end: int) -> tuple[int, int]:
        """The lines starting in `[start, end)`, as an index range."""
        return bisect_left(self._starts, start), bisect_left(self._starts, end)

    def _prior(self, start: int, end: int) -> float:
        """The weight of `[start, end)` before any learning: its lines and page images."""
        first, last = self._lines(start, end)
        i, j = bisect_left(self._image_at, start), bisect_left(self._image_at, end)
        if end >= self._end:
            j = len(self._image_at)
        images = self._image_count[j] - self._image_count[i]
        return self._weight[last] - self._weight[first] + IMAGE_ANSWER_TOKENS * images

    def rows(self, start: int, end: int) -> int:
        """How many lines of `[start, end)` are rows."""
        first, last = self._lines(start, end)
        return self._rows[last] - self._rows[first]

    def expected(self, start: int, end: int) -> float:
        """The answer tokens `[start, end)` would make by the prior alone (before any learning)."""
        return FIXED_ANSWER_TOKENS + self._prior(start, end)

    def measure(self, start: int, end: int) -> float:
        """The predicted answer tokens of a part holding `[start, end)`."""
        return FIXED_ANSWER_TOKENS + self.scale * self._prior(start, end)

    def learn(self, start: int, end: int, answer_tokens: int) -> None:
        """A whole answer of `answer_tokens` came for the part `[start, end)`: predict the rest by it."""
        prior = self._prior(start, end)
        if prior <= 0:
            return
        self._set(answer_tokens / prior, keep_higher=False)  # all of it to the rows: predictions err high

    def learn_cut(self, start: int, end: int, answer_tokens: int, items: int | None) -> None:
        """The answer for `[start, end)` was cut off after `answer_tokens` tokens and `items` whole list items:
        it needed at least that many tokens for the share of the part's rows those items are (half the part,
        when that cannot be told)."""
        prior = self._prior(start, end)
        if prior <= 0:
            return
        rows = self.rows(start, end)
        covered = items / rows if items and rows > items else 0.5
        needed = answer_tokens / max(covered, 0.02)
        self._set(needed / prior, keep_higher=True)

    def _set(self, scale: float, *, keep_higher: bool) -> None:
        low, high = _SCALE_RANGE
        scale = min(max(scale, low), high)
        self.scale = max(self.scale, scale) if keep_higher and self.learned else scale
        self.learned = True


@dataclass(frozen=True)
class Part:
    """One request's share of a document: the `chunk` (text and page images) and the `preamble` sent
    before it (which part it is, what to do with what it lacks, the context carried into it)."""

    chunk: Chunk
    preamble: str
    #: which part of the document it is, from 1
    number: int = 1

    def to_parts(self) -> list[dict[str, Any]]:
        """OpenAI chat content parts: the preamble, then the chunk's text and images."""
        return [{"type": "text", "text": self.preamble}, *self.chunk.to_parts()]


@dataclass(frozen=True)
class RequestEstimate:
    """One request a document is expected to need: its prompt's estimated tokens (the document's share,
    with schema, instructions and framing) and its answer's predicted tokens (None for a record of fixed
    shape: as long as such answers usually are)."""

    prompt_tokens: int
    answer_tokens: int | None


@dataclass
class Plan:
    """How `document` is sent: `chunks` (one whole-document chunk when it fits one request), in document
    order, asked with `schema` (the part schema; None while sent whole), within `limits`. For a schema
    with lists, `model` predicts the answers (made when first needed) and learns from them."""

    document: Document
    full: CompiledSchema[Any]
    limits: Limits
    chunks: list[Chunk]
    carry: bool = True
    instructions: str | None = None
    schema: PartSchema[Any] | None = None
    _model: AnswerModel | None = field(default=None, repr=False)
    _headers: list[tuple[int, str]] | None = field(default=None, repr=False)

    @property
    def whole(self) -> bool:
        """Whether the document goes in one request, whole (asked with the user's own schema)."""
        return len(self.chunks) == 1 and self.schema is None

    @property
    def lists(self) -> bool:
        """Whether the schema holds lists (answers grow with the text; parts never overlap)."""
        return self.limits.lists

    @property
    def model(self) -> AnswerModel | None:
        """The answer model of a schema with lists (None for a record of fixed shape)."""
        if self._model is None and self.lists:
            self._model = AnswerModel(self.document)
        return self._model

    def part_schema(self) -> PartSchema[Any]:
        """The schema parts are asked with (derived once, when the document is first split)."""
        if self.schema is None:
            self.schema = part_schema(self.full)
            self.limits = self.limits.with_overhead(_facts(self.schema.compiled).tokens + _tokens(self.instructions))
        return self.schema

    def _answer_limit(self, tokens: float | None = None) -> AnswerLimit | None:
        model = self.model
        if model is None:
            return None
        return AnswerLimit(model.measure, self.limits.answer_target if tokens is None else tokens)

    def _chunk(self, span: tuple[int, int], answer: AnswerLimit | None) -> list[Chunk]:
        limits = self.limits
        return chunk_document(
            self.document,
            max_chars=limits.max_chars,
            max_tokens=limits.prompt_room,
            answer=answer,
            rows=limits.lists,
            span=span,
        )

    def rest(self, start: int) -> list[Chunk]:
        """The document from offset `start` on, planned again (after the model learned from an answer)."""
        if start >= len(self.document.text):
            return []
        return self._chunk((start, len(self.document.text)), self._answer_limit())

    def split(self, chunk: Chunk, cut: OutputTruncatedError) -> list[Chunk]:
        """`chunk` in smaller pieces, after its answer was cut off (`cut`): each planned to need at most half
        of what the cut showed it needs. Raises `cut`, naming the piece, when it cannot be split (one row,
        one page image, a record of fixed shape), and when the cut answer is no list too long for one answer
        but a model that runs on (repeating itself to the token limit), which more, smaller requests would
        only pay for again: it held fewer than `MIN_CUT_ITEMS` whole list items, or it was more than
        `RUNAWAY_FACTOR` times what the piece's lines would make by the prior."""
        model = self.model
        if model is None:
            raise cut
        limit = cut.limit or self.limits.answer_room
        if (cut.items or 0) < MIN_CUT_ITEMS:
            cut.args = (
                f"{_where(self.document, chunk)}: cut off at {limit} tokens after {cut.items or 0} whole list "
                f"item(s): one item too long for an answer, or a model that runs on; not split: {cut}",
            )
            raise cut
        expected = model.expected(chunk.start, chunk.end)
        if (cut.answer_tokens or limit) > RUNAWAY_FACTOR * expected:
            cut.args = (
                f"{_where(self.document, chunk)}: cut off at {limit} tokens, more than {RUNAWAY_FACTOR} times what "
                f"its lines would make (~{round(expected)} tokens): a model that runs on (repeating itself); not "
                f"split: {cut}",
            )
            raise cut
        self.part_schema()
        model.learn_cut(chunk.start, chunk.end, cut.answer_tokens or self.limits.answer_room, cut.items)
        need = model.measure(chunk.start, chunk.end)
        pieces = self._chunk((chunk.start, chunk.end), self._answer_limit(min(self.limits.answer_target, need / 2)))
        if len(pieces) < 2:
            cut.args = (
                f"{_where(self.document, chunk)} needs more than one answer holds ({limit} tokens) and cannot be "
                f"split further: {cut}",
            )
            raise cut
        return pieces

    def learn(self, chunk: Chunk, answer_tokens: int) -> None:
        """The answer for `chunk` came whole, `answer_tokens` long: later plans go by what it showed."""
        model = self.model
        if model is not None and answer_tokens > 0:
            model.learn(chunk.start, chunk.end, answer_tokens)

    def answer_floor(self, chunk: Chunk) -> int | None:
        """The least `max_tokens` a request holding `chunk` is sent with (when the call sets none): room for
        its predicted answer and a third more (None for a record of fixed shape, or a document whose answer
        was never weighed: the attempt loop's ceiling applies)."""
        model = self._model
        if model is None:
            return None
        return math.ceil(model.measure(chunk.start, chunk.end) * 4 / 3)

    def part(self, chunk: Chunk, number: int, count: int) -> Part:
        """`chunk` as part `number` of `count`, with its preamble and carried context."""
        carried = ""
        if self.carry and chunk.start > 0:
            if self._headers is None:
                self._headers = table_headers(self.document.text)
            carried = carried_context(self.document.text, chunk.start, self._headers, title=not self.lists)
        return Part(chunk, _preamble(self.document, chunk, number, count, carried), number)

    def parts(self) -> list[Part]:
        """The planned parts, with their preambles (empty when the document goes whole)."""
        if self.whole:
            return []
        return [self.part(chunk, i + 1, len(self.chunks)) for i, chunk in enumerate(self.chunks)]

    def requests(self, tokens: Callable[[Any], int] | None = None) -> list[RequestEstimate]:
        """The requests this plan sends, each with its prompt and, for a schema with lists, its predicted
        answer: what budgets reserve and the dry run shows. `tokens` counts the tokens of a JSON value as
        sent (a text, or the instructions and schema); by default `estimate_tokens`, which errs high."""
        count = tokens or _estimated
        schema = self.full if self.whole else self.part_schema().compiled
        overhead = count([self.instructions or "", schema.json_schema]) + 40
        parts: list[Part | None] = [*self.parts()] or [None]
        model = self.model
        out: list[RequestEstimate] = []
        for part, chunk in zip(parts, self.chunks, strict=True):
            text = chunk.text if part is None else part.preamble + "\n\n" + chunk.text
            prompt = count(text) + IMAGE_TOKENS * len(chunk.images) + overhead
            answer = None
            if model is not None:
                answer = min(self.limits.answer_room, math.ceil(model.measure(chunk.start, chunk.end)))
            out.append(RequestEstimate(prompt, answer))
        return out


def _estimated(value: Any) -> int:
    return estimate_tokens(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _tokens(text: str | None) -> int:
    return estimate_tokens(text or "")


def _where(document: Document, chunk: Chunk) -> str:
    pages = ""
    if chunk.pages:
        first, last = chunk.pages[0], chunk.pages[-1]
        pages = f" (page {first})" if first == last else f" (pages {first}-{last})"
    return f"characters {chunk.start}-{chunk.end}{pages} of {document.name}"


_PART_HEAD: Final = "[This is part "
_CARRIED_HEAD: Final = "[Repeated from earlier in the document, to read this part by"


def split_preamble(text: str) -> tuple[str, str]:
    """A part's user text as `(preamble, the document's own text)`; `("", text)` for a text that is no part
    (what a model that keeps to the preamble reads as the part's own)."""
    if not text.startswith(_PART_HEAD):
        return "", text
    end = text.find("]\n", len(_PART_HEAD))
    if end < 0:
        return text, ""
    end += 1
    if text.startswith("\n" + _CARRIED_HEAD, end):
        close = text.find("\n]", end + 1)
        end = close + 2 if close >= 0 else len(text)
    rest = text[end:]
    return text[:end], rest[2:] if rest.startswith("\n\n") else rest.lstrip("\n")


def _preamble(document: Document, chunk: Chunk, number: int, count: int, carried: str) -> str:
    pages = ""
    if chunk.pages:
        first, last = chunk.pages[0], chunk.pages[-1]
        pages = f", page {first}" if first == last else f", pages {first}-{last}"
    lines = [
        f"{_PART_HEAD}{number} of {count} of {document.name}{pages}. Extract only what this part "
        "states: give null for every field it does not state and an empty list where it lists no items; "
        "never guess a value that belongs to another part.]"
    ]
    if carried:
        lines += [
            f"{_CARRIED_HEAD} (its values belong to the part that states them):",
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
) -> Plan:
    """How `document` is sent, asked with the user's compiled `schema`: whole when it fits one request and
    one answer, else in parts. `info`: the model's limits (None: nothing known); `max_chars` /
    `max_tokens`: the call's limits per request; `answer_tokens`: the call's `max_tokens`; `carry`: carry
    the title block and table headers into later parts."""
    limits = limits_for(
        schema,
        info,
        instructions=instructions,
        max_tokens=answer_tokens,
        max_chars=max_chars,
        max_tokens_per_request=max_tokens,
    )
    if limits.context is not None and limits.context - limits.reserve - limits.overhead < _MIN_ROOM:
        name = info.id if info is not None else "the model"
        raise ConfigurationError(
            f"{name}'s context ({limits.context} tokens) leaves no room for a document beside the schema, "
            f"instructions and a {limits.reserve}-token answer"
        )
    images = tuple(document.images)
    text = document.text
    whole = Chunk(0, text, 0, len(text), tuple(p.number for p in document.pages), images)
    plan = Plan(document, schema, limits, [whole], carry=carry, instructions=instructions)
    estimate = estimate_tokens(text) + IMAGE_TOKENS * len(images)
    room = limits.prompt_room
    too_long = (max_chars is not None and len(document.text) > max_chars) or (room is not None and estimate > room)
    answers_long = False
    if limits.lists:  # an upper bound first: most documents' answers fit without weighing their lines
        bound = FIXED_ANSWER_TOKENS + ROW_WEIGHT * estimate + IMAGE_ANSWER_TOKENS * len(images)
        model = plan.model if bound > limits.answer_target else None
        answers_long = model is not None and model.measure(0, len(document.text)) > limits.answer_target
    if not (too_long or answers_long):
        return plan
    plan.part_schema()
    chunks = plan._chunk((0, len(document.text)), plan._answer_limit() if answers_long else None)
    if len(chunks) < 2:
        plan.schema = None
        plan.limits = limits
        return plan
    plan.chunks = chunks
    return plan
