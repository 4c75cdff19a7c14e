"""Token estimates and splitting long texts into overlapping chunks at natural boundaries.

`estimate_tokens` over-estimates on purpose (a chunk that fits the estimate fits the model):

    tokens = ceil(ASCII letters / 3) + ASCII digits and punctuation (1 each)
             + ceil(whitespace / 4) + ceil(non-ASCII UTF-8 bytes / 2)

English prose comes out about 1.3-1.6 times what a BPE tokenizer counts; digit-heavy tables
(tokenizers split digits one by one) and CJK text (1-2 tokens a character) stay covered. An image
counts a fixed `IMAGE_TOKENS` (configurable per call).

`split_text` cuts at the best boundary in the second half of each window: a page boundary (form
feed, or the page offsets given), else a blank line, else a sentence end, else whitespace, else
anywhere. Consecutive chunks overlap a little (but not across a cut between pages, which splits
nothing), and the chunks together cover every character.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigurationError
from ._pages import PageOffsets, PageStarts
from .image import Image

if TYPE_CHECKING:
    from .document import Document

__all__ = [
    "DEFAULT_OVERLAP",
    "IMAGE_TOKENS",
    "Chunk",
    "chunk_document",
    "estimate_document_tokens",
    "estimate_tokens",
    "split_text",
    "typical_tokens",
]

#: What one image is counted as, in tokens (a high-detail page image on most vision models is under this).
IMAGE_TOKENS: Final = 1600
#: Characters shared by consecutive chunks, by default (never more than a quarter of `max_chars`).
DEFAULT_OVERLAP: Final = 200

_LETTERS: Final = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
_SPACES: Final = b" \t\n\r\f\v"
_ASCII: Final = bytes(range(128))
_PARAGRAPH: Final = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE: Final = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*\s+")
_WHITESPACE: Final = re.compile(r"\s")
_MIN_TOKENS: Final = 16


def estimate_tokens(text: str) -> int:
    """A safe over-estimate of the tokens in `text` (see the module's docstring for the formula)."""
    if not text:
        return 0
    raw = text.encode("utf-8", errors="surrogatepass")
    size = len(raw)
    ascii_count = size - len(raw.translate(None, _ASCII))
    letters = size - len(raw.translate(None, _LETTERS))
    spaces = size - len(raw.translate(None, _SPACES))
    others = ascii_count - letters - spaces
    return math.ceil(letters / 3) + others + math.ceil(spaces / 4) + math.ceil((size - ascii_count) / 2)


def typical_tokens(text: str) -> int:
    """A central estimate of the tokens in `text` (UTF-8 bytes / 4), for showing what a request will cost.

    Unlike `estimate_tokens` it does not err high: it is what a dry run reports, not what chunks are
    planned with.
    """
    return math.ceil(len(text.encode("utf-8", errors="surrogatepass")) / 4)


def estimate_document_tokens(doc: Document, *, image_tokens: int = IMAGE_TOKENS) -> int:
    """The estimated tokens of a whole document: its text plus `image_tokens` per image."""
    return estimate_tokens(doc.text) + image_tokens * len(doc.images)


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


class _Boundaries:
    """The cut points of a text, by preference: pages, paragraphs, sentences (whitespace is looked up live)."""

    def __init__(self, text: str, page_starts: PageStarts | None) -> None:
        pages = {m + 1 for m in _find_all(text, "\f")}
        if page_starts is not None:
            pages.update(start for start in page_starts.starts if 0 < start < len(text))
        self.levels: list[list[int]] = [
            sorted(pages),
            [m.end() for m in _PARAGRAPH.finditer(text)],
            [m.end() for m in _SENTENCE.finditer(text)],
        ]

    def is_page(self, offset: int) -> bool:
        """Whether `offset` is where a page starts."""
        pages = self.levels[0]
        i = bisect_right(pages, offset) - 1
        return i >= 0 and pages[i] == offset

    def best(self, text: str, lo: int, hi: int) -> int:
        """The preferred cut in `[lo, hi]`: a page, paragraph or sentence boundary, else after whitespace, else
        `hi`."""
        for level in self.levels:
            i = bisect_right(level, hi) - 1
            if i >= 0 and level[i] >= lo:
                return level[i]
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


def split_text(
    text: str,
    *,
    max_chars: int,
    overlap: int = DEFAULT_OVERLAP,
    page_offsets: PageOffsets | None = None,
) -> list[Chunk]:
    """`text` cut into chunks of at most `max_chars` characters that together cover every character.

    Consecutive chunks share up to `overlap` characters (capped at a quarter of `max_chars`). With
    `page_offsets` (`(page number, offset)` pairs, or offsets of pages 1, 2, ...) page boundaries are
    preferred cut points and each chunk lists the pages it overlaps. An empty text gives one empty chunk.
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ConfigurationError(f"max_chars={max_chars!r}: give a positive number of characters")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ConfigurationError(f"overlap={overlap!r}: give a number of characters, 0 or more")
    overlap = min(overlap, max_chars // 4)
    starts = PageStarts(page_offsets) if page_offsets is not None else None
    n = len(text)
    spans: list[tuple[int, int]] = []
    if n <= max_chars:
        spans.append((0, n))
    else:
        bounds = _Boundaries(text, starts)
        start = 0
        while True:
            if n - start <= max_chars:
                spans.append((start, n))
                break
            hi = start + max_chars
            cut = bounds.best(text, start + max(max_chars // 2, 1), hi)
            spans.append((start, cut))
            # a cut between pages splits nothing: the next chunk starts with the page, no overlap needed
            start = cut if bounds.is_page(cut) else max(_overlap_start(text, cut, overlap), start + 1)
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


def _fit_tokens(
    text: str, max_tokens: int, overlap: int, page_offsets: PageOffsets, max_chars: int | None
) -> list[Chunk]:
    """Chunks whose estimated tokens are at most `max_tokens` (and characters at most `max_chars`)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < _MIN_TOKENS:
        raise ConfigurationError(f"max_tokens={max_tokens!r}: give at least {_MIN_TOKENS} tokens")
    # estimate_tokens counts at most 2 tokens a character, plus 3 for rounding: this many characters always fit
    floor = (max_tokens - 3) // 2
    cap = max_chars if max_chars is not None else len(text) or 1
    ratio = estimate_tokens(text) / len(text) if text else 1.0
    size = min(cap, max(floor, int(max_tokens / ratio)))
    for _ in range(12):
        chunks = split_text(text, max_chars=size, overlap=overlap, page_offsets=page_offsets)
        worst = max(estimate_tokens(chunk.text) for chunk in chunks) / max_tokens
        if worst <= 1 or size <= floor:
            return chunks
        size = max(floor, int(size / worst * 0.97))
    return split_text(text, max_chars=min(cap, floor), overlap=overlap, page_offsets=page_offsets)


def _page_spans(doc: Document) -> list[tuple[int, int, int]]:
    """`(page index, start, end)` of each page's stretch of `doc.text` (separators go with the page before)."""
    starts = [page.char_offset for page in doc.pages]
    ends = [*starts[1:], len(doc.text)]
    return [(i, a, b) for i, (a, b) in enumerate(zip(starts, ends, strict=True))]


@dataclass
class _Group:
    """Consecutive whole pages gathered into one chunk: where their text starts and ends, their numbers
    and images, and their estimated tokens."""

    start: int
    end: int
    pages: list[int]
    images: list[Image]
    tokens: int


def _by_pages(doc: Document, max_tokens: int, max_chars: int | None, overlap: int, image_tokens: int) -> list[_Group]:
    """Whole pages grouped while their text and images fit `max_tokens` (and `max_chars`); a page too
    large alone is split within its text, its images going with its first piece."""
    groups: list[_Group] = []
    open_group: _Group | None = None
    for index, a, b in _page_spans(doc):
        page = doc.pages[index]
        images = image_tokens * len(page.images)
        cost = estimate_tokens(doc.text[a:b]) + images
        if (
            open_group is not None
            and open_group.tokens + cost <= max_tokens
            and (max_chars is None or b - open_group.start <= max_chars)
        ):
            open_group.end = b
            open_group.pages.append(page.number)
            open_group.images.extend(page.images)
            open_group.tokens += cost
            continue
        if open_group is not None:
            groups.append(open_group)
            open_group = None
        if cost <= max_tokens and (max_chars is None or b - a <= max_chars):
            open_group = _Group(a, b, [page.number], list(page.images), cost)
            continue
        room = max_tokens - images
        if room < _MIN_TOKENS:
            raise ConfigurationError(
                f"page {page.number} of {doc.name} holds {len(page.images)} image(s) (~{images} tokens): more "
                f"than one request has room for ({max_tokens} tokens); send fewer or smaller images"
            )
        for n, piece in enumerate(_fit_tokens(doc.text[a:b], room, overlap, [(page.number, 0)], max_chars)):
            piece_images = list(page.images) if n == 0 else []
            tokens = estimate_tokens(piece.text) + image_tokens * len(piece_images)
            groups.append(_Group(a + piece.start, a + piece.end, [page.number], piece_images, tokens))
    if open_group is not None:
        groups.append(open_group)
    return groups


def chunk_document(
    doc: Document,
    *,
    max_chars: int | None = None,
    max_tokens: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    image_tokens: int = IMAGE_TOKENS,
) -> list[Chunk]:
    """`doc.text` in chunks within `max_chars` characters and/or `max_tokens` estimated tokens, cut at
    page boundaries first; each chunk lists its pages and carries the images of the pages that start in it.

    A document with page images and a `max_tokens` is planned by whole pages: each chunk's text and
    images (`image_tokens` each) fit `max_tokens`, and chunks split between pages (a page too large
    alone is split within its text). Without images, consecutive chunks overlap by `overlap` characters.
    """
    if max_chars is None and max_tokens is None:
        raise ConfigurationError("chunk_document needs max_chars or max_tokens")
    text = doc.text
    offsets = doc.page_offsets
    if max_tokens is not None and doc.images:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < _MIN_TOKENS:
            raise ConfigurationError(f"max_tokens={max_tokens!r}: give at least {_MIN_TOKENS} tokens")
        return [
            Chunk(i, text[g.start : g.end], g.start, g.end, tuple(g.pages), tuple(g.images))
            for i, g in enumerate(_by_pages(doc, max_tokens, max_chars, overlap, image_tokens))
        ]
    if max_tokens is not None:
        chunks = _fit_tokens(text, max_tokens, overlap, offsets, max_chars)
    else:
        chunks = split_text(text, max_chars=max_chars or 0, overlap=overlap, page_offsets=offsets)
    images: list[list[Image]] = [[] for _ in chunks]
    chunk_starts = [chunk.start for chunk in chunks]
    for page in doc.pages:
        if not page.images:
            continue
        # the last chunk starting at or before the page's start (the one before may hold the start in its
        # overlap, but goes on with no more of the page); images go with one chunk only
        i = max(bisect_right(chunk_starts, page.char_offset) - 1, 0)
        images[i].extend(page.images)
    return [
        Chunk(index=c.index, text=c.text, start=c.start, end=c.end, pages=c.pages, images=tuple(imgs))
        for c, imgs in zip(chunks, images, strict=True)
    ]
