"""Splitting long texts into chunks at natural boundaries (token estimates: `extractor.sources.tokens`).

`split_text` cuts at the best boundary in the second half of each window: a page boundary (form
feed, or the page offsets given), else a blank line, else a sentence end, else whitespace, else
anywhere. Consecutive chunks overlap a little (but not across a cut between pages, which splits
nothing), and the chunks together cover every character.

With `rows=True` (the text holds the rows of a list: a statement, a price list) the cut is a page
boundary, else a line end (never a sentence end inside a row), and chunks do not overlap: every
row is in exactly one chunk, so two equal rows are two rows, never one read twice.

`chunk_document` also keeps each chunk's *answer* within a limit (`AnswerLimit`): a predicted
answer size for any stretch of the text, and the most one answer may hold.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigurationError
from ..sources._pages import PageOffsets, PageStarts
from ..sources.image import Image
from ..sources.tokens import IMAGE_TOKENS, estimate_tokens

if TYPE_CHECKING:
    from ..sources.document import Document

__all__ = [
    "DEFAULT_OVERLAP",
    "AnswerLimit",
    "Chunk",
    "chunk_document",
    "split_text",
]

DEFAULT_OVERLAP: Final = 200
"""Characters shared by consecutive chunks, by default (never more than a quarter of `max_chars`)."""

_PARAGRAPH: Final = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE: Final = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*\s+")
_LINE_END: Final = re.compile(r"\n")
_WHITESPACE: Final = re.compile(r"\s")
_MIN_TOKENS: Final = 16
#: Chunks planned for their answer's size are never made smaller than this many characters (one row).
_MIN_ANSWER_CHARS: Final = 200


@dataclass(frozen=True)
class Chunk:
    """A piece of a text: `text == original[start:end]`, with the `pages` it overlaps (when known) and, for a
    document's chunks, the page `images` it carries (each image goes with one chunk only)."""

    index: int
    text: str
    start: int
    end: int
    pages: tuple[int, ...] = ()
    images: tuple[Image, ...] = field(default=(), repr=False)

    def estimate_tokens(self, *, image_tokens: int = IMAGE_TOKENS) -> int:
        """The estimated tokens of the chunk's text and images."""
        return estimate_tokens(self.text) + image_tokens * len(self.images)

    def to_parts(self) -> list[dict[str, Any]]:
        """OpenAI chat content parts: the chunk's text (when not blank), then its images."""
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.text}] if self.text.strip() else []
        parts.extend(image.to_part() for image in self.images)
        return parts


@dataclass(frozen=True)
class AnswerLimit:
    """What a chunk's answer may hold: `measure(start, end)` predicts the answer's tokens for the document's
    text between those offsets (the images of the pages starting there included), `tokens` is the most one
    answer is planned to hold."""

    measure: Callable[[int, int], float]
    tokens: float

    def share(self, start: int, end: int) -> float:
        """The predicted answer of `[start, end)` as a share of `tokens` (above 1: it does not fit)."""
        return self.measure(start, end) / self.tokens if self.tokens > 0 else float("inf")


class _Boundaries:
    """The cut points of a text, by preference: pages, paragraphs, sentences (whitespace is looked up live);
    for `rows`, pages then line ends."""

    def __init__(self, text: str, page_starts: PageStarts | None, *, rows: bool = False) -> None:
        pages = {m + 1 for m in _find_all(text, "\f")}
        if page_starts is not None:
            pages.update(start for start in page_starts.starts if 0 < start < len(text))
        finer = [m.end() for m in _LINE_END.finditer(text)] if rows else [m.end() for m in _SENTENCE.finditer(text)]
        self.rows = rows
        self.levels: list[list[int]] = [sorted(pages)]
        if not rows:
            self.levels.append([m.end() for m in _PARAGRAPH.finditer(text)])
        self.levels.append(finer)

    def is_page(self, offset: int) -> bool:
        """Whether `offset` is where a page starts."""
        pages = self.levels[0]
        i = bisect_right(pages, offset) - 1
        return i >= 0 and pages[i] == offset

    def best(self, text: str, lo: int, hi: int, stretch: int | None = None, start: int = 0) -> int:
        """The preferred cut in `[lo, hi]`: a page, paragraph or sentence (or line) boundary, else after
        whitespace, else `hi`. For rows (a chunk from `start`), a line is never cut when that can be
        helped: the last line end after `start` is taken, else the line is kept whole if it ends by
        `stretch`."""
        for level in self.levels:
            i = bisect_right(level, hi) - 1
            if i >= 0 and level[i] >= lo:
                return level[i]
        if self.rows:
            lines = self.levels[-1]
            i = bisect_right(lines, lo) - 1
            if i >= 0 and lines[i] > start:
                return lines[i]
        if self.rows and stretch is not None and stretch > hi:
            end = text.find("\n", hi, stretch)
            if end >= 0:
                return end + 1
            if stretch >= len(text):  # the last line, ending the text
                return len(text)
        space = max(text.rfind(c, lo - 1, hi) for c in " \n\t")
        return space + 1 if space >= lo - 1 else hi


def _find_all(text: str, needle: str) -> list[int]:
    found: list[int] = []
    at = text.find(needle)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def _overlap_start(text: str, cut: int, overlap: int) -> int:
    """Where the next chunk starts: `overlap` characters before `cut`, moved to the start of a word when that
    keeps at least half the overlap."""
    start = cut - overlap
    if overlap <= 0:
        return cut
    match = _WHITESPACE.search(text, start, cut)
    if match is not None and cut - match.end() >= overlap // 2 and match.end() > start:
        return match.end()
    return start


def _check_split(max_chars: Any, overlap: Any) -> None:
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ConfigurationError(f"max_chars={max_chars!r}: give a positive number of characters")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ConfigurationError(f"overlap={overlap!r}: give a number of characters, 0 or more")


def _spans(
    text: str, bounds: _Boundaries | None, max_chars: int, overlap: int, stretch: int | None = None
) -> list[tuple[int, int]]:
    """Where each chunk of at most `max_chars` characters starts and ends (`bounds` None: the text fits whole);
    a row (a line, for `rows`) may stretch a chunk to `stretch` characters to stay whole."""
    n = len(text)
    if n <= max_chars or bounds is None:
        return [(0, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        if n - start <= max_chars:
            spans.append((start, n))
            return spans
        hi = start + max_chars
        cut = bounds.best(text, start + max(max_chars // 2, 1), hi, start + stretch if stretch else None, start)
        spans.append((start, cut))
        if cut >= n:
            return spans
        # a cut between pages splits nothing: the next chunk starts with the page, no overlap needed
        start = cut if bounds.is_page(cut) else max(_overlap_start(text, cut, overlap), start + 1)


def _chunks(text: str, spans: list[tuple[int, int]], starts: PageStarts | None) -> list[Chunk]:
    n = len(text)
    return [
        Chunk(
            index=i,
            text=text[a:b],
            start=a,
            end=b,
            pages=starts.pages_between(a, b, at_end=b == n) if starts is not None else (),
        )
        for i, (a, b) in enumerate(spans)
    ]


def split_text(
    text: str,
    *,
    max_chars: int,
    overlap: int = DEFAULT_OVERLAP,
    page_offsets: PageOffsets | None = None,
    rows: bool = False,
) -> list[Chunk]:
    """`text` cut into chunks of at most `max_chars` characters that together cover every character.

    Consecutive chunks share up to `overlap` characters (capped at a quarter of `max_chars`). With
    `page_offsets` (`(page number, offset)` pairs, or offsets of pages 1, 2, ...) page boundaries are
    preferred cut points and each chunk lists the pages it overlaps. With `rows`, chunks are cut between
    pages or at line ends and never overlap (each line in exactly one chunk). An empty text gives one
    empty chunk.
    """
    _check_split(max_chars, overlap)
    overlap = 0 if rows else min(overlap, max_chars // 4)
    starts = PageStarts(page_offsets) if page_offsets is not None else None
    bounds = _Boundaries(text, starts, rows=rows) if len(text) > max_chars else None
    return _chunks(text, _spans(text, bounds, max_chars, overlap), starts)


@dataclass(frozen=True)
class _Limits:
    """What each chunk must stay within: characters, estimated prompt tokens, the predicted answer."""

    max_chars: int | None = None
    max_tokens: int | None = None
    answer: AnswerLimit | None = None
    overlap: int = DEFAULT_OVERLAP
    rows: bool = False

    def worst(self, chunk: Chunk, base: int) -> float:
        """The largest share of a limit `chunk` takes (above 1: it breaks one); `base`: where its text starts."""
        share = 0.0
        if self.max_tokens is not None:
            share = estimate_tokens(chunk.text) / self.max_tokens
        if self.answer is not None:
            share = max(share, self.answer.share(base + chunk.start, base + chunk.end))
        return share


def _fit(text: str, base: int, limits: _Limits, page_offsets: PageOffsets) -> list[Chunk]:
    """Chunks of `text` (found at `base` in the document) whose characters, estimated tokens and predicted
    answers are within `limits`, as few as the cut points allow."""
    max_tokens = limits.max_tokens
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < _MIN_TOKENS
    ):
        raise ConfigurationError(f"max_tokens={max_tokens!r}: give at least {_MIN_TOKENS} tokens")
    n = len(text)
    # estimate_tokens counts at most 2 tokens a character, plus 3 for rounding: this many characters always fit
    floor = (max_tokens - 3) // 2 if max_tokens is not None else 1
    size = limits.max_chars if limits.max_chars is not None else max(n, 1)
    if max_tokens is not None and text:
        size = min(size, max(floor, int(max_tokens / (estimate_tokens(text) / n))))
    hard = size  # what the characters and the prompt allow: a row may stretch a chunk this far to stay whole
    answer_floor = 1
    if limits.answer is not None and text:
        answer_floor = min(_MIN_ANSWER_CHARS, n)
        share = limits.answer.share(base, base + n)
        if share > 1:
            size = min(size, max(answer_floor, int(n / share)))
    starts = PageStarts(page_offsets)
    overlap = 0 if limits.rows else min(limits.overlap, size // 4)
    bounds = _Boundaries(text, starts, rows=limits.rows)
    for _ in range(16):
        chunks = _chunks(text, _spans(text, bounds if n > size else None, size, overlap, hard), starts)
        worst = max(limits.worst(chunk, base) for chunk in chunks)
        smaller = max(floor, answer_floor, int(size / worst * 0.97)) if worst > 1 else size
        if worst <= 1 or smaller >= size:
            break
        size = smaller
        overlap = 0 if limits.rows else min(limits.overlap, size // 4)
    if max_tokens is not None and any(estimate_tokens(c.text) > max_tokens for c in chunks):
        size = min(size, floor)  # the prompt limit is a hard one: cut to what always fits
        chunks = _chunks(text, _spans(text, bounds, size, 0 if limits.rows else min(limits.overlap, size // 4)), starts)
    return chunks


def _in_span(offset: int, lo: int, hi: int, end: int) -> bool:
    """Whether a page starting at `offset` belongs to the span `[lo, hi)` of a text of length `end` (a page
    starting at the very end belongs to the span that ends the text)."""
    return lo <= offset < hi or offset == hi == end


def _page_spans(doc: Document, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """`(page index, start, end)` of each page's stretch of `doc.text` within `[lo, hi)` (separators go with
    the page before)."""
    starts = [page.char_offset for page in doc.pages]
    end = len(doc.text)
    ends = [*starts[1:], end]
    out: list[tuple[int, int, int]] = []
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        first, last = max(a, lo), min(b, hi)
        if first < last or _in_span(a, lo, hi, end):
            out.append((i, first, max(first, last)))
    return out


@dataclass
class _Group:
    """Consecutive whole pages gathered into one chunk: where their text starts and ends, their numbers
    and images, their estimated tokens and predicted answer."""

    start: int
    end: int
    pages: list[int]
    images: list[Image]
    tokens: int
    answer: float = 0.0


def _by_pages(doc: Document, lo: int, hi: int, limits: _Limits, image_tokens: int) -> list[_Group]:
    """Whole pages of `[lo, hi)` grouped while their text and images fit `limits`; a page too large alone is
    split within its text, its images going with its first piece."""
    groups: list[_Group] = []
    open_group: _Group | None = None
    max_tokens, max_chars, answer = limits.max_tokens, limits.max_chars, limits.answer
    end = len(doc.text)
    for index, a, b in _page_spans(doc, lo, hi):
        page = doc.pages[index]
        own = list(page.images) if _in_span(page.char_offset, lo, hi, end) else []  # images go where the page starts
        images = image_tokens * len(own)
        cost = estimate_tokens(doc.text[a:b]) + images
        said = answer.measure(a, b) if answer is not None else 0.0
        if (
            open_group is not None
            and (max_tokens is None or open_group.tokens + cost <= max_tokens)
            and (max_chars is None or b - open_group.start <= max_chars)
            and (answer is None or open_group.answer + said <= answer.tokens)
        ):
            open_group.end = b
            open_group.pages.append(page.number)
            open_group.images.extend(own)
            open_group.tokens += cost
            open_group.answer += said
            continue
        if open_group is not None:
            groups.append(open_group)
            open_group = None
        fits = (
            (max_tokens is None or cost <= max_tokens)
            and (max_chars is None or b - a <= max_chars)
            and (answer is None or said <= answer.tokens or not doc.text[a:b].strip())
        )
        if fits:  # (a page of images alone cannot be split: it goes whole)
            open_group = _Group(a, b, [page.number], own, cost, said)
            continue
        room = max_tokens - images if max_tokens is not None else None
        if room is not None and room < _MIN_TOKENS:
            raise ConfigurationError(
                f"page {page.number} of {doc.name} holds {len(own)} image(s) (~{images} tokens): more "
                f"than one request has room for ({max_tokens} tokens); send fewer or smaller images"
            )
        inner = _Limits(max_chars, room, answer, limits.overlap, limits.rows)
        for piece in _fit(doc.text[a:b], a, inner, [(page.number, 0)]):
            piece_images = own if piece.start == 0 else []
            tokens = estimate_tokens(piece.text) + image_tokens * len(piece_images)
            said = answer.measure(a + piece.start, a + piece.end) if answer is not None else 0.0
            groups.append(_Group(a + piece.start, a + piece.end, [page.number], list(piece_images), tokens, said))
    if open_group is not None:
        groups.append(open_group)
    return groups


def _offsets_within(doc: Document, lo: int, hi: int) -> list[tuple[int, int]]:
    """`(page number, offset)` of the pages of `[lo, hi)`, offsets counted from `lo` (the page holding `lo`
    at 0)."""
    end = len(doc.text)
    inside = [
        (p.number, p.char_offset - lo) for p in doc.pages if _in_span(p.char_offset, lo, hi, end) and p.char_offset > lo
    ]
    before = [p.number for p in doc.pages if p.char_offset <= lo]
    return ([(before[-1], 0)] if before else []) + inside


def chunk_document(
    doc: Document,
    *,
    max_chars: int | None = None,
    max_tokens: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    image_tokens: int = IMAGE_TOKENS,
    answer: AnswerLimit | None = None,
    rows: bool = False,
    span: tuple[int, int] | None = None,
) -> list[Chunk]:
    """`doc.text` (or its stretch `span`, as `(start, end)` offsets) in chunks within `max_chars` characters,
    `max_tokens` estimated tokens and/or the predicted `answer` limit, cut at page boundaries first; each
    chunk lists its pages and carries the images of the pages that start in it.

    A document with page images and a token or answer limit is planned by whole pages: each chunk's text
    and images (`image_tokens` each) fit, and chunks split between pages (a page too large alone is split
    within its text). Without images, consecutive chunks overlap by `overlap` characters, but for `rows`
    (see `split_text`): then they never overlap.
    """
    if max_chars is None and max_tokens is None and answer is None:
        raise ConfigurationError("chunk_document needs max_chars or max_tokens")
    if max_chars is not None:
        _check_split(max_chars, overlap)
    text = doc.text
    lo, hi = span if span is not None else (0, len(text))
    limits = _Limits(max_chars, max_tokens, answer, overlap, rows)
    if doc.images and (max_tokens is not None or answer is not None):
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < _MIN_TOKENS
        ):
            raise ConfigurationError(f"max_tokens={max_tokens!r}: give at least {_MIN_TOKENS} tokens")
        return [
            Chunk(i, text[g.start : g.end], g.start, g.end, tuple(g.pages), tuple(g.images))
            for i, g in enumerate(_by_pages(doc, lo, hi, limits, image_tokens))
        ]
    part = text[lo:hi]
    offsets = _offsets_within(doc, lo, hi)
    if max_tokens is not None or answer is not None:
        chunks = _fit(part, lo, limits, offsets)
    else:
        chunks = split_text(part, max_chars=max_chars or 0, overlap=overlap, page_offsets=offsets, rows=rows)
    images: list[list[Image]] = [[] for _ in chunks]
    chunk_starts = [lo + chunk.start for chunk in chunks]
    for page in doc.pages:
        if not page.images or not _in_span(page.char_offset, lo, hi, len(text)):
            continue
        # the last chunk starting at or before the page's start (the one before may hold the start in its
        # overlap, but goes on with no more of the page); images go with one chunk only
        i = max(bisect_right(chunk_starts, page.char_offset) - 1, 0)
        images[i].extend(page.images)
    return [
        Chunk(index=c.index, text=c.text, start=lo + c.start, end=lo + c.end, pages=c.pages, images=tuple(imgs))
        for c, imgs in zip(chunks, images, strict=True)
    ]
