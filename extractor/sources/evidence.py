"""Evidence: where each value of an extracted record occurs in the source, if anywhere.

`find_evidence(value, text)` looks up the strings of `value` in one text (or `Document`);
`find_evidence_in(value, source)` looks up its strings, numbers and dates in every text of any source
the extractor accepts (a text, a `Document`, a file path, an `Image`, a list of these, or a chat
message list) and says which part of the source each was found in.

A string is looked up these ways, stopping at the first that finds it:

1. `"exact"`: the string (trimmed) as it is, standing apart: neither side continues a longer token
   (letters, digits, `-`, `_`, `/`) or a number (`"1.234"` in `"1.234,50"` does);
2. `"normalized"`: the same, ignoring case and whitespace (`"NL 8104 33941"` finds `"nl810433941"`, a
   line break finds a space); spans are in the original text;
3. `"formatted"`: a date `YYYY-MM-DD` as documents print it (`17.01.2024`, `17/01/2024`, `01/17/2024`,
   `Jan 17, 2024`, `17 January 2024`, `17. Januar 2024`, ...); when numbers are looked up, a string that
   is a plain number (`"1234.50"`) as numbers are printed (below);
4. `"partial"`: the string (exactly, else ignoring case and whitespace) only inside a longer token:
   `"2024-0117"` in `"KDS-2024-0117"`, `"1.234,5"` in `"1.234,50"` (with `whole_words`, a match that
   continues a word or number, like the latter, does not count). Its characters are in the text, so it
   is `found` (and not in `ExtractResult.unsupported`), but the token says more than the value: check
   it, or reject it where that matters (`Evidence.partial`);
5. `"fuzzy"`: the best approximate alignment (rapidfuzz's partial ratio, on lower-cased text) scoring
   at least `threshold`; one span, widened to whole words. Only for strings of 4 to 1,000 characters
   that are mostly letters: for figures, dates and codes a near miss is another value.

Numbers (always with `find_evidence_in`; with `find_evidence(..., numbers=True)`) are looked up in the
spellings `number_forms` lists (`1234.5` as `1234.50`, `1,234.50`, `1.234,50`, `1 234,50`, ...), a
negative one also as `(9.32)` or `9.32-`, a fraction below 1 also as a percentage (`0.19` as `19%`):
`"exact"` when printed as JSON writes it, `"formatted"` in another spelling, `"partial"` when glued to
a longer token (`EUR1234.50`; `-1234.50` or an unsigned `1234.50` for the other sign). A number is never
found inside a longer number (`4.11` is not in `14.11`). Booleans and nulls are not looked up.

Every lookup is a linear scan of the text (no value is compared with every position in Python), so a
record of 20 values takes tens of milliseconds in a megabyte of text. Nothing is shared between calls:
the functions are safe to run in threads (`asyncio.to_thread`).
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from rapidfuzz import fuzz

from .._jsonpath import join_path
from ..errors import ConfigurationError, DocumentError, UnsupportedSourceError
from ._pages import PageOffsets, PageStarts
from .document import Document
from .image import Image

__all__ = [
    "DEFAULT_THRESHOLD",
    "Evidence",
    "EvidenceMethod",
    "SourceText",
    "evidence_texts",
    "find_evidence",
    "find_evidence_in",
    "number_forms",
]

EvidenceMethod: TypeAlias = Literal["exact", "normalized", "formatted", "partial", "fuzzy"]
"""How a value was found (see the module's docstring)."""

DEFAULT_THRESHOLD: Final = 0.9
"""The lowest fuzzy score (0-1) that counts as found."""

_MIN_FUZZY: Final = 4  # shorter strings match by chance
_MAX_FUZZY: Final = 1000  # longer ones are compared only exactly / normalized
_MAX_WIDEN: Final = 8  # characters a fuzzy span may grow by on each side, to whole words
# every whitespace character to a space (a table for str.translate)
_BLANKS: Final = MappingProxyType({c: " " for c in range(0x3001) if chr(c).isspace()})
# joins the texts of a source into one string to search: no match crosses it (no pattern matches NUL)
_SEPARATOR: Final = "\n\x00\n"
# roles whose messages are the source; system / developer messages are instructions, assistant ones
# (few-shot answers) are the model's own words: values are not looked up in either
_SOURCE_ROLES: Final = frozenset({"user", "tool", "function"})
_NEEDS_TEXT: Final = "evidence=True needs text to look values up in"

# token characters (a match next to one on the same side is glued to a longer token), letters, digits
_WORD: Final = re.compile(r"[\w/-]")
_LETTER: Final = re.compile(r"[^\W\d_]")
_DIGIT: Final = re.compile(r"\d")
_MARKS: Final = ".,'\u2019"  # between two digits they continue a number
_NUMERIC: Final = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?")
_ISO_DATE: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)")
_WEAK_DIGITS: Final = 2  # a number found only with this many digits or fewer is a weak match (`Evidence.weak`)

# month names of the usual invoice languages (en, de, fr, nl, es, it), lower case
_MONTH_NAMES: Final = (
    ("january", "januar", "jänner", "janvier", "januari", "enero", "gennaio"),
    ("february", "februar", "février", "februari", "febrero", "febbraio"),
    ("march", "märz", "mars", "maart", "marzo", "mrt"),  # and the Dutch abbreviation
    ("april", "avril", "abril", "aprile"),
    ("may", "mai", "mei", "mayo", "maggio"),
    ("june", "juni", "juin", "junio", "giugno"),
    ("july", "juli", "juillet", "julio", "luglio"),
    ("august", "août", "augustus", "agosto"),
    ("september", "septembre", "septiembre", "settembre"),
    ("october", "oktober", "octobre", "octubre", "ottobre"),
    ("november", "novembre", "noviembre"),
    ("december", "dezember", "décembre", "diciembre", "dicembre"),
)


def _unaccented(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


def _month_spellings() -> tuple[tuple[str, ...], ...]:
    """Each month's names, unaccented names and abbreviations (3-4 letter prefixes that begin no other
    month's name: `jan`, `sept`, `juil`, but not `jui`), longest first."""
    names = [{*months, *(_unaccented(n) for n in months)} for months in _MONTH_NAMES]
    out: list[tuple[str, ...]] = []
    for i, own in enumerate(names):
        others = [name for j, group in enumerate(names) if j != i for name in group]
        short = {n[:k] for n in own for k in (3, 4) if len(n) > k}
        short = {s for s in short if not any(o.startswith(s) for o in others)}
        out.append(tuple(sorted(own | short, key=lambda s: (-len(s), s))))
    return tuple(out)


_MONTHS: Final = _month_spellings()


@dataclass(frozen=True)
class Evidence:
    """Where the value at JSON `path` was found: `spans` (start, end) into the text, the `page` of the
    first span, the `method`, and a `score` from 0 to 1 (1 for every method but fuzzy; for a value not
    found, the best fuzzy score seen).

    `value` is the string looked up (a number as JSON writes it). With `find_evidence_in`, `part` is the
    index, in `evidence_texts(source)`, of the text the spans are in (the first one the value was found
    in; spans in later parts are not listed) and `where` that text's place in the source (`"$"`,
    `"$[1]"`, `"$[2].content"`); both are None when the value was not found, and with `find_evidence`.

    `weak`: a number (or a string that is one) found only as one or two digits (`1` in `"Week 1:"`,
    `19%`): such a figure occurs in most texts by chance, so its being there supports nothing. It is
    still `found`; a reviewer should not take it as support.
    """

    path: str
    value: str
    found: bool
    method: EvidenceMethod | None
    spans: list[tuple[int, int]] = field(default_factory=list)
    page: int | None = None
    score: float = 0.0
    part: int | None = None
    where: str | None = None
    weak: bool = False

    @property
    def partial(self) -> bool:
        """True when the value was found only inside a longer token (`method == "partial"`)."""
        return self.method == "partial"


@dataclass(frozen=True)
class SourceText:
    """One text of a source that values are looked up in: `where` it is in the source (a JSON path:
    `"$"` for a source that is one text, `"$[1]"` for a list's second item, `"$[2].content"` or
    `"$[2].content[0]"` in a message list), the `text`, and the `document` it is the text of (for
    pages), if any."""

    where: str
    text: str
    document: Document | None = None


# --- the sources' texts -------------------------------------------------------------------------


class _Collector:
    """The texts of a source, and what else it held (for the error when there is no text)."""

    def __init__(self) -> None:
        self.texts: list[SourceText] = []
        self.images = 0
        self.other: list[str] = []  # parts that are neither text nor images
        self.skipped: list[str] = []  # roles of messages that are not the source

    def add_text(self, where: str, text: str, document: Document | None = None) -> None:
        if text.strip():
            self.texts.append(SourceText(where, text, document))

    def add_document(self, where: str, document: Document) -> None:
        self.images += len(document.images)
        self.add_text(where, document.text, document)

    def add_item(self, item: Any, where: str) -> None:
        """A source item: a text, `Document`, `Image`, file path, `SourceText` or content part."""
        if isinstance(item, SourceText):
            self.texts.append(item)
        elif isinstance(item, str):
            self.add_text(where, item)
        elif isinstance(item, Document):
            self.add_document(where, item)
        elif isinstance(item, Image):
            self.images += 1
        elif isinstance(item, os.PathLike):
            self.add_document(where, Document.from_path(item))
        elif isinstance(item, Mapping) and "type" in item:
            self.add_part(item, where)
        elif isinstance(item, (bytes, bytearray, memoryview)):
            raise UnsupportedSourceError(
                f"{where}: cannot look values up in raw bytes: wrap them with Document.from_bytes(data, name=...)"
            )
        else:
            raise UnsupportedSourceError(
                f"{where}: cannot look values up in a {type(item).__name__}: give text (str), a Document, "
                "an Image, a file path, or a list of chat messages"
            )

    def add_part(self, part: Mapping[str, Any], where: str) -> None:
        """An OpenAI content part: text is read, a PDF `file` part's data decoded and read."""
        kind = part.get("type")
        if kind in ("text", "input_text") and isinstance(part.get("text"), str):
            self.add_text(where, part["text"])
        elif kind in ("image_url", "input_image"):
            self.images += 1
        elif kind == "file":
            document = _file_document(part.get("file"), where)
            if document is None:
                self.other.append("a file part without inline data")
            else:
                self.add_document(where, document)
        else:
            self.other.append(f"a {kind!r} part")

    def add_messages(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for i, message in enumerate(messages):
            role = message.get("role")
            content = message.get("content")
            if role not in _SOURCE_ROLES:
                if content:
                    self.skipped.append(str(role))
                continue
            where = join_path(join_path("$", i), "content")
            if isinstance(content, str):
                self.add_text(where, content)
            elif isinstance(content, Sequence):
                for j, part in enumerate(content):
                    if isinstance(part, Mapping):
                        self.add_part(part, join_path(where, j))

    def missing_text(self) -> ConfigurationError:
        """The error for a source without text to look values up in."""
        held = [f"{self.images} image{'s' if self.images != 1 else ''}"] if self.images else []
        held.extend(dict.fromkeys(self.other))
        skipped = ", ".join(dict.fromkeys(self.skipped))
        note = f"values are not looked up in {skipped} messages" if skipped else ""
        detail = "; ".join(part for part in (", ".join(held), note) if part)
        if self.images and not self.other:
            return ConfigurationError(f"{_NEEDS_TEXT}: this source is only images ({detail})")
        return ConfigurationError(f"{_NEEDS_TEXT}: this source has no text" + (f" ({detail})" if detail else ""))


def _file_document(file: Any, where: str) -> Document | None:
    """The document in a `file` content part's inline `file_data` (a base64 `data:` URL), if it has one."""
    if not isinstance(file, Mapping) or not isinstance(file.get("file_data"), str):
        return None
    header, _, encoded = file["file_data"].partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentError("the file part's data is not valid base64", source=where) from None
    name = file.get("filename")
    return Document.from_bytes(data, name=name if isinstance(name, str) and name else "file.pdf")


def _is_messages(source: Any) -> bool:
    return (
        isinstance(source, Sequence)
        and not isinstance(source, str)
        and bool(source)
        and all(isinstance(m, Mapping) and "role" in m for m in source)
    )


def evidence_texts(source: Any) -> list[SourceText]:
    """Every text of `source` that values are looked up in, in order.

    `source` is anything the extractor accepts: a text (`str`, always text, never a path), a `Document`
    (its `text`, with pages), a file path (`os.PathLike`, read with `Document.from_path`), an `Image` (no
    text), a list of these, or an OpenAI chat message list. Of a message list only the `user` and `tool`
    messages are the source: their string content, or each `text` part (and each PDF `file` part with
    inline data) of their content list. System and developer messages are instructions and assistant
    messages the model's own answers, not the source: a value found only there would not be evidence.
    A list of `SourceText` (what this returns) is returned as it is. Blank texts are left out.

    A source without any text (only images) raises `ConfigurationError`; an item of an unknown type
    raises `UnsupportedSourceError`; a file that cannot be read raises `DocumentError`.
    """
    collector = _Collector()
    if _is_messages(source):
        collector.add_messages(source)
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes, bytearray, memoryview)):
        for i, item in enumerate(source):
            collector.add_item(item, join_path("$", i))
    else:
        collector.add_item(source, "$")
    if not collector.texts:
        raise collector.missing_text()
    return collector.texts


# --- matching ------------------------------------------------------------------------------------


class _Text:
    """The texts searched, joined into one string, with a lower-cased copy of the same length."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.text = texts[0] if len(texts) == 1 else _SEPARATOR.join(texts)
        self.starts: list[int] = []
        at = 0
        for text in texts:
            self.starts.append(at)
            at += len(text) + len(_SEPARATOR)
        self.lengths = [len(text) for text in texts]
        lowered = self.text.lower()
        # a few characters lower-case to two: then search the text itself, ignoring case
        self.caseless = len(lowered) == len(self.text)
        self.lowered = lowered if self.caseless else self.text
        self.flags = re.DOTALL if self.caseless else re.DOTALL | re.IGNORECASE
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        """The lower-cased text with every whitespace character a space, for fuzzy alignment."""
        if self._folded is None:
            self._folded = self.lowered.translate(_BLANKS)
        return self._folded

    def part_at(self, offset: int) -> int:
        return bisect_right(self.starts, offset) - 1


def _edge(outside: str, inside: str, further: str) -> int:
    """How a match's edge character `inside` joins the text's character `outside` next to it (`further` is
    the one beyond): 2 when it continues a word or a number, 1 when it is glued to a longer token, else 0."""
    if (_LETTER.match(outside) and _LETTER.match(inside)) or (_DIGIT.match(outside) and _DIGIT.match(inside)):
        return 2
    if outside in _MARKS and _DIGIT.match(inside) and _DIGIT.match(further):
        return 2
    return 1 if _WORD.match(outside) and _WORD.match(inside) else 0


def _level(text: str, start: int, end: int, *, units: bool = False) -> int:
    """0 when `text[start:end]` stands apart, 1 when it is glued to a longer token (`"2024-0117"` in
    `"KDS-2024-0117"`), 2 when it continues a word or number (`"4.11"` in `"14.11"`, `"ACME"` in `"ACMEs"`).

    With `units` (numbers and dates), letters right after a final digit do not glue: they are a unit or
    a word that a PDF's text layer runs on (`120.00EUR`, `12h`, `20-10-2015Invoice`)."""
    left = _edge(text[start - 1], text[start], text[start - 2] if start > 1 else "") if start > 0 else 0
    right = 0
    if end < len(text) and not (units and _LETTER.match(text[end]) and _DIGIT.match(text[end - 1])):
        right = _edge(text[end], text[end - 1], text[end + 1] if end + 1 < len(text) else "")
    return max(left, right)


def _left_guard(first: str, level: int) -> str:
    """Lookbehinds, placed after a pattern's first character `first`, that reject matches whose left
    edge is above `level` (see `_level`); placed there, they leave the search its fast literal scan."""
    if level == 0:
        guard = r"(?<![\w/-].)" if _WORD.match(first) else ""
        return guard + (r"(?<!\d[.,'\u2019].)" if _DIGIT.match(first) else "")
    if level == 1 and _LETTER.match(first):
        return r"(?<![^\W\d_].)"
    if level == 1 and _DIGIT.match(first):
        return r"(?<!\d.)(?<!\d[.,'\u2019].)"
    return ""


def _right_guard(last: str, level: int) -> str:
    """Lookaheads that reject matches ending in `last` whose right edge is above `level`."""
    if level == 0:
        guard = r"(?![\w/-])" if _WORD.match(last) else ""
        return guard + (r"(?![.,'\u2019]\d)" if _DIGIT.match(last) else "")
    if level == 1 and _LETTER.match(last):
        return r"(?![^\W\d_])"
    if level == 1 and _DIGIT.match(last):
        return r"(?!\d)(?![.,'\u2019]\d)"
    return ""


def _chars_pattern(chars: str, level: int, spaced: bool) -> str:
    """A pattern for the characters `chars` (whitespace between any two with `spaced`), guarded to `level`."""
    between = r"\s*" if spaced else ""
    rest = between.join(re.escape(c) for c in chars[1:])
    return (
        re.escape(chars[0])
        + _left_guard(chars[0], level)
        + (between if rest else "")
        + rest
        + _right_guard(chars[-1], level)
    )


def _matches(
    pattern: re.Pattern[str], hay: str, text: str, limit: int, max_level: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Up to `limit` matches of `pattern` in `hay` (`text` or a same-length copy) standing apart, and up to
    `limit` glued to a longer token (of level at most `max_level`: see `_level`), overlapping ones
    included. With `max_level` 0 the scan stops at `limit` matches standing apart, else at `limit` glued."""
    apart: list[tuple[int, int]] = []
    glued: list[tuple[int, int]] = []
    at = 0
    while len(apart if max_level == 0 else glued) < limit:
        match = pattern.search(hay, at)
        if match is None:
            break
        start, end = match.span()
        if end > start:
            level = _level(text, start, end)
            if level == 0:
                apart.append((start, end))
            elif level <= max_level and len(glued) < limit:
                glued.append((start, end))
        at = start + 1
    return apart, glued


def _spaced(hay: _Text, needle: str, level: int) -> re.Pattern[str]:
    """A pattern for `needle` ignoring case and whitespace, guarded to `level`, to search `hay.lowered`."""
    chars = "".join(needle.split())
    lowered = chars.lower()
    if hay.caseless and len(lowered) == len(chars):
        return re.compile(_chars_pattern(lowered, level, True), re.DOTALL)
    return re.compile(_chars_pattern(chars, level, True), re.DOTALL | re.IGNORECASE)


def _literal(hay: _Text, needle: str, limit: int) -> tuple[EvidenceMethod | None, list[tuple[int, int]]]:
    """`needle`'s exact, else normalized matches standing apart."""
    apart = _matches(re.compile(_chars_pattern(needle, 0, False), re.DOTALL), hay.text, hay.text, limit, 0)[0]
    if apart:
        return "exact", apart
    apart = _matches(_spaced(hay, needle, 0), hay.lowered, hay.text, limit, 0)[0]
    return ("normalized", apart) if apart else (None, [])


def _glued(hay: _Text, needle: str, limit: int, whole_words: bool) -> list[tuple[int, int]]:
    """`needle`'s matches inside longer tokens (none continuing a word or number with `whole_words`): exact
    ones, else ignoring case and whitespace."""
    level = 1 if whole_words else 2
    exact = re.compile(_chars_pattern(needle, level, False), re.DOTALL)
    glued = _matches(exact, hay.text, hay.text, limit, level)[1]
    return glued or _matches(_spaced(hay, needle, level), hay.lowered, hay.text, limit, level)[1]


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """`start`/`end` moved out to the edges of the words they cut (a few characters at most), spaces trimmed."""
    for _ in range(_MAX_WIDEN):
        if 0 < start < end and text[start - 1].isalnum() and text[start].isalnum():
            start -= 1
        if start < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
            end += 1
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _fuzzy(hay: _Text, needle: str, threshold: float) -> tuple[float, tuple[int, int] | None]:
    """The best alignment's score (0-1) and span, the span only when the score reaches `threshold`."""
    folded = " ".join(needle.lower().split())
    if not (_MIN_FUZZY <= len(folded) <= _MAX_FUZZY) or len(folded) > len(hay.text):
        return 0.0, None
    solid = folded.replace(" ", "")
    if sum(c.isalpha() for c in solid) * 2 < len(solid):
        return 0.0, None  # figures, dates and codes: a near miss is another value
    alignment = fuzz.partial_ratio_alignment(folded, hay.folded)
    if alignment is None:
        return 0.0, None
    score = alignment.score / 100
    if score < threshold:
        return score, None
    return score, _widen(hay.text, alignment.dest_start, alignment.dest_end)


# --- numbers and dates ---------------------------------------------------------------------------


def _form_pattern(form: str) -> str:
    """A printed number as a pattern: any space (a no-break one too) where it has a space, any apostrophe
    where it has one."""
    return re.escape(form).replace(r"\ ", "[ \u00a0\u202f]").replace("'", "['\u2019]")


def _forms_pattern(number: Decimal) -> str:
    """A pattern for the printed spellings of `number` (at least 0), continuing no number on either side.
    They all start with the same digit: the left guard follows it, which keeps the scan fast."""
    forms = sorted(number_forms(number), key=len, reverse=True)
    first = forms[0][0]
    rests = "|".join(_form_pattern(f[1:]) for f in forms)
    return first + _left_guard(first, 1) + "(?:" + rests + ")" + _right_guard("0", 1)  # all end in a digit


def _number_pattern(number: Decimal) -> re.Pattern[str]:
    """A pattern for `number` as printed; a match with the group `bare` lacks the sign of a negative number."""
    core = _forms_pattern(abs(number))
    if number < 0:
        signed = rf"[-\u2212]\s?{core}|\({core}\)|{core}\s?[-\u2212]"
        return re.compile(rf"(?:{signed})|(?P<bare>{core})")
    if 0 < number < 1:
        percent = _forms_pattern((number * 100).normalize())
        return re.compile(rf"{core}|{percent}\s?%")
    return re.compile(core)


def _variants(n: int) -> list[str]:
    """How a day or month number is printed: `7` as `07` or `7`."""
    return [f"0{n}", str(n)] if n < 10 else [str(n)]


def _date_spans(hay: _Text, day: date, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Where `day` is printed (`17.01.2024`, `17/01/24`, `01/17/2024`, `2024/1/17`, `17 January 2024`,
    `17-Jan-24`, `17. Januar 2024`, `Jan 17, 2024`, `January 17th 2024`, ...), standing apart and glued
    to a longer token. Every pattern starts with a digit, which keeps the scan fast: a form that starts
    with the month's name is found by its day and year, then the name just before them."""
    days = "(?:" + "|".join(_variants(day.day)) + ")"
    months = "(?:" + "|".join(_variants(day.month)) + ")"
    names = "(?:" + "|".join(re.escape(name) for name in _MONTHS[day.month - 1]) + ")"
    y4 = f"{day.year:04d}"
    years = f"(?:{y4}|{day.year % 100:02d})"
    end = _right_guard("0", 1)
    forms = [
        # 17.01.2024, 17/01/24, 17-1-2024; 17 January 2024, 17-Jan-24, 17. Januar 2024, 1er janvier 2024
        rf"{d}(?:(?P<s{i}>[./-])\s?{months}(?P=s{i})\s?{years}"
        rf"|(?:st|nd|rd|th|er|\.)?[\s-]*(?:of\s+|de\s+)?{names}\.?\s*,?[\s-]*(?:de\s+)?'?{years}){end}"
        for i, d in enumerate(_variants(day.day))
    ]
    forms += [rf"{m}/{days}/{years}{end}" for m in _variants(day.month)]  # 01/17/2024
    forms.append(rf"{y4}(?P<y>[./-]){months}(?P=y){days}{end}")  # 2024/01/17, 2024.1.17
    apart, glued = _printed(re.compile("|".join(forms), hay.flags), hay.lowered, hay.text, limit)
    # January 17, 2024; Jan. 17th 2024; August 3 , 2014
    tail = re.compile("|".join(rf"{d}(?:st|nd|rd|th)?\s*,?\s*{y4}{end}" for d in _variants(day.day)), hay.flags)
    name = re.compile(rf"{names}\.?\s*\Z", hay.flags)
    at = 0
    while len(apart) < limit:
        match = tail.search(hay.lowered, at)
        if match is None:
            break
        at = match.start() + 1
        before = name.search(hay.lowered, max(0, match.start() - 16), match.start())
        if before is None:
            continue
        level = _level(hay.text, before.start(), match.end(), units=True)
        if level == 0:
            apart.append((before.start(), match.end()))
        elif level == 1 and len(glued) < limit:
            glued.append((before.start(), match.end()))
    return sorted(apart)[:limit], sorted(glued)[:limit]


def _printed(
    pattern: re.Pattern[str], hay: str, text: str, limit: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Matches of a number or date `pattern` standing apart, and those glued to a longer token (a number
    printed without its sign counts as glued); none continuing a longer number or word."""
    apart: list[tuple[int, int]] = []
    glued: list[tuple[int, int]] = []
    at = 0
    while len(apart) < limit:
        match = pattern.search(hay, at)
        if match is None:
            break
        start, end = match.span()
        level = _level(text, start, end, units=True)
        if "bare" in pattern.groupindex and match.group("bare") is not None:
            level = max(level, 1)
        if level == 0:
            apart.append((start, end))
        elif level == 1 and len(glued) < limit:
            glued.append((start, end))
        at = start + 1
    return apart, glued


def _as_date(value: str) -> date | None:
    match = _ISO_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


# --- the lookup ----------------------------------------------------------------------------------


@dataclass
class _Found:
    method: EvidenceMethod | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    score: float = 0.0


def _find_number(hay: _Text, number: Decimal, shown: str, limit: int) -> _Found:
    if not number.is_finite():
        return _Found()
    apart, glued = _printed(_number_pattern(number), hay.lowered, hay.text, limit)
    if apart:
        method: EvidenceMethod = "exact" if hay.text[apart[0][0] : apart[0][1]] == shown else "formatted"
        return _Found(method, apart, 1.0)
    return _Found("partial", glued, 1.0) if glued else _Found()


def _find_string(hay: _Text, raw: str, threshold: float, limit: int, whole_words: bool, numbers: bool) -> _Found:
    needle = raw.strip()
    if not needle:
        return _Found()
    method, spans = _literal(hay, needle, limit)
    if method is not None:
        return _Found(method, spans, 1.0)
    glued: list[tuple[int, int]] = []
    day = _as_date(needle)
    if day is not None:
        spans, glued = _date_spans(hay, day, limit)
    elif numbers and _NUMERIC.fullmatch(needle):
        found = _find_number(hay, Decimal(needle), needle, limit)
        spans = found.spans if found.method != "partial" else []
        glued = found.spans if found.method == "partial" else []
    if spans:
        return _Found("formatted", spans, 1.0)
    glued = _glued(hay, needle, limit, whole_words) or glued
    if glued:
        return _Found("partial", glued, 1.0)
    score, span = _fuzzy(hay, needle, threshold)
    return _Found("fuzzy", [span], score) if span is not None else _Found(score=score)


def _leaves(value: Any, path: str, numbers: bool) -> list[tuple[str, str | Decimal, str]]:
    """`(path, value, value as a string)` of every string (and, with `numbers`, every number) in a plain JSON
    value, in document order."""
    if isinstance(value, str):
        return [(path, value, value)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, join_path(path, str(key)), numbers)]
    if isinstance(value, (list, tuple)):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, join_path(path, i), numbers)]
    if numbers and isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        shown = repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, float) and not math.isfinite(value):
            return [(path, Decimal("NaN"), shown)]
        try:
            return [(path, Decimal(shown) if isinstance(value, float) else Decimal(value), shown)]
        except InvalidOperation:
            return [(path, Decimal("NaN"), shown)]
    return []


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ConfigurationError(f"threshold={threshold!r}: give a score between 0 (exclusive) and 1")


def _lookup(
    value: Any,
    hay: _Text,
    *,
    threshold: float,
    max_spans: int,
    whole_words: bool,
    numbers: bool,
    pages: Sequence[PageStarts | None],
    places: Sequence[str] | None,
) -> list[Evidence]:
    """The evidence for `value` in `hay`: spans and pages per part; `part` / `where` set when `places` names
    the parts."""
    out: list[Evidence] = []
    for path, item, shown in _leaves(value, "$", numbers):
        if isinstance(item, str):
            found = _find_string(hay, item, threshold, max_spans, whole_words, numbers)
        else:
            found = _find_number(hay, item, shown, max_spans)
        part: int | None = None
        spans: list[tuple[int, int]] = []
        page: int | None = None
        if found.spans:
            part = hay.part_at(found.spans[0][0])
            if found.spans[0][0] >= hay.starts[part] + hay.lengths[part] and part + 1 < len(hay.starts):
                part += 1  # a fuzzy span starting on the separator: it aligns with the next text
            offset, length = hay.starts[part], hay.lengths[part]
            # the spans in that text (only a fuzzy one can overrun it: it is cut at the text's ends)
            spans = [
                (max(s - offset, 0), min(e - offset, length))
                for s, e in found.spans
                if e > offset and s < offset + length
            ]
            starts = pages[part]
            page = starts.page_at(spans[0][0]) if starts is not None and spans else None
        figure = not isinstance(item, str) or _NUMERIC.fullmatch(item.strip()) is not None
        weak = figure and bool(found.spans) and all(_digits(hay.text[s:e]) <= _WEAK_DIGITS for s, e in found.spans)
        out.append(
            Evidence(
                path=path,
                value=shown,
                found=bool(spans),
                method=found.method if spans else None,
                spans=spans,
                page=page,
                score=found.score,
                part=part if places is not None and spans else None,
                where=places[part] if places is not None and part is not None and spans else None,
                weak=weak and bool(spans),
            )
        )
    return out


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def find_evidence(
    value: Any,
    text: str | Document,
    *,
    page_offsets: PageOffsets | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_spans: int = 20,
    whole_words: bool = False,
    numbers: bool = False,
) -> list[Evidence]:
    """Evidence for every string in `value` (a plain JSON value: dicts, lists, scalars), in order, in one text.

    `text` is the source text, or a `Document` (its `text` and page offsets are used). `page_offsets`
    (`(page number, offset)` pairs, or offsets of pages 1, 2, ...) give each match its page. A string
    is `found` by an exact, normalized, formatted or partial match, or a fuzzy one scoring at least
    `threshold` (0-1); at most `max_spans` occurrences are listed. With `whole_words`, a match continuing a
    word or number (`"4.11"` in `"14.11"`) does not count even as partial; use it for numbers. With
    `numbers`, numbers are looked up too (as printed: see the module's docstring). `part` and `where` are
    None: for every text of any source, with numbers, use `find_evidence_in`.
    """
    _check_threshold(threshold)
    if not isinstance(text, str):
        if page_offsets is None:
            page_offsets = text.page_offsets
        text = text.text
    starts = PageStarts(page_offsets) if page_offsets is not None else None
    return _lookup(
        value,
        _Text([text]),
        threshold=threshold,
        max_spans=max_spans,
        whole_words=whole_words,
        numbers=numbers,
        pages=[starts],
        places=None,
    )


def find_evidence_in(
    value: Any, source: Any, *, threshold: float = DEFAULT_THRESHOLD, max_spans: int = 20
) -> list[Evidence]:
    """Evidence for every string, number and date in `value` (a plain JSON value), in order, looked up in
    every text of `source`: anything the extractor accepts (see `evidence_texts`: user and tool messages
    are the source, system instructions and assistant answers are not), or the list `evidence_texts`
    returned for it (to read the files once, and to fail before a request is sent).

    Each `Evidence` says which text it was found in: `part` indexes `evidence_texts(source)`, `where` is
    that text's place in the source, `spans` are offsets into that text (into `Document.text` for a
    document) and `page` is its page. For a source that is one text or document, `part` is 0 and spans
    and pages mean what they mean with `find_evidence`. Booleans and nulls are not looked up. A value
    found only inside a longer token is `found` with `method == "partial"`.

    A source with no text (only images) raises `ConfigurationError`. CPU work (a megabyte of text takes
    tens of milliseconds); safe to run in a thread.
    """
    _check_threshold(threshold)
    texts = evidence_texts(source)
    pages = [PageStarts(t.document.page_offsets) if t.document is not None else None for t in texts]
    return _lookup(
        value,
        _Text([t.text for t in texts]),
        threshold=threshold,
        max_spans=max_spans,
        whole_words=False,
        numbers=True,
        pages=pages,
        places=[t.where for t in texts],
    )


# --- number forms --------------------------------------------------------------------------------


def _grouped(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(groups)


def number_forms(number: int | float | Decimal, *, decimals: int | None = None) -> list[str]:
    """Common printed spellings of `number`: `1234.5` gives `"1234.50"`, `"1,234.50"`, `"1.234,50"`,
    `"1 234,50"`, `"1234,50"`, `"1234.5"`, ... (two decimals unless `decimals` says otherwise; whole
    numbers also without decimals). `find_evidence_in` looks numbers up in these spellings."""
    if isinstance(number, bool) or not isinstance(number, (int, float, Decimal)):
        raise ConfigurationError(f"number_forms: {number!r} is not a number")
    value = Decimal(str(number)) if isinstance(number, float) else Decimal(number)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals is not None:
        places = [decimals]
    else:
        exponent = value.normalize().as_tuple().exponent
        natural = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        places = [2, natural] if natural < 2 else [natural]  # never round a printed figure away
    forms: list[str] = []
    for count in places:
        whole, _, fraction = f"{value:.{count}f}".partition(".")
        for thousands, point in (("", "."), (",", "."), ("", ","), (".", ","), (" ", ","), (" ", "."), ("'", ".")):
            body = _grouped(whole, thousands) if thousands else whole
            form = f"{sign}{body}{point}{fraction}" if count else f"{sign}{body}"
            if form not in forms:
                forms.append(form)
    return forms
