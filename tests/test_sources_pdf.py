"""PDFs generated here (fpdf2, written to tmp_path): pages, ranges, scans, blanks, passwords, broken files."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

import PIL.Image
import pytest
from fpdf import FPDF
from fpdf.enums import EncryptionMethod
from pdf_samples import raw_pdf as _raw_pdf
from pypdf import PdfReader

from extractor.errors import ConfigurationError, DocumentError, EncryptedDocumentError, UnsupportedSourceError
from extractor.sources import Document, file_parser_plugin, select_pages
from extractor.sources.pdf import read_pdf

PAGE_TEXTS = [f"Page {n} says hello. Invoice INV-{n:04d} total {n * 100}.00 EUR." for n in range(1, 6)]


def _text_pdf(path: Path, texts: list[str] = PAGE_TEXTS, *, title: str | None = None) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    if title:
        pdf.set_title(title)
        pdf.set_author("Ada Lovelace")
    for text in texts:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def _scan_like_pdf(path: Path) -> Path:
    """Page 1 text, page 2 a large image only (a scan), page 3 blank."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Cover letter")
    pdf.add_page()
    scan = PIL.Image.new("RGB", (3000, 2000), "white")
    for x in range(0, 3000, 7):
        scan.putpixel((x, 1000), (0, 0, 0))
    pdf.image(scan, x=10, y=10, w=180)
    pdf.add_page()
    pdf.output(str(path))
    return path


# --- text per page and page selection -------------------------------------------------------


def test_multi_page_text_has_numbered_pages_and_offsets(tmp_path: Path) -> None:
    doc = Document.from_path(_text_pdf(tmp_path / "five.pdf", title="Five pages"))
    assert doc.kind == "pdf"
    assert doc.name == "five.pdf"
    assert [page.number for page in doc.pages] == [1, 2, 3, 4, 5]
    assert [page.text for page in doc.pages] == PAGE_TEXTS
    assert doc.text == "\n\n".join(PAGE_TEXTS)
    for page in doc.pages:
        assert doc.text[page.char_offset : page.char_offset + len(page.text)] == page.text
        assert doc.page_at(page.char_offset) == page.number
    assert doc.warnings == []
    assert doc.metadata["page_count"] == 5
    assert doc.metadata["title"] == "Five pages"
    assert doc.metadata["author"] == "Ada Lovelace"
    assert doc.metadata["encrypted"] is False
    assert doc.metadata["creation_date"] is not None
    assert doc.page_offsets == [(1, 0), (2, 55), (3, 110), (4, 165), (5, 220)]


@pytest.mark.parametrize(
    ("pages", "expected"),
    [
        (2, [2]),
        ("1-3,5", [1, 2, 3, 5]),
        ("4-", [4, 5]),
        (" 2 - 3 ", [2, 3]),
        (range(2, 4), [2, 3]),
        ([5, 1, 5], [1, 5]),
    ],
)
def test_page_selection(tmp_path: Path, pages: object, expected: list[int]) -> None:
    doc = Document.from_path(_text_pdf(tmp_path / "five.pdf"), pages=pages)  # type: ignore[arg-type]
    assert [page.number for page in doc.pages] == expected
    assert [page.text for page in doc.pages] == [PAGE_TEXTS[n - 1] for n in expected]
    assert doc.pages[0].char_offset == 0
    assert doc.metadata["page_count"] == 5


def test_page_out_of_range_names_the_page_and_the_count(tmp_path: Path) -> None:
    path = _text_pdf(tmp_path / "five.pdf")
    with pytest.raises(DocumentError) as info:
        Document.from_path(path, pages="4-7")
    assert str(info.value) == f"{path}: page 7 is out of range: the document has 5 pages"
    with pytest.raises(DocumentError, match="page 6 is out of range"):
        Document.from_path(path, pages=6)


@pytest.mark.parametrize("pages", ["", "a-b", "3-1", "1 2", "0", [0], [1.5], True, []])
def test_malformed_page_selection_is_a_configuration_error(pages: object) -> None:
    with pytest.raises(ConfigurationError):
        select_pages(pages, 5)  # type: ignore[arg-type]


# --- scans and blank pages ----------------------------------------------------------------------


def test_image_only_page_becomes_an_image_part_and_blank_page_a_warning(tmp_path: Path) -> None:
    doc = Document.from_path(_scan_like_pdf(tmp_path / "scan.pdf"))
    cover, scan, blank = doc.pages
    assert cover.text == "Cover letter"
    assert cover.images == []
    assert scan.text == ""
    assert len(scan.images) == 1
    image = scan.images[0]
    assert (image.width, image.height) == (1568, 1045)  # downscaled from 3000 x 2000
    assert image.mime_type == "image/png"
    with PIL.Image.open(BytesIO(image.data or b"")) as decoded:
        assert decoded.size == (1568, 1045)
    assert blank.text == "" and blank.images == [] and blank.empty
    assert doc.empty_pages == [3]
    assert doc.warnings == ["page 3: no text and no images (blank, or nothing readable)"]
    parts = doc.to_parts()
    assert [part["type"] for part in parts] == ["text", "image_url"]
    assert parts[0] == {"type": "text", "text": "Cover letter"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_image_limits_and_modes(tmp_path: Path) -> None:
    path = _scan_like_pdf(tmp_path / "scan.pdf")
    small = Document.from_path(path, max_image_side=500)
    assert (small.pages[1].images[0].width, small.pages[1].images[0].height) == (500, 333)
    budget = Document.from_path(path, max_image_side=None, max_image_pixels=600_000)
    image = budget.pages[1].images[0]
    assert image.width is not None and image.height is not None
    assert image.width * image.height <= 600_000
    assert (image.width, image.height) == (949, 632)
    full = Document.from_path(path, max_image_side=None)
    assert (full.pages[1].images[0].width, full.pages[1].images[0].height) == (3000, 2000)
    never = Document.from_path(path, images="never")
    assert never.images == []
    assert never.empty_pages == [2, 3]
    with pytest.raises(ConfigurationError):
        Document.from_path(path, images="sometimes")  # type: ignore[arg-type]


def test_all_blank_pdf_has_nothing_to_send(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.add_page()
    pdf.output(str(tmp_path / "blank.pdf"))
    doc = Document.from_path(tmp_path / "blank.pdf")
    assert doc.empty_pages == [1, 2]
    assert doc.text == "\n\n"
    with pytest.raises(DocumentError) as info:
        doc.to_parts()
    assert str(info.value) == "blank.pdf: nothing to send: all 2 pages are empty (no text layer and no images)"


# --- passwords ------------------------------------------------------------------------------------


def _encrypted_pdf(path: Path, method: EncryptionMethod) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Top secret figures: 42")
    pdf.set_encryption(owner_password="owner-pw", user_password="user-pw", encryption_method=method)
    pdf.output(str(path))
    return path


@pytest.mark.parametrize("method", [EncryptionMethod.RC4, EncryptionMethod.AES_128])
def test_password_protected_pdf(tmp_path: Path, method: EncryptionMethod) -> None:
    path = _encrypted_pdf(tmp_path / "secret.pdf", method)
    with pytest.raises(EncryptedDocumentError) as info:
        Document.from_path(path)
    assert str(info.value) == f"{path}: encrypted; pass password="
    with pytest.raises(EncryptedDocumentError) as info:
        Document.from_path(path, password="guess")
    assert str(info.value) == f"{path}: wrong password"
    for password in ("user-pw", "owner-pw"):
        doc = Document.from_path(path, password=password)
        assert doc.text == "Top secret figures: 42"
        assert doc.metadata["encrypted"] is True


def test_password_for_an_unencrypted_pdf_is_a_warning(tmp_path: Path) -> None:
    doc = Document.from_path(_text_pdf(tmp_path / "five.pdf"), password="x")
    assert doc.warnings == ["a password was given but the PDF is not encrypted"]
    assert len(doc.pages) == 5


# --- sending the PDF itself --------------------------------------------------------------------


def _decoded_file_part(part: dict[str, object]) -> PdfReader:
    file = part["file"]
    assert isinstance(file, dict)
    prefix = "data:application/pdf;base64,"
    assert file["file_data"].startswith(prefix)
    return PdfReader(BytesIO(base64.b64decode(file["file_data"][len(prefix) :])))


def test_file_part_sends_the_original_bytes(tmp_path: Path) -> None:
    path = _text_pdf(tmp_path / "five.pdf")
    part = Document.from_path(path).as_file_part()
    assert part["type"] == "file"
    assert part["file"]["filename"] == "five.pdf"
    assert part["file"]["file_data"] == "data:application/pdf;base64," + base64.b64encode(path.read_bytes()).decode()


def test_file_part_of_a_page_selection_or_encrypted_pdf_is_a_new_pdf(tmp_path: Path) -> None:
    subset = Document.from_path(_text_pdf(tmp_path / "five.pdf"), pages="2,4").as_file_part()
    reader = _decoded_file_part(subset)
    assert [page.extract_text() for page in reader.pages] == [PAGE_TEXTS[1], PAGE_TEXTS[3]]
    secret = Document.from_path(_encrypted_pdf(tmp_path / "s.pdf", EncryptionMethod.RC4), password="user-pw")
    reader = _decoded_file_part(secret.as_file_part())
    assert not reader.is_encrypted
    assert reader.pages[0].extract_text() == "Top secret figures: 42"


def test_file_part_is_for_pdfs_only() -> None:
    with pytest.raises(UnsupportedSourceError, match="as_file_part\\(\\) sends PDFs; this is a text document"):
        Document.from_text("hello").as_file_part()


@pytest.mark.parametrize("engine", ["cloudflare-ai", "mistral-ocr", "native"])
def test_file_parser_plugin(engine: str) -> None:
    assert file_parser_plugin(engine) == {"id": "file-parser", "pdf": {"engine": engine}}


def test_file_parser_plugin_rejects_unknown_engines() -> None:
    with pytest.raises(ConfigurationError, match="unknown PDF engine 'ocr'; use one of cloudflare-ai, mistral-ocr"):
        file_parser_plugin("ocr")
    with pytest.raises(ConfigurationError, match="'pdf-text' is now 'cloudflare-ai'"):
        file_parser_plugin("pdf-text")


# --- broken files --------------------------------------------------------------------------------


def test_not_a_pdf_names_what_it_starts_with(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"<html><body>Session expired</body></html>")
    with pytest.raises(DocumentError) as info:
        Document.from_path(path)
    assert type(info.value) is DocumentError
    assert str(info.value) == f"{path}: not a PDF: starts with b'<html><body>' (HTML)"


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_pdf_says_truncated(tmp_path: Path, keep: float) -> None:
    data = _text_pdf(tmp_path / "five.pdf").read_bytes()
    cut = data[: int(len(data) * keep)]
    with pytest.raises(DocumentError) as info:
        Document.from_bytes(cut, name="cut.pdf")
    assert type(info.value) is DocumentError
    assert str(info.value).startswith(f"cut.pdf: truncated: no %%EOF end marker after {len(cut)} bytes (")


def test_damaged_pdf_says_damaged_with_pypdf_reason() -> None:
    data = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
    with pytest.raises(DocumentError) as info:
        Document.from_bytes(data, name="noise.pdf")
    assert type(info.value) is DocumentError
    assert str(info.value).startswith("noise.pdf: damaged: ")
    assert len(str(info.value)) > len("noise.pdf: damaged: ")


def test_header_only_and_empty_pdf() -> None:
    with pytest.raises(DocumentError, match=r"^x.pdf: truncated: no %%EOF end marker after 9 bytes"):
        Document.from_bytes(b"%PDF-1.7\n", name="x.pdf")
    with pytest.raises(DocumentError, match=r"^x.pdf: empty file$"):
        Document.from_bytes(b"", name="x.pdf")
    with pytest.raises(DocumentError, match=r"^x.pdf: empty file$"):
        read_pdf(b"", source="x.pdf")


def test_repairs_made_while_reading_are_warnings(tmp_path: Path) -> None:
    data = _text_pdf(tmp_path / "five.pdf").read_bytes()
    # a wrong startxref offset: pypdf rebuilds the cross-reference table and says so
    at = data.rindex(b"startxref")
    broken = data[:at] + b"startxref\n123\n%%EOF\n"
    doc = Document.from_bytes(broken, name="broken.pdf")
    assert [page.text for page in doc.pages] == PAGE_TEXTS
    assert doc.warnings
    assert all(warning.startswith("pypdf: ") for warning in doc.warnings)


def test_cyclic_page_tree_fails_instead_of_looping() -> None:
    data = _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
        ]
    )
    with pytest.raises(DocumentError) as info:
        Document.from_bytes(data, name="loop.pdf")
    assert str(info.value) == "loop.pdf: damaged: Detected cyclic page references."


def test_self_drawing_form_is_skipped_with_a_warning() -> None:
    draw = b"<< /Length 5 >>\nstream\n/X Do\nendstream"
    data = _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Resources << /XObject << /X 4 0 R >> >>"
            b" /Contents 5 0 R >>",
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /XObject << /X 4 0 R >> >>"
            b" /Length 5 >>\nstream\n/X Do\nendstream",
            draw,
        ]
    )
    doc = Document.from_bytes(data, name="form.pdf", images="always")
    assert doc.warnings == [
        "page 1: no text and no images (blank, or nothing readable)",
        "pypdf: Detected cyclic form XObject reference, skipping /X.",
    ]


def test_catalog_without_pages() -> None:
    with pytest.raises(DocumentError, match=r"^none.pdf: damaged: the PDF has no pages$"):
        Document.from_bytes(_raw_pdf([b"<< /Type /Catalog /Pages 1 0 R >>"]), name="none.pdf")


def test_aes_without_the_cryptography_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf.errors import DependencyError

    path = _encrypted_pdf(tmp_path / "aes.pdf", EncryptionMethod.AES_128)

    def missing(self: PdfReader, password: str | bytes) -> None:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(PdfReader, "decrypt", missing)
    with pytest.raises(DocumentError) as info:
        Document.from_path(path, password="user-pw")
    assert str(info.value) == (
        f"{path}: encrypted with AES, which needs the 'cryptography' package (pip install 'pypdf[crypto]'): "
        "cryptography>=3.1 is required for AES algorithm"
    )
