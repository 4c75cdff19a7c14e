"""Text files (.txt, .md, .json, .csv, ...) and HTML read into plain text.

Bytes are decoded as UTF-8 (a byte-order mark selects UTF-8, UTF-16 or UTF-32); text that is not
UTF-8 but is clearly text is read as Windows-1252 with a warning; binary data is refused with
`UnsupportedSourceError`. HTML keeps its text only: scripts and styles are dropped, block
elements become line or paragraph breaks.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from typing import Final

from ..errors import DocumentError, UnsupportedSourceError
from ._sniff import describe

__all__ = ["decode_text", "html_to_text", "read_html", "read_text"]

_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 control bytes that do not occur in text (tab, LF, VT, FF, CR and ESC do)
_CONTROL_BYTES: Final = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_MAX_CONTROL_SHARE: Final = 0.01  # over 1% control bytes: binary
_MAX_INVALID_SHARE: Final = 0.3  # over 30% of the bytes not valid UTF-8: binary (or an encoding we do not guess)
_UNICODE_BOMS: Final = tuple(bom for bom, _ in _BOMS)
_META_CHARSET: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _refuse(data: bytes, reason: str, source: str | None) -> UnsupportedSourceError:
    return UnsupportedSourceError(f"not a text file: {reason}; the bytes look like {describe(data)}", source=source)


def decode_text(data: bytes, *, source: str | None = None, encoding: str | None = None) -> tuple[str, list[str]]:
    """The text in `data` with newlines as `\\n`, and any warnings about how it was decoded.

    `encoding` forces a codec; otherwise a BOM or UTF-8 is used, with Windows-1252 as the fallback
    for text that is not UTF-8. Binary data raises `UnsupportedSourceError`; no bytes raise
    `DocumentError("empty file")`.
    """
    if not data:
        raise DocumentError("empty file", source=source)
    if encoding is not None:
        try:
            return _newlines(data.decode(encoding)), []
        except (LookupError, UnicodeDecodeError) as exc:
            raise DocumentError(f"cannot decode as {encoding}: {exc}", source=source) from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _newlines(data[len(bom) :].decode(codec)), []
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    f"invalid {codec.upper()} text after its byte-order mark: {exc}", source=source
                ) from None
    nul = data.count(0)
    if nul:
        raise _refuse(data, f"it contains {nul} NUL byte{'s' if nul > 1 else ''}", source)
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if controls > _MAX_CONTROL_SHARE * len(data):
        raise _refuse(data, f"{controls} of its {len(data)} bytes are control characters", source)
    try:
        return _newlines(data.decode("utf-8")), []
    except UnicodeDecodeError:
        pass
    lossy = data.decode("utf-8", errors="replace")
    invalid = lossy.count("\ufffd") - data.count("\ufffd".encode())
    if invalid > _MAX_INVALID_SHARE * len(data):
        raise _refuse(data, f"{invalid} of its {len(data)} bytes are not valid UTF-8", source)
    text = data.decode("cp1252", errors="replace")
    return _newlines(text), [f"not valid UTF-8 ({invalid} invalid bytes): read as Windows-1252"]


def read_text(data: bytes, *, source: str | None = None) -> tuple[str, list[str]]:
    """A text file's content and warnings (see `decode_text`)."""
    return decode_text(data, source=source)


# --- HTML -------------------------------------------------------------------------------------

_SKIP: Final = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "head", "title", "object", "iframe"}
)
_PARAGRAPH: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "blockquote", "pre", "section",
        "article", "header", "footer", "main", "aside", "nav", "figure", "form", "fieldset", "address", "details",
        "hr",
    }
)  # fmt: skip
_LINE: Final = frozenset(
    {"br", "div", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "legend", "option", "label"}
)
_CELL: Final = frozenset({"td", "th"})
_SPACES: Final = re.compile(r"[ \t\r\n\f\v]+")


class _TextCollector(HTMLParser):
    """Collects an HTML page's visible text, with breaks for block elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip_depth = 0
        self._skip_tag: str | None = None
        self._pre = 0
        self._pending = 0  # line breaks owed before the next text

    def _break(self, newlines: int) -> None:
        self._pending = max(self._pending, newlines)

    def _emit(self, text: str) -> None:
        if self._pending:
            if self.out:
                self.out.append("\n" * self._pending)
            self._pending = 0
        self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth and self._skip_tag == "head" and tag == "body":
            self._skip_tag, self._skip_depth = None, 0  # a <head> left open ends where the body starts
        if self._skip_depth:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        if tag in _SKIP:
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "pre":
            self._pre += 1
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)
        elif tag in _CELL:
            self._emit("\t")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._emit(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:  # <script/> and friends have no content
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if not self._skip_depth:
                    self._skip_tag = None
            return
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        text = data if self._pre else _SPACES.sub(" ", data)
        if text.strip() or (text and not self._pending):
            self._emit(text)


def _tidy(raw: str) -> str:
    """Collapsed spacing: no trailing spaces, no leading spaces on a line, at most one blank line in a row."""
    text = "\n".join(line.strip(" \t") for line in raw.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_text(markup: str) -> str:
    """The visible text of an HTML page: no scripts or styles, block elements on lines of their own,
    paragraphs separated by a blank line, entities decoded."""
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return _tidy("".join(collector.out))


def _html_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    if match is None:
        return None
    name = match.group(1).decode("ascii", errors="ignore")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def read_html(data: bytes, *, source: str | None = None) -> tuple[str, list[str]]:
    """The visible text of an HTML file and warnings; the charset comes from a BOM, a `<meta charset>` or UTF-8."""
    if not data:
        raise DocumentError("empty file", source=source)
    charset = None if data.startswith(_UNICODE_BOMS) else _html_charset(data)
    if charset is not None and charset != "utf-8":
        try:
            return html_to_text(_newlines(data.decode(charset))), []
        except UnicodeDecodeError:
            pass  # the declaration is wrong: detect as for any text
    markup, warnings = decode_text(data, source=source)
    return html_to_text(markup), warnings
