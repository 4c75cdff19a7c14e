"""Cutting a source text into segments for highlighting: each segment is covered by the same values'
spans from start to end, so overlapping spans (one value inside another, two values on one word)
become marks that name every value covering them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["Segment", "segments"]


@dataclass(frozen=True)
class Segment:
    """`text[start:end]`, covered by the spans of the values `keys` (none: plain text); `page` is the
    number of a page starting at `start` (None when none does, or the text has one page)."""

    start: int
    end: int
    keys: tuple[str, ...] = ()
    page: int | None = None


def segments(
    length: int,
    spans: Iterable[tuple[str, int, int]],
    pages: Iterable[tuple[int, int]] = (),
) -> list[Segment]:
    """The segments of a text of `length` characters, given each value's spans as `(key, start, end)`
    (spans past `length` are cut there or dropped) and the pages as `(number, start)` pairs (marked
    only when there are two or more). Keys keep the order in which they were first given."""
    order: dict[str, int] = {}
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    for key, start, end in spans:
        start, end = max(start, 0), min(end, length)
        if start >= end:
            continue
        order.setdefault(key, len(order))
        opens.setdefault(start, []).append(key)
        closes.setdefault(end, []).append(key)
    page_list = list(pages)
    page_at = {start: number for number, start in page_list if 0 <= start < length} if len(page_list) > 1 else {}
    bounds = sorted({0, length, *opens, *closes, *page_at})
    out: list[Segment] = []
    active: Counter[str] = Counter()
    for start, end in pairwise(bounds):
        active.subtract(closes.get(start, ()))
        active.update(opens.get(start, ()))
        keys = tuple(sorted((k for k, n in active.items() if n > 0), key=order.__getitem__))
        page = page_at.get(start)
        if out and page is None and out[-1].keys == keys:
            out[-1] = Segment(out[-1].start, end, keys, out[-1].page)
        else:
            out.append(Segment(start, end, keys, page))
    return out
