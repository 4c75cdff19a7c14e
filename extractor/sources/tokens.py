"""Token estimates for texts, images and documents.

`estimate_tokens` over-estimates on purpose (a chunk that fits the estimate fits the model):

    tokens = ceil(ASCII letters / 3) + ASCII digits and punctuation (1 each)
             + ceil(whitespace / 4) + ceil(non-ASCII UTF-8 bytes / 2)

English prose comes out about 1.3-1.6 times what a BPE tokenizer counts; digit-heavy tables
(tokenizers split digits one by one) and CJK text (1-2 tokens a character) stay covered. An image
counts a fixed `IMAGE_TOKENS` (configurable per call).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .document import Document

__all__ = ["IMAGE_TOKENS", "estimate_document_tokens", "estimate_tokens", "typical_tokens"]

IMAGE_TOKENS: Final = 1600
"""What one image is counted as, in tokens (a high-detail page image on most vision models is under this)."""

_LETTERS: Final = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
_SPACES: Final = b" \t\n\r\f\v"
_ASCII: Final = bytes(range(128))


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
