"""PDFs made for tests: a page of text, a PDF built object by object, and one that takes pypdf seconds to read."""

from __future__ import annotations

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
