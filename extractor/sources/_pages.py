"""Page selections (`pages=3`, `pages=range(1, 4)`, `pages="1-3,5"`) and page-offset lookups."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias

from ..errors import ConfigurationError, DocumentError

__all__ = ["PageOffsets", "PageSelection", "PageStarts", "page_starts", "select_pages"]

PageSelection: TypeAlias = int | str | Iterable[int] | None
"""Which pages to read: 1-based numbers as an int, an iterable of ints (a range, a list), or a string such as
`"1-3,5"` or `"7-"` (page 7 to the end); None for every page."""

PageOffsets: TypeAlias = Sequence[tuple[int, int]] | Sequence[int]
"""Where pages start in a text: `(page_number, char_offset)` pairs, or plain offsets of pages 1, 2, ..."""

_RANGE: Final = re.compile(r"^\s*(\d+)?\s*(-)?\s*(\d+)?\s*$")


def _parse_spec(spec: str) -> list[tuple[int, int | None]]:
    """The `(first, last)` ranges of a string selection; `last` None means "to the end"."""
    ranges: list[tuple[int, int | None]] = []
    for item in spec.split(","):
        match = _RANGE.match(item)
        if not item.strip() or match is None or (match.group(1) is None and match.group(3) is None):
            raise ConfigurationError(f"pages={spec!r}: cannot read {item.strip()!r}; write pages like '1-3,5' or '7-'")
        first_s, dash, last_s = match.groups()
        if dash is None:
            if last_s is not None:  # "1 2": two numbers without a dash
                raise ConfigurationError(f"pages={spec!r}: cannot read {item.strip()!r}")
            first = int(first_s)
            ranges.append((first, first))
            continue
        first = int(first_s) if first_s is not None else 1
        last = int(last_s) if last_s is not None else None
        if last is not None and last < first:
            raise ConfigurationError(f"pages={spec!r}: the range {item.strip()!r} runs backwards")
        ranges.append((first, last))
    return ranges


def select_pages(pages: PageSelection, count: int, *, source: str | None = None) -> list[int]:
    """The 1-based page numbers chosen by `pages` in a document of `count` pages, sorted, without repeats.

    A malformed selection raises `ConfigurationError`; a page beyond the document raises
    `DocumentError` naming the page and the document's page count.
    """
    if pages is None:
        return list(range(1, count + 1))
    if isinstance(pages, bool):
        raise ConfigurationError(f"pages={pages!r}: give a page number, a range, a list or a string like '1-3,5'")
    if isinstance(pages, int):
        ranges: list[tuple[int, int | None]] = [(pages, pages)]
    elif isinstance(pages, str):
        ranges = _parse_spec(pages)
    else:
        ranges = []
        for number in pages:
            if isinstance(number, bool) or not isinstance(number, int):
                raise ConfigurationError(f"pages: {number!r} is not a page number")
            ranges.append((number, number))
        if not ranges:
            raise ConfigurationError("pages: the selection is empty")
    chosen: set[int] = set()
    for first, last in ranges:
        if first < 1:
            raise ConfigurationError(f"pages: page numbers start at 1 (got {first})")
        end = count if last is None else last
        if first > count or end > count:
            bad = first if first > count else end
            noun = "page" if count == 1 else "pages"
            raise DocumentError(f"page {bad} is out of range: the document has {count} {noun}", source=source)
        chosen.update(range(first, end + 1))
    return sorted(chosen)


class PageStarts:
    """Looks up which page a character offset falls on."""

    def __init__(self, offsets: PageOffsets) -> None:
        pairs: list[tuple[int, int]] = []
        for i, item in enumerate(offsets):
            if isinstance(item, tuple):
                number, start = item
                pairs.append((start, number))
            elif isinstance(item, int):
                pairs.append((item, i + 1))
            else:
                raise ConfigurationError(f"page_offsets: {item!r} is neither an offset nor a (page, offset) pair")
        pairs.sort()
        self.starts: list[int] = [start for start, _ in pairs]
        self.numbers: list[int] = [number for _, number in pairs]

    def page_at(self, offset: int) -> int | None:
        """The number of the page holding the character at `offset` (None before the first page)."""
        i = bisect_right(self.starts, offset) - 1
        return self.numbers[i] if i >= 0 else None

    def pages_between(self, start: int, end: int, *, at_end: bool = False) -> tuple[int, ...]:
        """The numbers of the pages that overlap the character range `[start, end)` (the page at `start` for an
        empty range); with `at_end` (the range ends the text) also the empty pages starting at `end`."""
        if not self.starts:
            return ()
        first = max(bisect_right(self.starts, start) - 1, 0)
        last = max(bisect_right(self.starts, end if at_end else max(end - 1, start)) - 1, 0)
        return tuple(self.numbers[first : last + 1])


def page_starts(offsets: PageOffsets | None) -> PageStarts | None:
    """A `PageStarts` for `offsets`, or None when there are none."""
    if offsets is None:
        return None
    return PageStarts(offsets)
