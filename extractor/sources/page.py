"""One page of a document: its number, text and images."""

from __future__ import annotations

from dataclasses import dataclass, field

from .image import Image

__all__ = ["Page"]


@dataclass(frozen=True)
class Page:
    """A page: 1-based `number`, extracted `text`, the `images` sent for it, and where its text starts
    (`char_offset`) in the document's joined `text`."""

    number: int
    text: str
    images: list[Image] = field(default_factory=list)
    char_offset: int = 0

    @property
    def empty(self) -> bool:
        """True when the page has neither text nor images (blank, or nothing could be read from it)."""
        return not self.text.strip() and not self.images
