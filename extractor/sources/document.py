"""`Document`: a PDF, image, text or HTML file read into pages of text and images, ready to send."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from ..errors import DocumentError, UnsupportedSourceError
from ._pages import PageSelection, PageStarts, select_pages
from ._sniff import find_pdf_header, image_format, known_binary, looks_like_html
from .files import DEFAULT_MAX_FILE_BYTES, read_file
from .image import DEFAULT_MAX_SIDE, Image
from .limits import DEFAULT_LIMITS, LoadLimits
from .page import Page
from .pdf import ImageMode, pdf_file_part, read_pdf, rewrite_pdf
from .text import read_html, read_text

__all__ = ["PAGE_SEPARATOR", "Document", "DocumentKind"]

DocumentKind: TypeAlias = Literal["pdf", "text", "html", "image"]
"""What a document was read from."""

PAGE_SEPARATOR: Final = "\n\n"
"""What joins the pages' texts in `Document.text` (and so what `Page.char_offset` counts)."""

_HTML_SUFFIXES: Final = frozenset({".html", ".htm", ".xhtml"})
_IMAGE_SUFFIXES: Final = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".avif"}
)


def _is_pdf(data: bytes, suffix: str) -> bool:
    """True for PDF bytes: `%PDF-` first, or within the first KiB of a `.pdf` file or one that ends like a PDF."""
    at = find_pdf_header(data)
    return at == 0 or (at > 0 and (suffix == ".pdf" or b"%%EOF" in data[-2048:]))


def _with_offsets(pages: list[Page]) -> list[Page]:
    """`pages` with each `char_offset` set to where its text starts in the joined text."""
    out: list[Page] = []
    at = 0
    for page in pages:
        out.append(page if page.char_offset == at else replace(page, char_offset=at))
        at += len(page.text) + len(PAGE_SEPARATOR)
    return out


@dataclass(frozen=True, eq=False)
class Document:
    """A source document: its `name`, `kind`, `pages` (text and images each), `metadata` and `warnings`.

    `text` joins the pages' texts with a blank line; `Page.char_offset` indexes into exactly that
    string. For PDFs, `data` keeps the file's bytes so that `as_file_part()` can send the PDF itself.
    """

    name: str
    kind: DocumentKind
    pages: list[Page]
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    data: bytes | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", _with_offsets(list(self.pages)))

    # --- constructors ----------------------------------------------------------------------

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        password: str | None = None,
        pages: PageSelection = None,
        images: ImageMode = "auto",
        max_image_side: int | None = DEFAULT_MAX_SIDE,
        max_image_pixels: int | None = None,
        max_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
        limits: LoadLimits = DEFAULT_LIMITS,
    ) -> Document:
        """The document in the file at `path`; its kind comes from the bytes (and, for text, the extension).

        `password` opens an encrypted PDF; `pages` selects pages (`3`, `range(1, 4)`, `"1-3,5"`);
        `images` says when a PDF page's images are taken (`"auto"`: pages without text); images are
        scaled down to `max_image_side` / `max_image_pixels`. Only regular files of at most
        `max_bytes` are read (a FIFO, a device or a larger file is a `DocumentError`). Reading a file
        that takes more work than `limits` allow (time, decoded bytes, characters, pixels) stops with
        a `DocumentError` naming the limit.
        """
        source = os.fspath(path)
        data = read_file(source, max_bytes=max_bytes)
        return cls._read(
            data, Path(path).name, source, password, pages, images, max_image_side, max_image_pixels, limits
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        name: str,
        password: str | None = None,
        pages: PageSelection = None,
        images: ImageMode = "auto",
        max_image_side: int | None = DEFAULT_MAX_SIDE,
        max_image_pixels: int | None = None,
        limits: LoadLimits = DEFAULT_LIMITS,
    ) -> Document:
        """The document in `data`, named `name` (a file name: its extension tells text from HTML); `limits`
        as for `from_path`."""
        return cls._read(bytes(data), name, name, password, pages, images, max_image_side, max_image_pixels, limits)

    @classmethod
    def from_text(cls, text: str, *, name: str = "text") -> Document:
        """A one-page text document holding `text`."""
        return cls(name=name, kind="text", pages=[Page(number=1, text=text)])

    @classmethod
    def _read(
        cls,
        data: bytes,
        name: str,
        source: str,
        password: str | None,
        pages: PageSelection,
        images: ImageMode,
        max_image_side: int | None,
        max_image_pixels: int | None,
        limits: LoadLimits,
    ) -> Document:
        if not data:
            raise DocumentError("empty file", source=source)
        suffix = os.path.splitext(name)[1].lower()
        is_image = image_format(data) is not None
        if _is_pdf(data, suffix) or (suffix == ".pdf" and not is_image):
            content = read_pdf(
                data,
                source=source,
                password=password,
                pages=pages,
                images=images,
                max_image_side=max_image_side,
                max_image_pixels=max_image_pixels,
                limits=limits,
            )
            return cls(
                name=name,
                kind="pdf",
                pages=content.pages,
                metadata=content.metadata,
                warnings=content.warnings,
                data=data,
                password=password,
            )
        if is_image or suffix in _IMAGE_SUFFIXES:
            image = Image.from_bytes(
                data, name=source, max_side=max_image_side, max_pixels=max_image_pixels, max_decoded=limits.page_pixels
            )
            select_pages(pages, 1, source=source)
            image = replace(image, name=name)
            metadata = {"format": image.format, "width": image.width, "height": image.height}
            return cls(name=name, kind="image", pages=[Page(number=1, text="", images=[image])], metadata=metadata)
        binary = known_binary(data)
        if binary is not None:
            raise UnsupportedSourceError(f"unsupported file: the bytes look like {binary}", source=source)
        if suffix in _HTML_SUFFIXES or looks_like_html(data):
            text, warnings = read_html(data, source=source)
            kind: DocumentKind = "html"
        else:
            text, warnings = read_text(data, source=source)
            kind = "text"
        select_pages(pages, 1, source=source)
        if not text.strip():
            warnings.append("page 1: no text")
        return cls(name=name, kind=kind, pages=[Page(number=1, text=text)], warnings=warnings)

    # --- views -----------------------------------------------------------------------------

    @cached_property
    def text(self) -> str:
        """The pages' texts joined with a blank line (`PAGE_SEPARATOR`)."""
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    @property
    def page_offsets(self) -> list[tuple[int, int]]:
        """`(page number, char offset)` of every page in `text`, for chunking and evidence."""
        return [(page.number, page.char_offset) for page in self.pages]

    def page_at(self, offset: int) -> int | None:
        """The number of the page whose text (or following separator) holds `text[offset]`."""
        return PageStarts(self.page_offsets).page_at(offset)

    @property
    def images(self) -> list[Image]:
        """Every image of every page, in page order."""
        return [image for page in self.pages for image in page.images]

    @property
    def empty_pages(self) -> list[int]:
        """The numbers of the pages with neither text nor images."""
        return [page.number for page in self.pages if page.empty]

    # --- to send ---------------------------------------------------------------------------

    def to_parts(self) -> list[dict[str, Any]]:
        """OpenAI chat content parts: each page's text, then its images; consecutive texts merged into one part.

        A document with nothing to send (every page empty) raises `DocumentError`.
        """
        parts: list[dict[str, Any]] = []
        for page in self.pages:
            if page.text.strip():
                if parts and parts[-1]["type"] == "text":
                    parts[-1]["text"] += PAGE_SEPARATOR + page.text
                else:
                    parts.append({"type": "text", "text": page.text})
            parts.extend(image.to_part() for image in page.images)
        if not parts:
            count = len(self.pages)
            raise DocumentError(
                f"nothing to send: {'the page is' if count == 1 else f'all {count} pages are'} empty "
                "(no text layer and no images)",
                source=self.name,
            )
        return parts

    def as_file_part(self) -> dict[str, Any]:
        """The PDF itself as an OpenAI `{"type": "file", ...}` content part.

        When pages were selected, or the file is encrypted, a new PDF with just those pages and no
        encryption is sent instead of the original bytes.
        """
        if self.kind != "pdf":
            raise UnsupportedSourceError(f"as_file_part() sends PDFs; this is a {self.kind} document", source=self.name)
        if self.data is None:
            raise DocumentError(
                "the PDF's bytes were not kept; load it with Document.from_path or from_bytes", source=self.name
            )
        numbers = [page.number for page in self.pages]
        whole = numbers == list(range(1, int(self.metadata.get("page_count", len(numbers))) + 1))
        data = self.data
        if not whole or self.metadata.get("encrypted"):
            data = rewrite_pdf(self.data, numbers, source=self.name, password=self.password)
        filename = self.name if self.name.lower().endswith(".pdf") else f"{self.name}.pdf"
        return pdf_file_part(data, filename=filename)

    def __repr__(self) -> str:
        chars = sum(len(page.text) for page in self.pages)
        images = sum(len(page.images) for page in self.pages)
        return (
            f"Document(name={self.name!r}, kind={self.kind!r}, pages={len(self.pages)}, chars={chars}, "
            f"images={images}, warnings={len(self.warnings)})"
        )
