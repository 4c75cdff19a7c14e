"""Decompression bombs, made here: small files that decode to far more text or pixels than they hold.

Each is stopped at the limit it passes, with a `DocumentError` naming it (`LoadLimits.<name>`), and
what pypdf decoded for a page is let go once the page is read, so that memory does not grow with the
pages. Time and peak memory figures are `benchmarks/bombs.py`'s; nothing here is timed.
"""

from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path

import PIL.Image
import pytest
from pdf_samples import image_bomb_pdf, raw_pdf, slow_pdf, text_bomb_pdf

from extractor.errors import ConfigurationError, DocumentError
from extractor.sources import Document, Image, LoadLimits


def test_a_page_whose_content_decodes_past_the_limit_is_refused_before_its_text_is_read(tmp_path: Path) -> None:
    """3 pages of 20 MB of text operations from 128 KB: 178 s and 309 MB to load before (`benchmarks/bombs.py`)."""
    bomb = text_bomb_pdf(tmp_path / "bomb.pdf", pages=3, decoded=20_000_000)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DocumentError, match=r"page 1 decodes to more than 16,000,000 bytes .*LoadLimits\.page_bytes"):
        Document.from_path(bomb)


def test_a_page_showing_more_text_than_the_limit_is_stopped_while_it_is_read(tmp_path: Path) -> None:
    bomb = text_bomb_pdf(tmp_path / "bomb.pdf", pages=1, decoded=1_500_000)  # 1.5 M characters, under page_bytes
    with pytest.raises(DocumentError, match=r"page 1 holds more than 1,000,000 characters .*page_characters"):
        Document.from_path(bomb)


def test_the_text_of_the_whole_document_is_bounded_too(tmp_path: Path) -> None:
    bomb = text_bomb_pdf(tmp_path / "bomb.pdf", pages=3, decoded=600_000)
    limits = LoadLimits(document_characters=1_000_000)
    with pytest.raises(DocumentError, match=r"the document holds more than 1,000,000 characters .*document_char"):
        Document.from_path(bomb, limits=limits)
    assert len(Document.from_path(bomb).text) > 1_500_000  # within the defaults it loads


def test_decoded_content_of_the_whole_document_is_bounded(tmp_path: Path) -> None:
    bomb = text_bomb_pdf(tmp_path / "bomb.pdf", pages=3, decoded=300_000)
    with pytest.raises(DocumentError, match=r"the document decodes to more than 500,000 bytes .*document_bytes"):
        Document.from_path(bomb, limits=LoadLimits(document_bytes=500_000))


def test_a_page_that_takes_too_long_is_stopped(tmp_path: Path) -> None:
    path = slow_pdf(tmp_path / "slow.pdf")  # seconds of text extraction
    with pytest.raises(DocumentError, match=r"page 1 took longer than 0\.2 s .*LoadLimits\.page_seconds"):
        Document.from_path(path, limits=LoadLimits(page_seconds=0.2))


def test_a_document_that_takes_too_long_is_stopped(tmp_path: Path) -> None:
    path = slow_pdf(tmp_path / "slow.pdf")
    with pytest.raises(DocumentError, match=r"the document took longer than 0\.2 s .*document_seconds"):
        Document.from_path(path, limits=LoadLimits(document_seconds=0.2))


def test_many_large_images_on_one_page_are_refused_at_the_pixel_limit(tmp_path: Path) -> None:
    bomb = image_bomb_pdf(tmp_path / "bomb.pdf", pages=1, per_page=16, side=1000)
    with pytest.raises(DocumentError, match=r"page 1 has images of more than 5,000,000 pixels .*page_pixels"):
        Document.from_path(bomb, limits=LoadLimits(page_pixels=5_000_000))


def test_the_pixels_of_the_whole_document_are_bounded(tmp_path: Path) -> None:
    bomb = image_bomb_pdf(tmp_path / "bomb.pdf", pages=4, side=1000)
    with pytest.raises(DocumentError, match=r"the document has images of more than 3,000,000 pixels .*document_pix"):
        Document.from_path(bomb, limits=LoadLimits(document_pixels=3_000_000))
    assert len(Document.from_path(bomb).images) == 4


def test_an_image_is_counted_by_its_declared_size_before_it_is_decoded(tmp_path: Path) -> None:
    """An image declaring 100,000 x 100,000 pixels over a few bytes: refused for its size, never decoded
    (decoding would be an error about the data, and a warning only)."""
    image = b"<< /Type /XObject /Subtype /Image /Width 100000 /Height 100000 /ColorSpace /DeviceGray "
    image += b"/BitsPerComponent 8 /Length 4 >>\nstream\n\x00\x00\x00\x00\nendstream"
    draw = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
    path = tmp_path / "declared.pdf"
    path.write_bytes(
        raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> >> "
                b"/Contents 4 0 R >>",
                b"<< /Length %d >>\nstream\n%b\nendstream" % (len(draw), draw),
                image,
            ]
        )
    )
    with pytest.raises(DocumentError, match=r"more than 100,000,000 pixels .*page_pixels"):
        Document.from_path(path)


def test_what_pypdf_decoded_for_a_page_is_let_go_once_the_page_is_read(tmp_path: Path) -> None:
    """16 pages of 12 MB images each: pypdf kept every page's decoded image (192 MB held at the end);
    now one at a time. tracemalloc sees the decoded bytes pypdf holds (not Pillow's pixel buffers)."""
    bomb = image_bomb_pdf(tmp_path / "bomb.pdf", pages=16, side=2000)
    tracemalloc.start()
    try:
        document = Document.from_path(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(document.images) == 16
    assert peak < 64_000_000  # one page's 12 MB, and the copies of it made on the way


def test_an_image_file_with_more_pixels_than_the_limit_is_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "large.png"
    PIL.Image.new("L", (3000, 2000)).save(path)
    with pytest.raises(DocumentError, match=r"the PNG image is 3000 x 2000 pixels, more than 5,000,000 pixels"):
        Document.from_path(path, limits=LoadLimits(page_pixels=5_000_000))
    with pytest.raises(DocumentError, match=r"LoadLimits\.page_pixels"):
        Image.from_path(path, max_decoded=1_000_000)
    assert len(Document.from_path(path).images) == 1  # within the defaults it loads


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns at 89 M pixels
def test_an_image_file_bomb_is_refused_with_the_defaults(tmp_path: Path) -> None:
    """A PNG declaring 12,000 x 12,000 pixels, its zeros compressed to a few hundred kilobytes."""
    side = 12_000
    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then a row of black pixels
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit grey
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(DocumentError, match=r"12000 x 12000 pixels, more than 100,000,000 pixels"):
        Document.from_path(path)


@pytest.mark.parametrize("name", ["page_seconds", "document_bytes", "page_pixels"])
@pytest.mark.parametrize("value", [0, -1, True])
def test_limits_are_positive_numbers(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"LoadLimits.{name}"):
        LoadLimits(**{name: value})  # type: ignore[arg-type]
