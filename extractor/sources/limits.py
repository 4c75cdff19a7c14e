"""How much work reading one document may take: time, decoded bytes, characters and pixels, per page
and per document. Past a limit the document fails with a `DocumentError` naming the limit and the
setting that raises it, so that a decompression bomb (a small file that decodes to gigabytes of text
or pixels) costs seconds and a bounded amount of memory, not minutes and gigabytes.

The defaults are far beyond real documents: a dense page of text has some 5,000 characters and a
content stream of a few hundred kilobytes; an A4 page scanned at 300 dpi has 8.7 million pixels (70
million at 600 dpi on A3). Each single stream is also bounded by pypdf's own limits (75 MB decoded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Final

from ..errors import ConfigurationError, DocumentError

__all__ = ["DEFAULT_LIMITS", "LoadLimits", "Spending"]


@dataclass(frozen=True)
class LoadLimits:
    """The most work reading one document may take (`Document.from_path(limits=...)`).

    - `page_seconds` / `document_seconds`: time reading one page (its text and images) / all of them;
    - `page_bytes` / `document_bytes`: decoded bytes of the content streams of one page / all pages
      (what text extraction parses);
    - `page_characters` / `document_characters`: characters of text extracted from one page / all;
    - `page_pixels` / `document_pixels`: pixels of the images decoded for one page (an image file is
      one page) / all pages, counted from each image's size before it is decoded.
    """

    page_seconds: float = 30.0
    document_seconds: float = 300.0
    page_bytes: int = 16_000_000
    document_bytes: int = 256_000_000
    page_characters: int = 1_000_000
    document_characters: int = 50_000_000
    page_pixels: int = 100_000_000
    document_pixels: int = 1_000_000_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"LoadLimits.{item.name}={value!r}: give a positive number")


DEFAULT_LIMITS: Final = LoadLimits()
"""The limits used when none are given."""

#: how a limit passed is said: (verb, unit)
_SAID: Final = {
    "seconds": ("took longer than", "s"),
    "bytes": ("decodes to more than", "bytes of content streams"),
    "characters": ("holds more than", "characters of text"),
    "pixels": ("has images of more than", "pixels"),
}


class Spending:
    """The work done so far reading one document (`source`) against `limits`: each `add_*` raises
    `DocumentError` naming the limit once a page or the document would pass it."""

    def __init__(self, limits: LoadLimits, source: str) -> None:
        self.limits = limits
        self.source = source
        self.started = time.monotonic()
        self.page_started = self.started
        self.page: int | None = None
        self._page: dict[str, float] = {}
        self._document: dict[str, float] = {"bytes": 0, "characters": 0, "pixels": 0}

    def start_page(self, number: int) -> None:
        """Work from now on is page `number`'s."""
        self.page = number
        self.page_started = time.monotonic()
        self._page = {"bytes": 0, "characters": 0, "pixels": 0}

    def add(self, what: str, amount: float) -> None:
        """Count `amount` of `what` ("bytes", "characters", "pixels") for the page and the document."""
        self.check(what, amount)
        self._page[what] = self._page.get(what, 0) + amount
        self._document[what] += amount

    def check(self, what: str, amount: float) -> None:
        """Raise when `amount` more of `what` would pass a limit (nothing is counted)."""
        self._check("page", what, self._page.get(what, 0) + amount)
        self._check("document", what, self._document[what] + amount)

    def check_time(self) -> None:
        """Raise when the page or the document has taken longer than allowed."""
        now = time.monotonic()
        self._check("page", "seconds", now - self.page_started)
        self._check("document", "seconds", now - self.started)

    def _check(self, scope: str, what: str, spent: float) -> None:
        limit = getattr(self.limits, f"{scope}_{what}")
        if spent <= limit:
            return
        where = f"page {self.page}" if scope == "page" and self.page is not None else "the document"
        verb, unit = _SAID[what]
        shown = f"{limit:g} {unit}" if what == "seconds" else f"{limit:,} {unit}"
        raise DocumentError(
            f"too much to read safely: {where} {verb} {shown} (LoadLimits.{scope}_{what}; a crafted or damaged file?)",
            source=self.source,
        )
