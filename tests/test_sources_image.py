"""Images: format from the bytes, corrupt and truncated data, downscaling, content parts."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

import PIL.Image
import pytest

from extractor.errors import ConfigurationError, DocumentError, UnsupportedSourceError
from extractor.sources import Document, Image


def _encoded(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    out = BytesIO()
    img = PIL.Image.new(mode, size, "red" if mode == "RGB" else 128)
    for x in range(size[0]):
        img.putpixel((x, x % size[1]), (0, 0, 255) if mode == "RGB" else 0)
    img.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_format_comes_from_the_bytes_not_the_name(tmp_path: Path, fmt: str, mime: str) -> None:
    path = tmp_path / "photo.tiff"  # a misleading extension
    path.write_bytes(_encoded(fmt))
    image = Image.from_path(path)
    assert image.mime_type == mime
    assert image.format == fmt.lower()
    assert (image.width, image.height) == (40, 30)
    assert image.name == "photo.tiff"
    assert image.data == path.read_bytes()


def test_png_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "scan.jpg"
    path.write_bytes(_encoded("PNG"))
    assert Image.from_path(path).mime_type == "image/png"
    doc = Document.from_path(path)
    assert doc.kind == "image"
    assert doc.metadata == {"format": "png", "width": 40, "height": 30}
    assert doc.images[0].mime_type == "image/png"
    assert doc.pages[0].number == 1 and doc.pages[0].text == ""


def test_image_named_pdf_is_an_image(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(_encoded("JPEG"))
    doc = Document.from_path(path)
    assert (doc.kind, doc.images[0].mime_type) == ("image", "image/jpeg")


def test_to_part_is_a_data_url_with_detail_only_when_set() -> None:
    data = _encoded("PNG")
    encoded = base64.b64encode(data).decode()
    assert Image.from_bytes(data).to_part() == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{encoded}"},
    }
    assert Image.from_bytes(data, detail="high").to_part()["image_url"] == {
        "url": f"data:image/png;base64,{encoded}",
        "detail": "high",
    }
    assert Image.from_bytes(data).with_detail("low").to_part()["image_url"]["detail"] == "low"
    with pytest.raises(ConfigurationError, match="detail='medium'"):
        Image.from_bytes(data, detail="medium")  # type: ignore[arg-type]


def test_remote_url_is_kept_not_fetched() -> None:
    image = Image.from_url("https://example.com/scans/page%201.png", detail="auto")
    assert image.data is None
    assert image.name == "page 1.png"
    assert image.format is None
    assert image.to_part() == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/scans/page%201.png", "detail": "auto"},
    }
    assert image.downscaled(max_side=10) is image


def test_data_url_is_decoded_and_checked() -> None:
    data = _encoded("JPEG")
    image = Image.from_url("data:image/jpeg;base64," + base64.b64encode(data).decode())
    assert image.data == data
    assert image.mime_type == "image/jpeg"
    with pytest.raises(DocumentError, match="invalid base64"):
        Image.from_url("data:image/png;base64,@@@")
    with pytest.raises(UnsupportedSourceError, match="must be base64-encoded"):
        Image.from_url("data:image/png,rawbytes")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "/local/a.png", "https:///a.png"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedSourceError, match="not an http\\(s\\) or data: URL"):
        Image.from_url(url)


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(DocumentError) as info:
        Image.from_path(path)
    assert str(info.value) == f"{path}: empty file"
    with pytest.raises(DocumentError) as info:
        Document.from_path(path)
    assert type(info.value) is DocumentError
    assert str(info.value) == f"{path}: empty file"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_image_is_a_clear_error(fmt: str) -> None:
    data = _encoded(fmt, (200, 150))
    with pytest.raises(DocumentError) as info:
        Image.from_bytes(data[: len(data) // 2], name="half.img")
    assert type(info.value) is DocumentError
    assert str(info.value).startswith(f"half.img: corrupt or truncated {fmt} image: ")


def test_corrupt_png_chunk_is_a_clear_error() -> None:
    data = bytearray(_encoded("PNG", (64, 64)))
    at = data.index(b"IDAT") + 10
    data[at : at + 8] = b"\x00" * 8
    with pytest.raises(DocumentError, match=r"^broken.png: corrupt or truncated PNG image: "):
        Image.from_bytes(bytes(data), name="broken.png")


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (_encoded("TIFF"), "a TIFF image"),
        (_encoded("BMP"), "a BMP image"),
        (b"%PDF-1.7\n...", "a PDF"),
        (b"PK\x03\x04rest", "a ZIP archive (.docx, .xlsx, .odt, .epub are ZIP archives)"),
        (b"<!DOCTYPE html><html></html>", "HTML"),
        (b"just some text", "data starting with b'just some te'"),
    ],
)
def test_unsupported_image_bytes_say_what_they_look_like(data: bytes, looks_like: str) -> None:
    with pytest.raises(UnsupportedSourceError) as info:
        Image.from_bytes(data, name="upload.png")
    assert str(info.value) == f"upload.png: not a PNG, JPEG, WebP or GIF image: the bytes look like {looks_like}"


def test_a_file_named_png_holding_a_tiff_is_unsupported_as_a_document(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(_encoded("TIFF"))
    with pytest.raises(UnsupportedSourceError, match="the bytes look like a TIFF image"):
        Document.from_path(path)


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_downscaling_keeps_the_format(fmt: str, mime: str) -> None:
    image = Image.from_bytes(_encoded(fmt, (3000, 1000)), max_side=1500)
    assert (image.width, image.height) == (1500, 500)
    assert image.mime_type == mime
    with PIL.Image.open(BytesIO(image.data or b"")) as decoded:
        assert decoded.format == fmt
        assert decoded.size == (1500, 500)


def test_gif_is_downscaled_to_png_and_small_images_are_untouched() -> None:
    gif = Image.from_bytes(_encoded("GIF", (800, 400)), max_side=200)
    assert (gif.mime_type, gif.width, gif.height) == ("image/png", 200, 100)
    small = _encoded("PNG", (100, 80))
    assert Image.from_bytes(small, max_side=200, max_pixels=10_000).data == small


def test_pixel_budget() -> None:
    image = Image.from_bytes(_encoded("PNG", (2000, 1000)), max_pixels=500_000)
    assert image.width is not None and image.height is not None
    assert image.width * image.height <= 500_000
    assert (image.width, image.height) == (1000, 500)
    with pytest.raises(ConfigurationError, match="max_side=0"):
        Image.from_bytes(_encoded("PNG"), max_side=0)


def test_from_pillow_converts_cmyk_and_16_bit() -> None:
    cmyk = Image.from_pillow(PIL.Image.new("CMYK", (30, 20), (0, 255, 0, 0)), photo=True)
    assert cmyk.mime_type == "image/jpeg"
    with PIL.Image.open(BytesIO(cmyk.data or b"")) as decoded:
        assert decoded.mode == "RGB"
    wide = Image.from_pillow(PIL.Image.new("I;16", (30, 20), 65535))
    assert wide.mime_type == "image/png"
    with PIL.Image.open(BytesIO(wide.data or b"")) as decoded:
        assert decoded.mode == "L"
        assert decoded.getpixel((0, 0)) == 255
    alpha = Image.from_pillow(PIL.Image.new("RGBA", (30, 20)), photo=True)
    assert alpha.mime_type == "image/png"  # JPEG has no alpha


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as info:
        Image.from_path(tmp_path / "nope.png")
    assert str(info.value) == f"{tmp_path / 'nope.png'}: cannot read: No such file or directory"
