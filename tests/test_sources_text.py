"""Text and HTML files, dispatch on the bytes, and content parts from mixed sources."""

from __future__ import annotations

import codecs
from io import BytesIO
from pathlib import Path

import PIL.Image
import pytest
from fpdf import FPDF

from extractor.errors import DocumentError, UnsupportedSourceError
from extractor.sources import Document, Image, html_to_text, to_parts
from extractor.sources.text import decode_text


def _png() -> bytes:
    out = BytesIO()
    PIL.Image.new("RGB", (8, 8), "blue").save(out, "PNG")
    return out.getvalue()


def _pdf(path: Path, texts: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in texts:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


# --- text files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["notes.txt", "README.md", "data.json", "table.csv", "no-extension"])
def test_text_files_are_read_as_utf8(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes("Prix: 12,50 €\r\nNaïve café\r\n".encode())
    doc = Document.from_path(path)
    assert doc.kind == "text"
    assert doc.text == "Prix: 12,50 €\nNaïve café\n"
    assert [page.number for page in doc.pages] == [1]
    assert doc.warnings == []


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_byte_order_marks(bom: bytes, codec: str) -> None:
    text, warnings = decode_text(bom + "a,b\nä,€\n".encode(codec))
    assert text == "a,b\nä,€\n"
    assert warnings == []


def test_windows_1252_text_is_read_with_a_warning() -> None:
    doc = Document.from_bytes("Größe: 5 €\n".encode("cp1252"), name="legacy.txt")
    assert doc.text == "Größe: 5 €\n"
    assert doc.warnings == ["not valid UTF-8 (3 invalid bytes): read as Windows-1252"]


def test_binary_data_named_txt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnsupportedSourceError) as info:
        Document.from_path(path)
    assert str(info.value) == (
        f"{path}: not a text file: it contains 4 NUL bytes; "
        "the bytes look like data starting with b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t\\n\\x0b'"
    )


def test_invalid_utf8_noise_is_refused() -> None:
    noise = bytes((i * 37 + 128) % 128 + 128 for i in range(2000))  # high bytes only, no NUL, no controls
    with pytest.raises(UnsupportedSourceError, match=r"^noise.txt: not a text file: \d+ of its 2000 bytes are not"):
        Document.from_bytes(noise, name="noise.txt")


def test_control_characters_are_refused() -> None:
    data = b"text\x01\x02\x03\x04 more text" * 10
    with pytest.raises(UnsupportedSourceError, match="40 of its 180 bytes are control characters"):
        Document.from_bytes(data, name="odd.txt")


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"PK\x03\x04" + b"\x00" * 30, "a ZIP archive (.docx, .xlsx, .odt, .epub are ZIP archives)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 30, "an old Microsoft Office document (.doc, .xls)"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 30, "gzip-compressed data"),
    ],
)
def test_known_binary_formats_are_unsupported(data: bytes, what: str) -> None:
    with pytest.raises(UnsupportedSourceError) as info:
        Document.from_bytes(data, name="contract.docx")
    assert str(info.value) == f"contract.docx: unsupported file: the bytes look like {what}"


def test_text_starting_like_a_short_magic_number_is_still_text() -> None:
    for text in ("BMW invoice 42", "MZ Logistics", "ID3 tags"):
        assert Document.from_bytes(text.encode(), name="x.txt").text == text


def test_empty_and_blank_text_files(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"^a.txt: empty file$"):
        Document.from_bytes(b"", name="a.txt")
    blank = Document.from_bytes(b"  \n", name="b.txt")
    assert blank.warnings == ["page 1: no text"]
    with pytest.raises(DocumentError, match="nothing to send: the page is empty"):
        blank.to_parts()
    with pytest.raises(DocumentError, match="is a directory"):
        Document.from_path(tmp_path)


# --- HTML --------------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Invoice 42</title><style>p { color: red }</style>
<script>var secret = "do not show";</script></head>
<body>
  <h1>Invoice&nbsp;42</h1>
  <p>Dear   customer,
     thank you.</p>
  <p>Total: <b>1&#8239;234,50&nbsp;&euro;</b><br>Due: 2024-03-31</p>
  <ul><li>Widget</li><li>Gadget &amp; co</li></ul>
  <table><tr><th>SKU</th><th>Qty</th></tr><tr><td>A-1</td><td>2</td></tr></table>
  <script type="text/javascript">document.write("<p>nope</p>")</script>
  <noscript>Enable JS</noscript>
  <pre>  keep   this
spacing</pre>
</body></html>"""


def test_html_to_text_keeps_text_and_paragraphs_only() -> None:
    assert html_to_text(HTML) == (
        "Invoice\xa042\n\n"
        "Dear customer, thank you.\n\n"
        "Total: 1\u202f234,50\xa0€\nDue: 2024-03-31\n\n"
        "Widget\nGadget & co\n\n"
        "SKU\tQty\nA-1\t2\n\n"
        "keep   this\nspacing"
    )


def test_sloppy_html_with_an_open_head_keeps_its_body() -> None:
    markup = "<html><head><title>T</title><meta charset=utf-8><body><p>Body text</p><p>More</p>"
    assert html_to_text(markup) == "Body text\n\nMore"
    assert html_to_text("<p>a<script>x = '</p>'</script>b</p>") == "ab"


def test_html_file_is_read_as_html(tmp_path: Path) -> None:
    path = tmp_path / "invoice.htm"
    path.write_text(HTML, encoding="utf-8")
    doc = Document.from_path(path)
    assert doc.kind == "html"
    assert "do not show" not in doc.text
    assert doc.text.startswith("Invoice\xa042\n\nDear customer")
    sniffed = Document.from_bytes(HTML.encode(), name="download")  # no extension: recognised from the bytes
    assert sniffed.kind == "html"
    assert sniffed.text == doc.text


def test_html_meta_charset() -> None:
    markup = '<html><head><meta charset="iso-8859-1"></head><body><p>Façade</p></body></html>'
    doc = Document.from_bytes(markup.encode("latin-1"), name="page.html")
    assert doc.text == "Façade"
    assert doc.warnings == []


# --- dispatch and parts ---------------------------------------------------------------------------


def test_pdf_is_recognised_whatever_its_name(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "scan.pdf", ["Hello PDF"])
    renamed = tmp_path / "notes.txt"
    renamed.write_bytes(path.read_bytes())
    assert Document.from_path(renamed).kind == "pdf"
    assert Document.from_bytes(b"junk\n" + path.read_bytes(), name="a.pdf").text == "Hello PDF"


def test_mixed_sources_become_parts_in_order(tmp_path: Path) -> None:
    pdf = Document.from_path(_pdf(tmp_path / "two.pdf", ["First page", "Second page"]))
    image = Image.from_bytes(_png())
    parts = to_parts(["Extract the invoice.", pdf, image, "Thanks"])
    assert [part["type"] for part in parts] == ["text", "text", "image_url", "text"]
    assert parts[0] == {"type": "text", "text": "Extract the invoice."}
    assert parts[1] == {"type": "text", "text": "First page\n\nSecond page"}
    assert parts[2] == image.to_part()
    assert parts[3] == {"type": "text", "text": "Thanks"}
    assert to_parts("just text") == [{"type": "text", "text": "just text"}]
    assert to_parts(image) == [image.to_part()]
    assert to_parts(pdf) == pdf.to_parts()
    assert to_parts(tmp_path / "two.pdf") == pdf.to_parts()


def test_document_parts_put_each_page_text_before_its_images() -> None:
    from extractor.sources import Page

    image = Image.from_bytes(_png())
    doc = Document(
        name="mixed",
        kind="pdf",
        pages=[
            Page(1, "one"),
            Page(2, "two", [image]),
            Page(3, "", [image, image]),
            Page(4, "four"),
            Page(5, "five"),
        ],
    )
    parts = doc.to_parts()
    assert [(p["type"], p.get("text")) for p in parts] == [
        ("text", "one\n\ntwo"),
        ("image_url", None),
        ("image_url", None),
        ("image_url", None),
        ("text", "four\n\nfive"),
    ]
    assert [page.char_offset for page in doc.pages] == [0, 5, 10, 12, 18]
    assert doc.text == "one\n\ntwo\n\n\n\nfour\n\nfive"


def test_parts_errors() -> None:
    with pytest.raises(DocumentError, match="nothing to send: the list of sources is empty"):
        to_parts([])
    with pytest.raises(DocumentError, match=r"source \[1\]: empty text"):
        to_parts(["a", "  "])
    with pytest.raises(UnsupportedSourceError, match="cannot send raw bytes"):
        to_parts(b"%PDF-1.4")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedSourceError, match=r"source \[0\]: cannot send a int"):
        to_parts([3])  # type: ignore[list-item]
