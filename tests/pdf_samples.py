"""PDFs made for tests: a page of text, a PDF built object by object, and one that takes pypdf seconds to read."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF

#: text-show operations in the slow PDF: about 3.6 s of pypdf text extraction on an idle 2-core machine
SLOW_OPS = 250_000


def text_pdf(path: Path, text: str, *, password: str | None = None) -> Path:
    """A one-page PDF at `path` holding `text` (encrypted with `password` when given)."""
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.multi_cell(0, 8, text)
    if password:
        doc.set_encryption(owner_password="owner-" + password, user_password=password)
    doc.output(str(path))
    return path


def raw_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF of `objects` (object 1 the catalog) with a correct cross-reference table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def slow_pdf(path: Path) -> str:
    """A valid one-page PDF whose content stream takes pypdf seconds to extract text from."""
    content = b"BT /F1 1 Tf " + b"(a) Tj " * SLOW_OPS + b"ET"
    path.write_bytes(
        raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
                b"/Contents 4 0 R >>",
                b"<< /Length %d >>\nstream\n%b\nendstream" % (len(content), content),
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            ]
        )
    )
    return str(path)


def _page_objects(contents: list[bytes], resources: Callable[[int], bytes], extra: list[bytes]) -> bytes:
    """A PDF whose pages have the (Flate-compressed) content streams `contents` and `resources(page index)`,
    with `extra` objects after them (numbered from 3 + 2 * len(contents))."""
    count = len(contents)
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%b] /Count %d >>" % (kids, count)]
    for i, content in enumerate(contents):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %b /Contents %d 0 R >>"
            % (resources(i), 4 + 2 * i)
        )
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%b\nendstream" % (len(content), content))
    return raw_pdf(objects + extra)


def text_bomb_pdf(path: Path, *, pages: int = 3, decoded: int = 20_000_000) -> Path:
    """A PDF of `pages` pages whose small compressed content streams each decode to about `decoded`
    bytes of text-showing operations (a decompression bomb for text extraction)."""
    line = b"(" + b"A" * 1000 + b") Tj\n"
    content = zlib.compress(b"BT /F1 12 Tf 72 700 Td\n" + line * (decoded // len(line)) + b"ET", 9)
    font = 3 + 2 * pages
    fonts = b"<< /Font << /F1 %d 0 R >> >>" % font
    path.write_bytes(
        _page_objects([content] * pages, lambda _: fonts, [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"])
    )
    return path


def image_bomb_pdf(path: Path, *, pages: int = 16, per_page: int = 1, side: int = 4_000) -> Path:
    """A PDF of `pages` pages without text, each drawing `per_page` images of its own, `side` x `side`
    RGB, whose small compressed streams decode to 3 * side * side bytes each (a decompression bomb for
    page images)."""
    pixels = zlib.compress(bytes(3 * side * side), 9)
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n%b\nendstream" % (side, side, len(pixels), pixels)
    )
    draw = zlib.compress(b"".join(b"q 612 0 0 792 0 0 cm /Im%d Do Q\n" % k for k in range(per_page)))
    first = 3 + 2 * pages

    def resources(page: int) -> bytes:
        names = b" ".join(b"/Im%d %d 0 R" % (k, first + page * per_page + k) for k in range(per_page))
        return b"<< /XObject << %b >> >>" % names

    path.write_bytes(_page_objects([draw] * pages, resources, [image] * (pages * per_page)))
    return path
