"""PDFs read with pypdf: text per page, the images of pages without text, metadata, clear errors.

Reading is lenient (`strict=False`), so that the many slightly broken PDFs in the wild still load;
what pypdf repaired on the way is kept as warnings. Files that cannot be read raise a
`DocumentError` saying what is wrong (not a PDF, truncated, damaged), encrypted files without
the right password an `EncryptedDocumentError`. pypdf's own limits on stream sizes, array
lengths and xref recovery keep malformed files from exhausting memory or looping; `LoadLimits`
bounds the time, decoded content, text and pixels of each page and of the document (checked as
pages are read, images counted before they are decoded), and what pypdf decoded for a page is let
go once the page is read, so that memory does not grow with the document.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, get_args

from pypdf import PasswordType, PdfReader, PdfWriter
from pypdf.errors import DependencyError, LimitReachedError

from ..errors import ConfigurationError, DocumentError, EncryptedDocumentError, UnsupportedSourceError
from ._pages import PageSelection, select_pages
from ._sniff import IMAGE_MIME_TYPES, describe, find_pdf_header, image_format
from .image import DEFAULT_MAX_SIDE, Image
from .limits import DEFAULT_LIMITS, LoadLimits, Spending
from .page import Page

if TYPE_CHECKING:
    from pypdf import PageObject

__all__ = [
    "PDF_ENGINES",
    "ImageMode",
    "PdfContent",
    "PdfEngine",
    "file_parser_plugin",
    "pdf_file_part",
    "read_pdf",
    "rewrite_pdf",
]

ImageMode: TypeAlias = Literal["auto", "always", "never"]
"""When to take the images of a page: `"auto"` for pages without a text layer (scans), `"always"`, `"never"`."""

PdfEngine: TypeAlias = Literal["cloudflare-ai", "mistral-ocr", "native"]
"""OpenRouter's PDF engines for the `file-parser` plugin."""
PDF_ENGINES: Final[tuple[str, ...]] = get_args(PdfEngine)
"""The names `pdf_engine=` accepts (`PdfEngine`)."""

_MAX_LOG_WARNINGS: Final = 20
# modes in which a PNG / JPEG embedded in a PDF can be passed on as it is
_PNG_MODES: Final = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
_JPEG_MODES: Final = frozenset({"L", "RGB"})


@dataclass
class PdfContent:
    """What was read from a PDF: the selected pages, the document's metadata and warnings."""

    pages: list[Page]
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class _ThreadLog(logging.Handler):
    """Keeps the messages pypdf logs from the current thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextmanager
def _pypdf_log() -> Iterator[list[str]]:
    """The warnings pypdf logs in this thread while the block runs (they are not printed meanwhile)."""
    handler = _ThreadLog()
    logger = logging.getLogger("pypdf")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _unreadable(data: bytes, exc: BaseException, source: str) -> DocumentError:
    """The error for a PDF that pypdf could not read: truncated, too large, or damaged."""
    if isinstance(exc, LimitReachedError):
        return DocumentError(f"too large to read safely: {_reason(exc)}", source=source)
    if isinstance(exc, RecursionError):
        return DocumentError("damaged: its objects refer to each other without end", source=source)
    if b"%%EOF" not in data:
        return DocumentError(
            f"truncated: no %%EOF end marker after {len(data)} bytes ({_reason(exc)})",
            source=source,
        )
    return DocumentError(f"damaged: {_reason(exc)}", source=source)


def _open(data: bytes, source: str, password: str | None, warnings: list[str]) -> tuple[PdfReader, bool]:
    """A reader for `data`, decrypted when needed, and whether the file was encrypted."""
    try:
        reader = PdfReader(BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except DependencyError as exc:
        raise _missing_crypto(exc, source) from None
    except NotImplementedError as exc:
        raise UnsupportedSourceError(f"unsupported PDF feature: {_reason(exc)}", source=source) from None
    except Exception as exc:  # pypdf raises many kinds on malformed input
        raise _unreadable(data, exc, source) from None
    if not encrypted:
        if password is not None:
            warnings.append("a password was given but the PDF is not encrypted")
        return reader, False
    try:
        result = reader.decrypt(password if password is not None else "")
    except DependencyError as exc:
        raise _missing_crypto(exc, source) from None
    except NotImplementedError as exc:
        raise UnsupportedSourceError(f"unsupported encryption: {_reason(exc)}", source=source) from None
    except Exception as exc:
        raise DocumentError(f"damaged encryption dictionary: {_reason(exc)}", source=source) from None
    if result == PasswordType.NOT_DECRYPTED:
        if password is None:
            raise EncryptedDocumentError("encrypted; pass password=", source=source)
        raise EncryptedDocumentError("wrong password", source=source)
    return reader, True


def _missing_crypto(exc: BaseException, source: str) -> DocumentError:
    return DocumentError(
        f"encrypted with AES, which needs the 'cryptography' package (pip install 'pypdf[crypto]'): {_reason(exc)}",
        source=source,
    )


#: the operators that show text, whose string operands are counted while a page's text is extracted
_SHOWS_TEXT: Final = frozenset({b"Tj", b"TJ", b"'", b'"'})


def _shown(operands: Any) -> int:
    """About how many characters the operands of a text-showing operator show."""
    count = 0
    for operand in operands if isinstance(operands, list) else ():
        if isinstance(operand, str | bytes):
            count += len(operand)
        elif isinstance(operand, list):
            count += _shown(operand)
    return count


def _text_of(page: PageObject, spending: Spending) -> str:
    """The page's text, newlines as `\\n`, without surrounding whitespace or NUL characters; the limits
    of `spending` checked at every operator (time, and the characters shown so far)."""
    shown = 0

    def watch(operator: bytes, operands: Any, cm: Any, tm: Any) -> None:
        nonlocal shown
        if operator in _SHOWS_TEXT:
            shown += _shown(operands)
            spending.check("characters", shown)
        spending.check_time()

    text = page.extract_text(visitor_operand_before=watch) or ""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\x00", "").strip()


def _streams(value: Any) -> list[Any]:
    """The stream objects of a page's `/Contents` (one, or an array of them)."""
    value = value.get_object() if value is not None else None
    items = list(value) if isinstance(value, list) else [value]
    streams = []
    for item in items:
        stream = item.get_object() if item is not None else None
        if hasattr(stream, "get_data"):
            streams.append(stream)
    return streams


def _content_bytes(page: PageObject) -> int:
    """How many bytes the page's content streams decode to (pypdf keeps them decoded: read once)."""
    return sum(len(stream.get_data()) for stream in _streams(page.get("/Contents")))


def _let_go(stream: Any) -> None:
    """Drop what pypdf keeps decoded of `stream` (it decodes again if asked)."""
    if getattr(stream, "decoded_self", None) is not None:
        stream.decoded_self = None


def _xobject(page: PageObject, image_id: Any) -> Any:
    """The image XObject `image_id` of `page` names (a name, or the path of names through forms), or
    None (an inline image, or one that cannot be found)."""
    names = image_id if isinstance(image_id, list | tuple) else [image_id]
    found: Any = page
    for name in names:
        if not isinstance(name, str) or name.startswith("~"):
            return None
        try:
            found = found["/Resources"].get_object()["/XObject"].get_object()[name].get_object()
        except (KeyError, TypeError, AttributeError):
            return None
    return found


def _pixels(xobject: Any) -> int:
    """Width times height an image XObject declares (0 when it does not say)."""
    try:
        width, height = int(xobject.get("/Width", 0)), int(xobject.get("/Height", 0))
    except (TypeError, ValueError):
        return 0
    return max(width, 0) * max(height, 0)


def _to_image(file: Any, name: str, max_side: int | None, max_pixels: int | None) -> Image:
    """A page image from pypdf as a PNG or JPEG `Image`, scaled down to the limits."""
    data: bytes = file.data
    pil = file.image
    fmt = image_format(data)
    passable = (fmt == "png" and pil.mode in _PNG_MODES) or (fmt == "jpeg" and pil.mode in _JPEG_MODES)
    if fmt is not None and passable:
        image = Image(data=data, mime_type=IMAGE_MIME_TYPES[fmt], name=name, width=pil.width, height=pil.height)
        return image.downscaled(max_side=max_side, max_pixels=max_pixels)
    return Image.from_pillow(pil, name=name, max_side=max_side, max_pixels=max_pixels)


def _page_images(
    page: PageObject,
    number: int,
    *,
    max_side: int | None,
    max_pixels: int | None,
    limit: int,
    warnings: list[str],
    spending: Spending,
) -> list[Image]:
    """The images drawn on `page`, converted; the ones that cannot be decoded become warnings. Each
    image's pixels are counted against the limits before it is decoded (an inline image, already
    decoded with the content, after), and what pypdf decoded is let go once it is converted."""
    try:
        files = page.images
        ids = files.keys()
    except Exception as exc:
        warnings.append(f"page {number}: its images could not be listed ({_reason(exc)})")
        return []
    images: list[Image] = []
    for i, image_id in enumerate(ids):
        if len(images) >= limit:
            warnings.append(f"page {number}: only the first {limit} of {len(ids)} images were kept")
            break
        spending.check_time()
        xobject = _xobject(page, image_id)
        if xobject is not None:
            spending.add("pixels", _pixels(xobject))
        try:
            file = files[i]
            if xobject is None and file.image is not None:  # inline: decoded with the content already
                spending.add("pixels", file.image.width * file.image.height)
            images.append(_to_image(file, f"page {number}: {file.name}", max_side, max_pixels))
        except DocumentError:
            raise
        except Exception as exc:
            warnings.append(f"page {number}: image {i + 1} could not be decoded ({_reason(exc)})")
        finally:
            _let_go(xobject)
    return images


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _metadata(reader: PdfReader, page_count: int, encrypted: bool) -> dict[str, Any]:
    """Title, author, subject, creator, producer, dates (ISO 8601), page count and encryption of the file."""
    meta: dict[str, Any] = {
        "title": None,
        "author": None,
        "subject": None,
        "creator": None,
        "producer": None,
        "creation_date": None,
        "modification_date": None,
        "page_count": page_count,
        "encrypted": encrypted,
    }
    try:
        info = reader.metadata
    except Exception:
        return meta
    if info is None:
        return meta
    for key in ("title", "author", "subject", "creator", "producer"):
        try:
            value = getattr(info, key)
        except Exception:
            continue
        if value is not None and str(value).strip():
            meta[key] = str(value).strip()
    for key, raw_key in (("creation_date", "/CreationDate"), ("modification_date", "/ModDate")):
        try:
            meta[key] = _iso(getattr(info, key))
        except Exception:  # a malformed date: keep it as written
            raw = info.get(raw_key)
            meta[key] = str(raw) if raw is not None else None
    return meta


def read_pdf(
    data: bytes,
    *,
    source: str,
    password: str | None = None,
    pages: PageSelection = None,
    images: ImageMode = "auto",
    max_image_side: int | None = DEFAULT_MAX_SIDE,
    max_image_pixels: int | None = None,
    max_images_per_page: int = 20,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> PdfContent:
    """The text (and, per `images`, the images) of the selected pages of the PDF in `data`.

    Pages are numbered from 1. A page with neither text nor images is kept, marked empty, and
    named in the warnings. Reading more than `limits` allow raises `DocumentError` naming the limit.
    """
    if images not in get_args(ImageMode):
        raise ConfigurationError(f"images={images!r}: use 'auto', 'always' or 'never'")
    if not data:
        raise DocumentError("empty file", source=source)
    if find_pdf_header(data) < 0:
        raise DocumentError(f"not a PDF: starts with {data[:12]!r} ({describe(data)})", source=source)
    warnings: list[str] = []
    with _pypdf_log() as log:
        reader, encrypted = _open(data, source, password, warnings)
        try:
            page_count = len(reader.pages)
        except Exception as exc:
            raise _unreadable(data, exc, source) from None
        if page_count == 0:
            raise DocumentError("damaged: the PDF has no pages", source=source)
        numbers = select_pages(pages, page_count, source=source)
        spending = Spending(limits, source)
        out: list[Page] = []
        for number in numbers:
            try:
                page = reader.pages[number - 1]
            except Exception as exc:
                raise _unreadable(data, exc, source) from None
            spending.start_page(number)
            try:
                out.append(
                    _read_page(
                        page, number, images, spending, warnings, max_image_side, max_image_pixels, max_images_per_page
                    )
                )
            finally:
                for stream in _streams(page.get("/Contents")):
                    _let_go(stream)
        metadata = _metadata(reader, page_count, encrypted)
    if b"%%EOF" not in data:
        warnings.append("no %%EOF end marker: the file may be truncated")
    repaired = list(dict.fromkeys(log))
    warnings.extend(f"pypdf: {message}" for message in repaired[:_MAX_LOG_WARNINGS])
    if len(repaired) > _MAX_LOG_WARNINGS:
        warnings.append(f"pypdf: ... and {len(repaired) - _MAX_LOG_WARNINGS} more messages")
    return PdfContent(pages=out, metadata=metadata, warnings=warnings)


def _read_page(
    page: PageObject,
    number: int,
    images: ImageMode,
    spending: Spending,
    warnings: list[str],
    max_image_side: int | None,
    max_image_pixels: int | None,
    max_images_per_page: int,
) -> Page:
    """One page's text and (per `images`) images, within the limits of `spending`."""
    try:
        spending.add("bytes", _content_bytes(page))
        text = _text_of(page, spending)
    except DocumentError:
        raise
    except Exception as exc:
        warnings.append(f"page {number}: its text could not be extracted ({_reason(exc)})")
        text = ""
    spending.add("characters", len(text))
    page_images: list[Image] = []
    if images == "always" or (images == "auto" and not text):
        page_images = _page_images(
            page,
            number,
            max_side=max_image_side,
            max_pixels=max_image_pixels,
            limit=max_images_per_page,
            warnings=warnings,
            spending=spending,
        )
    if not text and not page_images:
        warnings.append(f"page {number}: no text and no images (blank, or nothing readable)")
    return Page(number=number, text=text, images=page_images)


def rewrite_pdf(data: bytes, numbers: list[int], *, source: str, password: str | None = None) -> bytes:
    """A new, unencrypted PDF holding only pages `numbers` (1-based) of the PDF in `data`."""
    warnings: list[str] = []
    with _pypdf_log():
        reader, _ = _open(data, source, password, warnings)
        writer = PdfWriter()
        try:
            for number in numbers:
                writer.add_page(reader.pages[number - 1])
            out = BytesIO()
            writer.write(out)
        except Exception as exc:
            raise DocumentError(f"cannot copy pages: {_reason(exc)}", source=source) from None
    return out.getvalue()


def pdf_file_part(data: bytes, *, filename: str) -> dict[str, Any]:
    """The OpenAI chat content part that sends the PDF itself (`{"type": "file", ...}`)."""
    encoded = base64.b64encode(data).decode("ascii")
    return {"type": "file", "file": {"filename": filename, "file_data": f"data:application/pdf;base64,{encoded}"}}


def file_parser_plugin(engine: str = "native") -> dict[str, Any]:
    """OpenRouter's `plugins` entry that picks how a sent PDF is parsed: `"native"` (the model reads the
    file), `"mistral-ocr"` (scans) or `"cloudflare-ai"` (text PDFs, free)."""
    if engine not in PDF_ENGINES:
        hint = " ('pdf-text' is now 'cloudflare-ai')" if engine == "pdf-text" else ""
        raise ConfigurationError(f"unknown PDF engine {engine!r}{hint}; use one of {', '.join(PDF_ENGINES)}")
    return {"id": "file-parser", "pdf": {"engine": engine}}
