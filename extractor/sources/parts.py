"""Content parts for a chat message from any mix of texts, documents and images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeAlias

from ..errors import DocumentError, UnsupportedSourceError
from .document import Document
from .image import Image

__all__ = ["Source", "to_parts"]

Source: TypeAlias = str | os.PathLike[str] | Document | Image | Sequence[str | os.PathLike[str] | Document | Image]
"""What can be sent: a text (a `str` is always text, never a path), a `Document`, an `Image`, a file path
(`pathlib.Path` or any `os.PathLike`, read with `Document.from_path`), or a sequence of these."""


def _item_parts(item: object, position: str) -> list[dict[str, Any]]:
    if isinstance(item, str):
        if not item.strip():
            raise DocumentError(f"{position}empty text")
        return [{"type": "text", "text": item}]
    if isinstance(item, Document):
        return item.to_parts()
    if isinstance(item, Image):
        return [item.to_part()]
    if isinstance(item, os.PathLike):
        return Document.from_path(item).to_parts()
    raise UnsupportedSourceError(
        f"{position}cannot send a {type(item).__name__}: give text (str), a Document, an Image or a file path"
    )


def to_parts(source: Source) -> list[dict[str, Any]]:
    """OpenAI chat content parts for `source`, in order: a document's pages each give their text then their
    images; the items of a sequence follow one another. Nothing to send raises `DocumentError`."""
    if isinstance(source, (str, Document, Image, os.PathLike)):
        return _item_parts(source, "")
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise UnsupportedSourceError("cannot send raw bytes: wrap them with Document.from_bytes(data, name=...)")
    if not isinstance(source, Sequence):
        return _item_parts(source, "")
    if not source:
        raise DocumentError("nothing to send: the list of sources is empty")
    parts: list[dict[str, Any]] = []
    for i, item in enumerate(source):
        parts.extend(_item_parts(item, f"source [{i}]: "))
    return parts
