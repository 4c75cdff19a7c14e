"""What a run of bytes is, from its first bytes (magic numbers), never from a file name."""

from __future__ import annotations

from typing import Final

__all__ = [
    "IMAGE_MIME_TYPES",
    "TEXT_SUFFIXES",
    "describe",
    "file_kind",
    "find_pdf_header",
    "image_format",
    "known_binary",
    "looks_like_html",
]

#: The image formats a chat-completions endpoint accepts, by the name `image_format` returns.
IMAGE_MIME_TYPES: Final = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}

# the PDF header may follow a little junk (some generators prepend a few bytes); readers look this far
_PDF_HEADER_WINDOW: Final = 1024

# other kinds, only to say what the bytes look like in a message
_OTHER_MAGIC: Final = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"8BPS\x00\x01", "a Photoshop document"),
    (b"PK\x03\x04", "a ZIP archive (.docx, .xlsx, .odt, .epub are ZIP archives)"),
    (b"\x1f\x8b\x08", "gzip-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document (.doc, .xls)"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "an ELF executable"),
    (b"OggS\x00", "an Ogg media file"),
    (b"fLaC", "a FLAC audio file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def find_pdf_header(data: bytes) -> int:
    """Where `%PDF-` starts within the first KiB of `data`, or -1."""
    return data.find(b"%PDF-", 0, _PDF_HEADER_WINDOW)


def image_format(data: bytes) -> str | None:
    """`"png"`, `"jpeg"`, `"webp"` or `"gif"` when the bytes start like one, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def known_binary(data: bytes) -> str | None:
    """What `data` is when it starts like a known binary format other than PDF, PNG, JPEG, WebP, GIF."""
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            return what
    # short magic numbers, checked with a second field so that text starting "BM", "MZ", "ID3" is not taken
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00":
        return "a BMP image"
    if data.startswith(b"MZ") and b"\x00" in data[2:64]:
        return "a Windows executable"
    if data.startswith(b"ID3") and data[3:4] in (b"\x02", b"\x03", b"\x04"):
        return "an MP3 audio file"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1"):
            return "a HEIC/HEIF image"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        return "an MP4/QuickTime media file"
    return None


def looks_like_html(data: bytes) -> bool:
    """True when `data` starts like an HTML page."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:256]


def describe(data: bytes) -> str:
    """A short phrase naming what `data` looks like, for messages: "a TIFF image", "HTML", "starts with b'...'"."""
    if not data:
        return "empty"
    fmt = image_format(data)
    if fmt is not None:
        return f"a {fmt.upper()} image"
    if find_pdf_header(data) >= 0:
        return "a PDF"
    binary = known_binary(data)
    if binary is not None:
        return binary
    if looks_like_html(data):
        return "HTML"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<?xml", b"<svg")):
        return "an SVG image" if b"<svg" in data[:4096].lower() else "XML"
    return f"data starting with {data[:12]!r}"


#: file name endings read as text when walking folders
TEXT_SUFFIXES: Final = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".csv", ".tsv", ".xml", ".rst")


def file_kind(head: bytes, suffix: str) -> str | None:
    """What a file is for a batch, from its first bytes (and, for text, its ending): `"pdf"`, `"image"`,
    `"text"`, or None for anything else (skipped when walking a folder)."""
    if find_pdf_header(head) >= 0:
        return "pdf"
    if image_format(head) is not None:
        return "image"
    if suffix.lower() in TEXT_SUFFIXES and known_binary(head) is None:
        return "text"
    return None
