"""Images to send to a vision model: read from a file, bytes or a URL, checked, optionally downscaled.

The format is always detected from the bytes (PNG, JPEG, WebP, GIF), never from a file name, and
the image is decoded once with Pillow so that corrupt or truncated data fails here, with the file's
name, rather than at the provider.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, get_args
from urllib.parse import unquote, urlsplit

import PIL.Image

from ..errors import ConfigurationError, DocumentError, UnsupportedSourceError
from ._sniff import IMAGE_MIME_TYPES, describe, image_format
from .files import read_file
from .limits import DEFAULT_LIMITS

__all__ = ["DEFAULT_MAX_SIDE", "Detail", "Image"]

Detail: TypeAlias = Literal["auto", "low", "high"]
"""How closely a vision model should look at an image (OpenAI's `detail`)."""

DEFAULT_MAX_SIDE: Final = 1568
"""The longest side, in pixels, that images taken from PDF pages are scaled down to by default."""

_PIL_FORMATS: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
_JPEG_QUALITY: Final = 90
# formats whose pixels are photographic: re-encoded as JPEG rather than PNG when they have no alpha
_PHOTO_SOURCES: Final = frozenset({"JPEG", "JPEG2000", "MPO"})


def _check_detail(detail: str | None) -> Detail | None:
    if detail is None:
        return None
    if detail not in get_args(Detail):
        raise ConfigurationError(f"detail={detail!r}: use one of 'auto', 'low', 'high' or None")
    return detail  # type: ignore[return-value]


def _scale(width: int, height: int, max_side: int | None, max_pixels: int | None) -> float:
    """The factor (at most 1) that brings a `width` x `height` image within the limits."""
    for name, limit in (("max_side", max_side), ("max_pixels", max_pixels)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigurationError(f"{name}={limit!r}: give a positive number of pixels or None")
    scale = 1.0
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
    if max_pixels is not None and width * height * scale * scale > max_pixels:
        scale = min(scale, math.sqrt(max_pixels / (width * height)))
    return scale


def _displayable(img: PIL.Image.Image) -> PIL.Image.Image:
    """`img` in a mode that PNG or JPEG can store (RGB, RGBA, L, LA, 1, P)."""
    mode = img.mode
    if mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16/32-bit grey: scale to 8 bits rather than clip
        wide = img.convert("I") if mode != "I" else img
        return wide.point(lambda v: v * (1 / 256)).convert("L")
    if mode in ("PA", "RGBa", "La"):
        return img.convert("RGBA")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _resized(img: PIL.Image.Image, scale: float) -> PIL.Image.Image:
    """`img` scaled by `scale` with a smooth filter (bilevel and palette images go through grey/RGB first)."""
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, PIL.Image.Resampling.LANCZOS)


def _encode(img: PIL.Image.Image, fmt: str) -> bytes:
    """`img` written as `fmt` ("png", "jpeg", "webp")."""
    out = BytesIO()
    if fmt == "jpeg":
        img.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=True)
    elif fmt == "webp":
        img.save(out, "WEBP", quality=_JPEG_QUALITY)
    else:
        img.save(out, "PNG", optimize=False)
    return out.getvalue()


def _decode(data: bytes, fmt: str, source: str, max_decoded: int | None = None) -> tuple[int, int]:
    """The size of the image in `data`, after checking that it decodes completely (not tried when it has
    more than `max_decoded` pixels: a `DocumentError` naming the limit)."""
    what = fmt.upper()
    try:
        with PIL.Image.open(BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as img:
            width, height = img.size
            frames = getattr(img, "n_frames", 1) if fmt in ("gif", "webp") else 1
            if max_decoded is not None and width * height * frames > max_decoded:
                raise _TooLarge(f"{width} x {height} pixels" + (f" x {frames} frames" if frames > 1 else ""))
            img.verify()
        with PIL.Image.open(BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as img:
            img.load()
            width, height = img.size
            return int(width), int(height)
    except _TooLarge as exc:
        raise DocumentError(
            f"too much to read safely: the {what} image is {exc}, more than {max_decoded:,} pixels "
            "(LoadLimits.page_pixels; a crafted or damaged file?)",
            source=source,
        ) from None
    except PIL.Image.DecompressionBombError as exc:
        raise DocumentError(f"{what} image too large to decode safely: {exc}", source=source) from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error ... on bad data
        reason = str(exc) or type(exc).__name__
        raise DocumentError(f"corrupt or truncated {what} image: {reason}", source=source) from None


class _TooLarge(Exception):
    """An image with more pixels than allowed (its size in words)."""


@dataclass(frozen=True)
class Image:
    """One image: inline bytes (`data`, with its `mime_type`) or a remote `url` that the provider fetches.

    `detail` is passed to the provider when set. `width`/`height` are known for inline images.
    """

    data: bytes | None = field(repr=False)
    mime_type: str | None
    name: str | None = None
    url: str | None = None
    detail: Detail | None = None
    width: int | None = None
    height: int | None = None

    # --- constructors ----------------------------------------------------------------------

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        detail: Detail | None = None,
        max_side: int | None = None,
        max_pixels: int | None = None,
        max_decoded: int | None = DEFAULT_LIMITS.page_pixels,
    ) -> Image:
        """The image in the file at `path` (format from its bytes), scaled down to the limits when given;
        `max_decoded` as for `from_bytes`."""
        source = os.fspath(path)
        data = read_file(source)
        return cls._checked(
            data,
            name=Path(path).name,
            source=source,
            detail=detail,
            max_side=max_side,
            max_pixels=max_pixels,
            max_decoded=max_decoded,
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        name: str | None = None,
        detail: Detail | None = None,
        max_side: int | None = None,
        max_pixels: int | None = None,
        max_decoded: int | None = DEFAULT_LIMITS.page_pixels,
    ) -> Image:
        """The image in `data` (format from the bytes), scaled down to the limits when given; one of more
        than `max_decoded` pixels (all frames) is not decoded: a `DocumentError`."""
        return cls._checked(
            bytes(data),
            name=name,
            source=name or "image",
            detail=detail,
            max_side=max_side,
            max_pixels=max_pixels,
            max_decoded=max_decoded,
        )

    @classmethod
    def from_url(cls, url: str, *, detail: Detail | None = None) -> Image:
        """An image at an http(s) URL, sent as the URL (not fetched); a `data:` URL is decoded and checked."""
        detail = _check_detail(detail)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return cls._from_data_url(url, detail)
        if scheme not in ("http", "https") or not parts.netloc:
            shown = url if len(url) <= 80 else url[:77] + "..."
            raise UnsupportedSourceError(
                "not an http(s) or data: URL; for a local file use Image.from_path", source=shown
            )
        name = unquote(parts.path.rsplit("/", 1)[-1]) or None
        return cls(data=None, mime_type=None, name=name, url=url, detail=detail)

    @classmethod
    def from_pillow(
        cls,
        img: PIL.Image.Image,
        *,
        name: str | None = None,
        detail: Detail | None = None,
        max_side: int | None = None,
        max_pixels: int | None = None,
        photo: bool | None = None,
    ) -> Image:
        """A decoded Pillow image, encoded as JPEG (photographic, no alpha) or PNG, scaled down to the limits.

        `photo` chooses JPEG; by default it is chosen for images decoded from JPEG or JPEG 2000.
        """
        detail = _check_detail(detail)
        if photo is None:
            photo = img.format in _PHOTO_SOURCES
        out = _displayable(img)
        scale = _scale(out.width, out.height, max_side, max_pixels)
        if scale < 1:
            out = _resized(out, scale)
        fmt = "jpeg" if photo and out.mode in ("L", "RGB") else "png"
        data = _encode(out, fmt)
        return cls(
            data=data, mime_type=IMAGE_MIME_TYPES[fmt], name=name, detail=detail, width=out.width, height=out.height
        )

    @classmethod
    def _checked(
        cls,
        data: bytes,
        *,
        name: str | None,
        source: str,
        detail: Detail | None,
        max_side: int | None,
        max_pixels: int | None,
        max_decoded: int | None = DEFAULT_LIMITS.page_pixels,
    ) -> Image:
        detail = _check_detail(detail)
        if not data:
            raise DocumentError("empty file", source=source)
        fmt = image_format(data)
        if fmt is None:
            raise UnsupportedSourceError(
                f"not a PNG, JPEG, WebP or GIF image: the bytes look like {describe(data)}", source=source
            )
        width, height = _decode(data, fmt, source, max_decoded)
        image = cls(data=data, mime_type=IMAGE_MIME_TYPES[fmt], name=name, detail=detail, width=width, height=height)
        return image.downscaled(max_side=max_side, max_pixels=max_pixels)

    @classmethod
    def _from_data_url(cls, url: str, detail: Detail | None) -> Image:
        header, sep, payload = url.partition(",")
        if not sep or not header.lower().endswith(";base64"):
            raise UnsupportedSourceError(
                "a data: URL must be base64-encoded (data:image/png;base64,...)", source="data: URL"
            )
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentError("invalid base64 in data: URL", source="data: URL") from None
        return cls._checked(data, name=None, source="data: URL", detail=detail, max_side=None, max_pixels=None)

    # --- properties and conversions --------------------------------------------------------

    @property
    def format(self) -> str | None:
        """`"png"`, `"jpeg"`, `"webp"` or `"gif"` for inline images; None for a remote URL."""
        return image_format(self.data) if self.data is not None else None

    @property
    def data_url(self) -> str:
        """The image as a URL: the remote URL, or a `data:` URL with the base64 bytes."""
        if self.data is None:
            return self.url or ""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def to_part(self) -> dict[str, Any]:
        """The OpenAI chat content part for this image (`{"type": "image_url", ...}`)."""
        image_url: dict[str, Any] = {"url": self.data_url}
        if self.detail is not None:
            image_url["detail"] = self.detail
        return {"type": "image_url", "image_url": image_url}

    def with_detail(self, detail: Detail | None) -> Image:
        """This image with another `detail`."""
        return replace(self, detail=_check_detail(detail))

    def downscaled(self, *, max_side: int | None = None, max_pixels: int | None = None) -> Image:
        """This image scaled down to fit the longest side / pixel budget (itself when it already fits).

        PNG, JPEG and WebP keep their format; a GIF becomes a PNG of its first frame. Remote URLs are
        returned unchanged (they are not fetched).
        """
        if self.data is None or self.width is None or self.height is None:
            return self
        scale = _scale(self.width, self.height, max_side, max_pixels)
        if scale >= 1:
            return self
        fmt = self.format or "png"
        with PIL.Image.open(BytesIO(self.data)) as img:
            img.load()
            out = _resized(_displayable(img), scale)
        if fmt == "jpeg" and out.mode not in ("L", "RGB"):
            out = out.convert("RGB")
        target = fmt if fmt in ("png", "jpeg", "webp") else "png"
        return replace(
            self, data=_encode(out, target), mime_type=IMAGE_MIME_TYPES[target], width=out.width, height=out.height
        )
