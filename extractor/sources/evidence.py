"""Evidence: where each string of an extracted value occurs in the source text, if anywhere.

Each string is looked up three ways, stopping at the first that finds it:

1. `"exact"`: every occurrence of the string (trimmed) as it is;
2. `"normalized"`: ignoring case and whitespace (`"NL 8104 33941"` finds `"nl810433941"`, a line
   break finds a space); spans are in the original text;
3. `"fuzzy"`: the best approximate alignment (rapidfuzz's partial ratio, on lower-cased text) scoring
   at least `threshold`; one span, widened to whole words. Only for strings of 4 to 1,000 characters
   that are mostly letters: for figures, dates and codes a near miss is another value.

Numbers are not looked up: `1234.5` may be printed `1,234.50`, `1.234,50` or `1 234,50`. To check one
as printed, look up its usual spellings and see whether any is found:

    any(e.found for e in find_evidence(number_forms(1234.5), text, whole_words=True))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from rapidfuzz import fuzz

from .._jsonpath import join_path
from ..errors import ConfigurationError
from ._pages import PageOffsets, PageStarts

if TYPE_CHECKING:
    from .document import Document

__all__ = ["DEFAULT_THRESHOLD", "Evidence", "EvidenceMethod", "find_evidence", "number_forms"]

#: How a string was found.
EvidenceMethod: TypeAlias = Literal["exact", "normalized", "fuzzy"]

#: The lowest fuzzy score (0-1) that counts as found.
DEFAULT_THRESHOLD: Final = 0.9

_MIN_FUZZY: Final = 4  # shorter strings match by chance
_MAX_FUZZY: Final = 1000  # longer ones are compared only exactly / normalized
_MAX_WIDEN: Final = 8  # characters a fuzzy span may grow by on each side, to whole words
_SPACES: Final = re.compile(r"\s+")


@dataclass(frozen=True)
class Evidence:
    """Where the string `value` at JSON `path` was found: `spans` (start, end) into the text, the `page` of the
    first span, the `method`, and a `score` from 0 to 1 (1 for exact and normalized matches; for a string
    not found, the best fuzzy score seen)."""

    path: str
    value: str
    found: bool
    method: EvidenceMethod | None
    spans: list[tuple[int, int]] = field(default_factory=list)
    page: int | None = None
    score: float = 0.0


class _Haystack:
    """The text, with a lower-cased, whitespace-as-space copy of the same length for fuzzy alignment."""

    def __init__(self, text: str) -> None:
        self.text = text
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters lower-case to two; keep positions right
            lowered = text
        self.folded = _SPACES.sub(lambda m: " " * len(m.group()), lowered) if lowered else lowered


def _glued(a: str, b: str) -> bool:
    """True when `a` and `b` side by side would read as one word or one number."""
    return (a.isdigit() and b.isdigit()) or (a.isalpha() and b.isalpha())


def _standalone(text: str, start: int, end: int) -> bool:
    """True when `text[start:end]` does not continue a word or number on either side (`"4.11"` in `"14.11"`
    does; `"2014"` in `"2014Date"` does not)."""
    before = start == 0 or not _glued(text[start - 1], text[start])
    after = end == len(text) or not _glued(text[end - 1], text[end])
    return before and after


def _exact(text: str, needle: str, limit: int, whole: bool) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    at = text.find(needle)
    while at >= 0 and len(spans) < limit:
        if not whole or _standalone(text, at, at + len(needle)):
            spans.append((at, at + len(needle)))
        at = text.find(needle, at + 1)
    return spans


def _normalized(text: str, needle: str, limit: int, whole: bool) -> list[tuple[int, int]]:
    chars = [re.escape(c) for c in needle if not c.isspace()]
    if not chars:
        return []
    pattern = re.compile(r"\s*".join(chars), re.IGNORECASE)
    spans: list[tuple[int, int]] = []
    at = 0
    while len(spans) < limit:
        match = pattern.search(text, at)
        if match is None:
            break
        if not whole or _standalone(text, *match.span()):
            spans.append(match.span())
        at = match.start() + 1
    return spans


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """`start`/`end` moved out to the edges of the words they cut (a few characters at most), spaces trimmed."""
    for _ in range(_MAX_WIDEN):
        if 0 < start < end and text[start - 1].isalnum() and text[start].isalnum():
            start -= 1
        if start < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
            end += 1
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _fuzzy(hay: _Haystack, needle: str, threshold: float) -> tuple[float, tuple[int, int] | None]:
    """The best alignment's score (0-1) and span, the span only when the score reaches `threshold`."""
    folded = " ".join(needle.lower().split())
    if not (_MIN_FUZZY <= len(folded) <= _MAX_FUZZY) or len(folded) > len(hay.folded):
        return 0.0, None
    solid = folded.replace(" ", "")
    if sum(c.isalpha() for c in solid) * 2 < len(solid):
        return 0.0, None  # figures, dates and codes: a near miss is another value
    alignment = fuzz.partial_ratio_alignment(folded, hay.folded)
    if alignment is None:
        return 0.0, None
    score = alignment.score / 100
    if score < threshold:
        return score, None
    return score, _widen(hay.text, alignment.dest_start, alignment.dest_end)


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """The `(path, string)` of every string in a plain JSON value, in document order."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _strings(item, join_path(path, str(key)))]
    if isinstance(value, (list, tuple)):
        return [pair for i, item in enumerate(value) for pair in _strings(item, join_path(path, i))]
    return []


def find_evidence(
    value: Any,
    text: str | Document,
    *,
    page_offsets: PageOffsets | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_spans: int = 20,
    whole_words: bool = False,
) -> list[Evidence]:
    """Evidence for every string in `value` (a plain JSON value: dicts, lists, scalars), in order.

    `text` is the source text, or a `Document` (its `text` and page offsets are used). `page_offsets`
    (`(page number, offset)` pairs, or offsets of pages 1, 2, ...) give each match its page. A string
    is `found` by an exact or normalized match, or a fuzzy one scoring at least `threshold` (0-1);
    at most `max_spans` occurrences are listed. With `whole_words`, exact and normalized matches must
    not continue a word or number (`"4.11"` is then not found in `"14.11"`); use it for numbers.
    """
    if not 0 < threshold <= 1:
        raise ConfigurationError(f"threshold={threshold!r}: give a score between 0 (exclusive) and 1")
    if not isinstance(text, str):
        if page_offsets is None:
            page_offsets = text.page_offsets
        text = text.text
    starts = PageStarts(page_offsets) if page_offsets is not None else None
    hay: _Haystack | None = None
    out: list[Evidence] = []
    for path, raw in _strings(value, "$"):
        needle = raw.strip()
        method: EvidenceMethod | None = None
        spans: list[tuple[int, int]] = []
        score = 0.0
        if needle:
            spans = _exact(text, needle, max_spans, whole_words)
            method = "exact" if spans else None
            if not spans:
                spans = _normalized(text, needle, max_spans, whole_words)
                method = "normalized" if spans else None
            if spans:
                score = 1.0
            else:
                hay = hay or _Haystack(text)
                score, span = _fuzzy(hay, needle, threshold)
                if span is not None:
                    spans, method = [span], "fuzzy"
        page = starts.page_at(spans[0][0]) if spans and starts is not None else None
        out.append(
            Evidence(path=path, value=raw, found=bool(spans), method=method, spans=spans, page=page, score=score)
        )
    return out


def _grouped(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(groups)


def number_forms(number: int | float | Decimal, *, decimals: int | None = None) -> list[str]:
    """Common printed spellings of `number`: `1234.5` gives `"1234.50"`, `"1,234.50"`, `"1.234,50"`,
    `"1 234,50"`, `"1234,50"`, `"1234.5"`, ... (two decimals unless `decimals` says otherwise; whole
    numbers also without decimals). Search them with `find_evidence` to check a number as printed."""
    if isinstance(number, bool) or not isinstance(number, (int, float, Decimal)):
        raise ConfigurationError(f"number_forms: {number!r} is not a number")
    value = Decimal(str(number)) if isinstance(number, float) else Decimal(number)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals is not None:
        places = [decimals]
    else:
        exponent = value.normalize().as_tuple().exponent
        natural = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        places = [2, natural] if natural < 2 else [natural]  # never round a printed figure away
    forms: list[str] = []
    for count in places:
        whole, _, fraction = f"{value:.{count}f}".partition(".")
        for thousands, point in (("", "."), (",", "."), ("", ","), (".", ","), (" ", ","), (" ", "."), ("'", ".")):
            body = _grouped(whole, thousands) if thousands else whole
            form = f"{sign}{body}{point}{fraction}" if count else f"{sign}{body}"
            if form not in forms:
                forms.append(form)
    return forms
